# SPDX-License-Identifier: GPL-2.0
"""
`pktlens filter compile|run`: tcpdump expressions translated cBPF -> eBPF and run
in the kernel with BPF_PROG_TEST_RUN must match exactly the packets libpcap
matches.

Oracle 1: libpcap's own interpreter (pcap_offline_filter(), tests/pcap_oracle.c,
built here). Oracle 2, for a subset: the kernel's classic BPF, the program from
`tcpdump -ddd` attached with SO_ATTACH_FILTER to an AF_UNIX datagram socket.

Inputs: frames scapy builds here (IPv4/IPv6/ARP/ICMP/ICMPv6, TCP flags, fragments,
IP options, single and double VLAN, IPv6 extension headers, MPLS, PPPoE, LLC,
tunnels, truncated captures, runts, jumbo frames) and the real captures in
../shared/captures, merged into one file.

Run: /usr/bin/python3 -m pytest -q tests/test_filter.py   (root; `make pktlens` first)
"""
import ctypes
import json
import os
import shutil
import socket
import struct
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PKTLENS = Path(os.environ.get("PKTLENS_BIN", str(REPO / "pktlens")))
CAPTURES = Path(__file__).resolve().parents[2] / "shared" / "captures"
ORACLE_SRC = REPO / "tests" / "pcap_oracle.c"

ETH_MIN = 14          # shorter frames cannot be test-run (nor reach XDP/tc)
TC_RUN_MAX = 3000     # tc test runs take one page; larger frames may be skipped

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (bpf)"),
    pytest.mark.skipif(not PKTLENS.exists(), reason="build ./pktlens first (make pktlens)"),
]
need_tcpdump = pytest.mark.skipif(shutil.which("tcpdump") is None, reason="needs tcpdump")

# --------------------------------------------------------------------------
# Expressions. Every one must compile with libpcap (the oracle checks).

HOSTS20 = " or ".join(f"host 198.18.0.{i}" for i in range(1, 21))
PORTS20 = " or ".join(f"port {p}" for p in (22, 25, 53, 80, 110, 123, 143, 161, 389, 443,
                                            445, 587, 993, 995, 1194, 1433, 3306, 5432, 6379, 8080))
PORTS60 = " or ".join(f"tcp dst port {1000 + 7 * i}" for i in range(60))
NETS = " or ".join(f"net 198.{18 + i % 2}.{i}.0/24" for i in range(30))

EXPRESSIONS = [
    # link layer
    "", "ether broadcast", "ether multicast", "not ether multicast",
    "ether src 02:00:00:00:00:01", "ether dst 02:00:00:00:00:02", "ether host 02:00:00:00:00:02",
    "ether dst ff:ff:ff:ff:ff:ff", "ether proto 0x88cc", "ether proto \\arp", "ether proto \\ip6",
    "ether[0] & 1 != 0", "ether[12:2] = 0x8100", "ether[12:2] = 0x8100 and ether[16:2] = 0x0800",
    "ether[12:2] < 0x600", "ether[6:4] = 0x02000000", "ether[0:4] = 0xffffffff",
    # lengths (wire length, also for truncated captures)
    "len <= 60", "len >= 100", "len = 74", "greater 1000", "less 64", "greater 9000", "less 15",
    "len > 1514", "len - 14 > 100", "len / 2 > 40", "len % 7 = 0", "len <= 60 and ether broadcast",
    "ip and len > 1000", "ip and ip[2:2] + 14 != len",
    # ARP
    "arp", "rarp", "arp[6:2] = 1", "arp[6:2] = 2", "arp src host 198.18.0.1", "arp dst host 198.18.0.2",
    "arp or rarp", "vlan and arp",
    # IPv4 addresses
    "ip", "ip host 198.18.0.1", "host 198.18.0.1", "src host 198.18.0.1", "dst host 198.18.0.2",
    "src host 198.18.0.1 and dst host 198.18.0.2", "net 198.18.0.0/15", "net 198.19.0.0/16",
    "dst net 198.19.0.0 mask 255.255.0.0", "src net 10.0.0.0/8", "ip multicast", "ip dst 224.0.0.1",
    "host 198.18.0.1 and (tcp or udp)", "ip host 198.18.0.1 and not port 22", HOSTS20, NETS,
    # IPv4 header fields
    "ip[8] < 64", "ip[0] & 0xf > 5", "ip and ip[0] & 0xf != 5", "ip[0] & 0xf0 != 0x40",
    "ip[6] & 0x20 != 0", "ip[6:2] & 0x1fff != 0", "ip[6:2] & 0x3fff != 0", "ip[6] & 0x40 != 0",
    "ip[2:2] > 1500", "ip[1] & 0x3 = 3", "ip[9] = 2", "ip[(ip[0]&0xf)*4 : 2] = 443",
    "ip[4000:2] = 0x5a5a",
    # transport
    "tcp", "udp", "icmp", "sctp", "igmp", "ip proto gre", "proto 47", "ip proto \\tcp", "ip6 proto 58",
    "vrrp", "pim", "ah", "esp", "not (tcp or udp)", "ip and not (tcp or udp or icmp)",
    "tcp port 443", "tcp port 80", "port 22", "udp port 53", "port 53", "src port 12345",
    "dst port 443", "tcp dst port 443 and (tcp[tcpflags] & tcp-syn) != 0", "udp dst port 4789",
    "udp port 6081", "port http", "port domain", "tcp portrange 1000-2000", "udp portrange 1000-2000",
    "ip6 and udp portrange 1000-2000", "src portrange 1-1023", "portrange 1990-2010",
    "(tcp or udp) and host 198.18.0.1", "tcp and (tcp[2:2] > 1000 and tcp[2:2] < 2000)",
    "sctp port 5001", PORTS20, PORTS60,
    # TCP flags and header
    "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", "tcp[tcpflags] == tcp-syn|tcp-ack",
    "tcp[tcpflags] & tcp-push != 0", "tcp[tcpflags] & (tcp-fin|tcp-rst) != 0", "tcp[13] = 0x12",
    "tcp[13] & 0xc0 != 0", "tcp[tcpflags] == 0xff", "tcp[tcpflags] & tcp-urg != 0",
    "tcp[12] & 0xf0 > 0x50", "tcp[3000:4] != 0",
    "ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2) != 0",
    # ICMP
    "icmp[icmptype] == icmp-echo", "icmp[icmptype] == icmp-echoreply",
    "icmp[icmptype] != icmp-echo and icmp[icmptype] != icmp-echoreply", "icmp[0] = 3 and icmp[1] = 3",
    "icmp[icmptype] == icmp-timxceed",
    # IPv6
    "ip6", "ip6 host 2001:db8::1", "host 2001:db8::1", "src host 2001:db8::2", "ip6 multicast",
    "ip6 src net 2001:db8::/48", "dst net 2001:db8:1::/48", "net 2001:db8::/32", "ip6 and tcp",
    "ip6 and udp", "ip6[6] = 44", "ip6[6] = 0", "ip6[6] = 43", "ip6[7] = 255", "ip6 and ip6[40] = 58",
    "icmp6", "icmp6[icmp6type] == icmp6-echo", "icmp6[icmp6type] == icmp6-neighborsolicit",
    "icmp6 and ip6[40] == 135", "ip6 and tcp port 443", "ip6 and not ip6 multicast",
    # protochain (libpcap loops backwards over extension headers)
    "ip6 protochain 6", "ip6 protochain 17", "ip6 protochain 58", "ip protochain 6", "protochain 17",
    # VLAN, MPLS, PPPoE, tunnels
    "vlan", "vlan 100", "vlan 200", "not vlan", "vlan and ip", "vlan and tcp port 80", "vlan and vlan",
    "vlan 10 and vlan 20", "vlan 30 and vlan 40 and tcp", "vlan and ip6", "vlan 100 or vlan 200",
    "mpls", "mpls 16", "mpls 16 and ip", "mpls and udp", "pppoed", "pppoes", "pppoes 1 and ip",
    "pppoes and tcp", "geneve", "geneve and ip", "geneve 0x123", "udp[8:2] = 0x0800",
    # other link protocols
    "llc", "stp", "ipx", "decnet", "netbeui", "atalk", "iso", "lat", "llc u", "llc s", "carp",
    # arithmetic (division and modulo by X, shifts by X >= 32: libpcap gives 0)
    "ether[0] / ether[1] > 1", "ether[0] % ether[6] = 0", "ether[2] << ether[3] = 8",
    "(ether[12:2] >> ether[5]) = 0", "ether[12:2] << ether[13] != 0", "ether[0] * 3 = 6",
    "ether[0] ^ 2 = 0", "ether[1] | 1 = 1", "-ether[0] = 0xfffffffe", "ether[0] & ether[1] != 0",
    "ether[0] - ether[1] > 0", "ip[0] + ip[1] > 100", "ether[ether[14] & 0xf] > 0",
    "ether[5000] = 0x5a", "ether[8999] = 0x5a", "udp[7000] = 0x5a", "ip[4 : 4] / ip[6 : 2] > 3",
]

