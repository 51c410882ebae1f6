# SPDX-License-Identifier: GPL-2.0
"""`pktlens sample`: packets captured in the kernel into pcap/pcapng files.

Scapy frames go from namespace a through the veth into b, where pktlens is
attached and `pktlens sample` captures. The file it writes is read back with
scapy, tcpdump and tshark and compared with the frames sent: exactly those
that match, byte-identical up to snaplen, with their wire length, in order.
With an expression, the expected set is what `tcpdump -r` of the sent frames
selects with the same expression.
"""
import json
import os
import re
import select
import signal
import struct
import subprocess
import time

import pytest

from lab import PIN_ROOT, PKTLENS, PYTHON, SENDRAW, netns_ino, pktlens, pktlens_json, sh

SUMMARY = re.compile(r"(\d+) matched, (\d+) sampled, (\d+) written, (\d+) lost \(ring full\)"
                     r"(?:, (\d+) not written)?")


def frames():
    """Frames of every kind the parser knows, plus truncated and jumbo ones."""
    from scapy.all import (ARP, ICMP, IP, TCP, UDP, Dot1AD, Dot1Q, Ether, ICMPv6EchoRequest,
                           IPOption_RR, IPv6, IPv6ExtHdrHopByHop, Raw)

    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    a, b = "198.18.0.1", "198.18.0.2"
    a6, b6 = "2001:db8::1", "2001:db8::2"
    out = [
        e / IP(src=a, dst=b) / UDP(sport=1000, dport=2000) / Raw(b"u" * 18),
        e / IP(src=a, dst=b) / TCP(sport=40000, dport=443, flags="S", options=[("MSS", 1460)]),
        e / IP(src=a, dst=b) / TCP(sport=40000, dport=443, flags="PA") / Raw(b"t" * 1460),
        e / IP(src=a, dst=b) / ICMP() / Raw(b"ping" * 8),
        e / ARP(psrc=a, pdst=b),
        e / IPv6(src=a6, dst=b6) / UDP(sport=1000, dport=53) / Raw(b"q" * 30),
        e / IPv6(src=a6, dst=b6) / ICMPv6EchoRequest(data=b"6" * 40),
        e / IPv6(src=a6, dst=b6) / IPv6ExtHdrHopByHop() / TCP(sport=5, dport=80, flags="S"),
        e / Dot1Q(vlan=10) / IP(src=a, dst=b) / UDP(sport=1000, dport=2000) / Raw(b"v" * 20),
        e / Dot1AD(vlan=20) / Dot1Q(vlan=30) / IP(src=a, dst=b) / UDP(sport=7, dport=9),
        e / IP(src=a, dst=b, flags="MF", frag=0) / UDP(sport=1, dport=2) / Raw(b"f" * 64),
        e / IP(src=a, dst=b, frag=9, proto=17) / Raw(b"g" * 40),
        e / IP(src=a, dst=b, options=[IPOption_RR()]) / UDP(sport=3, dport=4),
        e / IP(src=a, dst=b) / UDP(sport=1000, dport=2001) / Raw(b"j" * 8972),  # jumbo
    ]
    raw = [bytes(f) for f in out]
    raw.append(raw[0][:20])                                     # cut inside the IP header
    raw.append(bytes(e / IP(src=a, dst=b, len=1000) / UDP(sport=1000, dport=2000)))  # lies
    return raw


def write_pcap(path, raw):
    from scapy.all import Ether, wrpcap
    wrpcap(path, [Ether(r) for r in raw])


def read_file(path):
    """[(bytes, wirelen, time)] of a pcap or pcapng file, read by scapy."""
    from scapy.all import rdpcap
    return [(bytes(p), p.wirelen, p.time) for p in rdpcap(path)]


def tcpdump_select(lab, raw, expr):
    """The frames of `raw` that `tcpdump -r` selects with `expr`."""
    src = os.path.join(lab.tmp, "all.pcap")
    out = os.path.join(lab.tmp, "sel.pcap")
    write_pcap(src, raw)
    sh("tcpdump", "-r", src, "-w", out, expr)
    return [r[0] for r in read_file(out)]


def send_raw(lab, raw):
    """Send from one CPU: veth delivers on the sender's CPU, and 1-in-N counters are per CPU."""
    path = os.path.join(lab.tmp, f"send{time.monotonic_ns()}.pcap")
    write_pcap(path, raw)
    return int(sh("ip", "netns", "exec", lab.a, "taskset", "-c", "0", PYTHON, SENDRAW, "va",
                  path).stdout)


