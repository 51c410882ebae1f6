# SPDX-License-Identifier: GPL-2.0
"""`pktlens policy`: drop, pass, redirect and sample rules judged in the kernel.

Three namespaces (lab.RouterLab): the sender sends scapy frames with a marker in the
payload to the router, which runs pktlens and forwards to the receiver, where tcpdump
captures. What the receiver sees is compared with a first-match model of the rules
written here, independently of the C code; per-rule counters must equal the model's.
"""
import ipaddress
import json
import os
import re
import subprocess
import time

import pytest

from lab import (PIN_ROOT, PYTHON, SENDRAW, Lab, netns_ino, pktlens, pktlens_json, rules_listed, sh,
                 slot)

MARK = b"PLMARK"


def marker_of(pkt):
    raw = bytes(pkt)
    i = raw.find(MARK)
    return int(raw[i + len(MARK):i + len(MARK) + 6]) if i >= 0 else None


class Rule:
    def __init__(self, rid, prio=1000, src=None, dst=None, proto=None, sport=None, dport=None,
                 vlan=None, action="drop", direction="in", extra=None, expr=None):
        self.id, self.prio, self.action, self.dir = rid, prio, action, direction
        self.expr, self.expr_hits = expr, None   # expr_hits: frame indices libpcap matches
        self.src = ipaddress.ip_network(src) if src else None
        self.dst = ipaddress.ip_network(dst) if dst else None
        self.proto, self.sport, self.dport, self.vlan, self.extra = proto, sport, dport, vlan, extra

    def args(self):
        a = ["--id", str(self.id), f"--{self.dir}", "--prio", str(self.prio)]
        if self.src:
            a += ["--src", str(self.src)]
        if self.dst:
            a += ["--dst", str(self.dst)]
        if self.proto:
            a += ["--proto", {6: "tcp", 17: "udp", 1: "icmp"}.get(self.proto, str(self.proto))]
        for name, v in (("--sport", self.sport), ("--dport", self.dport)):
            if v:
                a += [name, f"{v[0]}-{v[1]}" if v[0] != v[1] else str(v[0])]
        if self.vlan is not None:
            a += ["--vlan", str(self.vlan)]
        a += self.extra or [f"--{self.action}"]
        if self.expr:
            a.append(self.expr)
        return a

    def line(self):
        return " ".join(f"'{a}'" if " " in a else a for a in self.args())

    def matches(self, f):
        if self.expr and f["index"] not in self.expr_hits:
            return False
        if self.vlan is not None and f.get("vlan") != self.vlan:
            return False
        if not (self.src or self.dst or self.proto or self.sport or self.dport):
            return True
        if "src" not in f:
            return False
        if self.src and (self.src.version != f["src"].version or f["src"] not in self.src):
            return False
        if self.dst and (self.dst.version != f["dst"].version or f["dst"] not in self.dst):
            return False
        if self.proto and f["proto"] != self.proto:
            return False
        if self.sport or self.dport:
            if f["proto"] not in (6, 17, 132):
                return False
            if self.sport and not self.sport[0] <= f["sport"] <= self.sport[1]:
                return False
            if self.dport and not self.dport[0] <= f["dport"] <= self.dport[1]:
                return False
        return True


def judge(rules, f, hits):
    """First match in (prio, id) order; sample rules count and go on. Returns the action."""
    for r in sorted(rules, key=lambda r: (r.prio, r.id)):
        if r.matches(f):
            hits[r.id] = hits.get(r.id, 0) + 1
            if r.action != "sample":
                return r.action
    return "none"


def frame(router, f, i, dst_mac=None):
    """A scapy frame for description f (src, dst, proto, sport, dport[, vlan]), marker i."""
    from scapy.all import ICMP, IP, TCP, UDP, Dot1Q, Ether, IPv6, Raw

    e = Ether(src=router.mac(router.s, "va"), dst=dst_mac or router.mac(router.h, "vb"))
    if "vlan" in f:
        e = e / Dot1Q(vlan=f["vlan"])
    ip = IP(src=str(f["src"]), dst=str(f["dst"]), ttl=64) if f["src"].version == 4 else \
        IPv6(src=str(f["src"]), dst=str(f["dst"]), hlim=64)
    l4 = {6: lambda: TCP(sport=f["sport"], dport=f["dport"], flags="S"),
          17: lambda: UDP(sport=f["sport"], dport=f["dport"]),
          1: lambda: ICMP(type=8)}[f["proto"]]()
    return e / ip / l4 / Raw(MARK + b"%06d" % i + b"." * 20)


def libpcap_hits(router, frames, expr):
    """Markers of the frames libpcap's filter accepts: tcpdump reads them back, filtered."""
    from scapy.all import rdpcap, wrpcap

    src, dst = os.path.join(router.tmp, "all.pcap"), os.path.join(router.tmp, "hit.pcap")
    wrpcap(src, frames)
    subprocess.run(["tcpdump", "-r", src, "-w", dst, expr], check=True, capture_output=True)
    return {marker_of(p) for p in rdpcap(dst)} if os.path.getsize(dst) > 24 else set()


def rule_hits(router, dev="vb"):
    doc = pktlens_json("policy", "list", dev, ns=router.h)
    return {r["id"]: r["packets"] for r in doc["interfaces"][0]["rules"]}


def load(router, rules, dev="vb", name="rules.txt", check=True):
    path = os.path.join(router.tmp, name)
    with open(path, "w") as f:
        f.write("# generated by test_policy.py\n")
        for r in rules:
            f.write(r.line() + "\n")
    return pktlens("policy", "load", dev, path, ns=router.h, check=check)


A4 = [ipaddress.ip_address(a) for a in ("198.18.1.1", "198.18.1.9", "198.18.1.20", "198.18.1.30")]
D4 = [ipaddress.ip_address(a) for a in ("198.18.2.1", "198.18.3.5", "198.18.3.70")]
A6 = [ipaddress.ip_address(a) for a in ("2001:db8:1::1", "2001:db8:1::7")]
D6 = [ipaddress.ip_address(a) for a in ("2001:db8:2::1", "2001:db8:3::5")]

FIELD_RULES = [
    Rule(1, prio=50, src="198.18.1.20/32"),                       # LPM, src
    Rule(2, prio=5, src="198.18.1.0/28", action="pass"),          # shorter prefix, first
    Rule(3, prio=50, src="198.18.1.9/32"),                        # ... so this never decides
    Rule(4, prio=10, dst="198.18.3.64/26", action="pass"),        # LPM, dst
    Rule(5, prio=20, dst="198.18.3.0/24"),
    Rule(6, proto=17, dport=(5000, 5009)),                        # list: proto + port range
    Rule(7, src="2001:db8:1::7/128"),                             # IPv6 LPM
    Rule(8, dst="2001:db8:3::/64", proto=6, dport=(443, 443)),    # IPv6 list
    Rule(9, proto=1, action="sample", extra=["--sample", "1/10"]),
    Rule(10, prio=1, src="198.18.1.30/32", proto=17, sport=(100, 200), action="pass"),
]


def field_frames():
    out = []
    for src in A4:
        for dst in D4:
            for proto, sport, dport in ((17, 150, 5003), (17, 1000, 5003), (17, 1000, 6000),
                                        (6, 1000, 443), (1, 0, 0)):
                out.append(dict(src=src, dst=dst, proto=proto, sport=sport, dport=dport))
    for src in A6:
        for dst in D6:
            for proto, dport in ((6, 443), (6, 80), (17, 5005)):
                out.append(dict(src=src, dst=dst, proto=proto, sport=2000, dport=dport))
    return out


EXPR_RULES = [
    Rule(1, prio=10, src="198.18.1.0/28", action="pass", expr="udp and src port 150"),
    Rule(2, prio=20, proto=17, expr="udp dst port 5003 or udp dst port 6000"),
    Rule(3, prio=30, expr="ip6 and tcp dst port 443"),
    Rule(4, prio=5, src="198.18.1.30/32", action="pass"),
    Rule(5, prio=40, dst="198.18.3.0/24", expr="icmp[icmptype] = icmp-echo"),
]


@pytest.mark.parametrize("hooks", [pytest.param(["--xdp", "skb", "--tc", "none"], marks=pytest.mark.variant),
                                   pytest.param(["--xdp", "native", "--tc", "none"], marks=pytest.mark.variant),
                                   ["--xdp", "none", "--tc", "in"]], ids=["xdp", "xdp-native", "tc"])
def test_expression_rules_with_fast_fields(router, hooks):
    """tcpdump expressions in rules, alone and with fast fields, judged as libpcap does."""
    pktlens("attach", "vb", *hooks, ns=router.h)
    r = load(router, EXPR_RULES)
    assert r.returncode == 0
    descs = field_frames()
    frames = [frame(router, f, i) for i, f in enumerate(descs)]
    for rule in EXPR_RULES:
        if rule.expr:
            rule.expr_hits = libpcap_hits(router, frames, rule.expr)
            assert rule.expr_hits, rule.expr
    hits, want = {}, set()
    for i, f in enumerate(descs):
        if judge(EXPR_RULES, dict(f, index=i), hits) in ("pass", "none"):
            want.add(i)
    assert all(hits.get(r.id) for r in EXPR_RULES), hits
    cap = router.capture()
    router.send(frames)
    seen = {marker_of(p) for p in router.stop_capture(cap)} - {None}
    assert seen == want, f"dropped but wanted: {sorted(want - seen)}; seen but dropped: {sorted(seen - want)}"
    assert {k: v for k, v in rule_hits(router).items() if v} == hits
    doc = pktlens_json("policy", "list", "vb", ns=router.h)["interfaces"][0]["rules"]
    assert [x["expression"] for x in doc] == [None, "udp and src port 150",
                                              "udp dst port 5003 or udp dst port 6000",
                                              "ip6 and tcp dst port 443", "icmp[icmptype] = icmp-echo"]
    # swap to a set without expressions and back: the expression stage comes and goes
    load(router, [Rule(9, proto=17, dport=(5003, 5003))], name="plain.rules")
    load(router, EXPR_RULES, name="again.rules")
    assert {r["id"] for r in pktlens_json("policy", "list", "vb", ns=router.h)["interfaces"][0]["rules"]} == \
        {1, 2, 3, 4, 5}


@pytest.mark.parametrize("hooks", [["--xdp", "skb", "--tc", "none"],
                                   ["--xdp", "none", "--tc", "in"]], ids=["xdp", "tc"])
def test_drop_by_fields_receiver_sees_exactly_the_rest(router, hooks):
    pktlens("attach", "vb", *hooks, ns=router.h)
    r = load(router, FIELD_RULES)
    assert r.stdout == f"vb: {len(FIELD_RULES)} rules loaded from {router.tmp}/rules.txt\n"
    descs = field_frames()
    hits, want = {}, set()
    for i, f in enumerate(descs):
        if judge(FIELD_RULES, f, hits) in ("pass", "none"):
            want.add(i)
    assert 0 < len(want) < len(descs)
    for rid in (1, 2, 4, 5, 6, 7, 8, 9, 10):
        assert hits.get(rid), f"rule {rid} should decide some frame"
    assert not hits.get(3)
    cap = router.capture()
    router.send([frame(router, f, i) for i, f in enumerate(descs)])
    got = router.stop_capture(cap)
    seen = {marker_of(p) for p in got} - {None}
    assert seen == want, f"dropped but wanted: {sorted(want - seen)}; seen but dropped: {sorted(seen - want)}"
    got_hits = rule_hits(router)
    assert {k: v for k, v in got_hits.items() if v} == hits
    hook = ("xdp", "in") if hooks[1] == "skb" else ("tc", "in")
    s = slot(pktlens_json("stats", "vb", ns=router.h), *hook)
    assert s["verdicts"]["drop"]["packets"] == len(descs) - len(want)


