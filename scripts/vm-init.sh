#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# PID 1 of a test VM (scripts/vmtest.sh), started by the initramfs
# (scripts/vm-rdinit.sh) on the host's root file system under a tmpfs
# overlay. Mounts what a Debian system has (proc, sysfs, devtmpfs, fresh
# tmpfs on /run /tmp /var/tmp, bpffs, tracefs, debugfs, cgroup2), puts the
# booted kernel's modules at /lib/modules/$(uname -r) so modprobe works and
# its config in /boot, brings up lo, then runs the job the host wrote into the writable share
# (virtiofs tag "out", mounted at /run/vm): VM_CMD with VM_ENV in VM_CWD,
# stopped after VM_TIMEOUT seconds. Its stdout, stderr and exit code go to
# /run/vm/stdout, stderr, rc; then the VM powers off.
PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export PATH

say() { echo "vm-init: $*" > /dev/console; }

poweroff() {
	sync
	echo o > /proc/sysrq-trigger
	sleep 60
}

fail() {
	say "$*"
	[ -d /run/vm ] && echo "vm-init: $*" >> /run/vm/error
	poweroff
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mountpoint -q /dev || mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mount -t tmpfs -o mode=1777 tmpfs /var/tmp
mkdir -p /run/lock /run/vm
mount -t virtiofs out /run/vm || fail "cannot mount the output share (virtiofs tag out)"
[ -r /run/vm/job ] || fail "no job in the output share"
: > /run/vm/booted
# shellcheck source=/dev/null
. /run/vm/job

mount -t bpf bpf /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
mount -t cgroup2 cgroup2 /sys/fs/cgroup

release=$(uname -r)
[ "$release" = "$VM_RELEASE" ] || fail "booted $release, expected $VM_RELEASE"
modules=$(readlink -f /lib/modules)/$release
mkdir -p "$modules"
mount --bind "$VM_KROOT/lib/modules/$release" "$modules" || fail "cannot bind the modules to $modules"
# its config (libbpf's __kconfig, bpftool feature probe) and System.map
mkdir -p /boot
ln -sf "$VM_KROOT/boot/config-$release" "$VM_KROOT/boot/System.map-$release" /boot/
echo "vm-$VM_LABEL" > /proc/sys/kernel/hostname
ip link set lo up

read -r boot _ < /proc/uptime
say "$VM_LABEL ($release) up in ${boot}s, running: ${VM_CMD[*]}"
cd "$VM_CWD" || fail "$VM_CWD: cannot enter"
env -i "${VM_ENV[@]}" timeout -k 10 "$VM_TIMEOUT" "${VM_CMD[@]}" \
	< /dev/null >> /run/vm/stdout 2>> /run/vm/stderr
rc=$?
read -r end _ < /proc/uptime
echo "boot $boot end $end" > /run/vm/uptime
case $rc in 124 | 137)
	awk -v b="$boot" -v e="$end" -v t="$VM_TIMEOUT" 'BEGIN { exit !(e - b >= t) }' &&
		echo "$VM_TIMEOUT" > /run/vm/timedout ;;
esac
echo $rc > /run/vm/rc
say "exit code $rc"
poweroff
