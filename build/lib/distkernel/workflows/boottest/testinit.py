"""The test /init: checks the running kernel is the package's (uname -r), loads the
test modules with modprobe (so dependencies resolve), prints a marker unique to this
run, and powers off. A failed check prints one line naming it and powers off at once.
It runs in the builtin initramfs: busybox at /bin/busybox running its own applets.

The token exists only inside the initramfs, never on the kernel command line (which
the kernel echoes), so nothing but this script can print the marker."""

from __future__ import annotations

import re
import shlex

MARKER = "DISTKERNEL-BOOT-OK"
CHECK_FAILED = "DISTKERNEL-CHECK-FAILED"

MODULE_NAME = re.compile(r"^[A-Za-z0-9_-]+$")

SCRIPT = """#!/bin/busybox sh
# distkernel boot test: checks, then this run's marker, then power-off.
bb=/bin/busybox
$bb mount -t proc proc /proc 2>/dev/null
$bb mount -t sysfs sysfs /sys 2>/dev/null
$bb mount -t devtmpfs devtmpfs /dev 2>/dev/null
# Without ACPI power-off, reboot -f ends qemu (-no-reboot); never fall through.
stop() {{ $bb poweroff -f; $bb sleep 3; $bb reboot -f; while :; do $bb sleep 60; done; }}
failed() {{ echo "{failed} $1"; stop; }}
release=$($bb uname -r)
[ "$release" = {release} ] || failed "uname -r: running $release, the package is "{release}
for m in {modules}; do
    out=$($bb modprobe "$m" 2>&1) || failed "modprobe $m: ${{out:-exit status $?}}"
    [ -d "/sys/module/${{m//-/_}}" ] || failed "modprobe $m: not loaded (no /sys/module entry)"
done
echo "{marker} "{token}
stop
"""


def init_script(release: str, modules: tuple[str, ...], token: str) -> str:
    for m in modules:
        if not MODULE_NAME.match(m):
            raise ValueError(f"not a module name: {m!r}")
    return SCRIPT.format(
        failed=CHECK_FAILED,
        marker=MARKER,
        release=shlex.quote(release),
        modules=" ".join(modules),
        token=shlex.quote(token),
    )