class Sampler:
    """`pktlens sample DEV ARGS` (vb unless told) in namespace b, running until stop()."""

    def __init__(self, lab, *args, ready=True, dev="vb"):
        self.p = subprocess.Popen([PKTLENS, "-n", lab.b, "sample", dev, *map(str, args)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.err = b""
        if ready:
            self.wait_for(b"capturing")

    def wait_for(self, what, timeout=20):
        deadline = time.time() + timeout
        while what not in self.err:
            left = deadline - time.time()
            assert left > 0 and self.p.poll() is None, f"sampler not ready: {self.err!r}"
            r, _, _ = select.select([self.p.stderr], [], [], left)
            if r:
                self.err += os.read(self.p.stderr.fileno(), 4096)

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        out, err = self.p.communicate(timeout=timeout)
        self.err += err
        self.out = out
        return self.p.returncode

    def counts(self):
        m = SUMMARY.search(self.err.decode())
        assert m, self.err
        return dict(matched=int(m[1]), sampled=int(m[2]), written=int(m[3]), lost=int(m[4]),
                    unwritten=int(m[5] or 0))


def capture(lab, raw, *args, hook=("xdp", "in")):
    """Start a sampler, send raw, wait until pktlens counted it, stop; (sampler, counts)."""
    s = Sampler(lab, *args)
    try:
        send_raw(lab, raw)
        lab.wait_packets(len(raw), hook=hook)
    finally:
        rc = s.stop()
    assert rc == 0, s.err
    return s, s.counts()


def attached_prog(lab):
    return json.loads(sh("ip", "-n", lab.b, "-j", "link", "show", "vb").stdout)[0].get("xdp")


def test_pcap_holds_every_frame_byte_identical(lab):
    raw = frames()
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    xdp_before = attached_prog(lab)
    path = os.path.join(lab.tmp, "all.pcap")
    s = Sampler(lab, "-w", path)
    assert attached_prog(lab) == xdp_before    # sampling adds no program to the interface
    send_raw(lab, raw)
    lab.wait_packets(len(raw))
    assert s.stop() == 0, s.err
    assert s.counts() == dict(matched=len(raw), sampled=len(raw), written=len(raw), lost=0,
                              unwritten=0)
    got = read_file(path)
    assert [g[0] for g in got] == raw
    assert [g[1] for g in got] == [len(r) for r in raw]
    times = [g[2] for g in got]
    assert times == sorted(times) and abs(float(times[0]) - time.time()) < 60
    # tcpdump and tshark read it too, nanosecond timestamps and all
    td = sh("tcpdump", "-nn", "-r", path, "--nano")
    assert len(td.stdout.splitlines()) == len(raw) and "nanosecond" not in td.stderr
    ts = sh("tshark", "-r", path, "-T", "fields", "-e", "frame.len", "-e", "frame.cap_len")
    assert [tuple(map(int, line.split())) for line in ts.stdout.splitlines()] == \
        [(len(r), len(r)) for r in raw]


def test_snaplen_cuts_and_keeps_wire_length(lab):
    raw = frames()
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    path = os.path.join(lab.tmp, "snap.pcap")
    _, c = capture(lab, raw, "-w", path, "--snaplen", 100)
    assert c["written"] == len(raw)
    got = read_file(path)
    assert [g[0] for g in got] == [r[:100] for r in raw]
    assert [g[1] for g in got] == [len(r) for r in raw]


@pytest.mark.parametrize("flag", ["-s", "--snaplen"])
def test_snaplen_0_keeps_whole_frames_as_tcpdump(lab, flag):
    """tcpdump's habit: -s 0 is the largest snaplen (262144), not an error."""
    raw = frames()
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    path = os.path.join(lab.tmp, "snap0.pcap")
    _, c = capture(lab, raw, "-w", path, flag, 0)
    assert c["written"] == len(raw)
    assert [g[0] for g in read_file(path)] == raw
    snap = sh("tshark", "-r", path, "-T", "fields", "-e", "frame.cap_len").stdout.split()
    assert [int(x) for x in snap] == [len(r) for r in raw]
    hdr = open(path, "rb").read(24)
    assert int.from_bytes(hdr[16:20], "little") == 262144     # the file header's snaplen


@pytest.mark.parametrize("expr", [
    "udp", "tcp[tcpflags] & tcp-syn != 0", "ip6", "vlan and udp", "greater 1000",
    "ip[6:2] & 0x3fff != 0", "arp or icmp6",
])
def test_expression_selects_what_tcpdump_selects(lab, expr):
    raw = frames()
    want = tcpdump_select(lab, raw, expr)
    assert 0 < len(want) < len(raw)
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    path = os.path.join(lab.tmp, "expr.pcap")
    _, c = capture(lab, raw, "-w", path, expr)
    assert [g[0] for g in read_file(path)] == want
    assert c["matched"] == c["written"] == len(want) and c["lost"] == 0


def test_tc_puts_metadata_vlan_tags_back(lab):
    """tc ingress sees the outer tag in skb metadata; the file must show it as on the wire."""
    raw = frames()
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    path = os.path.join(lab.tmp, "tc.pcapng")
    _, c = capture(lab, raw, "-w", path, "--in", hook=("tc", "in"))
    assert c["written"] == len(raw)
    got = read_file(path)
    assert [g[0] for g in got] == raw
    assert [g[1] for g in got] == [len(r) for r in raw]
    want = tcpdump_select(lab, raw, "vlan 10")
    _, c = capture(lab, raw, "-w", path, "vlan 10", hook=("tc", "in"))
    assert [g[0] for g in read_file(path)] == want and len(want) == 1


def test_pcapng_interfaces_direction_and_verdict(lab):
    """Ingress at XDP and egress at tc: one interface block per hook, direction, verdict."""
    from scapy.all import ICMP, IP, Ether
    sh("ip", "-n", lab.a, "addr", "add", "198.18.0.1/24", "dev", "va")
    sh("ip", "-n", lab.b, "addr", "add", "198.18.0.2/24", "dev", "vb")
    pktlens("attach", "vb", "--xdp", "native", "--tc", "out", ns=lab.b)
    path = os.path.join(lab.tmp, "ping.pcapng")
    s = Sampler(lab, "-w", path, "icmp")
    sh("ip", "netns", "exec", lab.a, "ping", "-c", "3", "-i", "0.2", "-W", "2", "198.18.0.2")
    assert s.stop() == 0, s.err
    assert s.counts()["written"] == 6
    sh("capinfos", path)
    out = sh("tshark", "-r", path, "-T", "fields", "-e", "frame.interface_name",
             "-e", "frame.packet_flags_direction", "-e", "frame.verdict.ebpf_xdp",
             "-e", "frame.verdict.ebpf_tc", "-e", "icmp.type").stdout.split("\n")
    rows = [line.split("\t") for line in out if line]
    assert rows == [["vb@xdp", "0x00000001", "2", "", "8"], ["vb@tc", "0x00000002", "", "-1", "0"]] * 3
    pkts = [Ether(r[0]) for r in read_file(path)]
    assert all(p.haslayer(IP) and p.haslayer(ICMP) for p in pkts)


@pytest.mark.variant    # the kernel's 1-in-N; the pcap writer runs in every other capture test
def test_every_tenth_of_ten_thousand(lab):
    from scapy.all import UDP, IP, Ether
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    raw = [bytes(e / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=1, dport=i % 50000 + 1))
           for i in range(10000)]
    path = os.path.join(lab.tmp, "every.pcap")
    s = Sampler(lab, "-w", path, "--every", 10, "udp")
    send_raw(lab, raw)
    lab.wait_packets(len(raw), timeout=30)
    assert s.stop() == 0, s.err
    c = s.counts()
    assert c["matched"] == 10000 and c["written"] == 1000 and c["lost"] == 0
    got = [g[0] for g in read_file(path)]
    assert len(got) == 1000 and set(got) <= set(raw)


@pytest.mark.parametrize("hooks", [pytest.param(["--xdp", "native", "--tc", "none"], marks=pytest.mark.variant),
                                   ["--xdp", "none", "--tc", "in"]],
                         ids=["xdp", "tc"])
def test_every_counts_from_the_captures_first_packet(lab, hooks):
    """--every N keeps the Nth, 2Nth, ... matching packet of this capture on a CPU: a sampler
    before it, which saw a number of packets that is no multiple of N, must not shift it."""
    from scapy.all import UDP, IP, Ether
    pktlens("attach", "vb", *hooks, ns=lab.b)
    hook = ("xdp", "in") if hooks[1] == "native" else ("tc", "in")
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    raw = [bytes(e / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=1, dport=1000 + i))
           for i in range(20)]
    path = os.path.join(lab.tmp, "every.pcap")
    sent = 0
    for n, want in ((3, 0), (4, 0), (6, 0), (7, 1), (20, 2)):
        s = Sampler(lab, "-w", path, "--every", 7, "udp")
        sent += send_raw(lab, raw[:n])
        lab.wait_packets(sent, hook=hook)     # the hook's count goes on across captures
        assert s.stop() == 0, s.err
        c = s.counts()
        assert (c["matched"], c["sampled"], c["written"]) == (n, want, want), (n, c)
        # the 7th and 14th of this capture's packets, no other
        assert [g[0] for g in read_file(path)] == raw[6:n:7]


