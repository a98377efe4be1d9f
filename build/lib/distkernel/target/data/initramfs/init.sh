#!/bin/busybox sh
# distkernel's builtin initramfs /init (busybox-static): load the storage and filesystem
# modules, find root= (device, UUID=, LABEL=, MAJ:MIN), mount it read-only (rw if asked),
# and switch_root to its init. On any failure: print the reason, drop to a shell.
# Quiet unless `rd.debug`. Command line: root= rootfstype= rootflags= init= ro rw
# rd.timeout=SECONDS (wait for root, default 30) rd.break (shell before switch_root).
# Busybox runs its applets itself (standalone shell); there are no applet links, so the
# kernel's fallback init paths (/sbin/init, /bin/sh) stay empty.
bb=/bin/busybox
[ -e /proc/self ] || $bb mount -t proc -o nosuid,nodev,noexec proc /proc
[ -e /sys/kernel ] || $bb mount -t sysfs -o nosuid,nodev,noexec sysfs /sys
[ -e /dev/null ] || $bb mount -t devtmpfs -o nosuid,mode=0755 devtmpfs /dev
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/ TERM=linux

say() { echo "initramfs: $*" >/dev/console; }
debug() { [ -z "$rd_debug" ] || say "$*"; }
rescue() {
	say "error: $*"
	say "dropping to a shell; fix the problem, then exit to retry the boot"
	setsid cttyhack sh
	exec $bb sh /init
}

root= rootfstype= rootflags= init=/sbin/init mode=ro timeout=30 rd_debug= rd_break=
set -f # command line words are not globs
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	root=*) root=${arg#root=} ;;
	rootfstype=*) rootfstype=${arg#rootfstype=} ;;
	rootflags=*) rootflags=${arg#rootflags=} ;;
	init=*) init=${arg#init=} ;;
	ro | rw) mode=$arg ;;
	rd.timeout=*) timeout=${arg#rd.timeout=} ;;
	rd.debug) rd_debug=1 ;;
	rd.break) rd_break=1 ;;
	esac
done
set +f
[ -z "$rd_debug" ] || set -x

release=$(uname -r)
[ -d "/lib/modules/$release" ] || [ ! -d /lib/modules ] ||
	say "warning: the image has no modules for the running kernel $release"
if [ -s /etc/initramfs/load ]; then
	# shellcheck disable=SC2046 # one module name per word
	modprobe -q -a $(cat /etc/initramfs/load) || debug "some of $(cat /etc/initramfs/load) did not load"
fi

# Load drivers for the devices present, again whenever new ones appear (a bus driver
# reveals the disks behind it).
seen=
coldplug() {
	[ -d "/lib/modules/$release" ] || return 0
	now=$(cat /sys/bus/*/devices/*/modalias 2>/dev/null | sort -u)
	[ "$now" != "$seen" ] || return 0
	seen=$now
	set -f
	# shellcheck disable=SC2086 # one alias per word
	[ -z "$now" ] || modprobe -q -a $now 2>/dev/null
	set +f
}

resolve() {
	case "$root" in
	UUID=* | LABEL=*) findfs "$root" 2>/dev/null ;;
	/dev/disk/by-uuid/*) findfs "UUID=${root##*/}" 2>/dev/null ;;
	/dev/disk/by-label/*) findfs "LABEL=${root##*/}" 2>/dev/null ;;
	/dev/*) [ -b "$root" ] && echo "$root" ;;
	*:*) [ -e "/sys/dev/block/$root/uevent" ] && sed -n 's|^DEVNAME=|/dev/|p' "/sys/dev/block/$root/uevent" ;;
	esac
}

[ -n "$root" ] || rescue "no root= on the kernel command line ($(cat /proc/cmdline))"
case "$root" in
UUID=* | LABEL=* | /dev/* | *:*) ;;
*) rescue "root=$root is not supported; use a device (/dev/vda1), UUID=, LABEL= or MAJ:MIN" ;;
esac
case "$timeout" in
'' | *[!0-9]*) rescue "rd.timeout=$timeout is not a number of seconds" ;;
esac

tries=$((timeout * 5))
dev=
while :; do
	coldplug
	dev=$(resolve)
	[ -z "$dev" ] || break
	[ "$tries" -gt 0 ] || rescue "root device $root did not appear within $timeout s" \
		"(block devices: $(ls /sys/class/block | tr '\n' ' '))"
	tries=$((tries - 1))
	sleep 0.2
done
debug "root=$root is $dev"

mkdir -p /sysroot
opts=$mode${rootflags:+,$rootflags}
if ! err=$(mount ${rootfstype:+-t "$rootfstype"} -o "$opts" "$dev" /sysroot 2>&1); then
	rescue "cannot mount $dev (root=$root${rootfstype:+ rootfstype=$rootfstype}, -o $opts): $err" \
		"(filesystems: $(sed 's/^nodev\t.*//; s/^\t//' /proc/filesystems | tr '\n' ' '))"
fi
if [ ! -x "/sysroot$init" ] && [ ! -L "/sysroot$init" ]; then
	umount /sysroot
	rescue "no init at $init on $dev (root=$root); pass init=PATH"
fi
if [ -n "$rd_break" ]; then
	say "rd.break: root is mounted on /sysroot; exit the shell to continue the boot"
	setsid cttyhack sh
fi

debug "switching to $init on $dev"
for d in dev proc sys; do
	if [ -d "/sysroot/$d" ]; then $bb mount --move "/$d" "/sysroot/$d"; else $bb umount -l "/$d"; fi
done
exec $bb switch_root /sysroot "$init" "$@"
