# SPDX-License-Identifier: GPL-2.0
"""tc ingress/egress: the XDP pipeline on tc hooks, tcx and clsact attachment."""
import json
import os
import subprocess
import time

import pytest

from frames import mixed
from lab import Lab, PKTLENS, PYTHON, attachments_in, netns_ino, pktlens, pktlens_json, sh, slot
from model import check_flows, check_stats


def tc_filters(ns, dev, direction):
    return sh("tc", "-n", ns, "filter", "show", "dev", dev, direction).stdout


def qdiscs(ns, dev):
    return sh("tc", "-n", ns, "qdisc", "show", "dev", dev).stdout


def prog_exists(prog_id):
    return subprocess.run(["bpftool", "prog", "show", "id", str(prog_id)],
                          capture_output=True).returncode == 0


def progs_freed(ids, timeout=3.0):
    """Programs are freed after an RCU grace period: wait for it, bounded."""
    deadline = time.time() + timeout
    while any(prog_exists(i) for i in ids):
        if time.time() > deadline:
            return False
        time.sleep(0.05)
    return True


def hooks_of(ns, dev):
    lst = pktlens_json("list", ns=ns)["attachments"]
    return [a for a in lst if a["ifname"] == dev and a["this_netns"]][0]["hooks"]


@pytest.fixture
def ablab():
    """Two namespaces with addresses and static neighbours: the hosts send nothing on their own."""
    lab = Lab(addrs=True)
    try:
        lab.static_neighbours()
        yield lab
    finally:
        lab.close()


SEND_UDP = """
import socket, sys
n, size = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("198.18.0.2", 40404))
for i in range(n):
    s.sendto(b"e" * size, ("198.18.0.1", 9))
"""


@pytest.mark.parametrize("mech", ["tcx", "clsact"])
def test_egress_exact_from_local_sockets(ablab, mech):
    lab = ablab
    r = pktlens("attach", "vb", "--tc-mech", mech, ns=lab.b)
    assert f"tc/{mech} in+out" in r.stdout
    before = lab.link_stats(lab.b, "vb")
    n, size = 25, 100
    sh("ip", "netns", "exec", lab.b, PYTHON, "-c", SEND_UDP, n, size)
    doc = lab.wait_packets(n, hook=("tc", "out"))
    out = slot(doc, "tc", "out")
    frame = 14 + 20 + 8 + size
    assert out["packets"] == n and out["bytes"] == n * frame
    assert out["l4"]["udp"] == n and out["size_rmon"]["128-255"] == n
    after = lab.link_stats(lab.b, "vb")
    assert after["tx"]["packets"] - before["tx"]["packets"] == n
    assert after["tx"]["bytes"] - before["tx"]["bytes"] == n * frame
    flows = [f for f in pktlens_json("flows", "vb", ns=lab.b)["flows"] if f["dir"] == "out"]
    assert len(flows) == 1
    f = flows[0]
    assert (f["hook"], f["proto"], f["src"], f["sport"], f["dst"], f["dport"]) == \
        ("tc", "udp", "198.18.0.2", 40404, "198.18.0.1", 9)
    assert (f["packets"], f["bytes"]) == (n, n * frame)
    # the (rate-limited) ICMP port-unreachable answers came back in on tc ingress
    tc_in = slot(doc, "tc", "in")
    assert 1 <= tc_in["packets"] == tc_in["l4"]["icmp"] == after["rx"]["packets"] - before["rx"]["packets"]


@pytest.mark.parametrize("mech", ["tcx", "clsact"])
def test_both_hooks_count_the_same_ingress(lab, mech):
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "in,out", "--tc-mech", mech, ns=lab.b)
    cases = mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"))
    lab.send([c.frame for c in cases])
    doc = lab.wait_packets(len(cases), hook=("tc", "in"))
    check_stats(slot(doc, "xdp", "in"), cases)
    check_stats(slot(doc, "tc", "in"), cases)  # VLAN tags moved to skb metadata count as on the wire
    flows = pktlens_json("flows", "vb", ns=lab.b)["flows"]
    for hook in ("xdp", "tc"):
        check_flows([f for f in flows if f["hook"] == hook], cases)
    vlans = {(f["hook"], f["vlan"]) for f in flows if f["vlan"] is not None}
    assert vlans == {("xdp", 100), ("xdp", 200), ("tc", 100), ("tc", 200)}