def random_rules(rng, n):
    """n rules on exact fields (protocol, ports and ranges, VLAN, a few with a prefix), mixed
    actions and few priorities, so first match by (prio, id) picks among many candidates;
    ids shuffled against list order."""
    ports = [53, 80, 443, 1000, 1024, 2000, 5000, 5003, 6000, 65535]
    rules, ids = [], rng.sample(range(1, 4 * n), n)
    for rid in ids:
        kw = {}
        k = rng.random()
        if k < 0.8:
            kw["proto"] = rng.choice([6, 17, 17, 1, None])
        if kw.get("proto") != 1 and rng.random() < 0.9:
            lo = rng.choice(ports)
            kw["dport"] = (lo, lo) if rng.random() < 0.6 else (lo, min(65535, lo + rng.choice([1, 10, 3000])))
        if kw.get("proto") != 1 and rng.random() < 0.2:
            lo = rng.choice(ports)
            kw["sport"] = (lo, min(65535, lo + rng.choice([0, 500])))
        if rng.random() < 0.15:
            kw["vlan"] = rng.choice([10, 20])
        if rng.random() < 0.1:
            kw["src"] = rng.choice(["198.18.1.0/28", "198.18.1.16/28", "198.18.1.1/32"])
        if not (kw.get("proto") or "dport" in kw or "sport" in kw):
            kw["proto"] = rng.choice([6, 17])   # never the sender's own ARP, ND, MLD
        act = rng.choice(["drop", "drop", "pass", "sample"])
        extra = ["--sample", "1/1"] if act == "sample" else None
        # broad rules (no port) mostly late, else they decide everything
        prio = rng.randrange(0, 40) + (0 if "dport" in kw or "sport" in kw or rng.random() < 0.05 else 40)
        rules.append(Rule(rid, prio=prio, action=act, extra=extra, **kw))
    # prefix-only rules go to the LPM tries: the list's candidates race them
    rules.append(Rule(4 * n + 1, prio=20, src="198.18.1.9/32"))
    rules.append(Rule(4 * n + 2, prio=35, src="198.18.1.0/24", action="pass"))
    return rules


def random_frames(rng, n):
    out = []
    for _ in range(n):
        proto = rng.choice([6, 17, 17, 1])
        f = dict(src=ipaddress.ip_address(f"198.18.1.{rng.randrange(1, 40)}"),
                 dst=ipaddress.ip_address("198.18.2.1"), proto=proto,
                 sport=rng.choice([53, 1000, 1200, 2000, 40000]) if proto != 1 else 0,
                 dport=rng.choice([53, 80, 443, 444, 1000, 1005, 2000, 5003, 5010, 6000, 65535])
                 if proto != 1 else 0)
        if rng.random() < 0.2:
            f["vlan"] = rng.choice([10, 20, 30])
        out.append(f)
    return out


def send_and_check(router, frames, hooks, hits, drops):
    """Send frames through the router; the per-rule counters must equal the model's hits and
    the hook's drop count its drops. Returns the hook's stats slot."""
    router.send(frames)
    want_total = sum(hits.values())
    deadline = time.monotonic() + 10
    while sum(rule_hits(router).values()) < want_total and time.monotonic() < deadline:
        time.sleep(0.1)
    assert {k: v for k, v in rule_hits(router).items() if v} == hits
    hook = ("xdp", "in") if hooks[1] == "skb" else ("tc", "in")
    s = slot(pktlens_json("stats", "vb", ns=router.h), *hook)
    assert s["verdicts"]["drop"]["packets"] == drops
    return s


@pytest.mark.parametrize("hooks", [pytest.param(["--xdp", "skb", "--tc", "none"], id="xdp"),
                                   # the same rules loaded; the tc program judges them
                                   pytest.param(["--xdp", "none", "--tc", "in"], id="tc",
                                                marks=pytest.mark.variant)])
def test_many_rules_first_match_randomized(router, hooks):
    """Hundreds of rules on exact fields are looked up by field (bitmaps of candidate rules),
    not walked: the first match by (prio, id) must still be the model's. Fixed seed, 700 rules
    (11 bitmap words), 300 frames; per-rule counters and the drop count must equal the
    model's exactly."""
    import random

    rng = random.Random(19)
    rules = random_rules(rng, 700)
    descs = random_frames(rng, 300)
    pktlens("attach", "vb", *hooks, ns=router.h)
    assert load(router, rules).returncode == 0
    hits, drops = {}, 0
    for f in descs:
        drops += judge(rules, f, hits) == "drop"
    assert 50 < drops < 270 and len(hits) > 15, (drops, len(hits))
    s = send_and_check(router, [frame(router, f, i) for i, f in enumerate(descs)], hooks, hits,
                       drops)
    # dropped packets are counted per rule and per hook, not in the flow table (no --flows)
    hook = "xdp" if hooks[1] == "skb" else "tc"
    flows = [f for f in pktlens_json("flows", "vb", ns=router.h)["flows"] if f["hook"] == hook]
    assert sum(f["packets"] for f in flows) + s["flow_lost_packets"] == s["packets"] - drops


@pytest.mark.parametrize("hooks", [pytest.param(["--xdp", "skb", "--tc", "none"], marks=pytest.mark.variant),
                                   ["--xdp", "none", "--tc", "in"]],
                         ids=["xdp", "tc"])
def test_expression_rules_among_many_first_match(router, hooks):
    """Expression rules among field rules in a looked-up list: a packet tries an expression
    rule only when its expression matched (libpcap says which do); the first match by (prio,
    id), per-rule counters and the drop count must still be the model's. Fixed seed."""
    import random

    rng = random.Random(1919)
    rules = random_rules(rng, 120)
    exprs = ["udp dst port 53", "tcp dst port 80 or tcp dst port 443", "udp src port 1000",
             "ip and udp dst port 5003", "tcp src port 2000", "udp dst port 6000 or udp dst port 5010",
             "icmp", "udp and dst port 1005", "tcp dst port 444", "vlan and udp"]
    # 20 of them get an expression and an early priority; half lose their fields
    for k, i in enumerate(rng.sample(range(len(rules)), 20)):
        r = rules[i]
        r.expr, r.prio = exprs[k % len(exprs)], rng.randrange(0, 12)
        if k % 2:
            r.src = r.proto = r.sport = r.dport = r.vlan = None
    descs = random_frames(rng, 200)
    frames = [frame(router, f, i) for i, f in enumerate(descs)]
    for rule in rules:
        if rule.expr:
            rule.expr_hits = libpcap_hits(router, frames, rule.expr)
    pktlens("attach", "vb", *hooks, ns=router.h)
    assert load(router, rules).returncode == 0
    hits, drops = {}, 0
    for i, f in enumerate(descs):
        drops += judge(rules, dict(f, index=i), hits) == "drop"
    assert sum(bool(hits.get(r.id)) for r in rules if r.expr) >= 3, hits
    send_and_check(router, frames, hooks, hits, drops)


def family_rules(path):
    """Prefixes that would cross families if IPv4 were matched as IPv4-mapped IPv6: ::/0, an
    IPv4 prefix, ::ffff:0:0/96 and a mapped IPv6 prefix. `path` "list" adds --proto udp to
    each (the list walk), "lpm" leaves the address alone (the LPM tries); --sample rules are
    always in the list."""
    extra = {"proto": 17} if path == "list" else {}
    return [Rule(1, prio=30, src="::/0", **extra),
            Rule(2, prio=10, src="198.18.1.0/24", action="pass", **extra),
            Rule(3, prio=5, dst="::ffff:0:0/96", **extra),
            Rule(4, prio=1, src="::ffff:198.18.1.0/120", action="pass", **extra),
            Rule(5, prio=2, dst="0.0.0.0/0", action="sample", extra=["--sample", "1/1"], **extra),
            # what the sender's kernel sends by itself (MLD, ND) is not counted by the rules above
            Rule(6, prio=0, src="fe80::/10", action="pass"), Rule(7, prio=0, src="::/128", action="pass")]


@pytest.mark.parametrize("path", ["lpm", "list"])
@pytest.mark.parametrize("hooks", [pytest.param(["--xdp", "skb", "--tc", "none"], marks=pytest.mark.variant),
                                   ["--xdp", "none", "--tc", "in"]],
                         ids=["xdp", "tc"])
def test_prefixes_match_only_their_family(router, hooks, path):
    """A prefix matches packets of its own family only, as tcpdump's `src net`/`dst net`: ::/0
    no IPv4 packet, an IPv4 prefix no IPv6 packet with an IPv4-mapped source, and
    ::ffff:0:0/96 is an IPv6 prefix (listed as such, loading back the same)."""
    pktlens("attach", "vb", *hooks, ns=router.h)
    rules = family_rules(path)
    load(router, rules)
    m4, m6 = ipaddress.ip_address("::ffff:198.18.1.9"), ipaddress.ip_address("::ffff:198.18.3.5")
    descs = [dict(src=A4[0], dst=D4[1], proto=17, sport=1, dport=9),     # IPv4
             dict(src=A6[0], dst=D6[1], proto=17, sport=1, dport=9),     # IPv6
             dict(src=m4, dst=D6[1], proto=17, sport=1, dport=9),        # IPv6, mapped source
             dict(src=A6[0], dst=m6, proto=17, sport=1, dport=9)] * 3    # IPv6, mapped destination
    hits, actions = {}, [judge(rules, f, {}) for f in descs]
    for f in descs:
        judge(rules, f, hits)
    assert actions[:4] == ["pass", "drop", "pass", "drop"] and hits == {1: 3, 2: 3, 3: 3, 4: 3, 5: 3}
    cap = router.capture()
    router.send([frame(router, f, i) for i, f in enumerate(descs)])
    seen = {marker_of(p) for p in router.stop_capture(cap)} - {None}
    assert seen == {i for i, a in enumerate(actions) if a in ("pass", "none")}
    assert {k: v for k, v in rule_hits(router).items() if v and k < 6} == hits
    hook = ("xdp", "in") if hooks[1] == "skb" else ("tc", "in")
    s = slot(pktlens_json("stats", "vb", ns=router.h), *hook)
    assert s["verdicts"]["drop"]["packets"] == actions.count("drop")
    listed = [r["rule"] for r in pktlens_json("policy", "list", "vb", ns=router.h)["interfaces"][0]["rules"]]
    assert [ipaddress.ip_network(x.split(" --src ")[-1].split(" --dst ")[-1].split()[0]) for x in listed] == \
        [r.src or r.dst for r in sorted(rules, key=lambda r: (r.prio, r.id))]
    text = pktlens("policy", "list", "vb", ns=router.h).stdout
    back = os.path.join(router.tmp, "back.rules")
    with open(back, "w") as f:
        f.write(text)
    pktlens("policy", "load", "vb", back, ns=router.h)
    rules_only = lambda t: [x for x in t.splitlines() if not x.startswith("#")]  # noqa: E731
    assert rules_only(pktlens("policy", "list", "vb", ns=router.h).stdout) == rules_only(text)


def early_edges(src, dst):
    """Frames at the edges of the early judgement (bpf/early.h): at and below the 54 header
    bytes it reads, transport headers cut short, and sources/destinations outside the rules."""
    from scapy.all import Ether, ICMPv6EchoRequest, IP, IPv6, Raw, TCP, UDP

    from model import Case

    E = lambda: Ether(src=src, dst=dst)  # noqa: E731
    a4, o4, a6, b6, o6 = "198.18.0.1", "198.18.1.1", "2001:db8::1", "2001:db8::2", "2001:db8::3"
    return [
        # exactly 54 bytes: Ethernet, IPv4, a TCP header
        Case(E() / IP(src=a4, dst=o4) / TCP(sport=1, dport=2, flags="S"), "ipv4", "tcp",
             ("ipv4", "tcp", a4, o4, 1, 2, None), flags="S"),
        # 42 bytes: shorter than what the early judgement reads
        Case(E() / IP(src=a4, dst=o4) / UDP(sport=3, dport=4), "ipv4", "udp",
             ("ipv4", "udp", a4, o4, 3, 4, None)),
        # outside the IPv4 rule: passes
        Case(E() / IP(src=o4, dst=a4) / UDP(sport=5, dport=6) / Raw(b"x" * 30), "ipv4", "udp",
             ("ipv4", "udp", o4, a4, 5, 6, None)),
        # IPv6 and 8 bytes of UDP, 4 of ICMPv6: all the transport header the parse reads
        Case(E() / IPv6(src=a6, dst=b6) / UDP(sport=7, dport=8), "ipv6", "udp",
             ("ipv6", "udp", a6, b6, 7, 8, None)),
        Case(E() / IPv6(src=a6, dst=b6, nh=58) / Raw(b"\x80\x00\x00\x00"), "ipv6", "icmpv6",
             ("ipv6", "icmpv6", a6, b6, 128, 0, None)),
        # IPv6 with 10 of TCP's 20 bytes: truncated
        Case(E() / IPv6(src=a6, dst=b6, nh=6) / Raw(b"\x00" * 10), "ipv6", "tcp",
             ("ipv6", "tcp", a6, b6, 0, 0, None), err="truncated"),
        # to another IPv6 address: passes
        Case(E() / IPv6(src=a6, dst=o6) / ICMPv6EchoRequest(), "ipv6", "icmpv6",
             ("ipv6", "icmpv6", a6, o6, 128, 0, None)),
        Case(E() / IPv6(src=b6, dst=o6) / TCP(sport=9, dport=10, flags="A"), "ipv6", "tcp",
             ("ipv6", "tcp", b6, o6, 9, 10, None), flags="."),
    ]


