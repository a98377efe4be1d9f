// SPDX-License-Identifier: GPL-2.0
/* The smallest out-of-tree module: built against a package's headers tree in tests. */
#include <linux/init.h>
#include <linux/module.h>

static int __init hello_init(void)
{
	pr_info("hello: distkernel out-of-tree module loaded\n");
	return 0;
}

static void __exit hello_exit(void)
{
}

module_init(hello_init);
module_exit(hello_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("distkernel test module");