def test_tc_ingress_only_with_xdp_disabled(lab):
    r = pktlens_json("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    assert [h["hook"] + "/" + h["dir"] for h in r["hooks"]] == ["tc/in"]
    cases = mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"))
    lab.send([c.frame for c in cases])
    doc = lab.wait_packets(len(cases), hook=("tc", "in"))
    check_stats(slot(doc, "tc", "in"), cases)
    assert [(h["hook"], h["dir"]) for h in doc["interfaces"][0]["hooks"]] == [("tc", "in")]


@pytest.mark.parametrize("mech", ["tcx", "clsact"])
def test_foreign_clsact_filter_survives(lab, mech):
    from lab import OUT
    obj = str(OUT / "pass.bpf.o")
    sh("tc", "-n", lab.b, "qdisc", "add", "dev", "vb", "clsact")
    sh("tc", "-n", lab.b, "filter", "add", "dev", "vb", "ingress", "pref", "10", "bpf", "da",
       "obj", obj, "sec", "tc")
    sh("tc", "-n", lab.b, "filter", "add", "dev", "vb", "egress", "pref", "10", "bpf", "da",
       "obj", obj, "sec", "tc")
    before_in, before_out = tc_filters(lab.b, "vb", "ingress"), tc_filters(lab.b, "vb", "egress")
    assert "bench_tc_ok" in before_in and "bench_tc_ok" in before_out
    pktlens("attach", "vb", "--tc-mech", mech, ns=lab.b)
    during = tc_filters(lab.b, "vb", "ingress")
    assert "bench_tc_ok" in during
    assert ("pktlens_tc_in" in during) == (mech == "clsact")
    # our counting does not stop the foreign filter from seeing traffic, and vice versa
    cases = mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"))[:5]
    lab.send([c.frame for c in cases])
    assert slot(lab.wait_packets(5, hook=("tc", "in")), "tc", "in")["packets"] == 5
    pktlens("detach", "vb", ns=lab.b)
    assert tc_filters(lab.b, "vb", "ingress") == before_in
    assert tc_filters(lab.b, "vb", "egress") == before_out
    assert "clsact" in qdiscs(lab.b, "vb")


@pytest.mark.parametrize("mech", ["tcx", "clsact"])
def test_attach_detach_leaves_nothing(lab, mech):
    assert "clsact" not in qdiscs(lab.b, "vb")
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "in,out", "--tc-mech", mech, ns=lab.b)
    hooks = hooks_of(lab.b, "vb")
    assert [(h["hook"], h["dir"], h["mechanism"]) for h in hooks] == \
        [("xdp", "in", "bpf_link"), ("tc", "in", mech), ("tc", "out", mech)]
    ids = [h["prog_id"] for h in hooks]
    assert all(prog_exists(i) for i in ids)
    links = json.loads(sh("bpftool", "-j", "link", "show").stdout)
    assert {l["prog_id"] for l in links} & set(ids) == (set(ids) if mech == "tcx" else {ids[0]})
    assert ("clsact" in qdiscs(lab.b, "vb")) == (mech == "clsact")
    r = pktlens("detach", "vb", ns=lab.b)
    assert r.stdout == ("detached vb: final totals: xdp in 0 packets, 0 bytes; "
                        "tc in 0 packets, 0 bytes; tc out 0 packets, 0 bytes\n")
    assert progs_freed(ids)
    links = json.loads(sh("bpftool", "-j", "link", "show").stdout)
    assert not {l["prog_id"] for l in links} & set(ids)
    assert "clsact" not in qdiscs(lab.b, "vb")
    assert tc_filters(lab.b, "vb", "ingress") == "" and tc_filters(lab.b, "vb", "egress") == ""