# ran again as sched_cls programs
TC_EXPRESSIONS = [
    "", "tcp port 443", "host 198.18.0.1 and (tcp or udp)", "len >= 100", "len = 74", "greater 1000",
    "less 64", "len - 14 > 100", "ip and len > 1000", "vlan and tcp port 80", "ip6 protochain 6",
    "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn", "ip6 and udp portrange 1000-2000", HOSTS20,
    "ip[6:2] & 0x1fff != 0", "ether[0] / ether[1] > 1", "ether[2] << ether[3] = 8", "arp",
    "icmp6[icmp6type] == icmp6-echo", "mpls 16 and ip", "tcp[3000:4] != 0", "geneve and ip",
    "ip[(ip[0]&0xf)*4 : 2] = 443", "ether[ether[14] & 0xf] > 0", PORTS60,
]

# ran again as tc programs handed each frame's outer VLAN tag in skb metadata, as tc ingress
# gets tagged frames (filter run --tc --vlan-meta): the program must put the tag back
VLAN_META_EXPRESSIONS = [
    "vlan", "vlan 100", "vlan 200", "not vlan", "vlan and ip", "vlan and tcp port 80", "vlan and vlan",
    "vlan 10 and vlan 20", "vlan 30 and vlan 40 and tcp", "vlan and ip6", "vlan 100 or vlan 200",
    "udp", "tcp port 80", "ip", "ip6", "arp", "ip6 protochain 17", "vlan and ip6 protochain 17",
    "len >= 100", "len = 78", "ether[12:2] = 0x8100", "ether[14:2] & 0xfff = 100", "ether[13:4] = 0x6408",
    "ether[11:4] = 0x01810000", "ether[15:2] = 0x6408", "ether[16:4] = 0x08004500",
    "ether[17:2] = 0x0045", "ether[ether[5] + 10 : 4] = 0x81000064", "ether[ether[5] + 10 : 2] = 0x8100",
    "ether[ether[5] + 13 : 4] = 0x64080045", "ether[(ether[0] & 0x2) + 14 : 2] = 0x0800",
    "ether[ether[5] + 28 : 4] = 0xc6120001", "mpls 16 and ip", "pppoes and tcp",
]

# checked against the kernel's classic BPF too (no `len`, no shift by X, no protochain)
KERNEL_EXPRESSIONS = [
    "", "tcp port 443", "host 198.18.0.1 and (tcp or udp)", "tcp[tcpflags] & (tcp-syn|tcp-ack) == tcp-syn",
    "ip6 and udp portrange 1000-2000", HOSTS20, PORTS20, "arp", "vlan 100", "vlan 10 and vlan 20",
    "ip[6:2] & 0x1fff != 0", "ip[0] & 0xf > 5", "icmp[icmptype] == icmp-echo", "icmp6",
    "ip6[6] = 44", "net 198.18.0.0/15", "ether broadcast", "ether multicast", "mpls 16 and ip",
    "pppoes and tcp", "geneve and ip", "llc", "stp", "ipx", "ether[0] / ether[1] > 1",
    "ether[0] % ether[6] = 0", "ip[(ip[0]&0xf)*4 : 2] = 443", "ether[5000] = 0x5a", "tcp[3000:4] != 0",
    "ip[2:2] - ((ip[0]&0xf)<<2) - ((tcp[12]&0xf0)>>2) != 0", "-ether[0] = 0xfffffffe", PORTS60,
]


def short_id(expr):
    return (expr[:40] + "...") if len(expr) > 43 else (expr or "<empty>")


# --------------------------------------------------------------------------
# Captures

def write_pcap(path, frames, linktype=1):
    """frames: (bytes, wirelen) -> classic little-endian pcap, microseconds"""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, linktype))
        for i, (data, wirelen) in enumerate(frames):
            f.write(struct.pack("<IIII", 1700000000 + i, i, len(data), wirelen))
            f.write(data)