def overflow_ring(lab, path, n):
    """Attach XDP, sample into a one-page ring whose reader is stopped while n numbered
    900-byte frames arrive, then let it go on and end it; (frames, counts). The snaplen
    keeps the largest record within the page (a ring that cannot hold one is refused)."""
    from scapy.all import UDP, IP, Ether, Raw
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    raw = [bytes(e / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=1, dport=2) /
                 Raw(b"%04d" % i + b"x" * 900)) for i in range(n)]
    s = Sampler(lab, "-w", path, "-B", 4, "-s", 1024)
    s.p.send_signal(signal.SIGSTOP)
    try:
        send_raw(lab, raw)
        lab.wait_packets(len(raw))
    finally:
        s.p.send_signal(signal.SIGCONT)
    assert s.stop() == 0, s.err
    return raw, s.counts()


def test_ring_overflow_is_counted(lab):
    """A stopped reader and a one-page ring: lost == matched - written, all reported."""
    path = os.path.join(lab.tmp, "ring.pcap")
    raw, c = overflow_ring(lab, path, 60)
    assert c["matched"] == c["sampled"] == 60
    assert c["lost"] > 0 and c["written"] > 0 and c["lost"] == c["matched"] - c["written"]
    got = [g[0] for g in read_file(path)]
    assert len(got) == c["written"] and got == raw[:len(got)]   # the first ones, in order