def test_force_reattach_switches_mechanism_keeping_counters(lab):
    pktlens("attach", "vb", "--tc-mech", "clsact", ns=lab.b)
    cases = mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"))[:6]
    lab.send([c.frame for c in cases])
    lab.wait_packets(6, hook=("tc", "in"))
    pktlens("attach", "vb", "--force", "--tc-mech", "tcx", ns=lab.b)
    assert "clsact" not in qdiscs(lab.b, "vb")  # our old filters and qdisc are gone
    lab.send([c.frame for c in cases])
    assert slot(lab.wait_packets(12, hook=("tc", "in")), "tc", "in")["packets"] == 12


@pytest.mark.parametrize("mech", ["clsact", "tcx"])
def test_programs_taken_off_by_another_tool(lab, mech):
    """`tc qdisc del dev vb clsact` takes pktlens's filters with it, `bpftool link detach` its
    tcx link: list says program-gone (of tcx it said interface-gone, and detach --stale took
    it; from another namespace it still did), and stats still shows vb's kernel counters (it said "interface index N is gone" of
    an interface that is there) and says what is wrong; detach then leaves nothing."""
    pktlens("attach", "vb", "--tc", "in", "--tc-mech", mech, ns=lab.b)
    cases = mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"))[:3]
    lab.send([c.frame for c in cases])
    lab.wait_packets(3, hook=("tc", "in"))
    if mech == "clsact":
        sh("tc", "-n", lab.b, "qdisc", "del", "dev", "vb", "clsact")
    else:
        path = f"/sys/fs/bpf/pktlens/{netns_ino(lab.b)}/vb/tc_in_link"
        link = json.loads(sh("bpftool", "-j", "link", "show", "pinned", path).stdout)["id"]
        sh("bpftool", "link", "detach", "id", link)
    assert [a["state"] for a in attachments_in(lab.b)] == ["program-gone"]
    # from another namespace too (it entered lab.b's to look: tcx said interface-gone there)
    assert [a["state"] for a in pktlens_json("list")["attachments"]
            if a["netns_name"] == lab.b] == ["program-gone"]
    doc = pktlens_json("stats", "vb", ns=lab.b)["interfaces"][0]
    kernel = doc["kernel"]
    assert kernel["rx_packets"] == lab.link_stats(lab.b, "vb")["rx"]["packets"] >= 3
    # the hook's counts stay, and it says it no longer runs (it said "attached": true)
    assert [(h["hook"], h["dir"], h["packets"], h["attached"]) for h in doc["hooks"]] == \
        [("tc", "in", 3, False)]
    out = pktlens("stats", "vb", ns=lab.b).stdout
    assert "is gone" not in out and "  state     program-gone: none of its programs runs on vb " \
        "any more (pktlens attach vb --force)\n" in out, out
    assert "[not running: its program was taken off the interface]" in out, out
    assert pktlens_json("detach", "vb", ns=lab.b)["detached"][0]["totals"][0]["packets"] == 3
    assert "clsact" not in qdiscs(lab.b, "vb") and attachments_in(lab.b) == []
    # detach --stale from its namespace leaves it (the interface is there); in a bpffs of its
    # own, where --stale meets no other attachment of this machine
    take = f"tc -n {lab.b} qdisc del dev vb clsact" if mech == "clsact" else \
        f"bpftool link detach pinned /sys/fs/bpf/pktlens/{netns_ino(lab.b)}/vb/tc_in_link"
    p = f"{PKTLENS} -n {lab.b}"
    r = sh("unshare", "-m", "--propagation", "private", "sh", "-ec",
           f"mount -t bpf bpf /sys/fs/bpf; {p} attach vb --tc in --tc-mech {mech} >/dev/null; "
           f"{take}; {p} detach --stale; {PKTLENS} detach --stale; {p} -j list; "
           f"{p} detach vb >/dev/null")
    assert r.stdout.count("\n") == 1, r.stdout     # --stale, here or from the root, detached nothing
    assert [(a["ifname"], a["state"]) for a in json.loads(r.stdout)["attachments"]] == \
        [("vb", "program-gone")]