def read_pcap(path):
    """classic pcap (either byte order, us or ns) -> [(bytes, wirelen)]"""
    b = Path(path).read_bytes()
    magic = b[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        e = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        e = ">"
    else:
        raise ValueError(f"{path}: not a classic pcap")
    assert struct.unpack(e + "I", b[20:24])[0] & 0xFFFF == 1, f"{path}: not Ethernet"
    off, out = 24, []
    while off + 16 <= len(b):
        _, _, caplen, wirelen = struct.unpack(e + "IIII", b[off:off + 16])
        out.append((b[off + 16:off + 16 + caplen], wirelen))
        off += 16 + caplen
    return out


def synthetic_frames():
    from scapy.layers.inet import IP, TCP, UDP, ICMP, IPOption_RR, IPOption_Router_Alert
    from scapy.layers.inet6 import (IPv6, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting, IPv6ExtHdrFragment,
                                    IPv6ExtHdrDestOpt, ICMPv6EchoRequest, ICMPv6EchoReply,
                                    ICMPv6ND_NS, ICMPv6ND_NA, ICMPv6ND_RA)
    from scapy.layers.l2 import Ether, Dot1Q, Dot1AD, ARP, LLC, SNAP, STP, Dot3, GRE
    from scapy.layers.ppp import PPPoE, PPPoED
    from scapy.layers.sctp import SCTP
    from scapy.layers.ipsec import AH
    from scapy.layers.vxlan import VXLAN
    from scapy.layers.dns import DNS, DNSQR
    from scapy.contrib.mpls import MPLS
    from scapy.packet import Raw

    A, B = "02:00:00:00:00:01", "02:00:00:00:00:02"
    BC, MC4, MC6 = "ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "33:33:00:00:00:01"
    ip_a, ip_b, ip_c = "198.18.0.1", "198.18.0.2", "198.19.1.1"
    v6a, v6b, v6c = "2001:db8::1", "2001:db8::2", "2001:db8:1::1"
    e = Ether(src=A, dst=B)
    pk = []

    ports = [(12345, 443), (443, 12345), (40000, 80), (1500, 22), (22, 1999), (8080, 8080), (2001, 999)]
    for flags in ["S", "SA", "A", "PA", "F", "FA", "R", "RA", "U", "E", "C", "SEC", "FPU", "FSRPAUEC"]:
        for i, (sp, dp) in enumerate(ports[:3] if len(flags) > 1 else ports):
            pk.append(e / IP(src=ip_a, dst=ip_b, ttl=64 - i) / TCP(sport=sp, dport=dp, flags=flags))
        pk.append(e / IPv6(src=v6a, dst=v6b) / TCP(sport=1999, dport=443, flags=flags))
    pk.append(e / IP(src=ip_b, dst=ip_a) / TCP(sport=443, dport=50000, flags="PA",
                                                  options=[("MSS", 1460), ("SAckOK", b""),
                                                           ("Timestamp", (1, 2)), ("WScale", 7)])
              / Raw(b"GET / HTTP/1.1\r\n\r\n"))
    for sp, dp in [(5353, 5353), (123, 123), (999, 1000), (2000, 2000), (2001, 2001), (68, 67), (1234, 53)]:
        pk.append(e / IP(src=ip_a, dst=ip_c) / UDP(sport=sp, dport=dp) / Raw(b"x" * 8))
        pk.append(e / IPv6(src=v6a, dst=v6c) / UDP(sport=sp, dport=dp) / Raw(b"y" * 8))
    pk.append(e / IP(src=ip_a, dst=ip_b) / UDP(sport=1234, dport=53) / DNS(qd=DNSQR(qname="example.org")))
    pk.append(Ether(src=A, dst=MC4) / IP(src=ip_a, dst="224.0.0.1", ttl=1) / UDP(sport=5353, dport=5353))
    pk.append(Ether(src=A, dst=BC) / IP(src="0.0.0.0", dst="255.255.255.255") / UDP(sport=68, dport=67))
    # ICMP
    pk.append(e / IP(src=ip_a, dst=ip_b) / ICMP(type=8) / Raw(b"ping"))
    pk.append(e / IP(src=ip_b, dst=ip_a) / ICMP(type=0) / Raw(b"pong"))
    pk.append(e / IP(src=ip_b, dst=ip_a) / ICMP(type=3, code=3) / IP(src=ip_a, dst=ip_b) / UDP(sport=1, dport=2))
    pk.append(e / IP(src=ip_b, dst=ip_a) / ICMP(type=11, code=0) / IP(src=ip_a, dst=ip_b) / TCP())
    # IP options, fragments, odd headers
    pk.append(e / IP(src=ip_a, dst=ip_b, options=[IPOption_RR(routers=["198.18.0.9", "198.18.0.10"])])
              / TCP(sport=1024, dport=443, flags="S"))
    pk.append(Ether(src=A, dst=MC4) / IP(src=ip_a, dst="224.0.0.22", proto=2, options=[IPOption_Router_Alert()])
              / Raw(b"\x22\x00\xfa\x01\x00\x00\x00\x00"))
    pk.append(e / IP(src=ip_a, dst=ip_b, flags="MF", frag=0, id=7) / TCP(sport=2000, dport=443) / Raw(b"a" * 16))
    pk.append(e / IP(src=ip_a, dst=ip_b, flags="MF", frag=100, id=7, proto=6) / Raw(b"b" * 24))
    pk.append(e / IP(src=ip_a, dst=ip_b, frag=185, id=7, proto=6) / Raw(b"\x01\xbb\x01\xbb" + b"c" * 20))
    pk.append(e / IP(src=ip_a, dst=ip_b, flags="DF") / UDP(sport=1500, dport=1600))
    pk.append(e / IP(src=ip_a, dst=ip_b, ihl=3) / Raw(b"\x00" * 30))
    pk.append(e / IP(src=ip_a, dst=ip_b, len=20) / UDP(sport=53, dport=53))
    pk.append(e / IP(src=ip_a, dst=ip_b, proto=132) / SCTP(sport=5000, dport=5001))
    pk.append(e / IP(src=ip_a, dst=ip_b, tos=3) / GRE() / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP())
    pk.append(e / IP(src="10.0.0.1", dst=ip_b, proto=112) / Raw(b"\x21\x01\x64\x01\x00\x01\xba\x52"))
    pk.append(e / IP(src=ip_a, dst=ip_b, proto=50) / Raw(b"\x00\x00\x01\x00" * 4))
    # IPv6 and extension headers
    pk.append(e / IPv6(src=v6a, dst=v6b) / IPv6ExtHdrHopByHop() / TCP(sport=1000, dport=443, flags="S"))
    pk.append(e / IPv6(src=v6a, dst=v6b) / IPv6ExtHdrRouting(addresses=[v6c]) / UDP(sport=1500, dport=1600))
    pk.append(e / IPv6(src=v6a, dst=v6b) / IPv6ExtHdrFragment(offset=0, m=1, id=9) / TCP(sport=1, dport=443))
    pk.append(e / IPv6(src=v6a, dst=v6b) / IPv6ExtHdrFragment(offset=100, m=0, id=9, nh=6) / Raw(b"z" * 16))
    pk.append(e / IPv6(src=v6a, dst=v6b) / IPv6ExtHdrDestOpt() / IPv6ExtHdrRouting(addresses=[v6c])
              / ICMPv6EchoRequest())
    pk.append(e / IPv6(src=v6a, dst=v6b) / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt()
              / IPv6ExtHdrFragment(m=1) / IPv6ExtHdrDestOpt() / UDP(sport=1999, dport=2000))
    pk.append(e / IPv6(src=v6a, dst=v6b) / AH(nh=6, payloadlen=4, icv=b"\x00" * 12) / TCP(sport=7, dport=443))
    deep = IPv6(src=v6a, dst=v6b)
    for _ in range(210):   # more extension headers than protochain follows (200)
        deep = deep / IPv6ExtHdrDestOpt()
    pk.append(e / deep / TCP(sport=5, dport=6))
    deep_at = len(pk)     # 1-based index of that frame
    pk.append(e / IPv6(src=v6a, dst=v6b) / ICMPv6EchoRequest())
    pk.append(e / IPv6(src=v6b, dst=v6a) / ICMPv6EchoReply())
    pk.append(Ether(src=A, dst=MC6) / IPv6(src="fe80::1", dst="ff02::1:ff00:2", hlim=255)
              / ICMPv6ND_NS(tgt=v6b))
    pk.append(e / IPv6(src="fe80::2", dst="fe80::1", hlim=255) / ICMPv6ND_NA(tgt=v6b))
    pk.append(Ether(src=A, dst=MC6) / IPv6(src="fe80::1", dst="ff02::1", hlim=255) / ICMPv6ND_RA())
    pk.append(e / IPv6(src=v6a, dst=v6b, nh=0) / Raw(b"\x3b\x00" + b"\x01\x04\x00\x00\x00\x00"))
    # ARP / RARP
    pk.append(Ether(src=A, dst=BC) / ARP(op=1, psrc=ip_a, pdst=ip_b, hwsrc=A))
    pk.append(Ether(src=B, dst=A) / ARP(op=2, psrc=ip_b, pdst=ip_a, hwsrc=B, hwdst=A))
    pk.append(Ether(src=A, dst=BC, type=0x8035) / ARP(op=3, hwsrc=A, hwdst=A))
    # VLAN, QinQ
    pk.append(e / Dot1Q(vlan=100) / IP(src=ip_a, dst=ip_b) / TCP(sport=40000, dport=80, flags="S"))
    pk.append(e / Dot1Q(vlan=200, prio=5) / IPv6(src=v6a, dst=v6b) / UDP(sport=1500, dport=1501))
    pk.append(e / Dot1Q(vlan=100) / ARP(psrc=ip_a, pdst=ip_b))
    pk.append(Ether(src=A, dst=B, type=0x88A8) / Dot1AD(vlan=10) / Dot1Q(vlan=20) / IP(src=ip_a, dst=ip_b)
              / UDP(sport=1000, dport=2000))
    pk.append(e / Dot1Q(vlan=30) / Dot1Q(vlan=40) / IP(src=ip_a, dst=ip_b) / TCP(sport=1, dport=80))
    pk.append(e / Dot1Q(vlan=10) / Dot1Q(vlan=20) / IPv6(src=v6a, dst=v6b) / TCP(sport=1, dport=443))
    # MPLS, PPPoE, LLC/STP, tunnels
    pk.append(Ether(src=A, dst=B, type=0x8847) / MPLS(label=16, s=1, ttl=64) / IP(src=ip_a, dst=ip_b)
              / UDP(sport=1, dport=2))
    pk.append(Ether(src=A, dst=B, type=0x8847) / MPLS(label=17, s=0) / MPLS(label=16, s=1)
              / IP(src=ip_a, dst=ip_b) / TCP())
    # IPv4 in Geneve over MPLS: `mpls and geneve and ip` reads the label at [x + -2] (see
    # NEGATIVE_K_EXPRESSIONS); a wrapping X + k would read it and match
    pk.append(Ether(src=A, dst=B, type=0x8847) / MPLS(label=16, s=1) / IP(src=ip_a, dst=ip_b)
              / UDP(sport=4000, dport=6081) / Raw(struct.pack(">BBHI", 0, 0, 0x6558, 5 << 8))
              / Ether(src=A, dst=B) / IP(src="10.0.0.1", dst="10.0.0.2") / UDP(sport=53, dport=53))
    pk.append(Ether(src=A, dst=BC) / PPPoED(code=0x09, sessionid=0))
    pk.append(e / PPPoE(sessionid=1) / Raw(b"\x00\x21") / IP(src=ip_a, dst=ip_b) / TCP(sport=1, dport=80))
    pk.append(e / PPPoE(sessionid=2) / Raw(b"\x00\x57") / IPv6(src=v6a, dst=v6b) / UDP())
    pk.append(Dot3(src=A, dst="01:80:c2:00:00:00") / LLC() / STP())
    pk.append(Dot3(src=A, dst=B) / LLC(dsap=0xAA, ssap=0xAA, ctrl=3) / SNAP(OUI=0, code=0x0800)
              / IP(src=ip_a, dst=ip_b) / UDP())
    pk.append(Dot3(src=A, dst=B) / LLC(dsap=0xE0, ssap=0xE0, ctrl=3) / Raw(b"\xff\xff" + b"\x00" * 28))
    pk.append(Dot3(src=A, dst=B) / LLC(dsap=0x42, ssap=0x42, ctrl=0x01) / Raw(b"\x00" * 4))
    pk.append(e / IP(src=ip_a, dst=ip_b) / UDP(sport=4000, dport=4789) / VXLAN(vni=42)
              / Ether(src=A, dst=B) / IP(src="10.0.0.1", dst="10.0.0.2") / TCP(dport=443))
    geneve_hdr = struct.pack(">BBHI", 0, 0, 0x6558, 0x123 << 8)
    pk.append(e / IP(src=ip_a, dst=ip_b) / UDP(sport=4000, dport=6081) / Raw(geneve_hdr)
              / Ether(src=A, dst=B) / IP(src="10.0.0.1", dst="10.0.0.2") / ICMP())
    pk.append(Ether(src=A, dst="01:80:c2:00:00:0e", type=0x88CC) / Raw(b"\x02\x07\x04" + b"\x00" * 40))
    pk.append(Ether(src=A, dst=B, type=0x6003) / Raw(b"\x00" * 40))   # DECnet
    pk.append(Ether(src=A, dst=B, type=0x809B) / Raw(b"\x00" * 40))   # AppleTalk
    frames = [(bytes(p), len(bytes(p))) for p in pk]

    # Ethernet padding to 60 bytes
    small = bytes(Ether(src=A, dst=B) / IP(src=ip_a, dst=ip_b) / UDP(sport=1, dport=2))
    frames.append((small + b"\x00" * (60 - len(small)), 60))
    # jumbo frames: beyond one page (XDP test runs put the rest in fragments)
    for size, l3 in [(9000, "4"), (8000, "6"), (4000, "4"), (3600, "6")]:
        hdr = (e / IP(src=ip_a, dst=ip_b) / UDP(sport=1500, dport=2000)) if l3 == "4" else \
              (e / IPv6(src=v6a, dst=v6b) / TCP(sport=1500, dport=443, flags="A"))
        body = bytearray(b"\x5a" * (size - len(bytes(hdr))))
        body[100:104] = b"\x00\x00\x00\x00"
        frames.append((bytes(hdr / Raw(bytes(body))), size))
    # truncated captures: caplen < wire length
    full = [bytes(e / IP(src=ip_a, dst=ip_b) / TCP(sport=40000, dport=443, flags="S")),
            bytes(e / IPv6(src=v6a, dst=v6b) / UDP(sport=1000, dport=1500) / Raw(b"q" * 50)),
            bytes(e / Dot1Q(vlan=100) / IP(src=ip_a, dst=ip_b) / TCP(sport=1, dport=80)),
            bytes(e / IP(src=ip_a, dst=ip_b) / ICMP(type=8) / Raw(b"p" * 1400))]
    for f in full:
        for cut in (14, 16, 20, 23, 34, 36, 38, 54, 55):
            if cut < len(f):
                frames.append((f[:cut], len(f)))
    frames.append((full[0][:96], 9054))
    # runts: no XDP/tc program ever sees them; pktlens skips them
    for n in (1, 6, 12, 13):
        frames.append((full[0][:n], n))
    frames.append((full[0][:14], 14))
    frames.append((full[0][:15], 15))
    return frames, deep_at


class Capture:
    def __init__(self, name, path, origin):
        self.name, self.path, self.origin = name, path, origin   # origin[i-1] = "file#n"
        self.caplens = []
        self.verdicts = {}
        self.deep_chains = set()   # frames with more IPv6 extension headers than protochain follows

    def where(self, idxs):
        return ", ".join(f"{i} ({self.origin[i - 1]})" for i in sorted(idxs)[:8])


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("filter")


@pytest.fixture(scope="session")
def oracle(workdir):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    assert cc, "no C compiler for the libpcap oracle"
    exe = workdir / "pcap_oracle"
    subprocess.run([cc, "-O2", "-o", str(exe), str(ORACLE_SRC), "-lpcap"], check=True)
    return exe


def run_oracle(oracle, cap, exprs):
    r = subprocess.run([str(oracle), str(cap.path)], input="\n".join(exprs) + "\n",
                       capture_output=True, text=True, check=True)
    lines = r.stdout.splitlines()
    assert lines[0].startswith("PACKETS ")
    cap.caplens = [int(x) for x in lines[1].split()[1:]]
    for expr, line in zip(exprs, lines[2:]):
        assert line.startswith("OK"), f"libpcap cannot compile {expr!r}: {line}"
        cap.verdicts[expr] = {int(x) for x in line.split()[1:]}


# libpcap emits X-indexed loads with k of 2^31 and more for some expressions tcpdump takes: after
# `mpls and geneve`, `ip` reads the MPLS bottom-of-stack bit at [x + -2]. Its bpf_filter() adds
# X + k without wrapping: the load is past the packet, which then does not match.
NEGATIVE_K_EXPRESSIONS = ["not (mpls and geneve and ip)", "mpls and geneve and udp",
                          "mpls 16 or geneve and ip", "tcp[-20] = 0"]

ALL_EXPRESSIONS = list(dict.fromkeys(EXPRESSIONS + TC_EXPRESSIONS + VLAN_META_EXPRESSIONS +
                                     KERNEL_EXPRESSIONS + NEGATIVE_K_EXPRESSIONS))


@pytest.fixture(scope="session")
def captures(workdir, oracle):
    frames, deep_at = synthetic_frames()
    syn = Capture("synthetic", workdir / "synthetic.pcap", [f"synthetic#{i}" for i in range(1, len(frames) + 1)])
    syn.deep_chains = {deep_at}
    write_pcap(syn.path, frames)
    caps = [syn]
    if CAPTURES.is_dir():  # a checkout without ../shared runs on synthetic frames only
        real_frames, origin = [], []
        for f in sorted(CAPTURES.glob("*.pcap")):
            for n, fr in enumerate(read_pcap(f), 1):
                real_frames.append(fr)
                origin.append(f"{f.name}#{n}")
        assert len(real_frames) > 1000, f"expected the real captures in {CAPTURES}"
        real = Capture("real", workdir / "real.pcap", origin)
        write_pcap(real.path, real_frames)
        caps.append(real)
    for c in caps:
        run_oracle(oracle, c, ALL_EXPRESSIONS)
    return caps


def pktlens(*args, check_rc=None):
    r = subprocess.run([str(PKTLENS), *args], capture_output=True, text=True, timeout=300)
    if check_rc is not None:
        assert r.returncode == check_rc, f"pktlens {' '.join(args)}: rc {r.returncode}\n{r.stderr}"
    return r


def run_filter(cap, expr, tc=False, vlan_meta=False):
    args = ["-j", "filter", "run", "-r", str(cap.path)] + (["--tc"] if tc else []) + \
        (["--vlan-meta"] if vlan_meta else []) + ["--", expr]
    r = pktlens(*args, check_rc=0)
    doc = json.loads(r.stdout)
    assert doc["packets"] == len(cap.caplens)
    assert doc["count"] == len(doc["matches"])
    assert doc["skipped"] == len(doc["skipped_packets"])
    return doc


def compare(cap, expr, tc=False, vlan_meta=False):
    doc = run_filter(cap, expr, tc, vlan_meta)
    skipped = set(doc["skipped_packets"])
    runts = {i for i, c in enumerate(cap.caplens, 1) if c < ETH_MIN}
    if tc:
        # tc test runs also refuse frames over a page, and IP frames cut inside the IP header
        odd = {i for i, c in enumerate(cap.caplens, 1) if c > TC_RUN_MAX or c < 14 + 40}
        assert runts <= skipped <= runts | odd
    else:
        assert skipped == runts
    want = cap.verdicts[expr] - skipped
    got = set(doc["matches"])
    if "protochain" in expr:
        # libpcap 1.10 follows any number of headers; we stop after PL_CBPF_MAX_LOOPS (200)
        # and do not match
        assert not got & cap.deep_chains
        want -= cap.deep_chains
    assert got == want, (f"{cap.name}: {expr!r}: extra matches {cap.where(got - want)}; "
                         f"missed {cap.where(want - got)}")


@pytest.mark.parametrize("expr", EXPRESSIONS, ids=short_id)
def test_xdp_matches_libpcap(captures, expr):
    for cap in captures:
        compare(cap, expr)


@pytest.mark.parametrize("expr", TC_EXPRESSIONS, ids=short_id)
def test_tc_matches_libpcap(captures, expr):
    for cap in captures:
        compare(cap, expr, tc=True)


@pytest.mark.parametrize("expr", VLAN_META_EXPRESSIONS, ids=short_id)
def test_tc_vlan_in_metadata_matches_libpcap(captures, expr):
    """Tagged frames reach tc with the outer tag in skb metadata; verdicts stay libpcap's."""
    assert captures[0].verdicts[expr], f"{expr!r}: the synthetic frames should match it"
    for cap in captures:
        compare(cap, expr, tc=True, vlan_meta=True)


@pytest.mark.parametrize("mode", ["xdp", pytest.param("tc", marks=pytest.mark.variant),
                                  pytest.param("vlan-meta", marks=pytest.mark.variant)])
@pytest.mark.parametrize("expr", NEGATIVE_K_EXPRESSIONS[:1] +
                         [pytest.param(e, marks=pytest.mark.variant) for e in NEGATIVE_K_EXPRESSIONS[1:]],
                         ids=short_id)
def test_indexed_loads_past_2_31_match_libpcap(captures, expr, mode):
    """Loads at X + k with k >= 2^31, which libpcap itself emits, are no ancillary loads: the
    expression is taken, as tcpdump takes it, and such a load fails as in bpf_filter()."""
    doc = json.loads(pktlens("-j", "filter", "compile", "--", expr, check_rc=0).stdout)
    assert any(c["code"] & 0xe7 == 0x40 and c["k"] >= 1 << 31 for c in doc["cbpf"])   # ld [x + k]
    for cap in captures:
        compare(cap, expr, tc=mode != "xdp", vlan_meta=mode == "vlan-meta")


def test_vlan_meta_moves_tags(captures):
    """--vlan-meta really hands the tag over in metadata: a program reading the frame only
    (XDP translation semantics are not involved) would see the inner EtherType at 12."""
    syn = captures[0]
    tagged = syn.verdicts["ether[12:2] = 0x8100"]
    assert len(tagged) >= 5
    doc = run_filter(syn, "ether[12:2] = 0x8100", tc=True, vlan_meta=True)
    assert set(doc["matches"]) == tagged - set(doc["skipped_packets"])
    r = pktlens("filter", "run", "-r", str(syn.path), "--vlan-meta", "vlan", check_rc=2)
    assert r.stderr == "pktlens: filter run: --vlan-meta needs --tc (XDP sees VLAN tags in the frame)\n"


def test_real_captures_present(captures):
    if not CAPTURES.is_dir():
        pytest.skip(f"{CAPTURES} is not there: expressions ran on synthetic frames only")
    assert [c.name for c in captures] == ["synthetic", "real"]


def test_synthetic_capture_exercises_edges(captures):
    syn = captures[0]
    assert any(c < ETH_MIN for c in syn.caplens)
    assert any(c > 8000 for c in syn.caplens)
    # the interesting expressions match something and not everything
    for expr in ["vlan 10 and vlan 20", "ip6 protochain 6", "ether[5000] = 0x5a", "less 64",
                 "ip[6:2] & 0x1fff != 0", "ip[0] & 0xf > 5", "ip6[6] = 44", "mpls 16 and ip", "pppoes and tcp"]:
        assert 0 < len(syn.verdicts[expr]) < len(syn.caplens), expr


# --------------------------------------------------------------------------
# Oracle 2: the kernel's classic BPF (SO_ATTACH_FILTER on an AF_UNIX socket)

SO_ATTACH_FILTER = 26


class SockFilter(ctypes.Structure):
    _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8),
                ("k", ctypes.c_uint32)]


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(SockFilter))]


