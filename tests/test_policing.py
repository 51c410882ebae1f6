# SPDX-License-Identifier: GPL-2.0
"""`policy add ... --limit`: token-bucket rules (policing), per rule and per key.

Three namespaces (lab.RouterLab): sender -> router (pktlens on vb) -> receiver. A paced
sender (tests/pace_send.c) replays a schedule; tcpdump on the sender's va records what was
really sent and when (the kernel's timestamps), tcpdump on the receiver's vd what got
through. Expectations come from those captures: rate x (last - first send) + burst, or a
token bucket simulated here on the sent timestamps, never from pktlens' own output. The
same traffic against nftables' `limit rate` is measured in the same test and reported.
"""
import json
import os
import struct
import subprocess
import sys
import time

import pytest

from lab import OUT, Exporter, netns_ino, pktlens, pktlens_json, rules_listed, sh

PACE_SEND = str(OUT / "tests" / "pace_send")
TOL = 0.05


def _csum(b):
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xFFFF)
    return ~(s + (s >> 16)) & 0xFFFF


def udp_frame(src_mac, dst_mac, src, dst, dport, size, sport=1000):
    """Ethernet/IPv4/UDP of `size` bytes (no scapy: thousands of frames)."""
    payload = b"P" * (size - 14 - 20 - 8)
    udp = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes(int(x) for x in src.split(".")), bytes(int(x) for x in dst.split(".")))
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    mac = lambda m: bytes(int(x, 16) for x in m.split(":"))  # noqa: E731
    return mac(dst_mac) + mac(src_mac) + b"\x08\x00" + ip + udp