@pytest.mark.parametrize("args,msg", [
    (["--tc", "sideways"], "pktlens: attach: --tc 'sideways' is wrong"),
    (["--tc-mech", "ebpf"], "pktlens: attach: --tc-mech 'ebpf' is wrong"),
    (["--xdp", "none", "--tc", "none"], "pktlens: attach: vb: nothing to attach"),
    # not "(--xdp none and --tc none)": no --xdp was given, a veth gets none by default
    (["--tc", "none"], "pktlens: attach: vb: nothing to attach (--tc none, and a virtual device "
                       "gets no XDP unless --xdp skb or native)\n"),
])
def test_bad_tc_options(lab, args, msg):
    r = pktlens("attach", "vb", *args, ns=lab.b, check=False)
    assert r.returncode == 2 and r.stderr.startswith(msg), r.stderr
    assert "clsact" not in qdiscs(lab.b, "vb")


def test_list_shows_mechanism(lab):
    pktlens("attach", "vb", ns=lab.b)
    out = subprocess.run([PKTLENS, "-n", lab.b, "list"], capture_output=True, text=True).stdout
    assert "tc/tcx in+out" in out and "attached (this netns)" in out
    # --xdp alone: the why is the default tc's, not "native XDP would linearize skbs"
    r = pktlens("attach", "vb", "--force", "--xdp", "skb", ns=lab.b)
    assert "xdp/skb in, tc/tcx in+out; --xdp as requested; virtual device: tc on ingress and " \
           "egress by default (override with --tc);" in r.stdout, r.stdout


def test_legacy_ingress_qdisc_takes_no_egress_filter(lab):
    """The ingress qdisc (not clsact) files every filter in its one block, whatever parent it
    names: an egress filter there would count ingress packets as egress. Refused; tc in works."""
    sh("tc", "-n", lab.b, "qdisc", "add", "dev", "vb", "ingress")
    sh("tc", "-n", lab.b, "filter", "add", "dev", "vb", "parent", "ffff:", "pref", "5",
       "protocol", "ip", "u32", "match", "ip", "protocol", "17", "0xff")
    def filters():  # tc names the parent or not, by what else it finds there
        return tc_filters(lab.b, "vb", "ingress").replace("parent ffff: ", "")

    before = filters()
    r = pktlens("attach", "vb", "--tc-mech", "clsact", ns=lab.b, check=False)
    assert r.returncode == 1 and r.stderr == (
        "pktlens: attach: vb: cannot attach on tc egress: the ingress qdisc there is not clsact "
        "and has no egress hook (tc qdisc del dev vb ingress)\n"), r.stderr
    assert filters() == before and "pktlens" not in before
    assert attachments_in(lab.b) == []
    # the same through a capture of sample on a kernel without tcx
    r = subprocess.run([PKTLENS, "-n", lab.b, "sample", "vb", "-c", "1", "--duration", "1"],
                       capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, PKTLENS_NO_FEATURES="tcx"))
    assert r.returncode == 1 and "the ingress qdisc there is not clsact" in r.stderr, r.stderr
    assert filters() == before
    # ingress alone works on it, and counts ingress
    pktlens("attach", "vb", "--tc-mech", "clsact", "--tc", "in", ns=lab.b)
    cases = mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"))[:5]
    lab.send([c.frame for c in cases])
    doc = lab.wait_packets(5, hook=("tc", "in"))
    assert slot(doc, "tc", "in")["packets"] == 5
    pktlens("detach", "vb", ns=lab.b)
    assert filters() == before
    assert "qdisc ingress ffff:" in qdiscs(lab.b, "vb")


