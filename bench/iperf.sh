#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# iperf3 TCP throughput through a veth pair with and without pktlens attached,
# all in one run, modes alternating so drift cancels out of the ratios.
#
#   bench/iperf.sh [-t SECS] [-r ROUNDS] [-R] [-j FILE]
#
# Lab: namespaces plb-a-PID and plb-b-PID joined by veth va (198.18.0.1/30)
# and vb (198.18.0.2/30); the iperf3 server listens on 198.18.0.2 in plb-b,
# the client runs in plb-a, so data enters vb, where pktlens is attached.
# -R: the router lab instead: plb-a (va 198.18.0.1/30) - vb plb-r vc (a
# forwarding router, 198.18.0.2/30 and 198.18.1.1/30) - vd plb-b (198.18.1.2/30,
# the server); pktlens is attached to both of the router's interfaces, so
# the data enters vb and leaves vc, the ACKs the other way (issue 22's lab):
#
#   none        nothing attached
#   default     ./pktlens -n NS attach vb               (whatever it picks)
#   xdp-skb     ./pktlens -n NS attach vb --xdp skb --tc none     (generic XDP)
#   xdp-native  ./pktlens -n NS attach vb --xdp native --tc none  (veth XDP)
#   tcp-rtt     nothing attached; ./pktlens tcp rtt --netns plb-a runs meanwhile
#               (tcp:tcp_probe fires for every segment the client receives)
#   tcp-passive ./pktlens -n NS attach vb --tcp-passive   (default plus the passive
#               TCP analysis at tc ingress and egress, bpf/tcp.h)
#
# The client runs on CPU 0 and the server on CPU 1 (iperf3 -A 0,1): left to
# the scheduler, the same setup swings between 8 and 13 Gbit/s run to run.
# Each round runs every mode once (order reversed on odd rounds); a mode's
# Gbit/s is the median over rounds, its ratio the median over rounds of
# mode / none of the same round. After each
# attached run the packets pktlens counted are read back, so a mode that saw
# no traffic cannot pass silently (tcp-passive: the TCP segments it analysed).
# Targets: default / none >= 0.95, tcp-rtt / none >= 0.97, tcp-passive /
# default >= 0.97 (that ratio per round, median). CPU s/GB: busy time of all CPUs (/proc/stat) per
# GB received, over the iperf3 run.
# -j FILE writes the results as one JSON document.
set -eu

SECS=10
ROUNDS=3
JSON=
ROUTER=
while getopts t:r:j:R opt; do
	case $opt in
	t) SECS=$OPTARG ;;
	r) ROUNDS=$OPTARG ;;
	j) JSON=$OPTARG ;;
	R) ROUTER=1 ;;
	*) echo "usage: bench/iperf.sh [-t SECS] [-r ROUNDS] [-R] [-j FILE]" >&2; exit 2 ;;
	esac
done

cd "$(dirname "$0")/.."
PKTLENS=./pktlens
for tool in ip iperf3 jq timeout; do
	command -v $tool >/dev/null || { echo "iperf.sh: $tool not found" >&2; exit 1; }
done
[ -x $PKTLENS ] || { echo "iperf.sh: $PKTLENS not built (make pktlens)" >&2; exit 1; }

NSA=plb-a-$$
NSB=plb-b-$$
NSR=plb-r-$$
if [ -n "$ROUTER" ]; then
	ATTNS=$NSR	# where pktlens attaches, to DEVS
	DEVS="vb vc"
	SRVIP=198.18.1.2
	LAB="router lab va -> vb [plb-r] vc -> vd"
else
	ATTNS=$NSB
	DEVS=vb
	SRVIP=198.18.0.2
	LAB="veth va -> vb"
fi
SERVER=
PROBE=
TMP=$(mktemp -d /tmp/pktlens-iperf.XXXXXX)

