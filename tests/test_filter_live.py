# SPDX-License-Identifier: GPL-2.0
"""`pktlens filter set|clear`: a tcpdump expression chained into the attached XDP and tc
programs (PROG_ARRAY tail call), counting exactly the packets libpcap matches.

The oracle is tcpdump itself: `tcpdump -r sent.pcap -w matched.pcap EXPR` over the frames
the test sends, so the expected counts come from libpcap, not from this code.
"""
import json
import os
import subprocess
import time

import pytest

from frames import mixed
from lab import PIN_ROOT, PKTLENS, SENDRAW, netns_ino, pktlens, pktlens_json, sh, slot

EXPRESSIONS = [
    "udp",
    "tcp port 443",
    "ip6",
    "icmp or (ip6 and ip6[6] = 58)",
    "len > 1000",
    "ip[6:2] & 0x3fff != 0",          # IPv4 fragments
    "ip and udp[8:2] = 0x7575",       # payload bytes ("uu")
    "not ip and not ip6",
]


def libpcap_matches(lab, frames, expr):
    """(count, bytes) of the frames libpcap's filter accepts, through tcpdump."""
    from scapy.all import rdpcap, wrpcap

    src = os.path.join(lab.tmp, "sent.pcap")
    dst = os.path.join(lab.tmp, "matched.pcap")
    wrpcap(src, frames)
    sh("tcpdump", "-r", src, "-w", dst, expr)
    got = rdpcap(dst) if os.path.getsize(dst) > 24 else []
    return len(got), sum(len(bytes(p)) for p in got)


def hooks_args(kind):
    return {
        "xdp-skb": ["--xdp", "skb", "--tc", "none"],
        "xdp-native": ["--xdp", "native", "--tc", "none"],
        "tc-tcx": ["--xdp", "none", "--tc", "in", "--tc-mech", "tcx"],
        "tc-clsact": ["--xdp", "none", "--tc", "in", "--tc-mech", "clsact"],
    }[kind]


def ingress(kind):
    return ("xdp", "in") if kind.startswith("xdp") else ("tc", "in")