@pytest.mark.parametrize("direction", ["ingress", "egress"])
def test_foreign_filter_holding_priority_1(lab, direction):
    """Another kind of filter at priority 1 keeps ours from going first: a runtime refusal (1)
    that says so, the foreign filter and qdisc untouched, none of ours left."""
    sh("tc", "-n", lab.b, "qdisc", "add", "dev", "vb", "clsact")
    sh("tc", "-n", lab.b, "filter", "add", "dev", "vb", direction, "pref", "1",
       "protocol", "ip", "u32", "match", "ip", "protocol", "17", "0xff")
    before = {d: tc_filters(lab.b, "vb", d) for d in ("ingress", "egress")}
    r = pktlens("attach", "vb", "--tc-mech", "clsact", ns=lab.b, check=False)
    assert r.returncode == 1 and r.stderr == (
        f"pktlens: attach: vb: cannot attach tc {direction} filter: priority 1 is held by "
        "another kind of filter or one for another protocol (tc filter show): pktlens's must "
        "run first\n"), r.stderr
    assert {d: tc_filters(lab.b, "vb", d) for d in ("ingress", "egress")} == before
    assert "clsact" in qdiscs(lab.b, "vb") and attachments_in(lab.b) == []


def test_three_tags_parse_alike_on_xdp_and_tc(lab):
    """The parser walks two VLAN tags. tc ingress gets the outer one in skb metadata and two
    still in the frame: it walks one of those, so a triple-tagged frame is the same non-IP
    frame (ethertype 0x8100 after two tags) on both hooks, and a double-tagged one IP."""
    from scapy.all import IP, UDP, Dot1Q, Ether, Raw
    a, b = lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")
    udp = IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=1111, dport=2222) / Raw(b"x" * 50)
    triple = Ether(src=a, dst=b, type=0x88a8) / Dot1Q(vlan=300, type=0x8100) / \
        Dot1Q(vlan=301) / Dot1Q(vlan=302) / udp
    double = Ether(src=a, dst=b, type=0x88a8) / Dot1Q(vlan=10, type=0x8100) / Dot1Q(vlan=11) / udp
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "in", ns=lab.b)
    lab.send([triple, double])
    doc = lab.wait_packets(2, hook=("tc", "in"))
    for hook in ("xdp", "tc"):
        s = slot(doc, hook, "in")
        assert (s["packets"], s["bytes"]) == (2, len(triple) + len(double)), hook
        assert (s["l3"]["ipv4"], s["l3"]["other"], s["l4"]["udp"], s["l4"]["none"]) == \
            (1, 1, 1, 1), (hook, s["l3"], s["l4"])
    flows = pktlens_json("flows", "vb", ns=lab.b)["flows"]
    got = sorted((f["hook"], f["vlan"], f["ethertype"], f.get("proto"), f["bytes"]) for f in flows)
    assert got == sorted([(h, 300, 0x8100, None, len(triple)) for h in ("tc", "xdp")] +
                         [(h, 10, 0x0800, "udp", len(double)) for h in ("tc", "xdp")]), got


