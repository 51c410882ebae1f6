#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# `make bench`: the BPF_PROG_TEST_RUN cost of the XDP and tc programs
# (xdp_bench), iperf3 through a veth lab with and without pktlens (iperf.sh),
# translated tcpdump filters (filter_bench), then policy rules (policy_bench:
# test runs per rule kind, and drop under a trafgen flood against nftables,
# on a veth pair and on frames that come as from a NIC driver),
# then a live SYN flood against a TCP server: a client's connect time and
# softirq CPU with no rule, a pktlens per-source SYN limit and nftables' meter
# (syn_bench),
# then pktlens sample against tcpdump -w under a flood (sample_bench) and under a
# flood the policy drops, with and without --verdict (capture_bench), then the
# service mode (service_bench: the daemon's creation-to-first-packet latency,
# a burst of interfaces, idle RSS and CPU, apply times), then the kfree_skb
# drop probe under a drop flood and with iperf3 (drops_bench), the exporters at scale
# (export_bench).
# Results are printed and kept in .output/bench/. Takes ~20 minutes.
#
#   bench/run.sh [--quick]      --quick: 3 rounds, 20000 flows, 3 s iperf runs
#
# Exit status: 0 when both ran and xdp_bench's checks held (targets missed are
# reported, not failures), 1 otherwise.
set -eu

cd "$(dirname "$0")/.."
OUT=.output/bench
# BPF run-time statistics add tens of ns to every program run, pktlens's and the references'
if [ "$(cat /proc/sys/kernel/bpf_stats_enabled 2>/dev/null || echo 0)" != 0 ]; then
	echo "bench: warning: kernel.bpf_stats_enabled is on: every BPF program runs slower" \
	     "(sysctl -w kernel.bpf_stats_enabled=0)" >&2
fi
XDP_ARGS=
IPERF_ARGS=
POLICY_ARGS=
SAMPLE_ARGS=
SERVICE_ARGS=
DROPS_ARGS=
SYN_ARGS=
EXPORT_ARGS=
case ${1-} in
--quick) XDP_ARGS="--rounds 3 --flows 20000"; IPERF_ARGS="-t 3 -r 1"; POLICY_ARGS="--rounds 2 --seconds 2"; SAMPLE_ARGS="--rounds 1 --seconds 2"
	SERVICE_ARGS="--count 10 --burst 50 --many 20 --idle 3"; DROPS_ARGS="--rounds 1 --seconds 2"
	SYN_ARGS="--rounds 1 --seconds 3"; EXPORT_ARGS="--scrapes 5 --flows 100000 --rounds 1" ;;
"") ;;
*) echo "usage: bench/run.sh [--quick]" >&2; exit 2 ;;
esac

[ "$(id -u)" -eq 0 ] || { echo "run.sh: needs root (BPF, netns)" >&2; exit 1; }
if [ ! -x $OUT/xdp_bench ] || [ ! -x ./pktlens ]; then
	echo "run.sh: run 'make bench'" >&2
	exit 1
fi
# the rotation driver is loaded from a file, next to the other objects
make -s .output/cycle.bpf.o .output/flowmon.bpf.o

# busy: CPU use (all CPUs, %) over 2 s while we do nothing; others' work
# (compiles, tests, a busy host) shows up in the numbers, so say so
busy() {
	a=$(head -1 /proc/stat)
	sleep 2
	b=$(head -1 /proc/stat)
	echo "$a
$b" | awk '{ idle[NR] = $5 + $6; tot[NR] = 0; for (i = 2; i <= NF; i++) tot[NR] += $i }
		END { printf "%.0f", 100 - 100 * (idle[2] - idle[1]) / (tot[2] - tot[1]) }'
}

echo "== machine"
echo "kernel $(uname -r), $(nproc) CPUs: $(sed -n 's/^model name\t*: //p' /proc/cpuinfo | head -1)"
echo "clocksource $(cat /sys/devices/system/clocksource/clocksource0/current_clocksource)," \
	"bpf_jit_enable $(sysctl -n net.core.bpf_jit_enable)," \
	"bpf_stats_enabled $(sysctl -n kernel.bpf_stats_enabled)"
echo "CPU busy before the run: $(busy)% (should be ~0; other load skews the numbers)"
echo

echo "== BPF_PROG_TEST_RUN: ns per packet ($OUT/xdp_bench.json)"
# shellcheck disable=SC2086 # word splitting of the option list is intended
$OUT/xdp_bench $XDP_ARGS --json=$OUT/xdp_bench.json
echo

echo "CPU busy between the benchmarks: $(busy)%"
echo
echo "== iperf3 through veth ($OUT/iperf.json)"
# shellcheck disable=SC2086
bench/iperf.sh $IPERF_ARGS -j $OUT/iperf.json
echo

echo "== tcpdump filters: translated eBPF vs clang-compiled reference ($OUT/filter_bench.txt)"
make -s .output/filter_ref.bpf.o
$OUT/filter_bench | tee $OUT/filter_bench.txt
echo

echo "== passive TCP analysis: pktlens_xdp with and without --tcp-passive ($OUT/tcp_bench.txt)"
$OUT/tcp_bench | tee $OUT/tcp_bench.txt
echo

echo "CPU busy between the benchmarks: $(busy)%"
echo
# shellcheck disable=SC2086
bench/policy_bench.py $POLICY_ARGS --json $OUT/policy_bench.json
echo
echo "CPU busy between the benchmarks: $(busy)%"
echo
echo "== SYN flood: a client's connect time, per-source SYN limit vs nftables ($OUT/syn_bench.json)"
# shellcheck disable=SC2086
bench/syn_bench.py $SYN_ARGS --json $OUT/syn_bench.json
echo
echo "CPU busy between the benchmarks: $(busy)%"
echo
# shellcheck disable=SC2086
bench/sample_bench.py $SAMPLE_ARGS --json $OUT/sample_bench.json
echo
echo "CPU busy between the benchmarks: $(busy)%"
echo
# shellcheck disable=SC2086
bench/capture_bench.py $SAMPLE_ARGS --json $OUT/capture_bench.json
echo
echo "CPU busy between the benchmarks: $(busy)%"
echo
echo "== service mode: pktlens daemon and apply ($OUT/service_bench.json)"
# shellcheck disable=SC2086
bench/service_bench.py $SERVICE_ARGS --json $OUT/service_bench.json
echo
echo "CPU busy between the benchmarks: $(busy)%"
echo
# shellcheck disable=SC2086
bench/drops_bench.py $DROPS_ARGS --json $OUT/drops_bench.json
echo
echo "CPU busy between the benchmarks: $(busy)%"
echo
echo "== exporters at scale: Prometheus scrapes, IPFIX records/s ($OUT/export_bench.json)"
# shellcheck disable=SC2086
bench/export_bench.py $EXPORT_ARGS --json $OUT/export_bench.json