def write_pcap(path, timed):
    """[(seconds, frame)] as a nanosecond pcap file."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1))
        for t, fr in timed:
            ns = int(round(t * 1e9))
            f.write(struct.pack("<IIII", ns // 10**9, ns % 10**9, len(fr), len(fr)) + fr)


def read_pcap(path):
    """[(timestamp, frame)] of a classic pcap file (tcpdump's, micro- or nanoseconds)."""
    out = []
    if not os.path.exists(path):
        return out
    with open(path, "rb") as f:
        hdr = f.read(24)
        if len(hdr) < 24:
            return out
        magic = struct.unpack("<I", hdr[:4])[0]
        e = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        div = 1e9 if magic in (0xA1B23C4D, 0x4D3CB2A1) else 1e6
        while True:
            rec = f.read(16)
            if len(rec) < 16:
                return out
            sec, frac, caplen, wire = struct.unpack(e + "IIII", rec)
            out.append((sec + frac / div, f.read(caplen), wire))


class Capture:
    """tcpdump on one interface of a namespace, one direction, UDP only."""

    def __init__(self, lab, ns, dev, direction):
        self.path = os.path.join(lab.tmp, f"{dev}-{direction}-{time.monotonic_ns()}.pcap")
        self.p = subprocess.Popen(["ip", "netns", "exec", ns, "tcpdump", "-i", dev, "-Q", direction, "-U", "-n",
                                   "--immediate-mode", "-B", "32768", "-s", "64", "-w", self.path, "udp"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        line = self.p.stderr.readline()
        assert "listening" in line, line

    def stop(self, settle=0.5):
        time.sleep(settle)
        self.p.send_signal(2)
        self.p.wait(timeout=10)
        tail = self.p.stderr.read()
        assert "\n0 packets dropped by kernel" in tail, f"tcpdump lost frames: {tail}"
        return read_pcap(self.path)


def src_of(fr):
    return ".".join(str(b) for b in fr[26:30])


def dport_of(fr):
    return struct.unpack("!H", fr[36:38])[0]


def replay(router, timed, seconds_max=30):
    """Send the schedule paced from s's va; (what va sent, what vd received), both tcpdump's."""
    path = os.path.join(router.tmp, f"sched-{time.monotonic_ns()}.pcap")
    write_pcap(path, timed)
    tx = Capture(router, router.s, "va", "out")
    rx = Capture(router, router.r, "vd", "in")
    r = subprocess.run(["timeout", "-s", "KILL", str(seconds_max), "ip", "netns", "exec", router.s,
                        PACE_SEND, "va", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    sent, late_us = (int(x) for x in r.stdout.split())
    assert sent == len(timed)
    rx_frames = rx.stop()
    tx_frames = tx.stop(settle=0)
    assert len(tx_frames) == sent, "tcpdump at the sender did not see every frame"
    print(f"  sender: {sent} frames, {sent / (tx_frames[-1][0] - tx_frames[0][0]):.0f} pps measured, "
          f"latest {late_us} us late", file=sys.stderr)
    return tx_frames, rx_frames


def steady(router, pps, seconds, size=100, dport=5001, src=None):
    """pps frames a second for `seconds`, to the receiver."""
    va, vb = router.mac(router.s, "va"), router.mac(router.h, "vb")
    fr = udp_frame(va, vb, src or router.S4, router.R4, dport, size)
    return [(i / pps, fr) for i in range(int(pps * seconds))]


def gcra(times, costs, rate, burst):
    """How many of the arrivals a token bucket of rate/burst (same units as costs) lets through."""
    tat, passed = None, []
    tau = burst / rate
    for t, c in zip(times, costs):
        cur = t if tat is None or tat < t else tat
        inc = c / rate
        if cur + inc - t <= tau + 1e-12:
            tat = cur + inc
            passed.append(True)
        else:
            passed.append(False)
    return passed


def rule_doc(router, rid, dev="vb"):
    doc = pktlens_json("policy", "list", dev, ns=router.h)
    return next(r for r in doc["interfaces"][0]["rules"] if r["id"] == rid)


def within(got, want, tol=TOL, slack=0):
    return abs(got - want) <= tol * want + slack


NFT = """table netdev plpolice {{
 chain in {{
  type filter hook ingress device vb priority 0;
  udp dport {dport} limit rate over {rate} burst {burst} drop
 }}
}}
"""


@pytest.mark.variant    # the kernel's GCRA; parsing and listing are tested apart
def test_pps_limit_conforms_and_compare_with_nftables(router, record_property):
    """4,000 pps for 3 s against 1,000 pps burst 100 (XDP): rate x time + burst get through."""
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=router.h)
    pktlens("policy", "add", "vb", "--proto", "udp", "--dport", "5001", "--limit", "1000pps",
            "--burst", "100", ns=router.h)
    sched = steady(router, 4000, 3)
    tx, rx = replay(router, sched)
    span = tx[-1][0] - tx[0][0]
    want = 1000 * span + 100
    got = sum(1 for _, fr, _ in rx if dport_of(fr) == 5001)
    r = rule_doc(router, 1)
    print(f"  pktlens: {got} through, want {want:.0f} ({(got - want) / want:+.2%})", file=sys.stderr)
    assert within(got, want), (got, want)
    assert r["packets"] == len(tx)
    assert r["conformed_packets"] + r["exceeded_packets"] == r["packets"]
    assert r["conformed_bytes"] + r["exceeded_bytes"] == r["bytes"]
    assert r["conformed_packets"] == got
    assert r["limit"] == dict(rate=1000, rate_unit="packets/s", burst=100, burst_unit="packets",
                              per="rule", over="drop")
    # the same traffic through nftables' limit on the same hook (pktlens off)
    pktlens("detach", "vb", ns=router.h)
    sh("ip", "netns", "exec", router.h, "nft", "-f", "-",
       input=NFT.format(dport=5001, rate="1000/second", burst="100 packets"))
    try:
        tx2, rx2 = replay(router, sched)
    finally:
        sh("ip", "netns", "exec", router.h, "nft", "delete", "table", "netdev", "plpolice", check=False)
    want2 = 1000 * (tx2[-1][0] - tx2[0][0]) + 100
    got2 = len(rx2)
    ours, nft = (got - want) / want, (got2 - want2) / want2
    print(f"  nftables: {got2} through, want {want2:.0f} ({nft:+.2%}); pktlens {ours:+.2%}", file=sys.stderr)
    record_property("pktlens_error", ours)
    record_property("nftables_error", nft)


@pytest.mark.variant    # the kernel's GCRA; parsing and listing are tested apart
def test_bps_limit_on_tc(router):
    """A bit rate on tc ingress: bytes through within 5% of rate/8 x time + burst."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=router.h)
    pktlens("policy", "add", "vb", "--dport", "5002", "--proto", "udp", "--limit", "4mbit",
            "--burst", "20000bytes", ns=router.h)
    sched = steady(router, 2000, 2, size=500, dport=5002)     # 8 Mbit/s
    tx, rx = replay(router, sched)
    span = tx[-1][0] - tx[0][0]
    want = 4e6 / 8 * span + 20000
    got = sum(wire for _, fr, wire in rx if dport_of(fr) == 5002)
    model = sum(gcra([t for t, _, _ in tx], [w * 8 for _, _, w in tx], 4e6, 20000 * 8))
    r = rule_doc(router, 1)
    print(f"  bytes through {got}, want {want:.0f} ({(got - want) / want:+.2%}), "
          f"model {model} frames, got {len(rx)}", file=sys.stderr)
    assert within(got, want), (got, want)
    assert within(len(rx), model), (len(rx), model)
    assert r["packets"] == len(tx) and r["bytes"] == sum(w for _, _, w in tx)
    assert r["conformed_packets"] + r["exceeded_packets"] == r["packets"]
    assert r["conformed_bytes"] + r["exceeded_bytes"] == r["bytes"]
    assert r["conformed_bytes"] == got
    assert r["limit"]["rate"] == 4000000 and r["limit"]["burst_unit"] == "bytes"


def many_sources(router, n, seconds, rate_of):
    """n sources 198.18.1.100.., source i at rate_of(i) pps, interleaved by time."""
    va, vb = router.mac(router.s, "va"), router.mac(router.h, "vb")
    timed = []
    for i in range(n):
        fr = udp_frame(va, vb, f"198.18.1.{100 + i}", router.R4, 5003, 80)
        rate = rate_of(i)
        off = i / (n * rate)        # spread the sources' phases
        timed += [(off + k / rate, fr) for k in range(int(rate * seconds))]
    return sorted(timed, key=lambda x: x[0])


@pytest.mark.variant    # the kernel's GCRA; parsing and listing are tested apart
def test_per_source_limits_each_source_on_its_own(router):
    """50 sources at 10..304 pps against 100 pps burst 10 per source."""
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=router.h)
    pktlens("policy", "add", "vb", "--proto", "udp", "--limit", "100pps", "--burst", "10",
            "--per", "src", "--per-size", "1024", ns=router.h)
    tx, rx = replay(router, many_sources(router, 50, 2, lambda i: 10 + 6 * i))
    sent, got = {}, {}
    for t, fr, _ in tx:
        sent.setdefault(src_of(fr), []).append(t)
    for _, fr, _ in rx:
        got[src_of(fr)] = got.get(src_of(fr), 0) + 1
    bad = []
    for src, times in sent.items():
        model = sum(gcra(times, [1] * len(times), 100, 10))
        if not within(got.get(src, 0), model, slack=2):
            bad.append((src, len(times), model, got.get(src, 0)))
    assert not bad, f"(source, sent, model, through): {bad}"
    limited = [s for s, times in sent.items() if len(times) > 260]
    assert len(limited) > 20 and all(got[s] < len(sent[s]) for s in limited)
    r = rule_doc(router, 1)
    assert r["conformed_packets"] == len(rx) and r["packets"] == len(tx)
    assert r["conformed_packets"] + r["exceeded_packets"] == r["packets"]
    assert r["keys"] == 50 and r["keys_evicted"] == 0


def test_per_source_ipv4_and_its_mapped_ipv6_form_are_two_keys(router):
    """--per src: 198.18.1.9 and ::ffff:198.18.1.9 (an IPv6 source, as tcpdump's and --src's
    families keep them apart) are two sources, each with its own bucket; they had shared one
    key (IPv4 is kept mapped into IPv6), so one family's packets used up the other's."""
    from scapy.all import Ether, IP, IPv6, UDP

    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=router.h)
    pktlens("policy", "add", "vb", "--proto", "udp", "--limit", "1pps", "--burst", "1",
            "--per", "src", ns=router.h)
    e = Ether(src=router.mac(router.s, "va"), dst=router.mac(router.h, "vb"))
    router.send([e / IP(src="198.18.1.9", dst="198.18.2.1") / UDP(sport=1, dport=9),
                 e / IPv6(src="::ffff:198.18.1.9", dst="2001:db8:2::1") / UDP(sport=1, dport=9)])
    time.sleep(0.2)
    r = rule_doc(router, 1)
    assert (r["packets"], r["conformed_packets"], r["keys"]) == (2, 2, 2)


def test_per_source_lru_full_counts_evictions(router):
    """--per-size 16 for 50 sources: the LRU evicts, counts it, and judging goes on."""
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=router.h)
    pktlens("policy", "add", "vb", "--proto", "udp", "--limit", "1000pps", "--burst", "5",
            "--per", "src", "--per-size", "16", ns=router.h)
    tx, rx = replay(router, many_sources(router, 50, 0.5, lambda i: 40))
    r = rule_doc(router, 1)
    assert r["packets"] == len(tx) and r["conformed_packets"] + r["exceeded_packets"] == len(tx)
    assert r["conformed_packets"] == len(rx)
    assert 0 < r["keys"] <= 16
    assert r["keys_evicted"] >= 50 - 16
    text = pktlens("policy", "list", "vb", ns=router.h).stdout
    assert f"{r['keys']} keys tracked of 16, {r['keys_evicted']} evicted" in text
    # Prometheus: the same numbers, under this attachment's labels
    e = Exporter()
    try:
        _, body, _ = e.get()
    finally:
        e.kill()
    ino = str(netns_ino(router.h))
    mine = {ln.split("{")[0]: ln.rsplit(" ", 1)[1] for ln in body.splitlines()
            if ln.startswith("pktlens_policy_rule_") and f'netns="{ino}",netns_name="{router.h}",device="vb"' in ln}
    assert mine["pktlens_policy_rule_packets_total"] == str(len(tx))
    assert mine["pktlens_policy_rule_conformed_packets_total"] == str(r["conformed_packets"])
    assert mine["pktlens_policy_rule_exceeded_packets_total"] == str(r["exceeded_packets"])
    assert mine["pktlens_policy_rule_exceeded_bytes_total"] == str(r["exceeded_bytes"])
    assert mine["pktlens_policy_rule_keys"] == str(r["keys"])
    assert mine["pktlens_policy_rule_keys_evicted_total"] == str(r["keys_evicted"])
    assert pktlens_json("stats", "vb", ns=router.h)["interfaces"][0]["hooks"][0]["packets"] >= len(tx)


def test_over_pass_and_the_next_rule(router):
    """Within the rate a packet goes on to the next rule (here: drop); the excess --over pass."""
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=router.h)
    pktlens("policy", "add", "vb", "--prio", "1", "--proto", "udp", "--limit", "10pps", "--burst", "20",
            "--over", "pass", ns=router.h)
    pktlens("policy", "add", "vb", "--prio", "2", "--proto", "udp", "--drop", ns=router.h)
    sched = steady(router, 1000, 0.1, dport=5004)       # 100 frames in 0.1 s: ~21 conform
    tx, rx = replay(router, sched)
    r1, r2 = rule_doc(router, 1), rule_doc(router, 2)
    assert r1["packets"] == 100 and r1["conformed_packets"] + r1["exceeded_packets"] == 100
    assert 20 <= r1["conformed_packets"] <= 23
    assert r2["packets"] == r1["conformed_packets"]
    assert len(rx) == r1["exceeded_packets"]


def test_same_syntax_in_files_and_list_loads_back(router, tmp_path):
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "out", ns=router.h)
    rules = tmp_path / "rules"
    rules.write_text("--proto tcp 'tcp[tcpflags] & tcp-syn != 0' --limit 200pps --burst 50 --per src\n"
                     "--out --limit 2gbit --per flow --per-size 100 --over sample 1/8\n"
                     "--vlan 7 --src 198.18.1.0/24 --limit 5kbit --burst 70000bytes --per dst --over pass\n")
    r = pktlens("policy", "load", "vb", str(rules), ns=router.h)
    assert r.returncode == 0, r.stderr
    text = pktlens("policy", "list", "vb", ns=router.h).stdout
    assert "--limit 200pps --burst 50packets --per src --per-size 65536 --over drop" in text
    assert "--limit 2gbit --burst 25000000bytes --per flow --per-size 100 --over sample 1/8" in text
    assert "--limit 5kbit --burst 70000bytes --per dst --per-size 65536 --over pass" in text
    saved = tmp_path / "saved"
    saved.write_text(text)
    before = pktlens_json("policy", "list", "vb", ns=router.h)
    assert pktlens("policy", "load", "vb", str(saved), ns=router.h).returncode == 0
    after = pktlens_json("policy", "list", "vb", ns=router.h)
    assert [x["rule"] for x in after["interfaces"][0]["rules"]] == \
        [x["rule"] for x in before["interfaces"][0]["rules"]]


BAD = [
    (["--limit", "0"], "--limit '0': the rate must be 1-1000000000pps"),
    (["--limit", "0pps"], "--limit '0pps': the rate must be 1-1000000000pps"),
    (["--limit", "0mbit"], "--limit '0mbit': the rate must be 1-1000000mbit"),
    (["--limit", "10furlongs"], "--limit '10furlongs': not RATE[pps|bps|kbit|mbit|gbit]"),
    (["--limit", "pps"], "--limit 'pps': not RATE"),
    (["--limit", "-5pps"], "--limit '-5pps': not RATE"),
    (["--limit", "1.5mbit"], "--limit '1.5mbit': not RATE"),
    (["--limit", "99999999999999999999999pps"], "the rate must be 1-1000000000pps"),
    (["--limit", "18446744073709551616bps"], "the rate must be 1-1000000000000bps"),
    (["--limit", "1000000000001bps"], "--limit '1000000000001bps': the rate must be 1-1000000000000bps"),
    (["--limit", "99999999999999999999kbit"], "the rate must be 1-1000000000kbit"),
    (["--limit", "10Mbps"], "--limit '10Mbps': not RATE"),
    (["--limit", "2000000000pps"], "the rate must be 1-1000000000pps"),
    (["--limit", "1001gbit"], "the rate must be 1-1000gbit"),
    (["--limit", "1000pps", "--burst", "0"], "--burst '0': must be 1-1000000000 packets"),
    (["--limit", "1000pps", "--burst", "99999999999999999999"], "--burst '99999999999999999999': must be"),
    (["--limit", "10", "--burst", "1000000000"],
     "--burst 1000000000: more than 2^56 ns of traffic at 10 (at most 720575940 packets)"),
    (["--limit", "1bps", "--burst", "72057594bytes"], "at 1bps (at most 9007199 bytes)"),
    (["--limit", "1000pps", "--burst", "10bytes"], "a packet rate takes a burst in packets"),
    (["--limit", "1mbit", "--burst", "10packets"], "a bit rate takes a burst in bytes"),
    (["--limit", "1mbit", "--burst", "10kb"], "--burst '10kb': not N[packets|bytes]"),
    (["--limit", "100", "--per", "src", "--per-size", "0"], "--per-size '0': not a number 1-16777216"),
    (["--limit", "100", "--per", "src", "--per-size", "16777217"], "--per-size '16777217'"),
    (["--limit", "100", "--per-size", "10"], "--per-size: only with --per src, dst or flow"),
    (["--limit", "100", "--per", "host"], "--per 'host': not rule, src, dst or flow"),
    (["--limit", "100", "--over", "reject"], "--over 'reject': not drop, pass or sample 1/N"),
    (["--limit", "100", "--over", "sample"], "--over sample: not 1/N"),
    (["--limit", "100", "--over", "sample "], "--over sample: not 1/N"),
    (["--limit", "100", "--over", "sample", "1/0"], "--over sample 1/0: not 1/N"),
    (["--burst", "10", "--drop"], "--burst: only with --limit"),
    (["--per", "src", "--drop"], "--per: only with --limit"),
    (["--limit", "100", "--drop"], "a rule has one action"),
    (["--drop", "--limit", "100"], "a rule has one action"),
    (["--limit", "100", "--burst", "5", "--burst", "6"], "--burst given twice"),
    (["--limit"], "--limit needs a value"),
]


def test_rates_up_to_the_limit_in_every_unit_and_case(lab):
    """A bit rate in bps up to 1 Tbit/s, as any unit is; units in tc's spellings (Mbit, Kbit,
    GBIT): each rule shows the rate it was given, in the unit's own spelling."""
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=lab.b)
    given = [("40000000000bps", None, "--limit 40000000000bps"),
             ("1000000000000bps", None, "--limit 1000000000000bps"),
             ("1000gbit", None, "--limit 1000gbit"), ("20Mbit", None, "--limit 20mbit"),
             ("300Kbit", "4000Bytes", "--limit 300kbit --burst 4000bytes"),
             ("2GBIT", None, "--limit 2gbit"), ("50PPS", "7Packets", "--limit 50pps --burst 7packets")]
    for rate, burst, _ in given:
        pktlens("policy", "add", "vb", "--proto", "udp", "--limit", rate,
                *(["--burst", burst] if burst else []), ns=lab.b)
    rules = [r["rule"] for r in pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"]]
    assert [any(want + " " in r + " " for r in rules) for _, _, want in given] == [True] * len(given), rules
    # -j among the rule's words (as every command takes it), not an expression word '-j';
    # `--over 'sample 1/N'` in one word, as `--sample 1/N` is (both had been refused)
    for words, want in ((["-j", "--limit", "70pps", "--over", "sample 1/9", "--proto", "udp"],
                         "--limit 70pps --burst 7packets --per rule --over sample 1/9"),
                        (["--limit", "80pps", "--json", "--over=sample 1/3", "udp"],
                         "--limit 80pps --burst 8packets --per rule --over sample 1/3 'udp'")):
        r = pktlens("policy", "add", "vb", *words, ns=lab.b, check=False)
        assert r.returncode == 0, (words, r.stderr)
        assert json.loads(r.stdout)["rule"].endswith(want), r.stdout


def test_bad_input_changes_nothing(lab, tmp_path):
    """Each bad limit: one line naming it, exit 2, by `add` and in a file (FILE:LINE:COL); no change."""
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=lab.b)
    pktlens("policy", "add", "vb", "--proto", "udp", "--limit", "300pps", ns=lab.b)
    before = rules_listed("vb", lab.b)
    f = tmp_path / "rules"
    for words, msg in BAD:
        r = pktlens("policy", "add", "vb", "--proto", "udp", *words, ns=lab.b, check=False)
        assert r.returncode == 2, (words, r.stderr)
        assert r.stderr.startswith("pktlens: policy add: vb: argument ") and msg in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1, r.stderr
        f.write_text("# ok\n--proto icmp --drop\n  --proto udp " + " ".join(words) + "\n")
        r = pktlens("policy", "load", "vb", str(f), ns=lab.b, check=False)
        assert r.returncode == 2 and r.stderr.startswith(f"pktlens: policy load: {f}:3:") and \
            msg in r.stderr, (words, r.stderr)
        assert r.stderr.count("\n") == 1, r.stderr
        col = int(r.stderr.split(":")[4])
        line = f.read_text().splitlines()[2]
        assert col > 2 and line[col - 2] == " " and line[col - 1] != " ", (col, line)   # a word's start
    assert rules_listed("vb", lab.b) == before


def test_help_man_and_readme_describe_limits():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    help_text = pktlens("policy", "--help").stdout
    with open(os.path.join(root, "docs", "pktlens.8")) as f:
        man = f.read().replace("\\-", "-")
    with open(os.path.join(root, "README.md")) as f:
        readme = f.read()
    for word in ("--limit", "--burst", "--per", "--per-size", "--over", "pps", "kbit", "mbit", "gbit",
                 "sample 1/N"):
        assert word in help_text and word in man and word in readme, word


def test_per_size_change_keeps_the_keys_and_counts_only_real_evictions(router, tmp_path):
    """A --per src rule tracking 20 sources, loaded again with a larger --per-size: the 20 keys
    (and their buckets) carry over and none counts as evicted; with a smaller one, the keys
    that do not fit are the evicted ones. (Its keys started afresh, all 20 counted evicted.)"""
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=router.h)
    pktlens("policy", "add", "vb", "--proto", "udp", "--limit", "1000pps", "--burst", "5",
            "--per", "src", "--per-size", "64", ns=router.h)
    tx, rx = replay(router, many_sources(router, 20, 0.2, lambda i: 50))
    r = rule_doc(router, 1)
    assert (r["keys"], r["keys_evicted"], r["packets"]) == (20, 0, len(tx))
    text = pktlens("policy", "list", "vb", ns=router.h).stdout
    assert "--per-size 64 " in text, text
    for size in (4096, 8):
        f = tmp_path / f"rules-{size}"
        f.write_text(text.replace("--per-size 64 ", f"--per-size {size} "))
        pktlens("policy", "load", "vb", str(f), ns=router.h)
        r = rule_doc(router, 1)
        assert r["limit"]["per_size"] == size and r["packets"] == len(tx), r
        if size > 20:
            assert (r["keys"], r["keys_evicted"]) == (20, 0), r
        else:   # the kernel's LRU may evict a little early: what it keeps, and the rest
            assert 0 < r["keys"] <= size and r["keys"] + r["keys_evicted"] == 20, r
    # the rule goes on judging with what it kept
    tx2, _ = replay(router, many_sources(router, 20, 0.1, lambda i: 50))
    r = rule_doc(router, 1)
    assert r["packets"] == len(tx) + len(tx2) and 0 < r["keys"] <= 8


@pytest.mark.parametrize("new_size", [64, 128])
def test_per_change_tracks_only_keys_of_the_new_kind(router, tmp_path, new_size):
    """A --per src rule tracking 20 sources, loaded again as --per dst (its --per-size the same
    or not): the 20 source keys would never match again and are no longer tracked, nor counted
    evicted (the LRU evicted none); the traffic after it, 20 sources to one destination, is one
    key. (At the same size the map was kept whole: 21 keys tracked, 20 of them dead.)"""
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=router.h)
    pktlens("policy", "add", "vb", "--proto", "udp", "--limit", "1000pps", "--burst", "5",
            "--per", "src", "--per-size", "64", ns=router.h)
    tx, _ = replay(router, many_sources(router, 20, 0.2, lambda i: 50))
    assert (rule_doc(router, 1)["keys"], rule_doc(router, 1)["keys_evicted"]) == (20, 0)
    text = pktlens("policy", "list", "vb", ns=router.h).stdout
    f = tmp_path / "rules"
    f.write_text(text.replace("--per src --per-size 64 ", f"--per dst --per-size {new_size} "))
    pktlens("policy", "load", "vb", str(f), ns=router.h)
    r = rule_doc(router, 1)
    assert r["limit"]["per"] == "dst" and r["limit"]["per_size"] == new_size, r
    assert (r["keys"], r["keys_evicted"], r["packets"]) == (0, 0, len(tx)), r
    tx2, _ = replay(router, many_sources(router, 20, 0.1, lambda i: 50))
    r = rule_doc(router, 1)
    assert (r["keys"], r["keys_evicted"], r["packets"]) == (1, 0, len(tx) + len(tx2)), r


