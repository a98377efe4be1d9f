// SPDX-License-Identifier: GPL-2.0
/* An out-of-tree module registered with `distkernel modules add` in tests. */
#include <linux/init.h>
#include <linux/module.h>

static int __init dk_dkms_extra_init(void)
{
	pr_info("dk_dkms_extra: external module loaded\n");
	return 0;
}

static void __exit dk_dkms_extra_exit(void)
{
}

module_init(dk_dkms_extra_init);
module_exit(dk_dkms_extra_exit);
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("distkernel external module test (dkms.conf, second module)");