cleanup() {
	trap - EXIT INT TERM
	[ -z "$PROBE" ] || kill "$PROBE" 2>/dev/null || true
	if [ -n "$SERVER" ]; then
		kill "$SERVER" 2>/dev/null || true
		wait "$SERVER" 2>/dev/null || true
	fi
	if ip netns list | grep -qw "$ATTNS"; then
		for d in $DEVS; do
			$PKTLENS -n "$ATTNS" detach "$d" >/dev/null 2>&1 || true
		done
	fi
	ip netns del "$NSA" 2>/dev/null || true
	ip netns del "$NSB" 2>/dev/null || true
	[ -z "$ROUTER" ] || ip netns del "$NSR" 2>/dev/null || true
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ip netns add "$NSA"
ip netns add "$NSB"
if [ -n "$ROUTER" ]; then
	ip netns add "$NSR"
	ip -n "$NSA" link add va type veth peer name vb netns "$NSR"
	ip -n "$NSR" link add vc type veth peer name vd netns "$NSB"
	ip -n "$NSR" addr add 198.18.0.2/30 dev vb
	ip -n "$NSR" addr add 198.18.1.1/30 dev vc
	ip -n "$NSB" addr add 198.18.1.2/30 dev vd
	ip netns exec "$NSR" sysctl -qw net.ipv4.ip_forward=1
	for d in vb vc lo; do ip -n "$NSR" link set $d up; done
	ip -n "$NSB" link set vd up
else
	ip -n "$NSA" link add va type veth peer name vb netns "$NSB"
	ip -n "$NSB" addr add 198.18.0.2/30 dev vb
	ip -n "$NSB" link set vb up
fi
ip -n "$NSA" addr add 198.18.0.1/30 dev va
ip -n "$NSA" link set va up
ip -n "$NSA" link set lo up
ip -n "$NSB" link set lo up
if [ -n "$ROUTER" ]; then
	ip -n "$NSA" route add 198.18.1.0/30 via 198.18.0.2
	ip -n "$NSB" route add 198.18.0.0/30 via 198.18.1.1
fi

timeout -s KILL $((ROUNDS * 6 * (SECS + 15) + 60)) \
	ip netns exec "$NSB" iperf3 -s -B $SRVIP >/dev/null 2>&1 &
SERVER=$!
i=0
until ip netns exec "$NSB" ss -Hltn 'sport = :5201' | grep -q 5201; do
	i=$((i + 1))
	[ $i -lt 50 ] || { echo "iperf.sh: iperf3 server did not start" >&2; exit 1; }
	sleep 0.1
done

# attach MODE: attach pktlens for MODE (none: nothing) to every one of DEVS
attach() {
	case $1 in
	none) return 0 ;;
	default) for d in $DEVS; do $PKTLENS -n "$ATTNS" attach "$d"; done ;;
	xdp-skb) for d in $DEVS; do $PKTLENS -n "$ATTNS" attach "$d" --xdp skb --tc none; done ;;
	xdp-native) for d in $DEVS; do $PKTLENS -n "$ATTNS" attach "$d" --xdp native --tc none; done ;;
	tcp-passive) for d in $DEVS; do $PKTLENS -n "$ATTNS" attach "$d" --tcp-passive; done ;;
	tcp-rtt)
		$PKTLENS -j tcp rtt --netns "/run/netns/$NSA" >"$TMP/rtt.json" 2>/dev/null &
		PROBE=$!
		sleep 1 ;;
	esac >/dev/null
}

# busy jiffies of all CPUs so far
busy() {
	awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}

# run MODE ROUND: one iperf3 run; appends "MODE ROUND GBITS HOOKS COUNTED" to $TMP/runs
run() {
	attach "$1"
	b0=$(busy)
	timeout -s KILL $((SECS + 20)) ip netns exec "$NSA" \
		iperf3 -c $SRVIP -B 198.18.0.1 -t "$SECS" -O 1 -A 0,1 -J >"$TMP/out.json"
	b1=$(busy)
	gbits=$(jq '.end.sum_received.bits_per_second / 1e9' "$TMP/out.json")
	cpugb=$(jq --argjson j $((b1 - b0)) --argjson hz "$(getconf CLK_TCK)" \
		'($j / $hz) / (.end.sum_received.bytes / 1e9)' "$TMP/out.json")
	hooks=-
	counted=0
	if [ "$1" = tcp-rtt ]; then
		kill -INT "$PROBE"
		wait "$PROBE" || true
		PROBE=
		hooks=tcp_probe
		counted=$(jq '[.rtt[].count] | add // 0' "$TMP/rtt.json")
		if [ "$counted" -eq 0 ]; then
			echo "iperf.sh: tcp-rtt: pktlens tcp rtt saw no segments" >&2
			exit 1
		fi
	elif [ "$1" != none ]; then
		$PKTLENS -n "$ATTNS" -j stats vb >"$TMP/stats.json"
		hooks=$(jq -r '[.interfaces[0].hooks[] | .hook + "/" + .dir] | join(",")' \
			"$TMP/stats.json")
		counted=$(jq '[.interfaces[0].hooks[] | select(.dir == "in") | .packets] | max' \
			"$TMP/stats.json")
		[ "$1" != tcp-passive ] || counted=$(jq '.interfaces[0].tcp.segs // 0' "$TMP/stats.json")
		for d in $DEVS; do $PKTLENS -n "$ATTNS" detach "$d" >/dev/null; done
		if [ "$counted" -eq 0 ]; then
			echo "iperf.sh: $1: pktlens counted no packets" >&2
			exit 1
		fi
	fi
	printf '%s %s %.2f %s %s %.3f\n' "$1" "$2" "$gbits" "$hooks" "$counted" "$cpugb" \
		>>"$TMP/runs"
	printf '  round %s %-10s %6.2f Gbit/s  %5.3f CPU s/GB  %s\n' "$2" "$1" "$gbits" "$cpugb" \
		"$([ "$1" = none ] || echo "hooks $hooks, packets or RTT samples counted $counted")"
}