@pytest.mark.parametrize("hooks", [["--xdp", "native", "--tc", "none"],
                                   pytest.param(["--xdp", "skb", "--tc", "none"], marks=pytest.mark.variant),
                                   ["--xdp", "none", "--tc", "in"]], ids=["xdp", "xdp-skb", "tc"])
def test_prefix_drops_count_every_frame_as_the_parse_does(lab, hooks):
    """Drops by address rule are judged before the parse when a frame is plain enough
    (bpf/early.h): every frame of the mixed corpus and the early judgement's edge cases counts
    as the model says (verdict, size, protocol, VLAN, fragments, options, errors), the rules
    count what they dropped, and what passed makes the flows."""
    from frames import mixed
    from model import check_flows, check_stats

    pktlens("attach", "vb", *hooks, ns=lab.b)
    pktlens("policy", "add", "vb", "--id", "1", "--src", "198.18.0.0/24", "--drop", ns=lab.b)
    pktlens("policy", "add", "vb", "--id", "2", "--dst", "2001:db8::2/128", "--drop", ns=lab.b)
    macs = (lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"))
    cases = mixed(*macs) + early_edges(*macs)

    def dropped(c):
        if c.err == "malformed" or c.l3 not in ("ipv4", "ipv6"):
            return False
        if c.l3 == "ipv4":
            return ipaddress.ip_address(c.flow[2]) in ipaddress.ip_network("198.18.0.0/24")
        return c.flow[3] == "2001:db8::2"

    drop = [c for c in cases if dropped(c)]
    kept = [c for c in cases if not dropped(c)]
    assert len(drop) > 20 and len(kept) > 5
    lab.send([c.frame for c in cases])
    hook = ("tc", "in") if hooks[1] == "none" else ("xdp", "in")
    doc = lab.wait_packets(len(cases), hook=hook)
    check_stats(slot(doc, *hook), cases, dropped=drop)
    rules = {r["id"]: (r["packets"], r["bytes"])
             for r in pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"]}
    by_fam = lambda fam: [c for c in drop if c.l3 == fam]  # noqa: E731
    assert rules == {1: (len(by_fam("ipv4")), sum(len(c.wire) for c in by_fam("ipv4"))),
                     2: (len(by_fam("ipv6")), sum(len(c.wire) for c in by_fam("ipv6")))}
    check_flows([f for f in pktlens_json("flows", "vb", ns=lab.b)["flows"] if f["hook"] == hook[0]], kept)


@pytest.mark.parametrize("hooks", [["--xdp", "native", "--tc", "none"], ["--xdp", "none", "--tc", "in"]],
                         ids=["xdp", "tc"])
def test_prefix_drops_are_analysed_by_passive_tcp(lab, hooks):
    """With --tcp-passive the analysis sees every TCP segment, those a prefix rule drops too
    (they are not judged before the parse there, bpf/early.h); UDP is dropped all the same."""
    from scapy.all import Ether, IP, TCP, UDP

    pktlens("attach", "vb", *hooks, "--tcp-passive", ns=lab.b)
    pktlens("policy", "add", "vb", "--id", "1", "--src", "198.18.0.0/24", "--drop", ns=lab.b)
    E = lambda: Ether(src=lab.mac(lab.a, "va"), dst=lab.mac(lab.b, "vb"))  # noqa: E731
    tcp = [E() / IP(src="198.18.0.1", dst="198.18.1.1") / TCP(sport=40000 + i, dport=80, flags="S", seq=i)
           for i in range(12)]
    udp = [E() / IP(src="198.18.0.1", dst="198.18.1.1") / UDP(sport=1, dport=2) for _ in range(5)]
    lab.send(tcp + udp)
    doc = lab.wait_packets(len(tcp) + len(udp))
    s = doc["interfaces"][0]["hooks"][0]
    assert s["verdicts"]["drop"]["packets"] == len(tcp) + len(udp)
    assert (s["l4"]["tcp"], s["l4"]["udp"]) == (len(tcp), len(udp))
    assert doc["interfaces"][0]["tcp"]["segs"] == len(tcp)


SEND_UDP = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind((sys.argv[1], 40404))
for n in sys.argv[3].split(","):
    s.sendto(b"e" * int(n), (sys.argv[2], 9))
"""


@pytest.mark.parametrize("direction", ["in", "out"])
def test_prefix_drops_of_socket_traffic_on_tc(direction):
    """A local socket's frames have their headers in the skb's linear part, where the early
    judgement reads them in place (bpf/early.h; sendraw's have only the Ethernet header there):
    dropped by a --src rule on tc ingress (sent by the peer) and egress (sent here), counted
    as the frames are, and the link never sends what egress dropped."""
    from model import rmon_bucket

    lab = Lab(addrs=True)
    try:
        lab.static_neighbours()
        pktlens("attach", "vb", "--xdp", "none", "--tc", "in,out", ns=lab.b)
        src, dst, ns = ("198.18.0.1", "198.18.0.2", lab.a) if direction == "in" else \
            ("198.18.0.2", "198.18.0.1", lab.b)
        pktlens("policy", "add", "vb", f"--{direction}", "--id", "5", "--src", f"{src}/32", "--drop",
                ns=lab.b)
        sizes = [0, 11, 12, 13, 100, 300, 1400, 12]     # 42..1442-byte frames, 54 among them
        frames = [14 + 20 + 8 + n for n in sizes]
        before = lab.link_stats(lab.b, "vb")
        sh("ip", "netns", "exec", ns, PYTHON, "-c", SEND_UDP, src, dst, ",".join(map(str, sizes)))
        doc = lab.wait_packets(len(sizes), hook=("tc", direction))
        s = slot(doc, "tc", direction)
        assert s["verdicts"]["drop"] == {"packets": len(sizes), "bytes": sum(frames)}
        assert s["l4"]["udp"] == s["l3"]["ipv4"] == len(sizes)
        assert {k: v for k, v in s["size_rmon"].items() if v} == \
            {b: sum(1 for f in frames if rmon_bucket(f) == b) for b in {rmon_bucket(f) for f in frames}}
        rules = pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"]
        assert [(r["id"], r["packets"], r["bytes"]) for r in rules] == [(5, len(sizes), sum(frames))]
        after = lab.link_stats(lab.b, "vb")
        if direction == "out":
            assert after["tx"]["packets"] == before["tx"]["packets"]
        else:
            assert after["rx"]["packets"] - before["rx"]["packets"] == len(sizes)
    finally:
        lab.close()


def test_redirect_arrives_byte_identical(router):
    """XDP (generic) redirect through the devmap to vc: the receiver gets the frames unchanged
    (MACs, TTL), though neither MAC nor destination address would be routed there."""
    from scapy.all import Ether, IP, UDP, Raw

    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=router.h)
    pktlens("policy", "add", "vb", "--proto", "udp", "--dport", "7000", "--redirect", "vc", ns=router.h)
    e = Ether(src=router.mac(router.s, "va"), dst="02:00:00:00:00:99")
    steered = [e / IP(src="198.18.1.1", dst="198.18.9.9", ttl=9) / UDP(sport=1, dport=7000)
               / Raw(MARK + b"%06d" % i + b"x" * i) for i in range(20)]
    routed = [frame(router, dict(src=A4[0], dst=D4[0], proto=17, sport=1, dport=7001), 100 + i)
              for i in range(5)]
    cap = router.capture()
    router.send(steered + routed)
    got = router.stop_capture(cap)
    by_mark = {marker_of(p): bytes(p) for p in got if marker_of(p) is not None}
    for i, f in enumerate(steered):
        assert by_mark.get(i) == bytes(f), f"frame {i} not byte-identical"
    for i in range(5):
        assert 100 + i in by_mark and by_mark[100 + i][22] == 63   # routed: TTL 64 -> 63
    assert rule_hits(router) == {1: 20}


def test_tc_redirect_and_egress_drop(router):
    """tc ingress redirect (bpf_redirect) and an egress rule on the router's other side."""
    from scapy.all import Ether, IP, UDP, Raw

    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=router.h)
    pktlens("attach", "vc", "--xdp", "none", "--tc", "out", ns=router.h)
    pktlens("policy", "add", "vb", "--proto", "udp", "--dport", "7000", "--redirect", "vc", ns=router.h)
    pktlens("policy", "add", "vc", "--out", "--proto", "udp", "--dport", "5003", "--drop", ns=router.h)
    e = Ether(src=router.mac(router.s, "va"), dst="02:00:00:00:00:99")
    steered = [e / IP(src="198.18.1.1", dst="198.18.9.9", ttl=9) / UDP(sport=1, dport=7000)
               / Raw(MARK + b"%06d" % i) for i in range(10)]
    routed = [frame(router, dict(src=A4[0], dst=D4[0], proto=17, sport=1, dport=5003 + (i % 2)), 100 + i)
              for i in range(10)]
    cap = router.capture()
    router.send(steered + routed)
    got = router.stop_capture(cap)
    by_mark = {marker_of(p): bytes(p) for p in got if marker_of(p) is not None}
    assert {i: by_mark.get(i) for i in range(10)} == {i: bytes(f) for i, f in enumerate(steered)}
    # egress: 5003 dropped on the way out of vc, 5004 delivered
    assert {m for m in by_mark if m >= 100} == {100 + i for i in range(10) if i % 2}
    assert rule_hits(router, "vb") == {1: 10}
    # the redirected frames leave vc too and are judged there (dport 7000: no rule)
    assert rule_hits(router, "vc") == {1: 5}


def test_redirect_to_a_gone_interface_lists_and_loads_back(router):
    """A --redirect whose target went away is listed as `--redirect ifindex:N`, and that
    loads back: `policy list > f; policy load DEV f` gives the same rules, counters kept
    (it had been refused: "no such interface")."""
    h = router.h
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=h)
    pktlens("policy", "add", "vb", "--proto", "udp", "--dport", "7000", "--redirect", "vc", ns=h)
    idx = json.loads(sh("ip", "-n", h, "-j", "link", "show", "vc").stdout)[0]["ifindex"]
    sh("ip", "-n", h, "link", "del", "vc")
    router.send([frame(router, dict(src=A4[0], dst=D4[0], proto=17, sport=1, dport=7000), i)
                 for i in range(3)])
    time.sleep(0.2)
    text = pktlens("policy", "list", "vb", ns=h).stdout
    assert f"--id 1 --in --prio 1000 --proto udp --dport 7000 --redirect ifindex:{idx}\n" in text
    path = os.path.join(router.tmp, "back.rules")
    with open(path, "w") as f:
        f.write(text)
    r = pktlens("policy", "load", "vb", path, ns=h, check=False)
    assert (r.returncode, r.stderr) == (0, "")
    assert pktlens("policy", "list", "vb", ns=h).stdout.split("\n#   ")[0] == text.split("\n#   ")[0]
    assert rule_hits(router) == {1: 3}
    # the same words on the command line; an index no interface has is not 0 or a name
    for bad in ("ifindex:0", "ifindex:x", "ifindex:", "ifindex:-1"):
        r = pktlens("policy", "add", "vb", "--redirect", bad, ns=h, check=False)
        assert (r.returncode, r.stderr) == (2, f"pktlens: policy add: vb: argument 2: --redirect "
                                               f"'{bad}': no such interface\n")


def test_xdp_redirect_target_gone_other_changes_go_on(router):
    """XDP: once a --redirect target is gone (its packets drop: no devmap entry), other
    changes still work: adding a rule, and loading back what `policy list` printed. Every
    change had failed on rebuilding that target's devmap entry ("cannot redirect to ifindex
    N", exit 2) until the redirect rule was deleted."""
    h = router.h
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=h)
    pktlens("policy", "add", "vb", "--proto", "udp", "--dport", "7000", "--redirect", "vc", ns=h)
    sh("ip", "-n", h, "link", "del", "vc")
    r = pktlens("policy", "add", "vb", "--proto", "udp", "--dport", "7001", "--drop", ns=h,
                check=False)
    assert (r.returncode, r.stderr) == (0, "")
    router.send([frame(router, dict(src=A4[0], dst=D4[0], proto=17, sport=1, dport=7000 + i % 2), i)
                 for i in range(6)])
    time.sleep(0.2)
    assert rule_hits(router) == {1: 3, 2: 3}
    s = slot(pktlens_json("stats", "vb", ns=h), "xdp", "in")
    assert s["verdicts"]["drop"]["packets"] >= 3
    text = pktlens("policy", "list", "vb", ns=h).stdout
    path = os.path.join(router.tmp, "back.rules")
    with open(path, "w") as f:
        f.write(text)
    r = pktlens("policy", "load", "vb", path, ns=h, check=False)
    assert (r.returncode, r.stderr) == (0, "")
    assert rule_hits(router) == {1: 3, 2: 3}