@pytest.mark.parametrize("per", ["rule", "src"])
def test_a_changed_rate_starts_with_a_full_bucket(lab, tmp_path, per):
    """A rule loaded again (same id) with a higher rate and burst judges by them at once: its
    bucket (a time, the old rate's) had been kept, so 1pps burst 50 used up held back the new
    100000pps burst 1000 for 50 s, dropping everything. Counters and keys stay the rule's."""
    from scapy.all import Ether, IP, UDP

    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=lab.b)
    pktlens("policy", "add", "vb", "--proto", "udp", "--dport", "7000", "--limit", "1pps", "--burst", "50",
            *(["--per", per] if per != "rule" else []), ns=lab.b)
    e = Ether(src=lab.mac(lab.a, "va"), dst=lab.mac(lab.b, "vb"))
    frames = [e / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=1, dport=7000)] * 60
    lab.send(frames)
    lab.wait_packets(60)
    r = pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"][0]
    assert (r["packets"], r["conformed_packets"], r["exceeded_packets"]) == (60, 50, 10), r
    text = pktlens("policy", "list", "vb", ns=lab.b).stdout
    f = tmp_path / "rules"
    f.write_text(text.replace("--limit 1pps --burst 50packets", "--limit 100000pps --burst 1000packets"))
    pktlens("policy", "load", "vb", str(f), ns=lab.b)
    lab.send(frames)
    lab.wait_packets(120)
    r = pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"][0]
    assert r["limit"]["rate"] == 100000 and r["limit"]["burst"] == 1000, r
    assert (r["packets"], r["conformed_packets"], r["exceeded_packets"]) == (120, 110, 10), r
    assert r.get("keys", 1) == 1, r