def tcpdump_ddd(expr):
    r = subprocess.run(["tcpdump", "-ddd", "--", expr], capture_output=True, text=True, check=True)
    lines = r.stdout.split("\n")
    n = int(lines[0])
    return [tuple(int(x) for x in lines[1 + i].split()) for i in range(n)]


def kernel_verdicts(prog, frames):
    insns = (SockFilter * len(prog))(*[SockFilter(*i) for i in prog])
    fprog = SockFprog(len(prog), insns)
    tx, rx = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        tx.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
        rx.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, bytes(fprog))
        got = set()
        for i, data in frames:
            tx.send(data)
            try:
                rx.recv(1 << 18, socket.MSG_DONTWAIT)
                got.add(i)
            except BlockingIOError:
                pass
        return got
    finally:
        tx.close()
        rx.close()


@pytest.fixture(scope="session")
def complete_frames(captures):
    """per capture: (index, bytes) of frames captured whole and long enough to test-run"""
    out = {}
    for cap in captures:
        frames = read_pcap(cap.path)
        out[cap.name] = [(i, d) for i, (d, wl) in enumerate(frames, 1) if len(d) == wl and len(d) >= ETH_MIN]
    return out


@need_tcpdump
@pytest.mark.parametrize("expr", KERNEL_EXPRESSIONS, ids=short_id)
def test_kernel_cbpf_agrees(captures, complete_frames, expr):
    prog = tcpdump_ddd(expr)
    for cap in captures:
        frames = complete_frames[cap.name]
        idx = {i for i, _ in frames}
        kern = kernel_verdicts(prog, frames)
        ours = set(run_filter(cap, expr)["matches"]) & idx
        assert kern == cap.verdicts[expr] & idx, f"{cap.name}: kernel cBPF and libpcap disagree on {expr!r}"
        assert ours == kern, (f"{cap.name}: {expr!r}: extra {cap.where(ours - kern)}; "
                              f"missed {cap.where(kern - ours)}")


