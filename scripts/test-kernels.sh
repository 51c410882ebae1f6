#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# The kernel matrix (`make test-kernels`): pytest on each kernel named, one
# after the other, in a VM (scripts/vmtest.sh) or, for `host`, right here:
#
#   scripts/test-kernels.sh [-t SECS] LABEL[:MARKEXPR]... -- PYTEST-ARG...
#
# Each runs `PKTLENS_KERNEL=LABEL /usr/bin/python3 -m pytest -q
# -p no:cacheprovider PYTEST-ARG...` for at most SECS seconds (default 600),
# with `-m MARKEXPR` too where one is given (6.12:core: the tests marked
# core alone on 6.12, tests/conftest.py),
# then prints one line per kernel (label, release, passed/failed counts,
# seconds) and a total; exits 1 when any kernel failed, timed out, did not
# boot or ran no test. Logs: .output/vm/LABEL.log, .output/vm/LABEL/ (VMs).
#
# KERNEL_JOBS VMs run at once (default: the CPUs, 2 here: a TCG guest keeps
# about one busy), each kernel's output shown when it ends; with 1, as it
# runs. `host` runs alone, after the VMs: its tests time real traffic.
set -uo pipefail

timeout=600
if [ "${1-}" = -t ]; then
	timeout=$2
	shift 2
fi
# the LABELs; the MARKEXPR given with one, in marks[LABEL]
labels=()
declare -A marks=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do
	labels+=("${1%%:*}")
	[[ $1 == *:* ]] && marks[${1%%:*}]=${1#*:}
	shift
done
[ "${1-}" = -- ] && shift
if [ ${#labels[@]} -eq 0 ] || [ $# -eq 0 ]; then
	echo "usage: test-kernels.sh [-t SECS] LABEL[:MARKEXPR]... -- PYTEST-ARG..." >&2
	exit 2
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=/usr/bin/python3
jobs=${KERNEL_JOBS:-$(nproc 2>/dev/null || echo 1)}
[[ $jobs =~ ^[1-9][0-9]*$ ]] || { echo "test-kernels: KERNEL_JOBS '$jobs': not a number 1 or more" >&2; exit 2; }
state=$(mktemp -d)
trap 'rm -rf "$state"' EXIT
mkdir -p "$repo/.output/vm"

# One kernel: its log, then "rc seconds release" in $state/LABEL
run_one() {
	local label=$1 log=$repo/.output/vm/$1.log kdir release rc start fetched=1
	shift
	[ -n "${marks[$label]-}" ] && set -- "$@" -m "${marks[$label]}"
	# fetch first (on first use), so download time is not test time
	if [ "$label" != host ]; then
		kdir=$("$repo/scripts/vm-fetch.sh" "$label") && "$repo/scripts/vm-fetch.sh" qemu > /dev/null || fetched=0
	fi
	start=$(date +%s.%N)
	if [ "$label" = host ]; then
		release=$(uname -r)
		PKTLENS_KERNEL=host PYTHONDONTWRITEBYTECODE=1 timeout -k 10 "$timeout" \
			$PYTHON -m pytest -q -p no:cacheprovider "$@" > "$log" 2>&1
		rc=$?
	elif [ $fetched = 1 ]; then
		release=$(cat "$kdir/release")
		"$repo/scripts/vmtest.sh" -t "$timeout" "$label" -- \
			env PKTLENS_KERNEL="$label" $PYTHON -m pytest -q -p no:cacheprovider "$@" > "$log" 2>&1
		rc=$?
	else
		release="not fetched"
		rc=126
	fi
	echo "$rc $(echo "$start $(date +%s.%N)" | awk '{ printf "%.0f", $2 - $1 }') $release" > "$state/$label"
}

# run_one, its output as it comes (one job) or when it ends (several)
run_shown() {
	local label=$1
	echo "=== kernel $label: pytest -q ${*:2}${marks[$label]:+ -m ${marks[$label]}}" >&2
	: > "$repo/.output/vm/$label.log"
	if [ "$jobs" = 1 ] || [ "$label" = host ]; then
		run_one "$@" &
		local pid=$!
		tail -n +1 --pid=$pid -F "$repo/.output/vm/$label.log" 2>/dev/null
		wait $pid
	else
		run_one "$@"
		echo "=== kernel $label: done" >&2
		cat "$repo/.output/vm/$label.log"
	fi
}

running=0
for label in "${labels[@]}"; do
	[ "$label" = host ] && continue
	if [ $running -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
	run_shown "$label" "$@" &
	running=$((running + 1))
done
wait
for label in "${labels[@]}"; do
	[ "$label" = host ] && run_shown host "$@"
done

summary=()
total_pass=0
total_fail=0
failed=0
for label in "${labels[@]}"; do
	log=$repo/.output/vm/$label.log
	read -r rc secs release < "$state/$label" 2>/dev/null || { rc=125; secs=0; release="no result"; }
	# pytest's closing line: "2 failed, 5 passed, 1 skipped in 30.12s"
	last=$(grep -E '^=* ?[0-9]+ (passed|failed|error|errors|skipped|deselected|xfailed|xpassed|warnings?)\b.* in [0-9.]+s' "$log" | tail -1)
	count() { echo "$last" | grep -oE "[0-9]+ $1" | awk '{ n += $1 } END { print n + 0 }'; }
	pass=$(count passed)
	fail=$(($(count failed) + $(count 'errors?')))
	skip=$(count skipped)
	case $rc in
	0) status="" ;;
	124) status=", TIMED OUT after ${timeout}s" ;;
	125) status=", VM FAILED (see .output/vm/$label/console.log)" ;;
	126) status=", COULD NOT FETCH the kernel or qemu (scripts/vm-fetch.sh $label)" ;;
	5) status=", NO TESTS RAN" ;;
	*) status="" ;;
	esac
	[ "$rc" != 0 ] && [ "$fail" = 0 ] && [ -z "$status" ] && status=", pytest exit $rc"
	[ "$rc" != 0 ] && failed=$((failed + 1))
	total_pass=$((total_pass + pass))
	total_fail=$((total_fail + fail))
	summary+=("kernel $label ($release): $pass passed, $fail failed, $skip skipped in ${secs}s$status")
done

echo
for line in "${summary[@]}"; do
	echo "$line"
done
if [ $failed -gt 0 ]; then
	echo "test-kernels: $failed of ${#labels[@]} kernels failed"
	# counts a kernel that failed without a failed test (boot, timeout) as one
	[ $total_fail = 0 ] && total_fail=$failed
fi
echo "kernels: $total_pass passed, $total_fail failed"
[ $failed = 0 ]