def test_vlan_match_and_counters(router):
    from scapy.all import Dot1Q, Ether, IP, UDP

    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=router.h)
    pktlens("policy", "add", "vb", "--vlan", "100", "--drop", ns=router.h)
    pktlens("policy", "add", "vb", "--vlan", "200", "--proto", "udp", "--pass", ns=router.h)
    e = Ether(src=router.mac(router.s, "va"), dst=router.mac(router.h, "vb"))
    frames = [e / Dot1Q(vlan=100 if i % 3 == 0 else 200) / IP(src="198.18.1.1", dst="198.18.2.1")
              / UDP(sport=1, dport=2) for i in range(30)]
    frames += [e / IP(src="198.18.1.1", dst="198.18.2.1") / UDP(sport=1, dport=2)] * 4
    router.send(frames)
    time.sleep(0.3)
    assert rule_hits(router) == {1: 10, 2: 20}
    s = slot(pktlens_json("stats", "vb", ns=router.h), "xdp", "in")
    assert s["nomatch_packets"] >= 4


# each swap is one `pktlens policy load` of 1,000 rules (~0.2 s idle, ~0.35 s beside the sender)
SWAPS = 200


@pytest.mark.scale
def test_atomic_swap_under_load(router):
    """Two rule sets of 1,000 rules, swapped 200 times (SWAPS) while two interleaved streams flow
    (5,000 packets/s). Each set drops one stream (an LPM rule) and passes the other (a list
    rule); a packet judged by the LPM maps of one set and the list of the other would fall
    through to the catch-all rule, whose counter must stay 0. Every packet is judged once:
    dropped + passed = seen, and about half are dropped (each set drops one stream)."""
    from scapy.all import Ether, IP, UDP, Raw, wrpcap

    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=router.h)
    filler = [Rule(i, prio=300, src=f"2001:db8:ff:{i:x}::/64") for i in range(1, 998)]
    catch_all = Rule(1000, prio=200, proto=17)
    a, b = "198.18.1.10", "198.18.1.11"
    set_x = filler + [catch_all, Rule(1001, prio=100, src=a + "/32"),
                      Rule(1003, prio=50, src=b + "/32", proto=17, action="pass")]
    set_y = filler + [catch_all, Rule(1002, prio=100, src=b + "/32"),
                      Rule(1004, prio=50, src=a + "/32", proto=17, action="pass")]
    assert len(set_x) == len(set_y) == 1000
    paths = []
    for name, rules in (("x.rules", set_x), ("y.rules", set_y)):
        path = os.path.join(router.tmp, name)
        with open(path, "w") as f:
            f.writelines(r.line() + "\n" for r in rules)
        paths.append(path)
    pktlens("policy", "load", "vb", paths[0], ns=router.h)
    e = Ether(src=router.mac(router.s, "va"), dst=router.mac(router.h, "vb"))
    stream = [e / IP(src=a if i % 2 else b, dst="198.18.2.1") / UDP(sport=9, dport=9) / Raw(b"s" * 18)
              for i in range(2)]
    pcap = os.path.join(router.tmp, "stream.pcap")
    stop = os.path.join(router.tmp, "stop")
    wrpcap(pcap, stream)
    sender = subprocess.Popen(["timeout", "-s", "KILL", "900", "ip", "netns", "exec", router.s, PYTHON,
                               SENDRAW, "va", pcap, "5000", stop], stdout=subprocess.PIPE, text=True)
    t0 = time.time()
    try:
        for swap in range(SWAPS):
            pktlens("policy", "load", "vb", paths[(swap + 1) % 2], ns=router.h)
            assert sender.poll() is None, "the sender stopped"
    finally:
        open(stop, "w").close()
    sent = int(sender.communicate(timeout=60)[0].strip())
    took = time.time() - t0
    time.sleep(0.3)
    s = slot(pktlens_json("stats", "vb", ns=router.h), "xdp", "in")
    hits = rule_hits(router)
    assert hits.get(1000, 0) == 0, "a packet met half of one rule set and half of the other"
    assert sent > 1000
    # every stream packet was either dropped by an LPM rule or passed by a list rule: what
    # no rule matched is the sender's own chatter (IPv6 neighbour discovery), never UDP
    assert s["l4"]["udp"] == sent
    assert s["nomatch_packets"] <= s["packets"] - sent
    assert s["verdicts"]["drop"]["packets"] + s["verdicts"]["pass"]["packets"] == s["packets"]
    assert s["verdicts"]["drop"]["packets"] >= sent // 2 - 1000
    assert all(hits.get(i, 0) == 0 for i in range(1, 998))
    print(f"{SWAPS} swaps under {sent} packets in {took:.1f} s")


BAD_FILES = [
    ("--drop --frobnicate\n", 1, 8, "unknown option '--frobnicate'"),
    ("--src 198.18.1.0/24 --drop\n--src 198.18.300.0/24 --drop\n", 2, 7,
     "--src '198.18.300.0/24': not an IPv4 or IPv6 address"),
    ("  --src 198.18.1.1/24 --drop\n", 1, 9, "--src '198.18.1.1/24': host bits set after /24"),
    ("--dport 2000-1000 --drop\n", 1, 9, "--dport '2000-1000': range ends below its start"),
    ("--dport 70000 --drop\n", 1, 9, "--dport '70000': not a port 0-65535 or range LO-HI"),
    ("# comment\n\n--redirect nosuchdev0 --drop\n", 3, 12, "--redirect 'nosuchdev0': no such interface"),
    ("--id 5 --drop\n--id 5 --pass\n", 2, 1, "rule id 5 is given twice (line 1)"),
    ("--drop --pass\n", 1, 8, "--pass: a rule has one action (another at column 1)"),
    ("--src 198.18.1.0/24\n", 1, 7, "no action (--drop, --pass, --redirect DEV2 or --sample 1/N)"),
    ("--sample 1/0\n", 1, 10, "--sample '1/0': not 1/N with N >= 1"),
    ("--src 198.18.1.0/24 --dst 2001:db8::/32 --drop\n", 1, 27, "--src and --dst mix IPv4 and IPv6"),
    ("--proto udp 'udp port foo' --drop\n", 1, 13, "expression 'udp port foo': unknown port 'foo'"),
    ("--drop inbound\n", 1, 8, "expression 'inbound': cBPF insn 0: load from SKF_AD_PKTTYPE "
     "('inbound'/'outbound') (0xfffff004): ancillary data loads are not supported in-kernel"),
    ("--drop 'udp\n", 1, 8, "unterminated quote"),
    # a NUL byte is not a line too long; options given twice or ports without a port protocol
    # would silently never match what they say
    ("--src 198.18.1.0/24 --drop\n--proto udp\x00 --drop\n", 2, 12, "a NUL byte (not a text file?)"),
    ("--src 198.18.1.0/24 --src 198.18.2.0/24 --drop\n", 1, 21, "--src given twice (also at column 1)"),
    ("--prio 5 --drop --prio 6\n", 1, 17, "--prio given twice (also at column 1)"),
    ("--in --out --drop\n", 1, 6, "--out: a rule has one direction (another at column 1)"),
    ("--proto icmp --dport 80 --drop\n", 1, 9,
     "--proto icmp has no ports (--sport and --dport need tcp, udp or sctp)"),
    ("--proto 1 --sport 1-2 --pass\n", 1, 9, "--proto 1 has no ports (--sport and --dport need tcp, "
     "udp or sctp)"),
]


# rules of a file, in policy add words without --id: (words, proto, dport or None, action)
ORDER_POOL = [("--proto udp --dport 7000 --drop", 17, 7000, "drop"),
              ("--proto udp --pass", 17, None, "pass"),
              ("--proto icmp --pass", 1, None, "pass"),
              ("--proto tcp --dport 7001 --pass", 6, 7001, "pass"),
              ("--proto tcp --drop", 6, None, "drop"),
              ("--dport 7000 --pass", None, 7000, "pass"),
              ("--src 198.18.1.1/32 --drop", None, None, "drop")]   # the frames' source
ORDER_FRAMES = [(17, 7000), (17, 7001), (6, 7000), (6, 7001), (1, 0)]


@pytest.mark.parametrize("seed", [1, pytest.param(2, marks=pytest.mark.variant)])
def test_load_runs_a_files_rules_in_its_order_whatever_ran_before(router, seed):
    """Each load of a file runs its rules in the file's order (first match wins), whatever
    ran before: rules identical to running ones keep their counters, not an order of their
    own. The receiver's capture says what passed; the model is the file's order."""
    import random

    rng = random.Random(seed)
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=router.h)
    path = os.path.join(router.tmp, "order.rules")
    kept = {}     # rule words -> packets it counted so far, across loads
    for rnd in range(4):
        rules = rng.sample(ORDER_POOL, rng.randint(3, len(ORDER_POOL)))
        with open(path, "w") as f:
            f.writelines(w + "\n" for w, *_ in rules)
        assert pktlens("policy", "load", "vb", path, ns=router.h).returncode == 0
        kept = {w: n for w, n in kept.items() if w in {r[0] for r in rules}}
        want, hits = set(), {}
        descs = [dict(src=A4[0], dst=D4[0], proto=p, sport=1000, dport=d) for p, d in ORDER_FRAMES]
        for i, (p, d) in enumerate(ORDER_FRAMES):
            first = next((r for r in rules if r[1] in (None, p) and r[2] in (None, d)), None)
            if first:
                hits[first[0]] = hits.get(first[0], 0) + 1
            if not first or first[3] == "pass":
                want.add(i)
        cap = router.capture()
        router.send([frame(router, f, i) for i, f in enumerate(descs)])
        seen = {marker_of(p) for p in router.stop_capture(cap)} - {None}
        listed = pktlens_json("policy", "list", "vb", ns=router.h)["interfaces"][0]["rules"]
        assert [r["id"] for r in listed] == sorted(r["id"] for r in listed)
        assert seen == want, (rnd, [r[0] for r in rules], sorted(seen), sorted(want))
        # listed in id order = the file's order; a kept rule's counter carried on
        assert len(listed) == len(rules)
        for r, (w, *_) in zip(listed, rules):
            assert r["packets"] == kept.get(w, 0) + hits.get(w, 0), (rnd, w, r, kept)
        kept = {w: kept.get(w, 0) + hits.get(w, 0) for w, *_ in rules}