# --------------------------------------------------------------------------
# Oracle 3: tcpdump itself reading the capture (tcpdump -r FILE -w OUT 'EXPR'), for what
# tcpdump compiles differently from a bare pcap_compile() with an unknown netmask

def tcpdump_read(path, expr, out):
    """1-based indexes of the frames `tcpdump -r path expr` keeps (write_pcap: ts_sec = base + i)"""
    subprocess.run(["tcpdump", "-r", str(path), "-w", str(out), "--", expr], capture_output=True,
                   check=True)
    return {1 + ts - 1700000000 for _, ts in pcap_times(out)}


def pcap_times(path):
    b = Path(path).read_bytes()
    off, out = 24, []
    while off + 16 <= len(b):
        ts, _, caplen, _ = struct.unpack("<IIII", b[off:off + 16])
        out.append((off, ts))
        off += 16 + caplen
    return out


@need_tcpdump
@pytest.mark.parametrize("expr", ["ip broadcast",
                                  pytest.param("ip broadcast or ip6 multicast", marks=pytest.mark.variant),
                                  pytest.param("not ip broadcast and udp", marks=pytest.mark.variant)])
@pytest.mark.parametrize("tc", [False, pytest.param(True, marks=pytest.mark.variant)], ids=["xdp", "tc"])
def test_matches_tcpdump_read(captures, workdir, expr, tc):
    """tcpdump -r compiles with netmask 0, so it accepts `ip broadcast` (destination 0.0.0.0 or
    255.255.255.255): filter run takes every expression tcpdump -r takes, with its verdicts."""
    syn = captures[0]
    want = tcpdump_read(syn.path, expr, workdir / "tcpdump-out.pcap")
    assert want, f"{expr!r}: the synthetic frames should match it"
    doc = run_filter(syn, expr, tc=tc)
    assert set(doc["matches"]) == want - set(doc["skipped_packets"])