@pytest.mark.parametrize("per,v6", [("src", False), pytest.param("dst", True, marks=pytest.mark.variant)])
def test_a_changed_rate_refills_every_key_of_a_crowded_map(lab, tmp_path, per, v6):
    """60 keys in a --per-size 64 map (64 hash buckets: many hold two or more keys), each bucket
    used up at 1pps burst 20, loaded again at 100pps burst 3: every key is kept, none evicted, and
    gets a full bucket, so 3 packets of each conform. (The refill walked the map key by key while
    updating it: an update puts its key first in its hash bucket, so the walk went back and forth
    between the first two keys sharing a bucket and refilled a handful, the other keys' 3 packets
    all exceeded; and each update in place took a free node of the nearly full LRU, which evicted
    other keys for it: 12 of the 60.)"""
    from scapy.all import Ether, IP, IPv6, UDP

    n = 60
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=lab.b)
    pktlens("policy", "add", "vb", "--proto", "udp", "--limit", "1pps", "--burst", "20", "--per", per,
            "--per-size", "64", ns=lab.b)
    e = Ether(src=lab.mac(lab.a, "va"), dst=lab.mac(lab.b, "vb"))
    if v6:
        frames = [e / IPv6(src="2001:db8::1", dst=f"2001:db8:5::{i + 1:x}") / UDP(sport=1, dport=9)
                  for i in range(n)]
    else:
        frames = udp_from_sources(lab, n)
    lab.send(frames * 21, cpu=0)   # one CPU's LRU free list: no key evicted early
    lab.wait_packets(21 * n)
    r = pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"][0]
    assert (r["packets"], r["keys"], r["conformed_packets"]) == (21 * n, n, 20 * n), r
    before = r["conformed_packets"]
    text = pktlens("policy", "list", "vb", ns=lab.b).stdout
    f = tmp_path / "rules"
    f.write_text(text.replace("--limit 1pps --burst 20packets", "--limit 100pps --burst 3packets"))
    pktlens("policy", "load", "vb", str(f), ns=lab.b)
    r = pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"][0]
    assert (r["limit"]["rate"], r["keys"], r["keys_evicted"]) == (100, n, 0), r
    lab.send(frames * 3, cpu=0)
    lab.wait_packets(24 * n)
    r = pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"][0]
    assert r["packets"] == 24 * n and r["conformed_packets"] - before == 3 * n, r


