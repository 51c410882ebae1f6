#!/bin/busybox sh
# SPDX-License-Identifier: GPL-2.0
# /init of the initramfs scripts/vmtest.sh builds (busybox-static, the
# kernel's modules for virtiofs and overlayfs in /modules, loaded in the
# order of /modules/order): the new root is the host's root file system,
# shared read-only over virtiofs (tag "root"), under an overlay whose upper
# layer is a tmpfs, so the guest may write anywhere and nothing reaches the
# host. Then hand over to the guest init named on the kernel command line
# (pktlens.init=PATH, scripts/vm-init.sh of the worktree).
/bin/busybox mkdir -p /bin /dev /proc /sys /host /rw /newroot
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sysfs /sys

fail() {
	echo "vm-rdinit: $*"
	echo o > /proc/sysrq-trigger
	sleep 60
}

while read -r m; do
	insmod "/modules/$m" || fail "insmod $m failed"
done < /modules/order

init=
for arg in $(cat /proc/cmdline); do
	case $arg in pktlens.init=*) init=${arg#pktlens.init=} ;; esac
done
[ -n "$init" ] || fail "no pktlens.init= on the kernel command line"

# the device may still be probing: try for a few seconds
tries=0
until mount -t virtiofs -o ro root /host 2>/dev/null; do
	tries=$((tries + 1))
	[ $tries -lt 50 ] || fail "cannot mount the host's root (virtiofs tag root)"
	sleep 0.1
done
[ -x "/host$init" ] || fail "$init: not found on the host's root"
mount -t tmpfs -o mode=755 rw /rw
mkdir /rw/upper /rw/work
mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work root /newroot ||
	fail "cannot mount the overlay root"

umount /proc /sys
mount --move /dev /newroot/dev
exec switch_root /newroot "$init"