# --------------------------------------------------------------------------
# Long programs

def test_long_program_needs_long_jumps(captures, oracle):
    # within the 2,047-byte limit, terms that expand to many instructions: cBPF long jumps (ja).
    # eBPF jumps beyond 16 bits (gotol) need longer programs than an expression of that size
    # makes: tests/unit/test_translate.c test_long_jumps has them.
    expr = " or ".join([f"ether[{i}]={(i * 7 + 3) % 256}" for i in range(30)] +
                       [f"host 198.18.{i // 250}.{i % 250 + 1}" for i in range(75)])
    assert len(expr) <= 2047
    doc = json.loads(pktlens("-j", "filter", "compile", expr, check_rc=0).stdout)
    assert any(c["code"] == 0x05 and c["k"] > 255 for c in doc["cbpf"])
    for cap in captures:
        r = subprocess.run([str(oracle), str(cap.path)], input=expr + "\n", capture_output=True,
                           text=True, check=True)
        line = r.stdout.splitlines()[2]
        assert line.startswith("OK")
        runts = {i for i, c in enumerate(cap.caplens, 1) if c < ETH_MIN}
        want = {int(x) for x in line.split()[1:]} - runts
        assert want and len(want) < len(cap.caplens) - len(runts)
        assert set(run_filter(cap, expr)["matches"]) == want