def test_count_stdout_and_lines(lab):
    """-c N stops after N; -w - feeds tcpdump -r -; no -w prints tcpdump-like lines."""
    raw = frames()
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    s, c = capture(lab, raw, "-c", 3)
    assert c["written"] == 3 and c["unwritten"] == c["sampled"] - 3
    lines = s.out.decode().splitlines()
    assert len(lines) == 3
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{9} vb@xdp In pass IP 198\.18\.0\.1\.1000 > "
                        r"198\.18\.0\.2\.2000: udp, length 60", lines[0]), lines[0]
    assert "tcp [S]" in lines[1] and lines[2].endswith("length 1514")
    # JSON lines
    s = Sampler(lab, "-j", "-c", 2, ready=False)
    time.sleep(1.5)
    send_raw(lab, raw[:2])
    assert s.stop(sig=0, timeout=20) == 0, s.err
    docs = [json.loads(line) for line in s.out.decode().splitlines()]
    assert docs[0]["src"] == "198.18.0.1" and docs[0]["dport"] == 2000 and docs[0]["len"] == 60
    assert docs[1]["proto"] == 6 and docs[-1]["written"] == 2 and docs[-1]["lost"] == 0
    # -w - into tcpdump
    p = subprocess.Popen([PKTLENS, "-n", lab.b, "sample", "vb", "-w", "-", "-c", str(len(raw))],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    td = subprocess.Popen(["tcpdump", "-nn", "-r", "-"], stdin=p.stdout, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    p.stdout.close()
    time.sleep(1.5)
    send_raw(lab, raw)
    out, _ = td.communicate(timeout=30)
    assert p.wait(timeout=10) == 0
    assert len(out.splitlines()) == len(raw)


def test_json_lines_give_icmp_type_and_code_not_ports(lab):
    """-j lines: ICMP and ICMPv6 have no ports; their type and code are named icmp_type and
    icmp_code, as flows -j names them (they came out as "sport" and "dport")."""
    from scapy.all import ICMP, IP, UDP, Ether, ICMPv6EchoRequest, IPv6
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    raw = [bytes(e / IP(src="198.18.0.1", dst="198.18.0.2") / ICMP(type=3, code=13)),
           bytes(e / IPv6(src="2001:db8::1", dst="2001:db8::2") / ICMPv6EchoRequest()),
           bytes(e / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=1234, dport=53))]
    s = Sampler(lab, "-j", "-c", len(raw), ready=False)
    time.sleep(1.5)
    send_raw(lab, raw)
    assert s.stop(sig=0, timeout=20) == 0, s.err
    docs = [json.loads(line) for line in s.out.decode().splitlines()][:-1]
    assert [(d["proto"], d.get("icmp_type"), d.get("icmp_code")) for d in docs[:2]] == \
        [(1, 3, 13), (58, 128, 0)], docs
    assert all("sport" not in d and "dport" not in d for d in docs[:2]), docs
    assert (docs[2]["sport"], docs[2]["dport"]) == (1234, 53) and "icmp_type" not in docs[2]


@pytest.mark.variant     # the dissector's cut cases: tests/unit/test_sample.c, under ASan too
@pytest.mark.parametrize("snaplen", [13, 16])
def test_lines_of_frames_cut_before_their_ethertype_give_none(lab, snaplen):
    """A snap length that cuts the Ethernet header (or the VLAN tag) leaves no ethertype to
    tell: -j gives null, the line says [|ether] or [|vlan], as tcpdump marks a cut header
    (it said "ethertype 0x0000"); from 14 bytes on, an untagged frame's ethertype is there."""
    from scapy.all import IP, UDP, Dot1Q, Ether
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    raw = [bytes(e / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=1234, dport=53)),
           bytes(e / Dot1Q(vlan=7) / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=1234, dport=53))]
    for args, parse in ((["-j"], lambda out: [json.loads(x) for x in out.splitlines()][:-1]),
                        ([], lambda out: out.splitlines())):
        s = Sampler(lab, *args, "-s", snaplen, "-c", len(raw), ready=False)
        time.sleep(1.5)
        send_raw(lab, raw)
        assert s.stop(sig=0, timeout=20) == 0, s.err
        got = parse(s.out.decode())
        assert len(got) == 2, got
        if args:
            assert [d["caplen"] for d in got] == [min(snaplen, len(r)) for r in raw]
            assert got[0]["ethertype"] == (None if snaplen < 14 else 0x0800), got
            assert got[1]["ethertype"] == (None if snaplen < 18 else 0x0800), got
        else:
            assert " pass %s, length 42" % ("[|ether]" if snaplen < 14 else "IP, truncated or malformed") \
                in got[0], got
            assert " pass %s, length 46" % ("[|ether]" if snaplen < 14 else "[|vlan]") in got[1], got