@pytest.mark.parametrize("direction", ["in", pytest.param("out", marks=pytest.mark.variant)])
def test_long_ipv6_extension_headers_of_a_nonlinear_frame(lab, direction):
    """A packet socket's frame of more than a page holds only its Ethernet header in the skb's
    linear part. tc must still read past IPv6 extension headers longer than its usual header
    pull (128 bytes) to the ports: the frame is whole, not truncated, as tcpdump reads it (and
    XDP, which gets it linear)."""
    from scapy.all import (Ether, IPv6, IPv6ExtHdrDestOpt, IPv6ExtHdrFragment, IPv6ExtHdrHopByHop,
                           IPv6ExtHdrRouting, PadN, Raw, UDP, rdpcap)
    a, b = lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")
    src, dst = (a, b) if direction == "in" else (b, a)
    v6 = IPv6(src="2001:db8::1", dst="2001:db8::2")
    pad = lambda n: [PadN(optdata=b"\0" * n)]  # noqa: E731
    frames = [Ether(src=src, dst=dst) / v6 / IPv6ExtHdrHopByHop(options=pad(100)) /
              UDP(sport=7001, dport=8001) / Raw(b"x" * 5000),
              Ether(src=src, dst=dst) / v6 / IPv6ExtHdrHopByHop(options=pad(60)) /
              IPv6ExtHdrRouting(addresses=["2001:db8::3"] * 8) / IPv6ExtHdrDestOpt(options=pad(200)) /
              UDP(sport=7002, dport=8002) / Raw(b"y" * 6000),
              Ether(src=src, dst=dst) / v6 / IPv6ExtHdrHopByHop(options=pad(200) + pad(100)) /
              IPv6ExtHdrFragment(id=5, offset=0, m=1) / UDP(sport=7004, dport=8004) / Raw(b"w" * 4500),
              Ether(src=src, dst=dst) / v6 / IPv6ExtHdrHopByHop(options=pad(100)) /
              UDP(sport=7003, dport=8003) / Raw(b"z" * 100)]      # linear: one page
    # tc alone: generic XDP would make the skb linear before tc sees it
    pktlens("attach", "vb", "--xdp", "none", "--tc", direction, ns=lab.b)
    cap = os.path.join(lab.tmp, "ext6.pcap")
    dump = subprocess.Popen(["ip", "netns", "exec", lab.b, "tcpdump", "-i", "vb", "-Q", direction,
                             "-U", "-n", "--immediate-mode", "-s", "0", "-w", cap],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert "listening" in dump.stderr.readline()
        ns, dev = (None, "va") if direction == "in" else (lab.b, "vb")
        assert lab.send(frames, ns=ns, dev=dev) == len(frames)
        doc = lab.wait_packets(len(frames), hook=("tc", direction))
    finally:
        time.sleep(0.3)
        dump.send_signal(2)
        dump.wait(timeout=10)
    # the oracle: tcpdump's copy of each frame, whole, with its ports (the lab sends nothing else)
    seen = rdpcap(cap)
    assert [(len(p), p[UDP].sport, p[UDP].dport) for p in seen] == \
        [(len(f), f[UDP].sport, f[UDP].dport) for f in frames]
    want = sorted((len(f), f[UDP].sport, f[UDP].dport) for f in frames)
    flows = pktlens_json("flows", "vb", ns=lab.b)["flows"]
    s = slot(doc, "tc", direction)
    assert (s["packets"], s["bytes"]) == (len(frames), sum(len(f) for f in frames))
    assert (s["truncated"], s["parse_errors"], s["l4"]["udp"], s["ip_options"], s["ip_fragments"]) \
        == (0, 0, len(frames), len(frames), 1), s
    assert sorted((f["bytes"], f["sport"], f["dport"]) for f in flows) == want


VLAN_PUSH = """
import ctypes, os, socket, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
def bpf(cmd, attr):
    buf = ctypes.create_string_buffer(attr, 128)
    r = libc.syscall(321, cmd, buf, 128)  # x86-64 bpf(2)
    if r < 0:
        raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))
    return r
I = lambda op, dst, imm: struct.pack("<BBhi", op, dst, 0, imm)
# r2 = htons(ETH_P_8021Q); r3 = vid; bpf_skb_vlan_push(skb, r2, r3); return TCX_NEXT
insns = I(0xb7, 2, 0x0081) + I(0xb7, 3, int(sys.argv[3])) + I(0x85, 0, 18) + \\
    I(0xb7, 0, -1) + I(0x95, 0, 0)
ib, lic = ctypes.create_string_buffer(insns), ctypes.create_string_buffer(b"GPL")
prog = bpf(5, struct.pack("<IIQQIIQII16sII", 3, len(insns) // 8, ctypes.addressof(ib),
                          ctypes.addressof(lic), 0, 0, 0, 0, 0, b"test_vlan_push", 0, 47))
link = bpf(28, struct.pack("<IIII", prog, socket.if_nametoindex(sys.argv[1]), 47, 0))
pin = ctypes.create_string_buffer(sys.argv[2].encode())
bpf(6, struct.pack("<QII", ctypes.addressof(pin), link, 0))
"""


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="bpf(2) called by its x86-64 number")
def test_tag_in_metadata_reaches_tc_not_xdp(lab):
    """A tag that arrives in skb metadata (a NIC's rx VLAN offload; here a tcx program on the
    peer's egress pushes it, which veth hands over as metadata) is not in the frame XDP sees:
    XDP counts it untagged and 4 bytes shorter, tc with its VLAN id, as on the wire."""
    from scapy.all import IP, UDP, Ether, Raw
    pin = f"/sys/fs/bpf/{lab.a}-vlan-push"
    sh("nsenter", f"--net=/run/netns/{lab.a}", PYTHON, "-c", VLAN_PUSH, "va", pin, 100)
    try:
        pktlens("attach", "vb", "--xdp", "skb", "--tc", "in", ns=lab.b)
        frame = Ether(src=lab.mac(lab.a, "va"), dst=lab.mac(lab.b, "vb")) / \
            IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=1, dport=2) / Raw(b"x" * 60)
        lab.send([frame] * 3)
        doc = lab.wait_packets(3, hook=("tc", "in"))
        xdp, tc = slot(doc, "xdp", "in"), slot(doc, "tc", "in")
        assert (xdp["packets"], xdp["bytes"], xdp["vlan"]) == (3, 3 * len(frame), 0), xdp
        assert (tc["packets"], tc["bytes"], tc["vlan"]) == (3, 3 * (len(frame) + 4), 3), tc
        flows = pktlens_json("flows", "vb", ns=lab.b)["flows"]
        assert sorted((f["hook"], f["vlan"], f["proto"]) for f in flows) == \
            [("tc", 100, "udp"), ("xdp", None, "udp")]
    finally:
        os.unlink(pin)