def test_a_rule_that_becomes_a_limit_counts_conformed_plus_exceeded_as_matched(lab, tmp_path):
    """--id 5 --drop loaded again as --id 5 --limit: conformed + exceeded = matched still holds
    (its drop-time matches had been kept under the limit's, 20 matched of 10 judged), and a
    limit that was a --pass in between starts afresh too, not with its first stint's numbers."""
    from scapy.all import Ether, IP, UDP

    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=lab.b)
    pktlens("policy", "add", "vb", "--id", "5", "--proto", "udp", "--drop", ns=lab.b)
    e = Ether(src=lab.mac(lab.a, "va"), dst=lab.mac(lab.b, "vb"))
    frames = [e / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=1, dport=7000)] * 10
    f = tmp_path / "rules"
    sent = 0
    for action in ("--limit 1pps --burst 3", "--pass", "--limit 1pps --burst 4"):
        lab.send(frames)
        sent += 10
        lab.wait_packets(sent)
        f.write_text(f"--id 5 --proto udp {action}\n")
        pktlens("policy", "load", "vb", str(f), ns=lab.b)
    lab.send(frames)
    lab.wait_packets(sent + 10)
    r = pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"][0]
    assert (r["packets"], r["conformed_packets"], r["exceeded_packets"]) == (10, 4, 6), r
    assert r["conformed_bytes"] + r["exceeded_bytes"] == r["bytes"], r