def test_load_ids_given_decide_where_they_do_not_rise(router):
    """Ids given with --id that rise in list order: the rules without one run between them in
    list order, whatever ids identical running rules had (their counters kept); given ids that
    do not rise, or leave no room, decide the order themselves, as `policy list` shows it."""
    h = router.h
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=h)
    path = os.path.join(router.tmp, "ids.rules")

    def load_ids(text):
        with open(path, "w") as f:
            f.write(text)
        pktlens("policy", "load", "vb", path, ns=h)
        return [r["id"] for r in pktlens_json("policy", "list", "vb", ns=h)["interfaces"][0]["rules"]]

    # the running set: dport 7002 gets id 1, 7003 id 2
    assert load_ids("--proto udp --dport 7002 --drop\n--proto udp --dport 7003 --pass\n") == [1, 2]
    router.send([frame(router, dict(src=A4[0], dst=D4[0], proto=17, sport=1, dport=7003), 0)])
    time.sleep(0.3)
    assert rule_hits(router) == {1: 0, 2: 1}
    # rising given ids: 7003 (running as id 2) runs between 10 and 20, keeping its counter
    text = "--id 10 --proto udp --dport 7001 --drop\n--proto udp --dport 7003 --pass\n" \
           "--id 20 --proto udp --dport 7002 --pass\n--proto udp --dport 7004 --drop\n"
    listed = load_ids(text)
    assert listed == [10, 11, 20, 21], listed
    assert rule_hits(router) == {10: 0, 11: 1, 20: 0, 21: 0}
    # given ids that fall: they decide; the rule without one takes a free id
    listed = load_ids("--id 9 --proto udp --dport 7001 --drop\n--id 4 --proto udp --dport 7002 --pass\n"
                      "--proto udp --dport 7003 --pass\n")
    assert listed[:2] == [4, 9] and rule_hits(router)[11] == 1, listed
    # no room between given ids 5 and 6: the ids decide, the rule without one keeps its id
    listed = load_ids("--id 5 --proto udp --dport 7001 --drop\n--proto udp --dport 7003 --pass\n"
                      "--id 6 --proto udp --dport 7002 --pass\n")
    assert listed == [5, 6, 11], listed


def test_bad_rule_files_change_nothing(router):
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=router.h)
    pktlens("policy", "add", "vb", "--proto", "udp", "--dport", "5003", "--drop", ns=router.h)
    router.send([frame(router, dict(src=A4[0], dst=D4[0], proto=17, sport=1, dport=5003), i)
                 for i in range(7)])
    time.sleep(0.2)
    before = pktlens_json("policy", "list", "vb", ns=router.h)["interfaces"][0]["rules"]
    assert before[0]["packets"] == 7
    for n, (text, line, col, msg) in enumerate(BAD_FILES):
        path = os.path.join(router.tmp, f"bad{n}.rules")
        with open(path, "w") as f:
            f.write(text)
        r = pktlens("policy", "load", "vb", path, ns=router.h, check=False)
        assert (r.returncode, r.stdout) == (2, ""), r
        assert r.stderr == f"pktlens: policy load: {path}:{line}:{col}: {msg}\n"
        after = pktlens_json("policy", "list", "vb", ns=router.h)["interfaces"][0]["rules"]
        assert [(x["rule"], x["packets"]) for x in after] == [(x["rule"], x["packets"]) for x in before]
    r = pktlens("policy", "load", "vb", "/nonexistent/rules", ns=router.h, check=False)
    assert r.returncode == 2
    assert r.stderr == "pktlens: policy load: vb: cannot read '/nonexistent/rules': No such file or directory\n"


def test_add_list_del_flush(router):
    h = router.h
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=h)
    assert pktlens("policy", "add", "vb", "--src", "198.18.1.0/24", "--drop", ns=h).stdout == \
        "vb: rule 1 added: --id 1 --in --prio 1000 --src 198.18.1.0/24 --drop\n"
    pktlens("policy", "add", "vb", "--prio", "7", "--dst", "2001:db8:3::/48", "--proto", "tcp",
            "--sport", "1-1023", "--pass", ns=h)
    pktlens("policy", "add", "vb", "--id", "40", "--proto", "icmp", "--sample", "1/100", ns=h)
    doc = pktlens_json("policy", "list", "vb", ns=h)["interfaces"][0]
    assert [r["rule"] for r in doc["rules"]] == [
        "--id 2 --in --prio 7 --dst 2001:db8:3::/48 --proto tcp --sport 1-1023 --pass",
        "--id 1 --in --prio 1000 --src 198.18.1.0/24 --drop",
        "--id 40 --in --prio 1000 --proto icmp --sample 1/100"]
    assert pktlens("policy", "del", "vb", "1", ns=h).stdout == "vb: rule 1 deleted\n"
    # ids are stable; the next one is above the highest
    assert pktlens("policy", "add", "vb", "--pass", ns=h).stdout.startswith("vb: rule 41 added")
    assert [r["id"] for r in pktlens_json("policy", "list", "vb", ns=h)["interfaces"][0]["rules"]] == [2, 40, 41]
    # `list` prints rules in the add syntax, the rest as comments: its output loads back
    text = pktlens("policy", "list", "vb", ns=h).stdout
    assert text.startswith("# vb: 3 rules\n--id 2 --in --prio 7 ")
    assert "\n#   0 packets, 0 bytes\n" in text
    path = os.path.join(router.tmp, "back.rules")
    with open(path, "w") as f:
        f.write(text)
    assert pktlens("policy", "load", "vb", path, ns=h).stdout == f"vb: 3 rules loaded from {path}\n"
    again = pktlens("policy", "list", "vb", ns=h).stdout
    # the same rules; the counters kept, not reset (the lab's own traffic, neighbour discovery,
    # may add to the catch-all's meanwhile, and "last N s ago" moves with the clock)
    rules = lambda t: [ln for ln in t.splitlines() if not ln.startswith("#")]  # noqa: E731
    counts = lambda t: [int(x) for x in re.findall(r"^#\s+(\d+) packets", t, re.M)]  # noqa: E731
    assert rules(again) == rules(text) and len(counts(again)) == len(counts(text)) == 3
    assert all(b >= a for a, b in zip(counts(text), counts(again))), (text, again)
    r = pktlens("policy", "del", "vb", "99", ns=h, check=False)
    assert (r.returncode, r.stderr) == (2, "pktlens: policy del: vb: no rule 99 (pktlens policy list vb)\n")
    r = pktlens("policy", "add", "vb", "--id", "2", "--drop", ns=h, check=False)
    assert r.returncode == 2 and "rule id 2 exists" in r.stderr
    r = pktlens("policy", "add", "vb", "--out", "--drop", ns=h, check=False)
    assert (r.returncode, r.stderr) == (2, "pktlens: policy add: vb: rule 42: vb has no egress hook "
                                           "(pktlens attach vb --tc out)\n")
    r = pktlens("policy", "add", "vb", "--drop", "--bogus", ns=h, check=False)
    assert (r.returncode, r.stderr) == (2, "pktlens: policy add: vb: argument 2: unknown option '--bogus'\n")
    assert pktlens("policy", "flush", "vb", ns=h).stdout == "vb: 3 rules removed\n"
    assert pktlens_json("policy", "list", "vb", ns=h)["interfaces"][0]["rules"] == []
    r = pktlens("policy", "add", "nosuch0", "--drop", ns=h, check=False)
    assert (r.returncode, r.stderr) == (2, "pktlens: policy add: nosuch0: not attached (pktlens attach nosuch0)\n")


def test_add_takes_option_equals_value_and_double_dash(router):
    """A rule's options take getopt's forms as every other command's do: `--opt=VALUE` is the
    option and its value, `--` ends the options (the words after it are the expression, also
    one that begins with a dash); both had been refused as unknown options. The rule is the
    one the spaced form makes, in `policy add` and in `policy load` files."""
    h = router.h
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=h)
    r = pktlens("policy", "add", "vb", "--prio=5", "--proto=udp", "--dport=53-60", "--drop", "--",
                "udp", "port", "55", ns=h, check=False)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert r.stdout == "vb: rule 1 added: --id 1 --in --prio 5 --proto udp --dport 53-60 --drop 'udp port 55'\n"
    r = pktlens("policy", "add", "vb", "--limit=100pps", "--per=src", "--over=sample", "1/5", "--",
                "-ether[0] = 0xfffffffe", ns=h, check=False)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    assert r.stdout.endswith("--limit 100pps --burst 10packets --per src --per-size 65536 --over sample 1/5 "
                             "'-ether[0] = 0xfffffffe'\n")
    for words, msg in [(["--drop=1"], "argument 1: --drop takes no value"),
                       (["--prio=", "--drop"], "argument 1: --prio '': not a number 0-4294967295"),
                       (["--bogus=1", "--drop"], "argument 1: unknown option '--bogus=1'"),
                       (["--prio=7", "--prio", "8", "--drop"], "argument 2: --prio given twice (also at argument 1)"),
                       (["--in", "--drop", "--out"], "argument 3: --out: a rule has one direction (another at "
                                                     "argument 1)"),
                       (["--drop", "--vlan", "3", "--pass"], "argument 4: --pass: a rule has one action (another "
                                                             "at argument 1)"),
                       (["--redirect=ifindex:7777"], "argument 1: --redirect 'ifindex:7777': no such interface"),
                       (["--drop", "--", "--prio", "3"], "argument 3: expression '--prio 3': can't parse filter "
                                                         "expression: syntax error")]:
        r = pktlens("policy", "add", "vb", *words, ns=h, check=False)
        assert (r.returncode, r.stderr) == (2, f"pktlens: policy add: vb: {msg}\n"), words
    path = os.path.join(router.tmp, "eq.rules")
    with open(path, "w") as f:
        f.write("--id=3 --src=198.18.7.0/24 --pass\n--id 4 --drop -- tcp port 9\n")
    assert pktlens("policy", "load", "vb", path, ns=h).stdout == f"vb: 2 rules loaded from {path}\n"
    assert [x["rule"] for x in pktlens_json("policy", "list", "vb", ns=h)["interfaces"][0]["rules"]] == [
        "--id 3 --in --prio 1000 --src 198.18.7.0/24 --pass", "--id 4 --in --prio 1000 --drop 'tcp port 9'"]


def test_flush_in_and_out_is_both_directions(router):
    """`policy flush DEV --in --out` removes the rules of both directions, as sample's --in
    --out means both; the later flag had won, removing the egress rules alone."""
    h = router.h
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in,out", ns=h)
    for d in ("--in", "--out", "--in"):
        pktlens("policy", "add", "vb", d, "--proto", "udp", "--drop", ns=h)
    assert pktlens("policy", "flush", "vb", "--in", "--out", ns=h).stdout == "vb: 3 rules removed\n"
    assert pktlens_json("policy", "list", "vb", ns=h)["interfaces"][0]["rules"] == []
    for d in ("--in", "--out", "--in"):
        pktlens("policy", "add", "vb", d, "--proto", "udp", "--drop", ns=h)
    assert pktlens("policy", "flush", "vb", "--out", ns=h).stdout == "vb: 1 rule removed\n"
    assert pktlens("policy", "flush", "vb", "--in", ns=h).stdout == "vb: 2 rules removed\n"


def test_expression_over_lines_lists_on_one_and_loads_back(router):
    """An expression given over several lines (a shell script's quoted tcpdump expression;
    libpcap takes newlines, CRs and tabs as blanks) is kept with blanks for them: `policy list`
    prints the rule on one line and its output loads back. The newline had been kept, so the
    listed rule spanned two lines and load failed ("unterminated quote")."""
    h = router.h
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=h)
    r = pktlens("policy", "add", "vb", "--drop", "udp\n  and dst port 5003\r\n\tor tcp", ns=h)
    assert r.stdout == "vb: rule 1 added: --id 1 --in --prio 1000 --drop " \
                       "'udp   and dst port 5003   or tcp'\n"
    text = pktlens("policy", "list", "vb", ns=h).stdout
    assert text.splitlines()[1] == "--id 1 --in --prio 1000 --drop 'udp   and dst port 5003   or tcp'"
    path = os.path.join(router.tmp, "back.rules")
    with open(path, "w") as f:
        f.write(text)
    r = pktlens("policy", "load", "vb", path, ns=h, check=False)
    assert (r.returncode, r.stderr) == (0, "")

    def rules(listing):     # the '#' comments count packets: the kernel's own may come
        return [line for line in listing.splitlines() if not line.startswith("#")]
    assert rules(pktlens("policy", "list", "vb", ns=h).stdout) == rules(text)
    # the rule still judges as libpcap's expression does
    descs = [dict(src=A4[0], dst=D4[0], proto=17, sport=1, dport=5003 + i % 2) for i in range(6)]
    frames = [frame(router, f, i) for i, f in enumerate(descs)]
    assert libpcap_hits(router, frames, "udp and dst port 5003 or tcp") == {0, 2, 4}
    router.send(frames)
    deadline = time.monotonic() + 5
    while sum(rule_hits(router).values()) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert rule_hits(router) == {1: 3}