TCP_SINK = """
import socket
s = socket.socket(socket.AF_INET6)
s.bind(("2001:db8::1", 5001))
s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
while c.recv(1 << 20):
    pass
"""

TCP_SEND = """
import socket
s = socket.create_connection(("2001:db8::1", 5001))
s.sendall(b"x" * (8 << 20))
s.close()
"""


@pytest.mark.variant
def test_big_tcp_packets_in_the_open_log2_bucket(lab):
    """tc egress counts a BIG TCP super-packet whole (up to 512 KiB): the last log2 bucket holds
    every length from 65536 on, and the table says so (it read "65536 -> 131071")."""
    for ns, dev, addr in ((lab.a, "va", "2001:db8::1/64"), (lab.b, "vb", "2001:db8::2/64")):
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=0")
        sh("ip", "-n", ns, "addr", "add", addr, "dev", dev, "nodad")
        sh("ip", "-n", ns, "link", "set", dev, "gso_max_size", 185000, "gro_max_size", 185000)
    pktlens("attach", "vb", "--xdp", "none", "--tc", "out", ns=lab.b)
    pktlens("filter", "set", "vb", "greater 131072", ns=lab.b)   # the oracle: libpcap's len
    sink = subprocess.Popen(["ip", "netns", "exec", lab.a, PYTHON, "-c", TCP_SINK],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert sink.stdout.readline() == "ready\n"
        sh("ip", "netns", "exec", lab.b, PYTHON, "-c", TCP_SEND)
        sink.wait(timeout=30)
    finally:
        sink.kill()
        sink.wait()
    out = slot(pktlens_json("stats", "vb", ns=lab.b), "tc", "out")
    assert out["filter_packets"] > 0, out       # packets longer than 131071 bytes were sent
    assert out["size_log2"][16] >= out["filter_packets"]
    assert out["size_rmon"][">9216"] >= out["size_log2"][16]
    rows = [l.split(":")[0].strip() for l in pktlens("stats", "vb", ns=lab.b).stdout.splitlines()
            if l.strip().startswith(("32768 ", "65536 "))]
    assert rows == ["32768 -> 65535", "65536 and more"] or rows == ["65536 and more"], rows
