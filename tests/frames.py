# SPDX-License-Identifier: GPL-2.0
"""The mixed traffic used by the counting tests, with what each frame must count as."""
from scapy.all import (ARP, Dot1AD, Dot1Q, Ether, ICMP, ICMPv6EchoRequest, IP, IPOption_RR, IPv6,
                       IPv6ExtHdrFragment, IPv6ExtHdrHopByHop, Raw, TCP, UDP, fragment)

from model import Case

A4, B4 = "198.18.0.1", "198.18.0.2"
A6, B6 = "2001:db8::1", "2001:db8::2"


def mixed(src="02:00:00:00:00:01", dst="02:00:00:00:00:02"):
    E = lambda **kw: Ether(src=src, dst=dst, **kw)  # noqa: E731
    cases = []

    def add(frame, l3, l4, flow, **kw):
        cases.append(Case(frame, l3, l4, flow, **kw))

    # IPv4/UDP across every size bucket, including jumbo frames
    for payload in (10, 10, 10, 60, 100, 300, 600, 1200, 1472, 8000, 9400):
        add(E() / IP(src=A4, dst=B4) / UDP(sport=1000, dport=53) / Raw(b"u" * payload),
            "ipv4", "udp", ("ipv4", "udp", A4, B4, 1000, 53, None))
    # TCP handshake-ish: flags OR'ed into the flow
    add(E() / IP(src=A4, dst=B4) / TCP(sport=40000, dport=443, flags="S"),
        "ipv4", "tcp", ("ipv4", "tcp", A4, B4, 40000, 443, None), flags="S")
    add(E() / IP(src=A4, dst=B4) / TCP(sport=40000, dport=443, flags="PA") / Raw(b"GET /"),
        "ipv4", "tcp", ("ipv4", "tcp", A4, B4, 40000, 443, None), flags="P.")
    # IPv4 options
    add(E() / IP(src=A4, dst=B4, options=[IPOption_RR()]) / UDP(sport=2000, dport=2001),
        "ipv4", "udp", ("ipv4", "udp", A4, B4, 2000, 2001, None), opts=True)
    # ICMP echo: type/code in place of ports
    for _ in range(2):
        add(E() / IP(src=A4, dst=B4) / ICMP(type=8, code=0) / Raw(b"p" * 56),
            "ipv4", "icmp", ("ipv4", "icmp", A4, B4, 8, 0, None))
    # IPv6 with a hop-by-hop extension header, plain IPv6/UDP, ICMPv6
    add(E() / IPv6(src=A6, dst=B6) / IPv6ExtHdrHopByHop() / TCP(sport=5555, dport=80, flags="S"),
        "ipv6", "tcp", ("ipv6", "tcp", A6, B6, 5555, 80, None), opts=True, flags="S")
    add(E() / IPv6(src=A6, dst=B6) / UDP(sport=7, dport=8) / Raw(b"v6"),
        "ipv6", "udp", ("ipv6", "udp", A6, B6, 7, 8, None))
    add(E() / IPv6(src=A6, dst=B6) / ICMPv6EchoRequest(),
        "ipv6", "icmpv6", ("ipv6", "icmpv6", A6, B6, 128, 0, None))
    # single VLAN and QinQ (the flow carries the outer VLAN id)
    for _ in range(2):
        add(E() / Dot1Q(vlan=100) / IP(src=A4, dst=B4) / UDP(sport=3000, dport=3001),
            "ipv4", "udp", ("ipv4", "udp", A4, B4, 3000, 3001, 100), vlans=1)
    add(E() / Dot1AD(vlan=200) / Dot1Q(vlan=300) / IP(src=A4, dst=B4) / UDP(sport=3002, dport=3003),
        "ipv4", "udp", ("ipv4", "udp", A4, B4, 3002, 3003, 200), vlans=2)
    # IPv4 fragments: only the first carries ports
    frags = fragment(IP(src=A4, dst=B4, id=77) / UDP(sport=4000, dport=4001) / Raw(b"f" * 2500),
                     fragsize=1000)
    for i, fr in enumerate(frags):
        ports = (4000, 4001) if i == 0 else (0, 0)
        add(E() / fr, "ipv4", "udp", ("ipv4", "udp", A4, B4) + ports + (None,), frag=True)
    # ICMP fragments: the later ones have no type and code (null), not Echo Reply's 0/0, which a
    # real reply to the same address has
    frags = fragment(IP(src=A4, dst=B4, id=78) / ICMP(type=8, code=0) / Raw(b"i" * 1800), fragsize=800)
    for i, fr in enumerate(frags):
        tc = (8, 0) if i == 0 else (None, None)
        add(E() / fr, "ipv4", "icmp", ("ipv4", "icmp", A4, B4) + tc + (None,), frag=True)
    add(E() / IP(src=A4, dst=B4) / ICMP(type=0, code=0) / Raw(b"r" * 40),
        "ipv4", "icmp", ("ipv4", "icmp", A4, B4, 0, 0, None))
    add(E() / IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(id=10, offset=20, m=0, nh=58) / Raw(b"h" * 40),
        "ipv6", "icmpv6", ("ipv6", "icmpv6", A6, B6, None, None, None), frag=True, opts=True)
    # IPv6 fragments
    add(E() / IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(id=9, offset=0, m=1) /
        UDP(sport=4002, dport=4003) / Raw(b"g" * 64),
        "ipv6", "udp", ("ipv6", "udp", A6, B6, 4002, 4003, None), frag=True, opts=True)
    add(E() / IPv6(src=A6, dst=B6) / IPv6ExtHdrFragment(id=9, offset=9, m=0, nh=17) / Raw(b"g" * 32),
        "ipv6", "udp", ("ipv6", "udp", A6, B6, 0, 0, None), frag=True, opts=True)
    # truncated IPv4 header, garbage IPv4 header, truncated TCP header
    add(E(type=0x0800) / Raw(b"\x45\x00\x00\x30" + b"\x00" * 6),
        "ipv4", "none", ("ipv4", "0", "0.0.0.0", "0.0.0.0", 0, 0, None), err="truncated")
    add(E(type=0x0800) / Raw(b"\x55" + b"\x00" * 27),
        "ipv4", "none", ("ipv4", "0", "0.0.0.0", "0.0.0.0", 0, 0, None), err="malformed")
    add(E() / IP(src=A4, dst=B4, proto=6) / Raw(b"\x00" * 10),
        "ipv4", "tcp", ("ipv4", "tcp", A4, B4, 0, 0, None), err="truncated")
    # TCP data offsets that cannot be (tcpdump: "bad hdr length"): below 5 words, past the IP
    # length; a parse error, but the addresses, ports and flags count
    add(E() / IP(src=A4, dst=B4) / TCP(sport=40001, dport=80, flags="S", dataofs=4),
        "ipv4", "tcp", ("ipv4", "tcp", A4, B4, 40001, 80, None), flags="S", err="bad-l4")
    add(E() / IP(src=A4, dst=B4) / TCP(sport=40002, dport=80, flags="A", dataofs=15) / Raw(b"d" * 30),
        "ipv4", "tcp", ("ipv4", "tcp", A4, B4, 40002, 80, None), flags=".", err="bad-l4")
    add(E() / IPv6(src=A6, dst=B6) / TCP(sport=40003, dport=80, flags="S", dataofs=0) / Raw(b"d" * 8),
        "ipv6", "tcp", ("ipv6", "tcp", A6, B6, 40003, 80, None), flags="S", err="bad-l4")
    add(E() / IPv6(src=A6, dst=B6) / TCP(sport=40004, dport=80, flags="A", dataofs=9) / Raw(b"d" * 15),
        "ipv6", "tcp", ("ipv6", "tcp", A6, B6, 40004, 80, None), flags=".", err="bad-l4")
    # an IPv4 total length below the header's (tcpdump: "bad-len"): a parse error, the
    # addresses and ports count; 0 is a TSO/BIG TCP packet's, no error
    add(E() / IP(src=A4, dst=B4, len=19) / UDP(sport=40006, dport=53) / Raw(b"u" * 8),
        "ipv4", "udp", ("ipv4", "udp", A4, B4, 40006, 53, None), err="bad-l4")
    add(E() / IP(src=A4, dst=B4, len=0) / UDP(sport=40007, dport=53) / Raw(b"u" * 8),
        "ipv4", "udp", ("ipv4", "udp", A4, B4, 40007, 53, None))
    # a data offset that fits: options (12 bytes) and data
    add(E() / IPv6(src=A6, dst=B6) / TCP(sport=40005, dport=80, flags="A", dataofs=8) / Raw(b"d" * 12),
        "ipv6", "tcp", ("ipv6", "tcp", A6, B6, 40005, 80, None), flags=".")
    # ARP and another ethertype (LLDP): one flow per ethertype
    add(E() / ARP(psrc=A4, pdst=B4), "arp", "none", ("arp", None, None, None, None, None, None))
    add(E(type=0x88CC) / Raw(b"\x02\x07\x04" + b"\x00" * 40),
        "other", "none", ("0x88cc", None, None, None, None, None, None))
    return cases
