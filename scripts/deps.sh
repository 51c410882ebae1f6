#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
# Install the Debian packages pktlens needs, only when they are missing
# (deps.sh --bench: also what `make bench` needs; deps.sh --vm: also what the
# kernel matrix of `make test-kernels` needs, scripts/vmtest.sh).
# Idempotent and quiet when there is nothing to do; runs `apt-get update`
# only when something must be installed.
set -eu

PKGS="clang llvm make gcc pkg-config libbpf-dev libxdp-dev xdp-tools libpcap-dev
libnl-3-dev libnl-route-3-dev libelf-dev zlib1g-dev bpftool linux-libc-dev
iproute2 python3 python3-scapy python3-pytest tcpdump tshark iperf3 ethtool iputils-ping
nftables libmicrohttpd-dev prometheus python3-prometheus-client libncurses-dev tmux nfdump valgrind
libyaml-dev libsystemd-dev systemd strace"
for opt in "$@"; do
	case $opt in
	# `make bench` also floods with trafgen (netsniff-ng)
	--bench) PKGS="$PKGS netsniff-ng" ;;
	# qemu and its virtiofsd (qemu-system-common), a static busybox for the
	# initramfs, cpio to pack it, kmod (depmod here, modprobe in the guest),
	# xz/zstd for compressed modules, the key that signs Debian's archive
	--vm) PKGS="$PKGS qemu-system-x86 busybox-static cpio kmod xz-utils zstd debian-archive-keyring" ;;
	*) echo "pktlens: deps: $opt: unknown option (--bench, --vm)" >&2; exit 2 ;;
	esac
done

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "pktlens: deps: missing Debian packages:$missing (run as root to install)" >&2
	exit 1
fi
echo "pktlens: deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no, quietly.
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections 2>/dev/null || true
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
