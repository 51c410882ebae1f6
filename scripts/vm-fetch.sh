#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# What the VM test matrix (scripts/vmtest.sh) boots, fetched from Debian's
# archive once and kept under $PKTLENS_KERNEL_CACHE (default .output/kernels):
#
#   vm-fetch.sh LABEL             print its directory; fetch it when not cached
#   vm-fetch.sh --refresh LABEL   resolve and fetch again (Debian's newest)
#
# LABEL is a kernel, 6.1 (bookworm, bookworm-security), 6.12
# (bookworm-backports) or 5.10 (bullseye, bullseye-security): the newest
# linux-image-cloud-amd64 of those suites, resolved to the image package it
# depends on, in LABEL/root (`dpkg-deb -x`, modules indexed by `depmod -b`),
# with LABEL/vmlinuz, LABEL/release (its `uname -r`), LABEL/package.
#
# Or `qemu`: qemu-system-x86 of bookworm-backports (10.0), its firmware and
# seabios, in qemu/root, run from there with the host's libraries (those of
# bookworm's qemu, which scripts/deps.sh --vm installs, and whose virtiofsd
# the harness uses). Bookworm's own qemu 7.2 crashes the 6.12 kernel at
# random under TCG (double faults, list corruption during boot).
#
# apt runs with a configuration of its own (sources, lists, cache in
# CACHE/apt); /etc/apt is neither read for sources nor changed.
set -euo pipefail

suites_of() {
	case $1 in
	6.1) echo "bookworm bookworm-security" ;;
	6.12 | qemu) echo "bookworm-backports" ;;
	5.10) echo "bullseye bullseye-security" ;;
	*) return 1 ;;
	esac
}
LABELS="6.1 6.12 5.10 qemu"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg

refresh=0
if [ "${1-}" = --refresh ]; then
	refresh=1
	shift
fi
[ $# -eq 1 ] || { echo "usage: vm-fetch.sh [--refresh] LABEL (one of: $LABELS)" >&2; exit 2; }
label=$1
suites=$(suites_of "$label") || { echo "pktlens: vm-fetch: $label: unknown label (known: $LABELS)" >&2; exit 2; }
die() {
	echo "pktlens: vm-fetch: $label: $*" >&2
	exit 1
}

repo=$(cd "$(dirname "$0")/.." && pwd)
cache=${PKTLENS_KERNEL_CACHE:-$repo/.output/kernels}
dir=$cache/$label
if [ $refresh = 0 ] && [ -s "$dir/package" ]; then
	echo "$dir"
	exit 0
fi

[ -r "$KEYRING" ] || die "$KEYRING: missing (scripts/deps.sh --vm installs debian-archive-keyring)"
for tool in apt-get apt-cache dpkg-deb depmod flock; do
	command -v $tool >/dev/null || die "$tool: not found (scripts/deps.sh --vm)"
done

apt=$cache/apt
mkdir -p "$apt/lists/partial" "$apt/cache/archives/partial" "$apt/state" "$apt/preferences.d"
: >> "$apt/state/status"
exec 9> "$cache/.lock"
flock 9
# another run may have fetched it while this one waited
if [ $refresh = 0 ] && [ -s "$dir/package" ]; then
	echo "$dir"
	exit 0
fi

{
	for s in bookworm bookworm-backports bullseye; do
		echo "deb [arch=amd64 signed-by=$KEYRING] http://deb.debian.org/debian $s main"
	done
	for s in bookworm-security bullseye-security; do
		echo "deb [arch=amd64 signed-by=$KEYRING] http://deb.debian.org/debian-security $s main"
	done
} > "$apt/sources.list"
APT=(-o "Dir::Etc::sourcelist=$apt/sources.list" -o Dir::Etc::sourceparts=-
	-o "Dir::Etc::preferencesparts=$apt/preferences.d" -o "Dir::Etc::preferences=$apt/preferences"
	-o "Dir::State=$apt/state" -o "Dir::State::Lists=$apt/lists"
	-o "Dir::State::status=$apt/state/status" -o "Dir::Cache=$apt/cache"
	-o Acquire::Languages=none -o APT::Sandbox::User=root -q)

log=$apt/$label.log
: > "$log"
# one update serves the fetches of the next hour (a fresh clone fetches all four)
if [ $refresh = 1 ] || [ -z "$(find "$apt/updated" -mmin -60 2>/dev/null)" ]; then
	apt-get "${APT[@]}" update > "$log" 2>&1 || { tail -5 "$log" >&2; die "apt-get update failed (log $log)"; }
	touch "$apt/updated"
fi

# newest version of PACKAGE among the label's suites
newest() {
	local best="" ver src suite
	while IFS='|' read -r _ ver src; do
		ver=${ver// /}
		suite=$(echo "$src" | awk '{ sub("/.*", "", $2); print $2 }')
		case " $suites " in *" $suite "*) ;; *) continue ;; esac
		if [ -z "$best" ] || dpkg --compare-versions "$ver" gt "$best"; then
			best=$ver
		fi
	done < <(apt-cache "${APT[@]}" madison "$1")
	[ -n "$best" ] || die "no $1 in $suites"
	echo "$best"
}

tmp=$(mktemp -d "$cache/.$label.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if [ "$label" = qemu ]; then
	ver=$(newest qemu-system-x86)
	pkgs=("qemu-system-x86=$ver" "qemu-system-data=$ver" "seabios=$(newest seabios)")
else
	meta=$(newest linux-image-cloud-amd64)
	# the image package the meta package depends on, at the exact version it names
	dep=$(apt-cache "${APT[@]}" show "linux-image-cloud-amd64=$meta" |
		sed -n 's/^Depends: .*\(linux-image-[^ ,]*\) (= \([^)]*\)).*/\1=\2/p' | head -1)
	[ -n "$dep" ] || die "linux-image-cloud-amd64 $meta names no image package"
	pkgs=("$dep")
fi
echo "pktlens: vm-fetch: $label: fetching ${pkgs[*]} ($suites)" >&2
(cd "$tmp" && apt-get "${APT[@]}" download "${pkgs[@]}") >> "$log" 2>&1 ||
	{ tail -5 "$log" >&2; die "apt-get download ${pkgs[*]} failed (log $log)"; }
for deb in "$tmp"/*.deb; do
	dpkg-deb -x "$deb" "$tmp/root"
done
rm -f "$tmp"/*.deb

if [ "$label" = qemu ]; then
	missing=$(ldd "$tmp/root/usr/bin/qemu-system-x86_64" | awk '/not found/ { print $1 }' | xargs)
	[ -z "$missing" ] || die "qemu $ver needs libraries this machine lacks: $missing"
	"$tmp/root/usr/bin/qemu-system-x86_64" --version | head -1 > "$tmp/release"
else
	release=$(ls "$tmp/root/lib/modules")
	if [ -z "$release" ] || [ ! -f "$tmp/root/boot/vmlinuz-$release" ]; then
		die "${pkgs[*]} holds no kernel and modules"
	fi
	depmod -b "$tmp/root" "$release"
	ln -s "root/boot/vmlinuz-$release" "$tmp/vmlinuz"
	echo "$release" > "$tmp/release"
fi
echo "${pkgs[*]}" > "$tmp/package"
chmod 755 "$tmp"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "pktlens: vm-fetch: $label: $(cat "$dir/release") in $dir" >&2
echo "$dir"