@pytest.mark.variant    # the in-kernel verdict; test_filter.py runs the translator
@pytest.mark.parametrize("kind", ["xdp-skb", "xdp-native", "tc-tcx", "tc-clsact"])
def test_live_matches_equal_libpcap(lab, kind):
    """Each expression, swapped in after the previous one, counts exactly libpcap's matches;
    the counters add up across swaps and every packet is still counted once."""
    pktlens("attach", "vb", *hooks_args(kind), ns=lab.b)
    frames = [c.frame for c in mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"))]
    assert any(f.type in (0x8100, 0x88a8) for f in frames)   # tc ingress: tags in metadata
    hook = ingress(kind)
    total = matched = matched_bytes = 0
    for n, expr in enumerate(EXPRESSIONS):
        r = pktlens("filter", "set", "vb", expr, ns=lab.b)
        want = f"vb: filter '{expr}' chained on {hook[0]} in"
        if n:
            want += f" (replaced '{EXPRESSIONS[n - 1]}')"
        assert r.stdout == want + "\n"
        exp_pkts, exp_bytes = libpcap_matches(lab, frames, expr)
        assert exp_pkts > 0, f"{expr!r}: the test frames should match it"
        total += lab.send(frames)
        doc = lab.wait_packets(total, hook=hook)
        s = slot(doc, *hook)
        assert s["packets"] == total
        matched += exp_pkts
        matched_bytes += exp_bytes
        assert (s["filter_packets"], s["filter_bytes"]) == (matched, matched_bytes), expr
        assert doc["interfaces"][0]["filter"] == expr
    r = pktlens("filter", "clear", "vb", ns=lab.b)
    assert r.stdout == f"vb: filter '{EXPRESSIONS[-1]}' removed\n"
    total += lab.send(frames)
    doc = lab.wait_packets(total, hook=hook)
    s = slot(doc, *hook)
    assert s["packets"] == total and s["filter_packets"] == matched
    assert doc["interfaces"][0]["filter"] is None
    assert pktlens("filter", "clear", "vb", ns=lab.b).stdout == "vb: no filter was set\n"


def test_all_hooks_at_once(lab):
    """XDP and tc ingress judge the same frames alike; tc egress sees only what the host sends."""
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "in,out", ns=lab.b)
    r = pktlens_json("filter", "set", "vb", "udp and dst port 53", ns=lab.b)
    assert r == {"interface": "vb", "expression": "udp and dst port 53", "previous": None,
                 "hooks": ["xdp in", "tc in", "tc out"]}
    frames = [c.frame for c in mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"))]
    exp = libpcap_matches(lab, frames, "udp and dst port 53")
    sent = lab.send(frames)
    doc = lab.wait_packets(sent, hook=("tc", "in"))
    for hook in (("xdp", "in"), ("tc", "in")):
        s = slot(doc, *hook)
        assert s["packets"] == sent
        assert (s["filter_packets"], s["filter_bytes"]) == exp
    assert slot(doc, "tc", "out")["filter_packets"] == 0


@pytest.mark.parametrize("expr", ["vlan 100", "vlan and udp", "udp", "ether[12:2] = 0x8100",
                                  "vlan 200 and vlan 300"])
def test_tc_vlan_tags_in_metadata(lab, expr):
    """The stack moves the outer VLAN tag into skb metadata before tc ingress; the chained
    expression still judges the frame as on the wire, like XDP (which sees the tag) and libpcap."""
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "in", ns=lab.b)
    pktlens("filter", "set", "vb", expr, ns=lab.b)
    frames = [c.frame for c in mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"))]
    exp = libpcap_matches(lab, frames, expr)
    assert exp[0] > 0
    sent = lab.send(frames)
    doc = lab.wait_packets(sent, hook=("tc", "in"))
    for hook in (("xdp", "in"), ("tc", "in")):
        s = slot(doc, *hook)
        assert (s["filter_packets"], s["filter_bytes"]) == exp, (expr, hook)


@pytest.mark.variant    # the kernel's swap; filter set's user side runs in the tests above
def test_swaps_under_traffic_lose_no_packet(lab):
    """Replace the expression 200 times while frames flow: every frame is counted once, and
    the matches stay within what the two expressions allow."""
    from scapy.all import Ether, IP, UDP, wrpcap

    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=lab.b)
    e = Ether(src=lab.mac(lab.a, "va"), dst=lab.mac(lab.b, "vb"))
    # two interleaved streams; each expression matches exactly one of them
    frames = [e / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=1000, dport=1111 + 1111 * (i % 2))
              for i in range(20000)]
    path = os.path.join(lab.tmp, "stream.pcap")
    wrpcap(path, frames)
    # an expression in place before the first frame: the swaps then happen under traffic
    # however long one takes (a sanitized build's is ~0.25 s, as long as the whole stream)
    pktlens("filter", "set", "vb", "udp dst port 2222", ns=lab.b)
    sender = subprocess.Popen(["timeout", "-s", "KILL", "60", "ip", "netns", "exec", lab.a,
                               "/usr/bin/python3", SENDRAW, "va", path],
                              stdout=subprocess.PIPE, text=True)
    swaps = 0
    try:
        while sender.poll() is None or swaps < 2:
            pktlens("filter", "set", "vb", f"udp dst port {1111 * (1 + swaps % 2)}", ns=lab.b)
            swaps += 1
            if swaps >= 200:
                break
    finally:
        out, _ = sender.communicate(timeout=70)
    sent = int(out.strip())
    assert sent == len(frames)
    s = slot(lab.wait_packets(sent, hook=("xdp", "in")), "xdp", "in")
    assert s["packets"] == sent
    # each frame matched at most once: by the expression in place when it arrived
    assert 0 < s["filter_packets"] <= sent
    assert s["filter_bytes"] == s["filter_packets"] * 42


