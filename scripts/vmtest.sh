#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Run a command on one of Debian's kernels in a qemu VM, like libbpf's vmtest:
#
#   scripts/vmtest.sh [-t SECS] LABEL [--] CMD [ARG...]
#
# LABEL is a kernel of scripts/vm-fetch.sh (6.1, 6.12, 5.10), fetched from
# Debian's archive on first use and cached, as is the qemu that boots it
# (bookworm-backports'). The guest runs the host's own root file system
# (shared read-only over virtiofs, a tmpfs overlay on top), so it has the
# host's python3, scapy, iproute2, tcpdump, bpftool and the pktlens built in
# this worktree; its init is scripts/vm-init.sh (/tmp, /run and /var/tmp are
# the guest's own, empty). CMD runs as root in the current directory (on the
# host's root file system: not under those) with PKTLENS_*, ASAN_OPTIONS,
# UBSAN_OPTIONS and the locale of the caller's environment,
# PYTHONDONTWRITEBYTECODE=1, HOME=/root, for at most SECS seconds (default
# 900). Its stdout and stderr come out here as it
# runs; the exit code is CMD's. A VM that fails to boot or to finish says so,
# naming the kernel, and exits 125; 124 when CMD ran out of time.
#
# Environment: VM_ACCEL=kvm|tcg (default: kvm when /dev/kvm opens and the CPU
# shows vmx or svm, else tcg), VM_CPU (TCG's CPU model, max), VM_MEM (2G,
# with its unit), VM_SMP (2), VM_APPEND (kernel arguments, default quiet),
# VM_BOOT_TIMEOUT (120 s to reach the guest init), VM_BOOT_TRIES (2: a guest
# that never reached its init ran nothing and is booted again), VM_QEMU=PATH (another
# qemu-system-x86_64), VM_VERBOSE=1 (the serial console to stderr too).
# Files: .output/vm/LABEL/ (console.log, the initramfs, the output share out/).
set -euo pipefail

