// SPDX-License-Identifier: GPL-2.0
/* Does not compile, on purpose: the kernel must still install and boot. */
#include <linux/module.h>

static int __init dk_broken_init(void)
{
	return this_symbol_does_not_exist;
}

module_init(dk_broken_init);
MODULE_LICENSE("GPL");