def test_policy_sample_rules_feed_the_ring(lab):
    from scapy.all import UDP, TCP, IP, Ether
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    pktlens("policy", "add", "vb", "--id", 7, "--proto", "udp", "--sample", "1/2", ns=lab.b)
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    ip = IP(src="198.18.0.1", dst="198.18.0.2")
    raw = [bytes(e / ip / UDP(sport=1, dport=i + 1)) for i in range(10)] + \
          [bytes(e / ip / TCP(sport=1, dport=i + 1)) for i in range(5)]
    path = os.path.join(lab.tmp, "rules.pcapng")
    _, c = capture(lab, raw, "-w", path, "--policy")
    assert c["written"] == 5 and c["lost"] == 0
    assert [g[0] for g in read_file(path)] == raw[1:10:2]     # every 2nd hit of rule 7
    comments = sh("tshark", "-r", path, "-T", "fields", "-e", "frame.comment").stdout.split()
    assert comments.count("7") == 5 or sh("tshark", "-r", path, "-V").stdout.count(
        "pktlens rule 7") == 5
    rule = pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"][0]
    assert rule["id"] == 7 and rule["packets"] == 10


@pytest.mark.parametrize("args,msg", [
    (["--snaplen", "-1"], "--snaplen '-1'"),
    (["--snaplen", "262145"], "--snaplen '262145'"),
    (["--every", "0"], "--every '0'"),
    (["--every", "ten"], "--every 'ten'"),
    (["-B", "1"], "--buffer-size '1'"),
    (["-c", "0"], "-c '0'"),
    (["tcp port"], "expression 'tcp port'"),
    (["host", "no-such-host.invalid"], "expression 'host no-such-host.invalid'"),
    (["inbound"], "not supported in-kernel"),
    (["--policy", "udp"], "--policy"),
    (["-w", "/nonexistent-dir/x.pcap"], "cannot write '/nonexistent-dir/x.pcap'"),
    # a file whose directory takes no new file, though access() says root may write it
    (["-w", "/proc/version"], "cannot write '/proc/version': /proc: no file can be made there"),
    (["-w", "/sys/kernel/x.pcap"], "cannot write '/sys/kernel/x.pcap': /sys/kernel: no file"),
])
def test_bad_input_exits_2_and_leaves_nothing(lab, args, msg):
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    path = os.path.join(lab.tmp, "bad.pcap")
    w = [] if "-w" in args else ["-w", path]
    r = pktlens("sample", "vb", *w, *args, ns=lab.b, check=False)
    assert r.returncode == 2, r.stderr
    assert msg in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert not os.path.exists(path)
    # nothing left behind: a sampler starts and captures as before
    raw = frames()[:3]
    _, c = capture(lab, raw, "-w", path)
    assert c["written"] == 3