@pytest.mark.parametrize("tc", [[], pytest.param(["--tc"], marks=pytest.mark.variant)])
def test_many_protochains_fit(tc):
    """Unrolled loops pass the verifier, on tc also in the copy for tags in skb metadata."""
    expr = "ip6 protochain 6 or ip6 protochain 17 or ip protochain 6"
    doc = json.loads(pktlens("-j", "filter", "compile", *tc, expr, check_rc=0).stdout)
    assert doc["verifier_ok"]


# --------------------------------------------------------------------------
# compile output

@need_tcpdump
@pytest.mark.parametrize("expr", ["tcp port 443", "vlan and ip6", "ip6 protochain 6", HOSTS20])
def test_compile_d_and_dd_match_tcpdump(expr):
    for flag in ("-d", "-dd", "-ddd"):
        ours = pktlens("filter", "compile", flag, expr, check_rc=0).stdout.split("\n\n")[0]
        theirs = subprocess.run(["tcpdump", flag, expr], capture_output=True, text=True, check=True).stdout
        assert ours.strip("\n") == theirs.strip("\n"), flag


def test_compile_plain():
    out = pktlens("filter", "compile", "tcp port 443", check_rc=0).stdout
    assert "(000) ldh      [12]" in out
    assert "eBPF for xdp:" in out and "call bpf_xdp_load_bytes" in out
    assert "verifier: accepted (xdp program" in out
    out = pktlens("filter", "compile", "--tc", "tcp port 443", check_rc=0).stdout
    assert "eBPF for tc:" in out and "bpf_skb_load_bytes" in out


def test_compile_json():
    doc = json.loads(pktlens("-j", "filter", "compile", "tcp port 443", check_rc=0).stdout)
    assert doc["expression"] == "tcp port 443"
    assert doc["cbpf"][0] == {"code": 0x28, "jt": 0, "jf": 0, "k": 12}
    assert doc["ebpf_insns"] == len(doc["ebpf"]) > len(doc["cbpf"])
    assert doc["verifier_ok"] is True and doc["ctx"] == "xdp"


def test_compile_json_reports_rejection():
    """-j gives the verifier's real verdict: a program it refuses (more unrolled protochain
    loops than its budget of a million processed instructions) is one document with
    verifier_ok false, the kernel's error and the log's tail, and exit code 1."""
    expr = " or ".join(f"ip6 protochain {p}" for p in range(1, 33))
    r = pktlens("-j", "filter", "compile", expr, check_rc=1)
    doc = json.loads(r.stdout)
    assert doc["verifier_ok"] is False and doc["expression"] == expr
    assert doc["ebpf_insns"] == len(doc["ebpf"]) < 1000000     # the translation itself fits
    assert "processed" in doc["verifier_log"].splitlines()[-1]  # the verifier's own summary
    assert doc["verifier_error"] and doc["verifier_error"] in doc["error"]
    assert r.stderr == f"pktlens: {doc['error']}\n"


def test_run_plain_and_count(captures):
    syn = captures[0]
    expr = "tcp port 443"
    doc = run_filter(syn, expr)
    plain = pktlens("filter", "run", "-r", str(syn.path), expr, check_rc=0).stdout.split()
    assert [int(x) for x in plain] == doc["matches"]
    count = pktlens("filter", "run", "--count", "-r", str(syn.path), expr, check_rc=0).stdout
    assert count == f"{doc['count']}\n"
    # options after the expression, expression in several words (like tcpdump)
    again = pktlens("filter", "run", "tcp", "port", "443", "-r", str(syn.path), check_rc=0).stdout.split()
    assert again == plain


def test_run_reports_skipped_runts(captures):
    syn = captures[0]
    r = pktlens("filter", "run", "-r", str(syn.path), "", check_rc=0)
    runts = sum(1 for c in syn.caplens if c < ETH_MIN)
    assert f"{runts} of {len(syn.caplens)} packets skipped" in r.stderr
    assert len(r.stdout.split()) == len(syn.caplens) - runts