MODES="none default xdp-skb xdp-native tcp-rtt tcp-passive"
REVERSED="tcp-passive tcp-rtt xdp-native xdp-skb default none"
echo "iperf3 TCP, ${SECS} s per run (+1 s omitted), $ROUNDS rounds, $LAB" \
	"($NSA -> $NSB), kernel $(uname -r)"
: >"$TMP/runs"
r=0
while [ $r -lt "$ROUNDS" ]; do
	if [ $((r % 2)) -eq 0 ]; then order=$MODES; else order=$REVERSED; fi
	for m in $order; do
		run "$m" "$r"
	done
	r=$((r + 1))
done

# per mode: median Gbit/s over rounds, and median over rounds of the ratio to
# the same round's none run (a slow or fast round then cancels out)
awk -v json="$JSON" -v lab="$LAB" -v secs="$SECS" -v rounds="$ROUNDS" -v kernel="$(uname -r)" '
function median(list,    a, n, i, j, t) {
	n = split(list, a, " ")
	for (i = 1; i <= n; i++)
		for (j = i + 1; j <= n; j++)
			if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{ g[$1, $2] = $3; v[$1] = v[$1] " " $3; hooks[$1] = $4; c[$1] = c[$1] " " $6
  if ($2 + 1 > nr) nr = $2 + 1 }
END {
	split("none default xdp-skb xdp-native tcp-rtt tcp-passive", order, " ")
	printf "\n%-11s %-22s %8s %8s  %-14s %9s  %s\n", "mode", "hooks", "Gbit/s", "ratio",
		"ratio range", "CPU s/GB", "Gbit/s per round"
	for (i = 1; i <= 6; i++) {
		m = order[i]; rl = ""; lo = 1e9; hi = 0
		for (r = 0; r < nr; r++) {
			x = g[m, r] / g["none", r]; rl = rl " " x
			if (x < lo) lo = x
			if (x > hi) hi = x
		}
		med[m] = median(v[m]); ratio[m] = median(rl); rlist[m] = rl; cpu[m] = median(c[m])
		printf "%-11s %-22s %8.2f %8.3f  %5.3f..%-6.3f %9.3f  %s\n", m, hooks[m], med[m],
			ratio[m], lo, hi, cpu[m], v[m]
	}
	met = ratio["default"] >= 0.95
	printf "target default/none >= 0.95: %s\n", met ? "met" : "NOT met"
	printf "target tcp-rtt/none >= 0.97: %s (CPU per GB %.3f vs %.3f s)\n",
		(ratio["tcp-rtt"] >= 0.97 ? "met" : "NOT met"), cpu["tcp-rtt"], cpu["none"]
	pl = ""
	for (r = 0; r < nr; r++)
		pl = pl " " g["tcp-passive", r] / g["default", r]
	pd = median(pl)
	printf "target tcp-passive/default >= 0.97: %s (%.3f; CPU per GB %.3f vs %.3f s)\n",
		(pd >= 0.97 ? "met" : "NOT met"), pd, cpu["tcp-passive"], cpu["default"]
	if (json == "")
		exit
	printf "{\"kernel\":\"%s\",\"lab\":\"%s\",\"secs\":%d,\"rounds\":%d,\"modes\":[", kernel, lab, secs, rounds > json
	for (i = 1; i <= 6; i++) {
		m = order[i]
		gsub(/^ /, "", v[m]); gsub(/ /, ",", v[m])
		gsub(/^ /, "", rlist[m]); gsub(/ /, ",", rlist[m])
		printf "%s{\"mode\":\"%s\",\"hooks\":\"%s\",\"gbits\":%.2f,\"ratio\":%.3f,", \
			(i > 1 ? "," : ""), m, hooks[m], med[m], ratio[m] > json
		printf "\"cpu_s_per_gb\":%.3f,", cpu[m] > json
		printf "\"gbits_runs\":[%s],\"ratio_runs\":[%s]}", v[m], rlist[m] > json
	}
	printf "],\"target_ratio\":0.95,\"met\":%s}\n", (met ? "true" : "false") > json
}' "$TMP/runs"