def test_interface_without_ethernet_header_is_refused(lab):
    """A tun device's frames start at the IP header: written as LINKTYPE_ETHERNET they are
    garbage to tcpdump (which writes LINKTYPE_RAW there), and parsed as Ethernet the flows
    would be, so attach and sample refuse it, exit 2, one line, before anything is created
    or attached."""
    sh("ip", "-n", lab.b, "tuntap", "add", "mode", "tun", "name", "tn0")
    sh("ip", "-n", lab.b, "link", "set", "tn0", "up")
    why = "tn0: not an Ethernet interface (ARPHRD 65534: no link-layer header, as tun and wireguard)"
    for args in ([], ["--xdp", "skb", "--tc", "none"], ["--tc", "in"]):
        r = pktlens("attach", "tn0", *args, ns=lab.b, check=False)
        assert (r.returncode, r.stdout, r.stderr) == \
            (2, "", f"pktlens: attach: {why}: pktlens analyses Ethernet frames only\n"), r
    assert not os.path.exists(os.path.join(PIN_ROOT, str(netns_ino(lab.b)), "tn0"))
    path = os.path.join(lab.tmp, "tun.pcap")
    r = pktlens("sample", "tn0", "-w", path, "--duration", 1, ns=lab.b, check=False, timeout=20)
    assert r.returncode == 2, r.stderr
    assert r.stderr == f"pktlens: sample: {why}: pktlens captures Ethernet frames only\n"
    assert not os.path.exists(path) and os.listdir(lab.tmp) == []
    tc = sh("tc", "-n", lab.b, "filter", "show", "dev", "tn0", "ingress").stdout
    net = sh("ip", "netns", "exec", lab.b, "bpftool", "net", "show").stdout
    assert "pl_" not in tc and "pl_cap" not in net and "pktlens" not in net
    # an Ethernet interface still samples
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    _, c = capture(lab, frames()[:3], "-w", path)
    assert c["written"] == 3 and [g[0] for g in read_file(path)] == frames()[:3]


def test_pcapng_without_a_file_is_refused(lab):
    """--pcapng chooses the file format: without -w there is no file (one line per packet), so
    it is refused (exit 2, one line) rather than ignored; with -w - pcapng goes to stdout."""
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    r = pktlens("sample", "vb", "--pcapng", "--duration", 1, ns=lab.b, check=False)
    assert r.returncode == 2 and r.stdout == "", r
    assert r.stderr.strip().splitlines() == [
        "pktlens: sample: --pcapng: needs -w FILE or -w - (without -w: one line per packet)"], r
    s = Sampler(lab, "-w", "-", "--pcapng", "-c", 3)
    send_raw(lab, frames()[:3])
    assert s.stop(sig=0, timeout=20) == 0, s.err
    assert s.out[:4] == struct.pack("<I", 0x0A0D0D0A)   # a pcapng section header block


def test_one_sampler_per_interface_and_recovery_after_kill(lab):
    raw = frames()[:4]
    # not attached: a capture-only program of its own (tests/test_capture.py has more)
    r = pktlens("sample", "vb", "--duration", 1, ns=lab.b, check=False)
    assert r.returncode == 0 and "vb: not attached: attached the capture-only" in r.stderr
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    first = Sampler(lab, "-w", os.path.join(lab.tmp, "1.pcap"), "udp")
    r = pktlens("sample", "vb", ns=lab.b, check=False)
    assert r.returncode == 1 and f"pid {first.p.pid}" in r.stderr, r.stderr
    first.stop(sig=signal.SIGKILL)
    # the kernel released the lock; the next sampler clears what the dead one left
    path = os.path.join(lab.tmp, "2.pcap")
    _, c = capture(lab, raw, "-w", path)
    assert c["written"] == len(raw) and [g[0] for g in read_file(path)] == raw