def test_del_flush_load_print_one_json_document_under_j(router):
    """-j prints one JSON document for policy del, flush and load too, with what the text
    says; they had printed nothing under -j."""
    h = router.h
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=h)
    pktlens("policy", "add", "vb", "--proto", "udp", "--drop", ns=h)
    pktlens("policy", "add", "vb", "--proto", "tcp", "--drop", ns=h)
    assert pktlens_json("policy", "del", "vb", "1", ns=h) == {"interface": "vb", "id": 1}
    assert pktlens("policy", "del", "vb", "2", ns=h).stdout == "vb: rule 2 deleted\n"
    path = os.path.join(router.tmp, "two.rules")
    with open(path, "w") as f:
        f.write("--proto udp --drop\n--proto tcp --pass\n")
    assert pktlens_json("policy", "load", "vb", path, ns=h) == {"interface": "vb", "rules": 2,
                                                                "file": path}
    assert pktlens_json("policy", "flush", "vb", ns=h) == {"interface": "vb", "removed": 2}
    assert pktlens("policy", "load", "vb", path, ns=h).stdout == f"vb: 2 rules loaded from {path}\n"
    assert pktlens("policy", "flush", "vb", ns=h).stdout == "vb: 2 rules removed\n"


def test_force_reattach_keeps_rules_and_counters(router):
    h = router.h
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "in", ns=h)
    pktlens("policy", "add", "vb", "--proto", "udp", "--dport", "5003", "--drop", ns=h)
    router.send([frame(router, dict(src=A4[0], dst=D4[0], proto=17, sport=1, dport=5003), i) for i in range(5)])
    time.sleep(0.2)
    r = pktlens("attach", "vb", "--xdp", "none", "--tc", "in", "--force", ns=h)
    assert "policy: 1 rule judges packets again" in r.stdout
    router.send([frame(router, dict(src=A4[0], dst=D4[0], proto=17, sport=1, dport=5003), i) for i in range(3)])
    time.sleep(0.2)
    assert rule_hits(router) == {1: 8}
    s = slot(pktlens_json("stats", "vb", ns=h), "tc", "in")
    assert s["packets"] >= 3


def record_max(router, dev="vb"):
    """The kernel's size of the attachment's rule record (policy_rules)."""
    pin = f"{PIN_ROOT}/{netns_ino(router.h)}/{dev}/policy_rules"
    return json.loads(sh("bpftool", "-j", "map", "show", "pinned", pin).stdout)["max_entries"]


@pytest.mark.parametrize("hooks", [pytest.param(["--xdp", "skb", "--tc", "none"], marks=pytest.mark.variant),
                                   ["--xdp", "none", "--tc", "in"]],
                         ids=["xdp", "tc"])
def test_rule_record_grows_keeping_rules_and_counters(router, hooks):
    """A new attachment's record is small; more rules than it holds move it to a larger copy."""
    h = router.h
    pktlens("attach", "vb", *hooks, ns=h)
    small = record_max(router)
    assert small < 262144
    pktlens("policy", "add", "vb", "--id", "7", "--src", "198.18.1.9/32", "--drop", ns=h)
    router.send([frame(router, dict(src=A4[1], dst=D4[0], proto=17, sport=1, dport=9), i) for i in range(3)])
    time.sleep(0.3)
    assert rule_hits(router) == {7: 3}
    # rule 7 kept as it is, and twice the record's room of others: it grows on the way
    n = 2 * small + 5
    path = os.path.join(router.tmp, "grow.rules")
    with open(path, "w") as f:
        f.write("--id 7 --in --prio 1000 --src 198.18.1.9/32 --drop\n")
        f.writelines(prefix_rules(1, n))
    pktlens("policy", "load", "vb", path, ns=h, timeout=300)
    assert record_max(router) >= n + 1
    ids, _ = listed_ids(router)
    assert len(ids) == n + 1 and 7 in ids
    pins = sorted(os.listdir(f"{PIN_ROOT}/{netns_ino(h)}/vb"))
    assert "policy_rules" in pins and not [p for p in pins if p.startswith("policy_rules") and p != "policy_rules"]
    # rule 7 counted on; a rule past the old room judges and counts too
    last = ipaddress.ip_network(prefix_rules(1, n)[-1].split()[1])
    router.send([frame(router, dict(src=A4[1], dst=D4[0], proto=17, sport=1, dport=9), 10),
                 frame(router, dict(src=last[1], dst=D6[0], proto=17, sport=1, dport=9), 11)])
    time.sleep(0.3)
    hits = {k: v for k, v in rule_hits(router).items() if v}
    assert hits[7] == 4 and sum(hits.values()) == 5 and len(hits) == 2
    # the record survives a re-attach with --force, at its size
    pktlens("attach", "vb", *hooks, "--force", ns=h)
    assert len(listed_ids(router)[0]) == n + 1 and record_max(router) >= n + 1
    assert rule_hits(router)[7] == 4


def counter_maps(router, dev="vb"):
    """{map: (max_entries, keys)} of the rule counters: rule_stats, then each map in rule_gens by slot."""
    d = f"{PIN_ROOT}/{netns_ino(router.h)}/{dev}"

    def keys(*how):
        return len(json.loads(sh("bpftool", "-j", "map", "dump", *how).stdout))

    def size(*how):
        return json.loads(sh("bpftool", "-j", "map", "show", *how).stdout)["max_entries"]

    out = {"rule_stats": (size("pinned", f"{d}/rule_stats"), keys("pinned", f"{d}/rule_stats"))}
    for e in json.loads(sh("bpftool", "-j", "map", "dump", "pinned", f"{d}/rule_gens").stdout):
        slot, inner = e["key"], e["value"]
        slot = slot if isinstance(slot, int) else int.from_bytes(bytes(int(b, 16) for b in slot), "little")
        inner = inner if isinstance(inner, int) else int.from_bytes(bytes(int(b, 16) for b in inner), "little")
        out[slot] = (size("id", str(inner)), keys("id", str(inner)))
    return out


# xdp: the same user-side generations as tc's
@pytest.mark.parametrize("hooks", [pytest.param(["--xdp", "skb", "--tc", "none"], id="xdp", marks=pytest.mark.variant),
                                   pytest.param(["--xdp", "none", "--tc", "in"], id="tc")])
def test_rule_counters_made_a_generation_at_a_time(router, hooks):
    """A new attachment's rule counters hold 16,384 keys; rules past them count in maps made
    by the commit that needs them, each key in one map for as long as its rule lives: exact,
    kept by rules kept, gone with rules that go, carried over by attach --force; a map no rule
    counts in any more goes with the commit that leaves it unused."""
    h = router.h
    pktlens("attach", "vb", *hooks, ns=h)
    assert counter_maps(router) == {"rule_stats": (16384, 0)}
    pktlens("policy", "add", "vb", "--id", "7", "--src", "198.18.1.9/32", "--drop", ns=h)
    router.send([frame(router, dict(src=A4[1], dst=D4[0], proto=17, sport=1, dport=9), i) for i in range(3)])
    time.sleep(0.3)
    assert rule_hits(router) == {7: 3}
    n = 20000
    # rule 7 keeps key 1; the others take keys from 2 up that the rules going do not use:
    # 2..20001, then, beside those, 20002..40001 (past 32,767: a second generation)
    for tag, want in ((1, {"rule_stats": (16384, 16383), 1: (16384, 20001 - 16383)}),
                      (2, {"rule_stats": (16384, 1), 1: (16384, 32768 - 20002), 2: (16384, 40002 - 32768)})):
        path = os.path.join(router.tmp, f"gen{tag}.rules")
        rules = prefix_rules(tag, n)
        with open(path, "w") as f:
            f.write("--id 7 --in --src 198.18.1.9/32 --drop\n")
            f.writelines(rules)
        pktlens("policy", "load", "vb", path, ns=h, timeout=300)
        maps = counter_maps(router)
        assert maps == want and sum(k for _, k in maps.values()) == n + 1, maps
        # the last rule's key is the highest handed out: in the newest map
        last = ipaddress.ip_network(rules[-1].split()[1])
        first = ipaddress.ip_network(rules[0].split()[1])
        router.send([frame(router, dict(src=last[1], dst=D6[0], proto=17, sport=1, dport=9), 10 + tag),
                     frame(router, dict(src=last[1], dst=D6[0], proto=17, sport=1, dport=9), 20 + tag),
                     frame(router, dict(src=first[1], dst=D6[0], proto=17, sport=1, dport=9), 30 + tag),
                     frame(router, dict(src=A4[1], dst=D4[0], proto=17, sport=1, dport=9), 40 + tag)])
        time.sleep(0.3)
        hits = {k: v for k, v in rule_hits(router).items() if v}
        assert hits[7] == 3 + tag and sorted(hits.values()) == [1, 2, 3 + tag], hits
    pktlens("attach", "vb", *hooks, "--force", ns=h)
    assert counter_maps(router) == maps
    assert sorted(v for v in rule_hits(router).values() if v) == [1, 2, 5]
    # replaced by a small set: the generations no rule counts in any more go, rule 7 keeps its
    # counters (they stayed, 8 MiB of them, until the detach)
    small = os.path.join(router.tmp, "small.rules")
    with open(small, "w") as f:
        f.write("--id 7 --in --src 198.18.1.9/32 --drop\n--in --src 198.18.1.10/32 --drop\n")
    pktlens("policy", "load", "vb", small, ns=h)
    assert counter_maps(router) == {"rule_stats": (16384, 2)}
    hits = rule_hits(router)
    assert len(hits) == 2 and hits[7] == 5 and sum(hits.values()) == 5, hits
    router.send([frame(router, dict(src=A4[1], dst=D4[0], proto=17, sport=1, dport=9), 50)])
    time.sleep(0.3)
    hits = rule_hits(router)
    assert hits[7] == 6 and sum(hits.values()) == 6, hits
    # a generation made again counts from zero
    path = os.path.join(router.tmp, "gen3.rules")
    with open(path, "w") as f:
        f.writelines(prefix_rules(3, 16400))
    pktlens("policy", "load", "vb", path, ns=h, timeout=300)
    maps = counter_maps(router)
    assert set(maps) == {"rule_stats", 1} and sum(k for _, k in maps.values()) == 16400, maps
    pktlens("policy", "flush", "vb", ns=h)
    assert counter_maps(router) == {"rule_stats": (16384, 0)}