@pytest.mark.parametrize("tc", [False, True], ids=["xdp", "tc"])
def test_run_huge_frames_and_wire_lengths(workdir, oracle, tc):
    """Frames too large for BPF_PROG_TEST_RUN (XDP: over ~70 KiB, more pages than
    MAX_SKB_FRAGS) are skipped and counted like --tc's, never abort the run; `len` is the
    capture's wire length even above 64 KiB (libpcap matches `len > 65535` on it); `-r -`
    reads the capture from standard input, as tcpdump does."""
    from scapy.all import IP, UDP, Ether, Raw

    def udp(n):
        f = bytes(Ether() / IP(src="198.18.10.1", dst="198.18.10.2") / UDP(sport=1, dport=2))
        return f + b"x" * (n - len(f))

    frames = [(udp(100), 100), (udp(80000), 80000), (udp(100), 70000), (udp(200), 65535),
              (udp(75000), 75000), (udp(1500), 1500), (udp(100), 65536), (udp(100), 4000000)]
    path = workdir / f"huge-{tc}.pcap"
    write_pcap(path, frames)
    cap = Capture("huge", path, [f"huge#{i}" for i in range(1, len(frames) + 1)])
    exprs = ["len > 65535", "len > 1000", "len <= 100", "greater 70000", "udp", "len = 65535"]
    run_oracle(oracle, cap, exprs)
    assert cap.verdicts["len > 65535"] == {2, 3, 5, 7, 8}
    for expr in exprs:
        doc = run_filter(cap, expr, tc=tc)
        skipped = set(doc["skipped_packets"])
        assert {2, 5} <= skipped and (tc or skipped == {2, 5}) and not skipped & {1, 3, 4, 7, 8}
        assert set(doc["matches"]) == cap.verdicts[expr] - skipped, expr
    with open(path, "rb") as f:
        r = subprocess.run([str(PKTLENS), "filter", "run", "-r", "-"] + (["--tc"] if tc else []) +
                           ["len > 65535"], stdin=f, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert [int(x) for x in r.stdout.split()] == sorted(cap.verdicts["len > 65535"] - {2, 5})
    assert "2 of 8 packets skipped" in r.stderr


def test_xdp_reads_past_64k_are_skipped_never_a_wrong_verdict(workdir, oracle):
    """An XDP program cannot read past 64 KiB of a frame (bpf_xdp_load_bytes() takes offsets up
    to 65535): in a 66-70 KiB frame, an expression that reads a byte there, at a constant or an
    X-indexed offset, gets the frame skipped (it said no match where libpcap says match); reads
    up to 65535, `len`, and reads past the frame's end keep libpcap's verdict."""
    from scapy.all import IP, UDP, Ether, Raw

    frames = []
    for size in (66000, 70000, 68123):
        hdr = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                    IP(src="198.18.10.1", dst="198.18.10.2") / UDP(sport=7, dport=9))
        frames.append((hdr + b"\x07" * (size - len(hdr)), size))
    small = bytes(Ether() / IP(src="198.18.10.1", dst="198.18.10.2") / UDP(sport=7, dport=9) / Raw(b"\x07" * 60))
    frames.append((small, len(small)))
    path = workdir / "past64k.pcap"
    write_pcap(path, frames)
    cap = Capture("past64k", path, [f"past64k#{i}" for i in range(1, len(frames) + 1)])
    far = {"ether[65536] = 7": {1, 2, 3}, "not ether[65540] = 0": {1, 2, 3},
           "ether[67999] = 7": {2, 3}, "udp[65600:2] = 0x0707": {1, 2, 3},
           "ether[ether[23] * 3900 + 200] = 7": {2, 3}}   # [23] = 17 (UDP): at 66,500
    near = ["ether[65535] = 7", "ether[65534:4] = 0x07070707", "len > 66000", "udp port 9",
            "ether[70000] = 7", "not ether[70000] = 7", "ether[69999] = 7", "ether[200000] = 0"]
    run_oracle(oracle, cap, list(far) + near)
    for expr, skip in far.items():
        assert cap.verdicts[expr] >= skip, expr
        doc = run_filter(cap, expr)
        assert set(doc["skipped_packets"]) == skip and set(doc["matches"]) == cap.verdicts[expr] - skip, expr
    for expr in near:
        doc = run_filter(cap, expr)
        # (ether[69999] on the 68,123-byte frame: past its end, so no match, not skipped)
        assert set(doc["skipped_packets"]) == ({2} if expr == "ether[69999] = 7" else set()), expr
        assert set(doc["matches"]) == cap.verdicts[expr] - set(doc["skipped_packets"]), expr


# --------------------------------------------------------------------------
# CLI errors, exit codes, help

@pytest.mark.parametrize("args", [["filter", "--help"], ["filter", "compile", "--help"],
                                  ["filter", "run", "--help"], ["filter", "help"]])
def test_help(args):
    r = pktlens(*args, check_rc=0)
    assert r.stdout.startswith("Usage: pktlens filter compile") and not r.stderr


def test_main_help_lists_filter():
    out = pktlens("--help", check_rc=0).stdout
    assert "pktlens filter compile [--tc] [-d|-dd|-ddd] 'EXPR'" in out
    assert "pktlens filter run -r FILE.pcap" in out


@pytest.mark.parametrize("expr,why", [
    ("tcp port 99999", "illegal port number 99999 > 65535"),
    ("host nosuchhost.invalid", "unknown host 'nosuchhost.invalid'"),
    ("tcp and and", "syntax error"),
    ("port nosuchservice", "unknown port 'nosuchservice'"),
    ("ether[0] / 0 = 1", "division by zero"),
    ("net 198.18.0.1/8", "non-network bits set"),
    ("inbound", "not supported in-kernel"),
    ("ifindex 3", "not supported in-kernel"),
])
def test_bad_expression(captures, expr, why):
    for args in (["filter", "compile", expr], ["filter", "run", "-r", str(captures[0].path), expr]):
        r = pktlens(*args, check_rc=2)
        assert r.stdout == ""
        lines = r.stderr.strip().split("\n")
        assert len(lines) == 1 and lines[0].startswith("pktlens: filter ")
        assert why in lines[0] and f"'{expr}'" in lines[0]
    r = pktlens("-j", "filter", "compile", expr, check_rc=2)
    assert why in json.loads(r.stdout)["error"]


def test_unreadable_files(workdir):
    missing = workdir / "no-such.pcap"
    r = pktlens("filter", "run", "-r", str(missing), "tcp", check_rc=2)
    assert str(missing) in r.stderr and "No such file or directory" in r.stderr
    garbage = workdir / "garbage.pcap"
    garbage.write_bytes(b"this is not a capture file at all\n" * 4)
    r = pktlens("filter", "run", "-r", str(garbage), "tcp", check_rc=2)
    assert str(garbage) in r.stderr
    r = pktlens("filter", "run", "-r", str(workdir), "tcp", check_rc=2)
    assert str(workdir) in r.stderr
    raw = workdir / "raw-ip.pcap"
    write_pcap(raw, [(b"\x45" + b"\x00" * 39, 40)], linktype=101)
    r = pktlens("filter", "run", "-r", str(raw), "tcp", check_rc=2)
    assert "not Ethernet" in r.stderr and str(raw) in r.stderr
    # a capture cut in the middle of a record: the packets before it, then the error
    cut = workdir / "cut.pcap"
    write_pcap(cut, [(bytes(64), 64)] * 3)
    cut.write_bytes(cut.read_bytes()[:-20])
    r = pktlens("filter", "run", "-r", str(cut), "", check_rc=2)
    assert r.stdout.split() == ["1", "2"] and str(cut) in r.stderr


@pytest.mark.parametrize("args", [["filter"], ["filter", "frobnicate"], ["filter", "compile"],
                                  ["filter", "run", "tcp"], ["filter", "run", "-r"],
                                  ["filter", "compile", "--bogus", "tcp"]])
def test_usage_errors(args):
    r = pktlens(*args, check_rc=2)
    assert r.stderr and r.stdout == ""