def udp_from_sources(lab, n, dport=9000):
    """One UDP frame from each of n sources 198.18.0.10.. to vb."""
    from scapy.all import Ether, IP, UDP

    e = Ether(src=lab.mac(lab.a, "va"), dst=lab.mac(lab.b, "vb"))
    return [e / IP(src=f"198.18.0.{10 + i}", dst="198.18.0.2") / UDP(sport=1, dport=dport)
            for i in range(n)]


@pytest.mark.parametrize("action", ["--limit 1pps --burst 1 --per src", "--sample 1/1", "--drop"])
def test_load_identical_rule_keeps_counters_when_a_line_claims_its_id(lab, tmp_path, action):
    """A file with the running rule 1 unchanged (no --id) and another rule given --id 1: the
    counters (and --per keys) stay with the unchanged rule, under another id, and the rule that
    claims id 1 with other content starts at 0. (They went to the --id 1 rule: a TCP rule showed
    the 10 UDP packets and keys, the UDP rule counted afresh.)"""
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=lab.b)
    pktlens("policy", "add", "vb", "--id", "1", "--proto", "udp", "--dport", "9000",
            *action.split(), ns=lab.b)
    lab.send(udp_from_sources(lab, 10))
    lab.wait_packets(10)
    f = tmp_path / "rules"
    f.write_text(f"--proto udp --dport 9000 {action}\n--id 1 --proto tcp --dport 22 {action}\n")
    pktlens("policy", "load", "vb", str(f), ns=lab.b)
    rules = pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"]
    tcp = next(r for r in rules if r["id"] == 1)
    udp = next(r for r in rules if r["id"] != 1)
    assert "--proto tcp" in pktlens("policy", "list", "vb", ns=lab.b).stdout.split("--id 1 ")[1].split("\n")[0]
    assert tcp["packets"] == 0 and tcp.get("keys", 0) == 0, tcp
    assert udp["packets"] == 10, udp
    if "--per" in action:
        assert (udp["keys"], udp["keys_evicted"], udp["conformed_packets"]) == (10, 0, 10), udp
    lab.send(udp_from_sources(lab, 10))
    lab.wait_packets(20)
    rules = pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"]
    assert next(r for r in rules if r["id"] == udp["id"])["packets"] == 20
    assert next(r for r in rules if r["id"] == 1)["packets"] == 0
    # the same --id 1 rule loaded again (its content now): it keeps what it has, the other too
    pktlens("policy", "load", "vb", str(f), ns=lab.b)
    rules = pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"]
    assert sorted(r["packets"] for r in rules) == [0, 20], rules