def test_limits(router):
    """100,000 address rules in one trie; over the list limit nothing changes."""
    h = router.h
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=h)
    path = os.path.join(router.tmp, "big.rules")
    with open(path, "w") as f:
        for i in range(100000):
            f.write(f"--src 2001:db8:{i >> 16:x}:{i & 0xffff:x}::/64 --drop\n")
        f.write("--src 198.18.1.1/32 --prio 1 --drop\n")
    t0 = time.time()
    assert pktlens("policy", "load", "vb", path, ns=h, timeout=300).stdout.endswith("100001 rules loaded from " + path + "\n")
    took = time.time() - t0
    router.send([frame(router, dict(src=A4[0], dst=D4[0], proto=17, sport=1, dport=9), i) for i in range(4)]
                + [frame(router, dict(src=A6[0], dst=D6[0], proto=17, sport=1, dport=9), 10)])
    time.sleep(0.3)
    doc = pktlens_json("policy", "list", "vb", ns=h)["interfaces"][0]
    hits = {r["id"]: r["packets"] for r in doc["rules"] if r["packets"]}
    assert hits == {100001: 4, 65537: 1}     # 2001:db8:1::1: in 2001:db8:1:0::/64, line 65537
    over = os.path.join(router.tmp, "over.rules")
    with open(over, "w") as f:
        f.writelines(f"--proto udp --dport {i} --drop\n" for i in range(1024))
        f.write("--src 198.18.7.7/32 --limit 10pps\n")     # one address, but a limit: a list rule
    r = pktlens("policy", "load", "vb", over, ns=h, check=False)
    assert r.returncode == 2
    assert r.stderr == (f"pktlens: policy load: {over}:1025:1: 1025 ingress rules with ports, protocol, "
                        "VLAN, both addresses, --sample or --limit: at most 1024\n")
    assert len(pktlens_json("policy", "list", "vb", ns=h)["interfaces"][0]["rules"]) == 100001
    print(f"100,001 rules loaded in {took:.1f} s")
    # 64 expression rules per direction, not 65
    exprs = os.path.join(router.tmp, "exprs.rules")
    with open(exprs, "w") as f:
        f.writelines(f"--proto udp --drop 'udp dst port {1000 + i}'\n" for i in range(65))
    r = pktlens("policy", "load", "vb", exprs, ns=h, check=False)
    assert (r.returncode, r.stderr) == (2, f"pktlens: policy load: {exprs}:65:1: more than 64 ingress "
                                           "rules with an expression\n")
    with open(exprs, "w") as f:
        f.writelines(f"--proto udp --drop 'udp dst port {1000 + i}'\n" for i in range(64))
    pktlens("policy", "load", "vb", exprs, ns=h)
    router.send([frame(router, dict(src=A4[0], dst=D4[0], proto=17, sport=1, dport=1063), i) for i in range(3)])
    time.sleep(0.3)
    assert {k: v for k, v in rule_hits(router).items() if v} == {100065: 3}   # ids 100002.., port 1063


def prefix_rules(tag, n):
    """n different IPv6 /64 source prefixes, distinct for each tag (a small number)."""
    return [f"--src 2001:db8:{tag * 16 + (i >> 16):x}:{i & 0xffff:x}::/64 --drop\n" for i in range(n)]


def listed_ids(router):
    out = pktlens("policy", "list", "vb", ns=router.h, timeout=300).stdout
    return [int(x.split()[1]) for x in out.splitlines() if x.startswith("--id ")], out


@pytest.mark.scale
def test_rule_ids_stay_in_range_and_list_loads_back(router):
    """Alternating loads of 100,000 different rules keep ids within 1-262144, and `policy list`
    output always loads back; 200,000 rules replaced by 100,000 others load (ids of rules that
    went are given to new rules only when no other is left, with counters of their own) and
    leave exactly one counter per rule."""
    h = router.h
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=h)
    paths = {}
    for tag, n in (("a", 100000), ("b", 100000), ("c", 200000), ("d", 100000)):
        paths[tag] = os.path.join(router.tmp, f"{tag}.rules")
        with open(paths[tag], "w") as f:
            f.writelines(prefix_rules(ord(tag) - ord("a") + 1, n))
    for tag in ("a", "b", "a"):
        assert pktlens("policy", "load", "vb", paths[tag], ns=h, timeout=300).returncode == 0
        ids, text = listed_ids(router)
        assert len(ids) == 100000 and max(ids) <= 262144, (tag, max(ids))
    back = os.path.join(router.tmp, "back.rules")
    with open(back, "w") as f:
        f.write(text)
    assert pktlens("policy", "load", "vb", back, ns=h, timeout=300).returncode == 0
    assert listed_ids(router)[0] == ids
    # 200,000 -> 100,000 others; counters of a replaced rule never reach its id's new rule
    pktlens("policy", "load", "vb", paths["c"], ns=h, timeout=300)
    lo = [x for x in listed_ids(router)[1].splitlines() if x.startswith("--id 1 ")]
    net = ipaddress.ip_network(lo[0].split("--src ")[1].split()[0])
    router.send([frame(router, dict(src=net[1], dst=D6[0], proto=17, sport=1, dport=9), i) for i in range(3)])
    time.sleep(0.3)
    assert rule_hits(router)[1] == 3
    r = pktlens("policy", "load", "vb", paths["d"], ns=h, check=False, timeout=300)
    assert r.returncode == 0, r.stderr
    ids, text = listed_ids(router)
    assert len(ids) == 100000 and max(ids) <= 262144 and 1 in ids
    new1 = ipaddress.ip_network([x for x in text.splitlines() if x.startswith("--id 1 ")][0]
                                .split("--src ")[1].split()[0])
    assert new1 != net
    assert rule_hits(router)[1] == 0
    router.send([frame(router, dict(src=new1[1], dst=D6[0], proto=17, sport=1, dport=9), 9)])
    time.sleep(0.3)
    assert {k: v for k, v in rule_hits(router).items() if v} == {1: 1}
    # one counter per rule: nothing of the 200,000 left behind
    assert sum(k for _, k in counter_maps(router).values()) == 100000


@pytest.mark.parametrize("args", [["policy", "--help"], ["policy", "add", "--help"], ["policy", "help"]])
def test_help(args):
    r = pktlens(*args)
    assert r.stdout.startswith("Usage: pktlens policy add DEV") and not r.stderr


@pytest.mark.parametrize("args,msg", [
    (["policy"], None),
    (["policy", "frob"], "pktlens: policy: what is 'frob'? (see pktlens policy --help)\n"),
    (["policy", "add", "vb"], "pktlens: policy add: needs DEV and a rule (see pktlens policy --help)\n"),
    (["policy", "del", "vb"], "pktlens: policy del: needs DEV and a rule id\n"),
    (["policy", "del", "vb", "x"], "pktlens: policy del: vb: 'x' is not a rule id\n"),
    (["policy", "load", "vb"], "pktlens: policy load: needs DEV and FILE\n"),
    # an extra word is named, not taken for a missing DEV ("needs DEV and a rule id" with both given)
    (["policy", "del", "vb", "1", "2"], "pktlens: policy del: what is '2'? (see pktlens policy --help)\n"),
    (["policy", "flush", "vb", "extra"], "pktlens: policy flush: what is 'extra'? (see pktlens policy --help)\n"),
    (["policy", "load", "vb", "f", "extra"],
     "pktlens: policy load: what is 'extra'? (see pktlens policy --help)\n"),
    (["policy", "list", "vb", "extra"],
     "pktlens: policy list: what is 'extra'? (at most one DEV; see pktlens policy --help)\n"),
    (["filter", "clear", "vb", "extra"], "pktlens: filter clear: what is 'extra'? (see pktlens filter --help)\n"),
    (["attach", "vb", "extra"], "pktlens: attach: what is 'extra'? (one DEV only; see pktlens attach --help)\n"),
    # each option at most once: a repeated flag was taken silently
    (["policy", "add", "vb", "--proto", "udp", "--limit", "3pps", "--flows", "--flows"],
     "pktlens: policy add: vb: argument 6: --flows given twice (also at argument 5)\n"),
    (["policy", "flush", "vb", "--in", "--in"], "pktlens: policy flush: --in given twice\n"),
    (["policy", "flush", "vb", "--out", "--in", "--out"], "pktlens: policy flush: --out given twice\n"),
    (["policy", "add", "lo", "--src", "198.18.0.0/24", "--pass", "--flows"],
     "pktlens: policy add: lo: argument 4: --flows: only with --drop or --limit (the packets a rule passes "
     "or redirects are always in the flow table)\n"),
])
def test_usage_errors(args, msg):
    r = pktlens(*args, check=False)
    assert r.returncode == 2
    if msg:
        assert r.stderr == msg


@pytest.mark.parametrize("words", [["-j", "vb", "--proto", "udp", "--drop"],
                                   ["--json", "vb", "--proto", "udp", "--drop"],
                                   ["-p", "vb", "--proto", "udp", "--drop"],
                                   ["vb", "--proto", "udp", "--drop", "-p"]])
def test_add_takes_j_and_p_after_its_name(router, words):
    """`policy add` takes -j and -p after its name, as every command does (pktlens(8)), and
    last: `policy add -j vb ...` had been read as DEV '-j' and expression 'vb'."""
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=router.h)
    r = pktlens("policy", "add", *words, ns=router.h, check=False)
    assert (r.returncode, r.stderr) == (0, "")
    assert json.loads(r.stdout) == {"interface": "vb", "id": 1,
                                    "rule": "--id 1 --in --prio 1000 --proto udp --drop"}
    assert ("\n    " in r.stdout) == ("-p" in words)


def test_redirect_to_an_index_no_interface_has_is_refused(router):
    """`--redirect ifindex:N` takes back a target that is gone (a running rule redirects to
    it), but an index no interface has is a missing interface, refused like a missing name
    with its argument or file:line:col, the rules unchanged (it had been accepted)."""
    h = router.h
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=h)
    pktlens("policy", "add", "vb", "--proto", "udp", "--dport", "9", "--drop", ns=h)
    before = rules_listed("vb", h)
    r = pktlens("policy", "add", "vb", "--proto", "udp", "--redirect", "ifindex:7777", ns=h, check=False)
    assert (r.returncode, r.stderr) == (2, "pktlens: policy add: vb: argument 4: --redirect "
                                           "'ifindex:7777': no such interface\n")
    path = os.path.join(router.tmp, "missing.rules")
    with open(path, "w") as f:
        f.write("--proto tcp --drop\n  --out --proto udp --redirect ifindex:7778\n")
    r = pktlens("policy", "load", "vb", path, ns=h, check=False)
    assert (r.returncode, r.stderr) == (2, f"pktlens: policy load: {path}:2:32: --redirect "
                                           "'ifindex:7778': no such interface\n")
    assert rules_listed("vb", h) == before
    # a target that went away is still taken back, by add and by load
    pktlens("policy", "add", "vb", "--proto", "udp", "--dport", "7000", "--redirect", "vc", ns=h)
    idx = json.loads(sh("ip", "-n", h, "-j", "link", "show", "vc").stdout)[0]["ifindex"]
    sh("ip", "-n", h, "link", "del", "vc")
    pktlens("policy", "add", "vb", "--proto", "tcp", "--redirect", f"ifindex:{idx}", ns=h)
    with open(path, "w") as f:
        f.write(pktlens("policy", "list", "vb", ns=h).stdout)
    assert pktlens("policy", "load", "vb", path, ns=h).stdout == f"vb: 3 rules loaded from {path}\n"


@pytest.mark.parametrize("hooks", [["--xdp", "skb", "--tc", "none"],
                                   pytest.param(["--xdp", "none", "--tc", "in"], marks=pytest.mark.variant)],
                         ids=["xdp", "tc"])
def test_ports_past_six_ipv6_extension_headers(lab, hooks):
    """The parser walks up to six IPv6 extension headers (README) and then reads the ports:
    a chain of exactly six had been taken as longer than it walks, its UDP port unread, so
    a --dport rule missed it (the drops probe read it). Seven headers are past the walk."""
    from scapy.all import (Ether, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, IPv6ExtHdrRouting,
                           UDP)
    pktlens("attach", "vb", *hooks, ns=lab.b)
    pktlens("policy", "add", "vb", "--id", "1", "--proto", "udp", "--dport", "5353", "--pass", ns=lab.b)
    pktlens("policy", "add", "vb", "--id", "2", "--src", "2001:db8::1/128", "--pass", ns=lab.b)

    def frame(n):
        f = IPv6(src="2001:db8::1", dst="2001:db8::2") / IPv6ExtHdrHopByHop()
        for i in range(n - 1):
            f = f / (IPv6ExtHdrRouting() if i == 0 else IPv6ExtHdrDestOpt())
        return Ether(src=lab.mac(lab.a, "va"), dst=lab.mac(lab.b, "vb")) / f / UDP(sport=7, dport=5353)

    # 1..6 headers: the port is read; 7: the chain is longer than the walk, no port
    lab.send([frame(n) for n in range(1, 8)])
    for _ in range(50):
        got = {r["id"]: r["packets"] for r in pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"]}
        if sum(got.values()) == 7:
            break
        time.sleep(0.05)
    assert got == {1: 6, 2: 1}


def test_limit_error_names_the_first_line_past_it(lab):
    """A file past a limit names the first line past it in the file. A line equal to a running
    rule keeps that rule's (lower) id, so the loader's first rule past the limit in id order
    was an earlier line, one within the limit: 64 expression rules and a 65th that is already
    running were reported at line 64, not 65 (1,024 list rules and a 1,025th: 1,024)."""
    h = lab.b
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=h)
    for kept, line, lines, msg in [
            (["--pass", "udp port 9999"], "--pass 'udp port 9999'",
             [f"--pass 'udp port {i}'" for i in range(1, 65)],
             "more than 64 ingress rules with an expression"),
            (["--proto", "udp", "--dport", "9999", "--pass"], "--proto udp --dport 9999 --pass",
             [f"--proto udp --dport {i} --pass" for i in range(1, 1025)],
             "1025 ingress rules with ports, protocol, VLAN, both addresses, --sample or --limit: at most 1024")]:
        pktlens("policy", "flush", "vb", ns=h)
        pktlens("policy", "add", "vb", "--id", "5", *kept, ns=h)
        before = rules_listed("vb", h)
        path = os.path.join(lab.tmp, "limit.rules")
        with open(path, "w") as f:
            f.write("".join(ln + "\n" for ln in lines + [line]))
        r = pktlens("policy", "load", "vb", path, ns=h, check=False)
        assert (r.returncode, r.stderr) == (2, f"pktlens: policy load: {path}:{len(lines) + 1}:1: {msg}\n")
        assert rules_listed("vb", h) == before


