# SPDX-License-Identifier: GPL-2.0
"""`pktlens sample` as tcpdump users expect it (issue 21): in-kernel verdict,
rule and per-flow selection, capture on an interface pktlens has not
attached (and nothing left behind), file rotation, triggers.

Frames are built with scapy and sent from namespace a through the veth into
b, where the capture runs. Oracles: the frames sent (which a drop rule
drops is known from what was sent), tcpdump -r and tshark reading the files,
`tc filter`/`ip link`/bpffs for what is left attached or pinned.
"""
import glob
import json
import os
import signal
import subprocess
import time

from lab import PIN_ROOT, PKTLENS, netns_ino, pktlens, sh
from test_sample import Sampler, read_file, send_raw


def udp(sport, dport, payload=b"x" * 18, src="198.18.0.1", dst="198.18.0.2"):
    from scapy.all import IP, UDP, Ether, Raw
    return bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                 IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(payload))


def tcpdump_count(path, expr=""):
    out = sh("tcpdump", "-nn", "-r", path, *([expr] if expr else [])).stdout
    return len(out.splitlines())


def mixed():
    """40 frames: every 4th to UDP port 4444 (the drop rule's), the rest to 5555 or 6666."""
    return [udp(1000 + i, (4444, 5555, 6666, 5555)[i % 4], bytes([i]) * 20) for i in range(40)]


def test_verdict_and_rule_select_in_the_kernel(lab):
    """--verdict drop: exactly the dropped frames; --verdict pass: the rest; --rule N: its matches."""
    raw = mixed()
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    pktlens("policy", "add", "vb", "--in", "--id", 7, "--proto", "udp", "--dport", 4444, "--drop",
            ns=lab.b)
    pktlens("policy", "add", "vb", "--in", "--id", 8, "--proto", "udp", "--dport", 6666, "--pass",
            ns=lab.b)
    sent = 0

    def run(name, *args):
        nonlocal sent
        path = os.path.join(lab.tmp, f"{name}.pcap")
        s = Sampler(lab, "-w", path, *args)
        try:
            send_raw(lab, raw)
            sent += len(raw)
            lab.wait_packets(sent)
        finally:
            assert s.stop() == 0, s.err
        return path, [g[0] for g in read_file(path)], s.counts()

    dropped = [r for r in raw if r[36:38] == (4444).to_bytes(2, "big")]
    path, got, c = run("drop", "--verdict", "drop")
    assert got == dropped and len(dropped) == 10
    # what was not wanted was never selected, so never copied
    assert c["matched"] == 10 and tcpdump_count(path, "udp dst port 4444") == 10
    _, got, c = run("pass", "--verdict", "pass", "--verdict", "redirect")
    assert got == [r for r in raw if r not in dropped] and c["matched"] == 30
    _, got, c = run("r8", "--rule", 8)
    assert got == [r for r in raw if r[36:38] == (6666).to_bytes(2, "big")] and c["matched"] == 10
    _, got, c = run("r7", "--rule", 7, "--verdict", "pass")
    assert got == [] and c["matched"] == 0


def test_per_flow_takes_first_n_of_each_flow(lab):
    """100 flows of 10 packets, --per-flow 3: exactly 300 frames, the first 3 of each flow."""
    raw = [udp(2000 + f, 7000, bytes([f, k]) * 10) for k in range(10) for f in range(100)]
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    path = os.path.join(lab.tmp, "flows.pcap")
    s = Sampler(lab, "-w", path, "--per-flow", 3, "udp")
    try:
        send_raw(lab, raw)
        lab.wait_packets(len(raw))
    finally:
        assert s.stop() == 0, s.err
    got = [g[0] for g in read_file(path)]
    assert len(got) == 300 and tcpdump_count(path) == 300
    per = {}
    for g in got:
        per.setdefault(int.from_bytes(g[34:36], "big"), []).append(g)
    assert sorted(per) == list(range(2000, 2100))
    for f, pkts in per.items():
        assert pkts == [udp(f, 7000, bytes([f - 2000, k]) * 10) for k in range(3)]
    # a second sampler starts from nothing, not from the first one's counts
    s = Sampler(lab, "-w", path, "--per-flow", 1)
    try:
        send_raw(lab, raw[:100])
        lab.wait_packets(len(raw) + 100)
    finally:
        assert s.stop() == 0, s.err
    assert [g[0] for g in read_file(path)] == raw[:100]