def test_bad_expressions_keep_the_running_filter(lab):
    """... and "--" after DEV ends the options: an expression starting with '-' is taken whole
    (not as "-- -ip[9]", which libpcap reads as a double negation); its newlines and tabs are
    kept as blanks, as policy rules keep them (they had split the lines set and stats print)."""
    running = "-ip[9] = 0xffffffef"        # -(17): IPv4 UDP
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=lab.b)
    r = pktlens("filter", "set", "vb", "--", "-ip[9]\n=\t0xffffffef", ns=lab.b)
    assert r.stdout == f"vb: filter '{running}' chained on xdp in\n"
    assert f"\n  filter    '{running}'\n" in pktlens("stats", "vb", ns=lab.b).stdout
    for expr, msg in [("tcp port foo", "unknown port 'foo'"),
                      ("inbound", "not supported in-kernel"),
                      ("ip and and", "syntax error"),
                      ("x" * 3000, "expression is 3000 bytes long, at most 2047 are kept")]:
        r = pktlens("filter", "set", "vb", expr, ns=lab.b, check=False)
        assert r.returncode == 2 and r.stdout == ""
        lines = r.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("pktlens: filter set: vb: expression ")
        assert msg in lines[0]
    frames = [c.frame for c in mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"))]
    exp = libpcap_matches(lab, frames, "ip proto 17")   # tcpdump would read '-ip' as options
    assert exp[0] > 0
    sent = lab.send(frames)
    doc = lab.wait_packets(sent)
    assert doc["interfaces"][0]["filter"] == running
    s = slot(doc, "xdp", "in")
    assert (s["filter_packets"], s["filter_bytes"]) == exp


@pytest.mark.parametrize("args,code,msg", [
    (["set", "vb", "udp"], 2, "filter set: vb: not attached"),
    (["set", "nosuchdev0", "udp"], 2, "filter set: nosuchdev0: not attached"),
    (["set", "vb"], 2, "filter set: needs DEV and an expression"),
    (["set", "vb", "--"], 2, "filter set: needs DEV and an expression"),
    (["clear"], 2, "filter clear: needs DEV"),
    (["clear", "vb", "extra"], 2, "filter clear: what is 'extra'?"),
])
def test_set_usage_errors(lab, args, code, msg):
    r = pktlens("filter", *args, ns=lab.b, check=False)
    assert r.returncode == code and msg in r.stderr and len(r.stderr.splitlines()) == 1


def pl_filter_progs():
    out = sh("bpftool", "prog", "show").stdout
    return [line for line in out.splitlines() if "name pl_filter" in line]


def test_force_reattach_keeps_filter_and_detach_frees_it(lab):
    before = len(pl_filter_progs())
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=lab.b)
    pktlens("filter", "set", "vb", "udp", ns=lab.b)
    assert len(pl_filter_progs()) == before + 1
    frames = [c.frame for c in mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"))]
    exp = libpcap_matches(lab, frames, "udp")
    sent = lab.send(frames)
    lab.wait_packets(sent)
    r = pktlens("attach", "vb", "--force", "--xdp", "skb", "--tc", "in", ns=lab.b)
    assert "counters kept" in r.stdout + r.stderr
    doc = pktlens_json("stats", "vb", ns=lab.b)
    assert doc["interfaces"][0]["filter"] == "udp"
    assert slot(doc, "xdp", "in")["filter_packets"] == exp[0]
    sent += lab.send(frames)
    doc = lab.wait_packets(sent)
    assert slot(doc, "xdp", "in")["filter_packets"] == 2 * exp[0]
    pktlens("detach", "vb", ns=lab.b)
    deadline = time.time() + 3
    while len(pl_filter_progs()) > before and time.time() < deadline:
        time.sleep(0.05)
    assert len(pl_filter_progs()) == before


def tc_chain_slots(lab, dev="vb"):
    """The filled slots of DEV's tc PROG_ARRAY, from its pin (bpftool, not pktlens)."""
    pin = os.path.join(PIN_ROOT, str(netns_ino(lab.b)), dev, "tc_chain")
    doc = json.loads(sh("bpftool", "-j", "map", "dump", "pinned", pin).stdout)
    return sorted(int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little") for e in doc)


@pytest.mark.parametrize("first", ["sample", "filter"])
def test_tc_counting_program_comes_with_the_first_chain_stage(lab, first):
    """A tc attach loads no counting program for the chain (the MAIN slots, 1 and 3, stay
    empty); the first stage chained in, a sample or a filter, loads it, and from then on every
    packet is still counted once in both directions (the link's own counters for egress), the
    sample gets libpcap's matches and the filter counts them."""
    from scapy.all import rdpcap

    pktlens("attach", "vb", "--xdp", "none", "--tc", "in,out", ns=lab.b)
    assert tc_chain_slots(lab) == []
    frames = [c.frame for c in mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"))]
    size = sum(len(bytes(f)) for f in frames)
    tx0 = lab.link_stats(lab.b, "vb")["tx"]
    n = lab.send(frames)
    lab.send(frames, ns=lab.b, dev="vb")
    lab.wait_packets(n, hook=("tc", "out"))
    exp = libpcap_matches(lab, frames, "udp")
    assert exp[0] > 0
    path = os.path.join(lab.tmp, "s.pcap")
    if first == "sample":
        s = subprocess.Popen([PKTLENS, "-n", lab.b, "sample", "vb", "--hook", "tc", "-w", path,
                              "-c", str(exp[0]), "udp"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 20     # until its stages are chained in (slots 10, 11)
        while not {10, 11} <= set(tc_chain_slots(lab)) and time.time() < deadline:
            assert s.poll() is None, s.communicate()
            time.sleep(0.05)
    else:
        pktlens("filter", "set", "vb", "udp", ns=lab.b)
    assert {1, 3} <= set(tc_chain_slots(lab))
    lab.send(frames)
    lab.wait_packets(2 * n, hook=("tc", "in"))
    if first == "sample":
        err = s.communicate(timeout=20)[1]
        assert s.returncode == 0, err
        want = [bytes(p) for p in rdpcap(os.path.join(lab.tmp, "matched.pcap"))]
        got = [bytes(p) for p in rdpcap(path)]
        assert [len(p) for p in got] == [len(p) for p in want]
        assert got == want
    lab.send(frames, ns=lab.b, dev="vb")
    doc = lab.wait_packets(2 * n, hook=("tc", "out"))
    tx = lab.link_stats(lab.b, "vb")["tx"]
    for d in ("in", "out"):
        h = slot(doc, "tc", d)
        assert (h["packets"], h["bytes"]) == (2 * n, 2 * size), d
        if first == "filter":
            assert (h["filter_packets"], h["filter_bytes"]) == exp, d
    assert tx["packets"] - tx0["packets"] == 2 * n