def test_xdp_redirect_targets_swap_for_others(lab):
    """XDP redirects through a devmap that held 64 targets: a change adds the new set's targets
    before the swap and removes the old set's after it, so a set of 64 targets could not be
    replaced by another ("cannot redirect to ifindex N: Argument list too long", also with 40
    and 40 others). The map holds both sets now; a set past 64 targets is refused by name."""
    h = lab.b
    sh("ip", "-n", h, "-batch", "-", input="".join(f"link add t{i} type veth peer name u{i}\n"
                                                   for i in range(1, 67)))
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=h)
    path = os.path.join(lab.tmp, "targets.rules")

    def load(targets, check=True):
        with open(path, "w") as f:
            f.write("".join(f"--proto udp --dport {i} --redirect t{i}\n" for i in targets))
        return pktlens("policy", "load", "vb", path, ns=h, check=check)

    load(range(1, 65))
    assert load(range(3, 67)).stdout == f"vb: 64 rules loaded from {path}\n"
    assert re.findall(r"--redirect (t\d+)", pktlens("policy", "list", "vb", ns=h).stdout) == \
        [f"t{i}" for i in range(3, 67)]
    before = rules_listed("vb", h)
    r = load(range(1, 66), check=False)
    assert (r.returncode, r.stderr) == (2, f"pktlens: policy load: {path}:65:1: more than 64 interfaces to "
                                           "redirect to at xdp in\n")
    assert rules_listed("vb", h) == before


def test_rule_file_lines_up_to_the_limit_load_whatever_their_end(lab):
    """A line of a rules file holds 8190 bytes besides its end: exactly that many load ended
    by LF, CR LF or the end of the file; one more is refused naming FILE:LINE:COL (the first
    byte past the limit), exit 2, the rules running before untouched."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    pktlens("policy", "add", "vb", "--proto", "icmp", "--pass", ns=lab.b)
    before = rules_listed("vb", lab.b)

    def line(n, dport):
        rule = f"--proto udp --dport {dport} --drop"
        return rule + " " * (n - len(rule))

    for n, (end, width) in enumerate([("\n", 8190), ("\r\n", 8190), ("", 8190), ("\n", 8189)]):
        path = os.path.join(lab.tmp, f"ok{n}.rules")
        with open(path, "w", newline="") as f:
            f.write("# a comment\n--proto tcp --drop" + (end or "\n") + line(width, 100 + n) + end)
        r = pktlens("policy", "load", "vb", path, ns=lab.b, check=False)
        assert r.returncode == 0, (end, width, r.stderr)
        assert f"--dport {100 + n} --drop" in rules_listed("vb", lab.b)
    pktlens("policy", "flush", "vb", ns=lab.b)
    pktlens("policy", "add", "vb", "--proto", "icmp", "--pass", ns=lab.b)
    before = rules_listed("vb", lab.b)
    for n, (end, width) in enumerate([("\n", 8191), ("\r\n", 8191), ("", 8191), ("\n", 20000)]):
        path = os.path.join(lab.tmp, f"long{n}.rules")
        with open(path, "w", newline="") as f:
            f.write("# a comment\n" + line(width, 200 + n) + end)
        r = pktlens("policy", "load", "vb", path, ns=lab.b, check=False)
        assert (r.returncode, r.stderr) == \
            (2, f"pktlens: policy load: {path}:2:8191: line longer than 8190 bytes\n"), (end, width)
        assert rules_listed("vb", lab.b) == before


def test_add_default_id_is_what_help_says(lab):
    """`policy add --help` says how a rule without --id gets its id, as the code gives it: one
    above the highest, or the lowest free one when the highest is 262144 (the help said only
    "one above the highest")."""
    help_text = " ".join(pktlens("policy", "add", "--help").stdout.split())
    assert ("--id N the rule's id, 1-262144 (default: one above the highest, or the lowest free "
            "one when the highest is 262144)") in help_text
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    pktlens("policy", "add", "vb", "--id", "7", "--proto", "udp", "--drop", ns=lab.b)
    pktlens("policy", "add", "vb", "--proto", "tcp", "--drop", ns=lab.b)
    pktlens("policy", "add", "vb", "--id", "262144", "--proto", "icmp", "--drop", ns=lab.b)
    pktlens("policy", "add", "vb", "--proto", "sctp", "--drop", ns=lab.b)
    out = pktlens("policy", "list", "vb", ns=lab.b).stdout
    ids = {x.split("--proto ")[1].split()[0]: int(x.split()[1]) for x in out.splitlines()
           if x.startswith("--id ")}
    assert ids == {"udp": 7, "tcp": 8, "icmp": 262144, "sctp": 1}, out


def test_load_of_a_file_without_rules_needs_the_empty_set_header(lab, tmp_path):
    """`policy load` of a zero-byte file (a failed `policy list > f`, a wrong path's empty
    file) or of comments alone had removed every rule. A file without rules is refused (exit
    2, one line saying how to empty a set) and the running rules go on dropping; the header
    `policy list` prints for an empty set ('# DEV: 0 rules') is what says "empty", so list of
    an empty set loads back to an empty set (also with CR LF), and ping gets through."""
    lab2 = lab
    sh("ip", "-n", lab2.a, "addr", "add", "198.18.0.1/24", "dev", "va")
    sh("ip", "-n", lab2.b, "addr", "add", "198.18.0.2/24", "dev", "vb")
    lab2.static_neighbours()
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab2.b)
    pktlens("policy", "add", "vb", "--src", "198.18.0.1/32", "--drop", ns=lab2.b)

    def pings():
        return sh("ip", "netns", "exec", lab2.a, "ping", "-c", "1", "-W", "0.5", "198.18.0.2",
                  check=False).returncode == 0

    assert not pings()
    def rules():
        return [x["rule"] for x in pktlens_json("policy", "list", "vb", ns=lab2.b)["interfaces"][0]["rules"]]

    saved = rules()
    for name, text in (("zero", ""), ("comments", "# rules of vb\n\n   \r\n"),
                       ("other", "# vb: 0 rules, then some\n")):
        f = tmp_path / name
        f.write_text(text)
        r = pktlens("policy", "load", "vb", str(f), ns=lab2.b, check=False)
        assert r.returncode == 2, (name, r)
        assert r.stderr == (f"pktlens: policy load: {f}: no rules: a file that empties the rule "
                            "set says so in a line '# vb: 0 rules' (as `policy list` of an "
                            "empty set prints); or `policy flush vb`\n"), r.stderr
        assert rules() == saved, name
        assert not pings(), name
    pktlens("policy", "flush", "vb", ns=lab2.b)
    empty = pktlens("policy", "list", "vb", ns=lab2.b).stdout
    assert empty.splitlines()[0] == "# vb: 0 rules", empty
    pktlens("policy", "add", "vb", "--src", "198.18.0.1/32", "--drop", ns=lab2.b)
    f = tmp_path / "empty"
    f.write_bytes(empty.replace("\n", "\r\n").encode())
    r = pktlens("-j", "policy", "load", "vb", str(f), ns=lab2.b)
    assert json.loads(r.stdout) == {"interface": "vb", "rules": 0, "file": str(f)}
    assert pktlens_json("policy", "list", "vb", ns=lab2.b)["interfaces"][0]["rules"] == []
    assert pings()


def test_xdp_redirect_target_gone_stays_gone_when_its_index_comes_back(router):
    """XDP: the kernel takes a gone --redirect target out of the devmap, so its packets drop;
    an interface made later with the same index is not that target. `policy list` had named
    the new interface, and the next unrelated change (`policy add` of another rule, or loading
    back what list printed) put the index back in the devmap: the untouched rule started
    sending its packets out of the new interface. Now it stays gone (listed as `ifindex:N`,
    through a round trip too) until a rule new to the set names the new interface. Oracle: the
    new veth's peer's kernel receive counter."""
    h = router.h

    def arrived(ns=h, dev="vp"):
        """UDP frames to ports 7000-7001 that came in on dev, by nftables' ingress counter"""
        out = sh("ip", "netns", "exec", ns, "nft", "-j", "list", "table", "netdev", "t" + dev,
                 check=False)
        if out.returncode:
            sh("ip", "netns", "exec", ns, "nft", "-f", "-", input=(
                f"table netdev t{dev} {{ chain c {{ type filter hook ingress device {dev} "
                "priority 0; udp dport 7000-7001 counter; }; }\n"))
            return 0
        return [e["rule"]["expr"][-1]["counter"]["packets"]
                for e in json.loads(out.stdout)["nftables"] if "rule" in e][0]

    def send(dport=7000):
        router.send([frame(router, dict(src=A4[0], dst=D4[0], proto=17, sport=1, dport=dport), i)
                     for i in range(3)])
        time.sleep(0.2)

    # rules made on tc alone have no devmap entry: attach --force onto XDP makes them
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=h)
    pktlens("policy", "add", "vb", "--proto", "udp", "--dport", "7000", "--redirect", "vc", ns=h)
    pktlens("attach", "vb", "--force", "--xdp", "skb", "--tc", "none", ns=h)
    arrived(router.r, "vd")
    base = arrived(router.r, "vd")
    send()
    assert arrived(router.r, "vd") == base + 3
    idx = json.loads(sh("ip", "-n", h, "-j", "link", "show", "vc").stdout)[0]["ifindex"]
    sh("ip", "-n", h, "link", "del", "vc")
    sh("ip", "-n", h, "link", "add", "vn", "index", idx, "type", "veth", "peer", "name", "vp")
    for dev in ("vn", "vp"):
        sh("ip", "-n", h, "link", "set", dev, "up")
    arrived()

    gone = f"--id 1 --in --prio 1000 --proto udp --dport 7000 --redirect ifindex:{idx}"
    assert pktlens("policy", "list", "vb", ns=h).stdout.splitlines()[1] == gone
    pktlens("policy", "add", "vb", "--proto", "tcp", "--drop", ns=h)
    send()
    assert arrived() == 0
    text = pktlens("policy", "list", "vb", ns=h).stdout
    assert text.splitlines()[1] == gone, text
    assert pktlens_json("policy", "list", "vb", ns=h)["interfaces"][0]["rules"][0]["redirect"] is None
    path = os.path.join(router.tmp, "back.rules")
    with open(path, "w") as f:
        f.write(text)
    pktlens("policy", "load", "vb", path, ns=h)
    send()
    assert arrived() == 0
    assert rule_hits(router) == {1: 9, 2: 0}
    # a rule new to the set names vn: that index redirects again, for both rules
    pktlens("policy", "add", "vb", "--proto", "udp", "--dport", "7001", "--redirect", "vn", ns=h)
    assert pktlens("policy", "list", "vb", ns=h).stdout.splitlines()[1] == gone.replace(
        f"ifindex:{idx}", "vn")
    send(7000)
    send(7001)
    assert arrived() == 6