usage() {
	echo "usage: vmtest.sh [-t SECS] LABEL [--] CMD [ARG...]" >&2
	exit 2
}
timeout=900
if [ "${1-}" = -t ]; then
	if [ $# -lt 2 ] || ! [[ $2 =~ ^[1-9][0-9]*$ ]]; then
		usage
	fi
	timeout=$2
	shift 2
fi
[ $# -ge 2 ] || usage
label=$1
shift
[ "$1" = -- ] && shift
[ $# -ge 1 ] || usage

case $label in qemu | host)
	echo "pktlens: vmtest: $label: not a kernel (6.1, 6.12, 5.10)" >&2
	exit 2 ;;
esac
repo=$(cd "$(dirname "$0")/.." && pwd)
kdir=$("$repo/scripts/vm-fetch.sh" "$label") || exit $?
release=$(cat "$kdir/release")
name="$label ($release)"
die() {
	echo "pktlens: vmtest: $name: $*" >&2
	exit 125
}
[ "$(id -u)" = 0 ] || die "needs root (virtiofsd)"
VIRTIOFSD=/usr/lib/qemu/virtiofsd
if [ -n "${VM_QEMU-}" ]; then
	qemu=("$VM_QEMU")
else
	qdir=$("$repo/scripts/vm-fetch.sh" qemu) || exit $?
	qemu=("$qdir/root/usr/bin/qemu-system-x86_64" -L "$qdir/root/usr/share/seabios" -L "$qdir/root/usr/share/qemu")
fi
for tool in "${qemu[0]}" $VIRTIOFSD /bin/busybox cpio modprobe unshare; do
	command -v "$tool" >/dev/null || die "$tool: not found (scripts/deps.sh --vm)"
done

work=$repo/.output/vm/$label
mkdir -p "$work"
exec 9> "$work/.lock"
if ! flock -n 9; then
	echo "pktlens: vmtest: $name: waiting for the other vmtest on this kernel ($work/.lock)" >&2
	flock 9
fi
rm -rf "$work/out" "$work/initrd"
mkdir -p "$work/out" "$work/hostroot" "$work/initrd/modules"
rm -f "$work"/*.sock "$work/console.log"

# The initramfs: busybox, the modules virtiofs and overlayfs need (decompressed,
# in load order; built-in ones are skipped) and scripts/vm-rdinit.sh as /init.
ird=$work/initrd
cp /bin/busybox "$ird/busybox"
cp "$repo/scripts/vm-rdinit.sh" "$ird/init"
modprobe -d "$kdir/root" -S "$release" -a --show-depends virtio_pci virtiofs overlay |
	awk '$1 == "insmod" && !seen[$2]++ { print $2 }' |
	while read -r ko; do
		base=$(basename "$ko")
		case $ko in
		*.ko.xz) xz -dc "$ko" > "$ird/modules/${base%.xz}" ;;
		*.ko.zst) zstd -qdc "$ko" > "$ird/modules/${base%.zst}" ;;
		*.ko.gz) gzip -dc "$ko" > "$ird/modules/${base%.gz}" ;;
		*) cp "$ko" "$ird/modules/" ;;
		esac
		echo "${base%.ko*}.ko" >> "$ird/modules/order"
	done
touch "$ird/modules/order"
mkdir -p "$ird/bin" && mv "$ird/busybox" "$ird/bin/busybox"
(cd "$ird" && find . | cpio -o -H newc -R 0:0 --quiet) | gzip -1 > "$work/initramfs.cpio.gz"

# The job vm-init.sh runs: bash assignments, each word quoted
env_pass=(PYTHONDONTWRITEBYTECODE=1 HOME=/root TERM=dumb "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
while IFS= read -r var; do
	env_pass+=("$var=${!var}")
done < <(compgen -e | grep -E '^(PKTLENS_[A-Z0-9_]*|[AU]BSAN_OPTIONS|LANG|LC_ALL)$' || true)
{
	printf 'VM_LABEL=%q\nVM_RELEASE=%q\nVM_KROOT=%q\nVM_TIMEOUT=%q\nVM_CWD=%q\n' \
		"$label" "$release" "$kdir/root" "$timeout" "$PWD"
	printf 'VM_ENV=('; printf ' %q' "${env_pass[@]}"; printf ' )\n'
	printf 'VM_CMD=('; printf ' %q' "$@"; printf ' )\n'
} > "$work/out/job"
: > "$work/out/stdout"
: > "$work/out/stderr"

pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'echo "pktlens: vmtest: $name: interrupted" >&2; exit 130' INT TERM

# virtiofsd for the host's root: a read-only bind of / (without the mounts
# on top of it: no /proc, /sys, /dev, /run of the host) made in a mount
# namespace of its own, so the host's mount table is untouched; and one for
# the job's files. Each serves one guest: started again for each boot.
fs_pids=()
start_fs() {
	for p in "${fs_pids[@]}"; do
		kill "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
	fs_pids=()
	rm -f "$work/root.sock" "$work/out.sock"
	unshare -m --propagation private sh -c '
		mount --bind / "$1" && mount -o remount,bind,ro "$1" &&
		exec "$2" --socket-path="$3" -o source="$1" -o cache=always -o no_posix_lock' \
		vm-root "$work/hostroot" "$VIRTIOFSD" "$work/root.sock" > "$work/virtiofsd-root.log" 2>&1 &
	fs_pids+=($!)
	"$VIRTIOFSD" --socket-path="$work/out.sock" -o source="$work/out" -o cache=none \
		> "$work/virtiofsd-out.log" 2>&1 &
	fs_pids+=($!)
	pids+=("${fs_pids[@]}")
	for sock in root out; do
		for _ in $(seq 100); do
			[ -S "$work/$sock.sock" ] && break
			sleep 0.05
		done
		[ -S "$work/$sock.sock" ] || { cat "$work/virtiofsd-$sock.log" >&2; die "virtiofsd for $sock did not start"; }
	done
}

# KVM needs /dev/kvm and a CPU with virtualization extensions: some VMs
# offer a /dev/kvm whose guests never get past the kernel's setup code
accel=${VM_ACCEL:-}
if [ -z "$accel" ]; then
	accel=tcg
	if grep -qwE 'vmx|svm' /proc/cpuinfo && { exec 8<> /dev/kvm; } 2>/dev/null; then
		accel=kvm
		exec 8>&-
	fi
fi
case $accel in
kvm) cpu=(-accel kvm -cpu host) ;;
tcg) cpu=(-accel tcg -cpu "${VM_CPU:-max}") ;;
*) die "VM_ACCEL=$accel: kvm or tcg" ;;
esac
# the tests' own timeouts stretch under TCG (tests/lab.py: TIME_SCALE)
printf 'VM_ENV+=( PKTLENS_VM_ACCEL=%q )\n' "$accel" >> "$work/out/job"
mem=${VM_MEM:-2G}
[[ $mem =~ ^[1-9][0-9]*[MG]$ ]] || die "VM_MEM=$mem: a size in M or G (2G)"

start=$(date +%s.%N)
# A guest that never reached its init ran nothing: boot it again, up to
# VM_BOOT_TRIES times in all (qemu's TCG has crashed at boot, once in a few
# hundred boots on a busy host: "iotlb_to_section: Assertion ... failed").
tries=${VM_BOOT_TRIES:-2}
[[ $tries =~ ^[1-9][0-9]*$ ]] || die "VM_BOOT_TRIES=$tries: a number of boots, 1 or more"
for try in $(seq "$tries"); do
	start_fs
	# no_timer_check: under TCG on a loaded host the kernel's IO-APIC timer check
	# can miss its ticks and panic ("IO-APIC + timer doesn't work!") before init
	# qemu gets the command's time, plus time to boot and power off
	timeout -s KILL $((timeout + 180)) "${qemu[@]}" -name "pktlens-$label" \
		-nodefaults -no-user-config -nographic -no-reboot -monitor none \
		"${cpu[@]}" -smp "${VM_SMP:-2}" -m "$mem" \
		-object "memory-backend-memfd,id=mem,size=$mem,share=on" -machine memory-backend=mem \
		-kernel "$kdir/vmlinuz" -initrd "$work/initramfs.cpio.gz" \
		-append "console=ttyS0 rdinit=/init panic=-1 no_timer_check ${VM_APPEND-quiet} pktlens.init=$repo/scripts/vm-init.sh" \
		-chardev "file,id=con,path=$work/console.log" -serial chardev:con \
		-chardev "socket,id=root,path=$work/root.sock" -device vhost-user-fs-pci,chardev=root,tag=root \
		-chardev "socket,id=out,path=$work/out.sock" -device vhost-user-fs-pci,chardev=out,tag=out \
		-nic none > "$work/qemu.log" 2>&1 &
	vm=$!
	pids+=("$vm")
	tail -n +1 -s 0.2 -F --pid=$vm "$work/out/stdout" 2>/dev/null &
	tails=($!)
	tail -n +1 -s 0.2 -F --pid=$vm "$work/out/stderr" >&2 2>/dev/null &
	tails+=($!)
	if [ "${VM_VERBOSE:-0}" = 1 ]; then
		tail -n +1 -s 0.2 -F --pid=$vm "$work/console.log" >&2 2>/dev/null &
		tails+=($!)
	fi
	# a guest that has not reached its init in VM_BOOT_TIMEOUT seconds will not
	booted=1
	for _ in $(seq $((${VM_BOOT_TIMEOUT:-120} * 5))); do
		[ -e "$work/out/booted" ] && break
		kill -0 $vm 2>/dev/null || break
		sleep 0.2
	done
	if [ ! -e "$work/out/booted" ] && kill -0 $vm 2>/dev/null; then
		booted=0
		kill $vm
	fi
	[ -e "$work/out/booted" ] || [ "$try" = "$tries" ] && break
	wait $vm 2>/dev/null || true
	wait "${tails[@]}" 2>/dev/null || true
	echo "pktlens: vmtest: $name: the VM did not reach its init (boot $try of $tries:" \
		"$( (tail -n 1 "$work/qemu.log"; tail -n 1 "$work/console.log") 2>/dev/null |
		tr -d '\033' | tr -s '\n' ' ' | cut -c1-160)), booting again" >&2
	mv "$work/console.log" "$work/console.$try.log" 2>/dev/null || true
done
qrc=0
wait $vm 2>/dev/null || qrc=$?
wait "${tails[@]}" 2>/dev/null || true
secs=$(echo "$start $(date +%s.%N)" | awk '{ printf "%.1f", $2 - $1 }')

if [ -s "$work/out/rc" ]; then
	rc=$(cat "$work/out/rc")
	read -r _ boot _ end < "$work/out/uptime" || true
	echo "pktlens: vmtest: $name: exit code $rc, ${secs}s (boot ${boot}s, command $(echo "$boot $end" |
		awk '{ printf "%.1f", $2 - $1 }')s, $accel)" >&2
	if [ -e "$work/out/timedout" ]; then
		echo "pktlens: vmtest: $name: the command ran out of time (${timeout}s)" >&2
		exit 124
	fi
	exit "$rc"
fi
[ -s "$work/console.log" ] && tail -20 "$work/console.log" >&2
[ -s "$work/out/error" ] && cat "$work/out/error" >&2
[ -s "$work/qemu.log" ] && cat "$work/qemu.log" >&2
if [ $booted = 0 ]; then
	die "the VM did not reach its init in ${VM_BOOT_TIMEOUT:-120}s, killed ($accel; console: $work/console.log)"
elif [ $qrc = 137 ]; then
	die "the VM did not finish in $((timeout + 180))s, killed (console: $work/console.log)"
fi
die "the VM stopped before the command ended (qemu exit $qrc; console: $work/console.log)"