def prom_rule(ns):
    """pktlens_policy_rule_* of the attachment of vb in ns, as the exporter serves them."""
    e = Exporter()
    try:
        _, body, _ = e.get()
    finally:
        e.kill()
    ino = str(netns_ino(ns))
    return {ln.split("{")[0]: ln.rsplit(" ", 1)[1] for ln in body.splitlines()
            if ln.startswith("pktlens_policy_rule_") and f'netns="{ino}",netns_name="{ns}",device="vb"' in ln}


@pytest.mark.parametrize("via", [["--per", "dst"], ["--per", "rule"]])
def test_a_per_change_counts_no_key_evicted(lab, tmp_path, via):
    """--per src tracking 3 sources, loaded as --per dst (or as --per rule and back to --per src):
    the rule starts with no key of the new kind, and none counts as evicted, in policy list and
    -j and in Prometheus alike. (keys_new stayed the counter's: "0 keys tracked of 65536, 3
    evicted".) An LRU eviction afterwards still counts."""
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", ns=lab.b)
    base = "--id 1 --dport 9000 --limit 1pps --burst 2"
    pktlens("policy", "add", "vb", *base.split(), "--per", "src", ns=lab.b)
    lab.send(udp_from_sources(lab, 3) * 5)
    lab.wait_packets(15)
    r = pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"][0]
    assert (r["keys"], r["keys_evicted"]) == (3, 0), r
    f = tmp_path / "rules"
    steps = [via] + ([["--per", "src"]] if via[1] == "rule" else [])
    for step in steps:
        f.write_text(f"{base} {' '.join(step)}\n")
        pktlens("policy", "load", "vb", str(f), ns=lab.b)
    r = pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"][0]
    assert (r["packets"], r["keys"], r["keys_evicted"]) == (15, 0, 0), r
    assert "#   0 keys tracked of 65536, 0 evicted" in pktlens("policy", "list", "vb", ns=lab.b).stdout
    m = prom_rule(lab.b)
    assert (m["pktlens_policy_rule_keys"], m["pktlens_policy_rule_keys_evicted_total"]) == ("0", "0"), m
    # the new kind's keys count as before: into a map of 2, 3 keys evict one or more
    f.write_text(f"{base} {' '.join(steps[-1])} --per-size 2\n")
    pktlens("policy", "load", "vb", str(f), ns=lab.b)
    from scapy.all import Ether, IP, UDP

    e = Ether(src=lab.mac(lab.a, "va"), dst=lab.mac(lab.b, "vb"))
    lab.send([e / IP(src=f"198.18.0.{10 + i}", dst=f"198.18.0.{20 + i}") / UDP(sport=1, dport=9000)
              for i in range(3)])
    lab.wait_packets(18)
    r = pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"][0]
    assert 0 < r["keys"] <= 2 and r["keys"] + r["keys_evicted"] == 3, r
