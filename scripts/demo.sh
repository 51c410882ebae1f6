#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# pktlens demo: a two-namespace veth lab, pktlens attached on the receiving
# side, real traffic (scapy, ping, iperf3), then stats and top flows.
# Leaves nothing behind: namespaces, attachments and pins are removed on exit.
set -eu

cd "$(dirname "$0")/.."
PKTLENS=./pktlens
A="pktlens-demo-$$-a"
B="pktlens-demo-$$-b"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

DAEMON=
CONF=
cleanup() {
	if [ -n "$DAEMON" ]; then kill "$DAEMON" 2>/dev/null || true; wait "$DAEMON" 2>/dev/null || true; fi
	[ -n "$CONF" ] && rm -f "$CONF"
	"$PKTLENS" -n "$B" detach --all >/dev/null 2>&1 || true
	ip netns del "$A" 2>/dev/null || true
	ip netns del "$B" 2>/dev/null || true
}
trap cleanup EXIT INT TERM

step "lab: namespaces $A (198.18.0.1, 2001:db8::1) <-veth-> $B (198.18.0.2, 2001:db8::2)"
ip netns add "$A"
ip netns add "$B"
ip -n "$A" link add va type veth peer name vb netns "$B"
ip -n "$A" link set lo up
ip -n "$B" link set lo up
ip -n "$A" addr add 198.18.0.1/24 dev va
ip -n "$B" addr add 198.18.0.2/24 dev vb
ip -n "$A" addr add 2001:db8::1/64 dev va nodad
ip -n "$B" addr add 2001:db8::2/64 dev vb nodad
ip -n "$A" link set va up
ip -n "$B" link set vb up

step "pktlens -n $B attach vb"
"$PKTLENS" -n "$B" attach vb

step "pktlens -n $B filter set vb 'tcp[tcpflags] & tcp-syn != 0'   (count SYNs in-kernel)"
"$PKTLENS" -n "$B" filter set vb 'tcp[tcpflags] & tcp-syn != 0'

step "traffic: scapy mix (UDP/TCP/ICMP, IPv6 with extension header, VLAN, fragments, a truncated frame)"
ip netns exec "$A" /usr/bin/python3 - <<'PY'
import logging
logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
from scapy.all import *
conf.verb = 0
dst = "ff:ff:ff:ff:ff:ff"
E = Ether(dst=dst)
pk = []
pk += [E/IP(src="198.18.0.1", dst="198.18.0.2")/UDP(sport=5353, dport=53)/Raw(b"q" * 40)] * 20
pk += [E/IP(src="198.18.0.1", dst="198.18.0.2")/TCP(sport=40000 + i, dport=443, flags="S") for i in range(10)]
pk += [E/IPv6(src="2001:db8::1", dst="2001:db8::2")/IPv6ExtHdrHopByHop()/UDP(sport=9, dport=9)/Raw(b"x" * 200)] * 5
pk += [E/Dot1Q(vlan=42)/IP(src="198.18.0.1", dst="198.18.0.2")/UDP(sport=1, dport=2)] * 3
pk += [E/f for f in fragment(IP(src="198.18.0.1", dst="198.18.0.2")/UDP(sport=7, dport=7)/Raw(b"f" * 3000), 1400)]
pk += [E/Raw(b"\x45\x00")]  # truncated IPv4 header
sendp(pk, iface="va")
print(f"sent {len(pk)} frames with scapy")
PY

step "traffic: ping -c 5 (IPv4 and IPv6), iperf3 for 2 s"
ip netns exec "$A" ping -q -c 5 -i 0.2 198.18.0.2 | tail -2
ip netns exec "$A" ping -6 -q -c 5 -i 0.2 2001:db8::2 | tail -2
ip netns exec "$B" iperf3 -s -1 -B 198.18.0.2 >/dev/null 2>&1 &
sleep 0.5
timeout -s KILL 20 ip netns exec "$A" iperf3 -c 198.18.0.2 -t 2 -f m | grep -E "sender|receiver" || true
wait || true

step "policy: drop ICMP echo from 198.18.0.1 in-kernel, then ping again (expect 100% loss)"
"$PKTLENS" -n "$B" policy add vb --src 198.18.0.1/32 --proto icmp --drop
ip netns exec "$A" ping -q -c 3 -i 0.2 -W 1 198.18.0.2 | tail -2 || true
"$PKTLENS" -n "$B" policy list vb

step "pktlens -n $B sample vb -c 6 'icmp or icmp6'   (captured in-kernel, with the verdict: the IPv4 pings are dropped)"
"$PKTLENS" -n "$B" sample vb -c 6 --duration 10 'icmp or icmp6' &
SAMPLER=$!
sleep 1
ip netns exec "$A" ping -q -c 2 -i 0.2 -W 1 198.18.0.2 >/dev/null || true
ip netns exec "$A" ping -6 -q -c 2 -i 0.2 -W 1 2001:db8::2 >/dev/null || true
wait "$SAMPLER" || true

step "pktlens -n $B sample vb -c 4 -w FILE.pcap ip6, then tcpdump -r FILE.pcap"
PCAP=$(mktemp /tmp/pktlens-demo-XXXXXX.pcap)
"$PKTLENS" -n "$B" sample vb -c 4 --duration 10 -w "$PCAP" ip6 &
SAMPLER=$!
sleep 1
ip netns exec "$A" ping -6 -q -c 2 -i 0.2 -W 1 2001:db8::2 >/dev/null || true
wait "$SAMPLER" || true
tcpdump -nn -r "$PCAP" 2>/dev/null
rm -f "$PCAP"

step "pktlens -n $B stats vb"
"$PKTLENS" -n "$B" stats vb

step "pktlens -n $B flows vb --top 10"
"$PKTLENS" -n "$B" flows vb --top 10

step "pktlens list"
"$PKTLENS" list

step "pktlens -n $B detach vb"
"$PKTLENS" -n "$B" detach vb

step "pktlens daemon: a config that covers veth* in namespace $B; a veth made after it started is attached"
CONF=$(mktemp /tmp/pktlens-demo-XXXXXX.conf)
cat > "$CONF" <<CONFIG
name: demo
interfaces:
  - match: "veth*"
    netns: "$B"
    flows: 4096
    filter: "icmp"
on-stop: detach
CONFIG
cat "$CONF"
"$PKTLENS" daemon --config "$CONF" &
DAEMON=$!
sleep 1
ip -n "$A" link add veth-a0 type veth peer name veth0 netns "$B"
ip -n "$A" link set veth-a0 up
ip -n "$B" link set veth0 up
ip -n "$A" addr add 198.18.1.1/24 dev veth-a0
ip -n "$B" addr add 198.18.1.2/24 dev veth0
for _ in $(seq 100); do "$PKTLENS" -n "$B" stats veth0 >/dev/null 2>&1 && break; sleep 0.05; done
ip netns exec "$A" ping -q -c 3 -i 0.2 -W 1 198.18.1.2 >/dev/null || true
"$PKTLENS" list | grep -E "NETNS|managed by demo"
"$PKTLENS" -n "$B" stats veth0 | head -4

step "pktlens apply --dry-run: the same config is what the daemon keeps"
"$PKTLENS" apply "$CONF" --dry-run

step "SIGTERM: the daemon detaches what it manages (on-stop: detach)"
kill "$DAEMON"
wait "$DAEMON" || true
DAEMON=
