# SPDX-License-Identifier: GPL-2.0
"""Foundation: exact XDP counters and flows, attach/detach, bad input."""
import json
import os
import subprocess
import time

import pytest

from frames import mixed
from lab import OUT, PIN_ROOT, PKTLENS, bpf_run, count_afresh, netns_ino, pktlens, pktlens_json, sh, slot, unique
from model import check_flows, check_stats


def xdp_prog_attached(ns, dev):
    info = json.loads(sh("ip", "-n", ns, "-j", "link", "show", dev).stdout)[0]
    return info.get("xdp")


# ---- kernel-side logic without a network (BPF_PROG_TEST_RUN) ----

def test_test_run_counts_mixed_frames(tmp_path):
    cases = mixed()
    doc = bpf_run([c.frame for c in cases], tmp_path)
    assert doc["rejected"] == 0
    assert doc["retvals"] == [2] * len(cases)  # XDP_PASS: the stats program never drops
    check_stats(doc["stats"], cases)
    check_flows(doc["flows"], cases)


def test_test_run_flow_table_full(tmp_path):
    from scapy.all import Ether, IP, UDP

    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")  # no ARP lookup by scapy
    frames = []
    for i in range(1000):  # 1000 flows, two packets each, back to back
        f = eth / IP(src="198.18.1.1", dst="198.18.2.2") / UDP(sport=10000 + i, dport=9)
        frames += [f, f]
    doc = bpf_run(frames, tmp_path, flows=64)
    s = doc["stats"]
    assert s["packets"] == 2000
    assert doc["table_entries"] == 64
    assert len(doc["flows"]) == 64
    assert all(f["packets"] == 2 and f["bytes"] == 2 * 42 for f in doc["flows"])
    assert s["flow_lost"] == 2 * (1000 - 64)
    assert s["flow_lost_packets"] == 2000 - 2 * 64
    assert s["flow_lost_bytes"] == s["flow_lost_packets"] * 42


@pytest.mark.variant    # the BPF flow cache under BPF_PROG_TEST_RUN; flows -j runs elsewhere
def test_test_run_many_flows_through_the_cache(tmp_path):
    """More flows than cache slots, interleaved: colliding flows share slots, are folded into the
    table or stay uncached, and every flow still ends with its exact count."""
    from scapy.all import Ether, IP, IPv6, UDP

    eth = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")  # no ARP lookup by scapy
    flows = []
    for i in range(6000):  # > the 1024 slots of a CPU's cache below: collisions are certain
        if i % 3:
            flows.append(eth / IP(src=f"198.18.{i >> 8}.{i & 255}", dst="198.19.0.1")
                         / UDP(sport=1024 + i, dport=53))
        else:
            flows.append(eth / IPv6(src=f"2001:db8::{i:x}", dst="2001:db8:1::1")
                         / UDP(sport=1024 + i, dport=53))
    frames = flows + flows[::-1] + flows  # three passes, the middle one reversed
    doc = bpf_run(frames, tmp_path, flows=8192, cache_bits=10)
    s = doc["stats"]
    assert s["packets"] == 3 * len(flows)
    assert s["flow_lost"] == 0
    assert doc["table_entries"] == len(flows)
    assert len(doc["flows"]) == len(flows)
    want = {(f.sport, len(f)) for f in flows}
    got = {(f["sport"], f["bytes"] // 3) for f in doc["flows"] if f["packets"] == 3}
    assert len(got) == len(flows) and got == want


def test_test_run_a_flow_past_4_gib_in_one_slot(tmp_path):
    """A cache slot counts bytes in 32 bits: a flow that sends more than 4 GiB through one CPU's
    slot is folded into the table before the count would wrap, and its totals stay exact."""
    from scapy.all import Ether, IP, UDP, Raw

    frame = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") / \
        IP(src="198.18.0.1", dst="198.19.0.1") / UDP(sport=4000, dport=4001)
    frame = frame / Raw(b"x" * (1514 - len(frame)))
    n = 3_000_000                       # 4.54 GB, past 2^32 bytes once
    doc = bpf_run([frame], tmp_path, repeat=n)
    assert doc["stats"]["packets"] == n
    assert doc["stats"]["flow_lost"] == 0
    (f,) = doc["flows"]
    assert f["packets"] == n
    assert f["bytes"] == n * 1514 > 2 ** 32


def test_test_run_real_captures(tmp_path):
    """Every frame of tcpdump's and libpcap's captures is counted once, flows sum up."""
    from scapy.all import rdpcap

    caps = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "captures")
    if not os.path.isdir(caps):
        pytest.skip("../shared/captures is not there")
    frames = []
    for name in sorted(os.listdir(caps)):
        if name.endswith(".pcap"):
            frames += [bytes(p) for p in rdpcap(os.path.join(caps, name)) if len(bytes(p)) >= 14]
    doc = bpf_run(frames, tmp_path)
    s = doc["stats"]
    assert s["packets"] == len(frames) == doc["runs"]
    assert s["bytes"] == sum(len(f) for f in frames)
    assert sum(s["size_rmon"].values()) == len(frames)
    assert sum(s["l3"].values()) == sum(s["l4"].values()) == len(frames)
    assert sum(f["packets"] for f in doc["flows"]) == len(frames)
    assert sum(f["bytes"] for f in doc["flows"]) == s["bytes"]
    assert s["vlan_double"] >= 1 and s["ip_fragments"] >= 1 and s["parse_errors"] >= 1


# ---- live: scapy through veth into the attached interface ----

XDP = ("--xdp", "skb", "--tc", "none")


@pytest.mark.parametrize("args,hook", [(XDP, "xdp"), ((), "tc")], ids=["xdp-skb", "tc-default"])
def test_exact_counts_and_flows(lab, args, hook):
    r = pktlens("attach", "vb", *args, ns=lab.b)
    if hook == "tc":  # the default on a virtual device
        assert "tc/tcx in+out; virtual device" in r.stdout
    else:
        assert "xdp/skb in; as requested" in r.stdout
    before = lab.link_stats(lab.b, "vb")["rx"]
    cases = mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"))
    assert lab.send([c.frame for c in cases]) == len(cases)
    doc = lab.wait_packets(len(cases), hook=(hook, "in"))
    iface = doc["interfaces"][0]
    assert iface["ifname"] == "vb"
    assert iface["xdp_mode"] == ("skb" if hook == "xdp" else "none")
    exp = check_stats(slot(doc, hook, "in"), cases)
    if hook == "tc":
        assert slot(doc, "tc", "out")["packets"] == 0  # the host itself sent nothing
    # the kernel's own counters saw the same frames
    after = lab.link_stats(lab.b, "vb")["rx"]
    assert after["packets"] - before["packets"] == exp["packets"]
    assert after["bytes"] - before["bytes"] == exp["bytes"]
    assert iface["kernel"]["rx_packets"] == after["packets"]
    flows = pktlens_json("flows", "vb", ns=lab.b)
    assert {(f["hook"], f["dir"]) for f in flows["flows"]} == {(hook, "in")}
    check_flows(flows["flows"], cases)
    assert flows["interfaces"][0]["lost"] == 0
    # --top and --sort
    top = pktlens_json("flows", "vb", "--top", "3", "--sort", "packets", ns=lab.b)["flows"]
    assert len(top) == 3
    assert [f["packets"] for f in top] == sorted((f["packets"] for f in flows["flows"]),
                                               reverse=True)[:3]
    top = pktlens_json("flows", "--top", "1", ns=lab.b)["flows"]
    assert top[0]["bytes"] == max(f["bytes"] for f in flows["flows"])
    # a key no flow has (no probes: no retransmits): ties, which go by bytes
    tied = pktlens_json("flows", "vb", "--sort", "retrans", ns=lab.b)["flows"]
    assert [f["bytes"] for f in tied] == sorted((f["bytes"] for f in flows["flows"]), reverse=True)


def test_native_mode_counts(lab):
    r = pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    assert "xdp/native in" in r.stdout
    assert xdp_prog_attached(lab.b, "vb")["mode"] == 1  # XDP_ATTACHED_DRV
    cases = mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"))[:12]
    lab.send([c.frame for c in cases])
    doc = lab.wait_packets(len(cases))
    check_stats(doc["interfaces"][0]["hooks"][0], cases)


def test_flow_table_full_live(lab):
    from scapy.all import Ether, IP, UDP

    pktlens("attach", "vb", "--flows", "64", *XDP, ns=lab.b)
    src, dst = lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")
    frames = []
    for i in range(1000):
        f = Ether(src=src, dst=dst) / IP(src="198.18.1.1", dst="198.18.2.2") / UDP(sport=10000 + i, dport=9)
        frames += [f, f]
    lab.send(frames)
    doc = lab.wait_packets(2000)
    s = slot(doc, "xdp", "in")
    assert s["packets"] == 2000
    fl = pktlens_json("flows", "vb", ns=lab.b)
    info = fl["interfaces"][0]
    assert info["table_entries"] == 64 == info["table_max"]
    assert len(fl["flows"]) == 64
    assert all(f["packets"] == 2 for f in fl["flows"])
    assert info["lost_packets"] == 2000 - 128 == s["flow_lost_packets"]
    assert info["lost"] == 2 * (1000 - 64)
    plain = pktlens("flows", "vb", ns=lab.b).stdout
    assert "flow table full (64/64): 1872 packets" in plain


def test_two_namespaces_same_ifname(lab, lab2):
    from scapy.all import Ether, IP, UDP

    pktlens("attach", "vb", *XDP, ns=lab.b)
    pktlens("attach", "vb", *XDP, ns=lab2.b)
    for lb, n in ((lab, 5), (lab2, 9)):
        f = Ether(dst=lb.mac(lb.b, "vb")) / IP(src="198.18.0.1", dst="198.18.0.2") / UDP()
        lb.send([f] * n)
    assert lab.wait_packets(5)["interfaces"][0]["hooks"][0]["packets"] == 5
    assert lab2.wait_packets(9)["interfaces"][0]["hooks"][0]["packets"] == 9
    lst = pktlens_json("list")["attachments"]
    mine = {(a["netns"], a["ifname"]) for a in lst}
    assert (netns_ino(lab.b), "vb") in mine and (netns_ino(lab2.b), "vb") in mine
    # detaching one leaves the other's counters alone
    pktlens("detach", "vb", ns=lab.b)
    assert lab2.wait_packets(9)["interfaces"][0]["hooks"][0]["packets"] == 9


def test_attach_detach_leaves_nothing(lab):
    pin = f"{PIN_ROOT}/{netns_ino(lab.b)}/vb"
    pktlens("attach", "vb", *XDP, ns=lab.b)
    assert os.path.isdir(pin)
    assert sorted(os.listdir(pin)) == [
        "chain_res", "expr_bits", "flow_cache", "flow_ctl", "flow_debt", "flows", "limit_bucket", "limit_keys", "limit_locks",
        "meta", "policy_exprs", "policy_rules",
        "redirect_map", "rule_ctrs", "rule_gens", "rule_stats", "sample_cfg", "sample_flows", "sample_lease",
        "sample_res", "sample_ring", "sample_stats", "stats", "tcp_state", "tcp_stats", "tcp_ts", "xdp_chain",
        "xdp_link"]
    assert oct(os.stat(pin).st_mode & 0o777) == "0o700"
    assert xdp_prog_attached(lab.b, "vb")
    r = pktlens("detach", "vb", ns=lab.b)
    assert r.stdout == "detached vb: final totals: xdp in 0 packets, 0 bytes\n"
    assert not os.path.exists(pin)
    assert not os.path.exists(os.path.dirname(pin))
    assert not xdp_prog_attached(lab.b, "vb")
    net = sh("bpftool", "net", "show").stdout  # root namespace: nothing of ours anywhere
    assert "pktlens_xdp" not in net
    # counters survive the CLI: attach, send, a later process reads them
    pktlens("attach", "vb", *XDP, ns=lab.b)
    from scapy.all import Ether, IP, UDP
    lab.send([Ether(dst=lab.mac(lab.b, "vb")) / IP(src="198.18.0.1", dst="198.18.0.2") / UDP()] * 4)
    lab.wait_packets(4)
    d = pktlens_json("detach", "--all", ns=lab.b)
    assert d["detached"][0]["totals"][0]["packets"] == 4
    assert not xdp_prog_attached(lab.b, "vb")


def test_second_attach_and_force_keeps_counters(lab):
    from scapy.all import Ether, IP, UDP

    pktlens("attach", "vb", *XDP, ns=lab.b)
    r = pktlens("attach", "vb", ns=lab.b, check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == ("pktlens: attach: vb: already attached "
                                "(pktlens detach vb, or --force to re-attach)")
    f = Ether(dst=lab.mac(lab.b, "vb")) / IP(src="198.18.0.1", dst="198.18.0.2") / UDP()
    lab.send([f] * 3)
    lab.wait_packets(3)
    doc = pktlens_json("attach", "vb", "--force", "--xdp", "native", "--tc", "none", ns=lab.b)
    assert doc["reattached"] and doc["kept_counters"] and doc["xdp_mode"] == "native"
    lab.send([f] * 2)
    assert lab.wait_packets(5)["interfaces"][0]["hooks"][0]["packets"] == 5
    flows = pktlens_json("flows", "vb", ns=lab.b)["flows"]
    assert [fl["packets"] for fl in flows] == [5]
    # a different table size still carries the flows over
    pktlens("attach", "vb", "--force", "--flows", "128", *XDP, ns=lab.b)
    flows = pktlens_json("flows", "vb", ns=lab.b)["flows"]
    assert [fl["packets"] for fl in flows] == [5]


@pytest.mark.parametrize("first,then,gone", [
    (["--xdp", "native", "--tc", "in"], ["--xdp", "none", "--tc", "in"], ("xdp", "in")),
    (["--xdp", "skb", "--tc", "in"], ["--xdp", "skb", "--tc", "none"], ("tc", "in")),
])
def test_force_without_a_hook_keeps_and_marks_its_counts(lab, first, then, gone):
    from scapy.all import Ether, IP, UDP

    pktlens("attach", "vb", *first, ns=lab.b)
    f = Ether(dst=lab.mac(lab.b, "vb")) / IP(src="198.18.0.1", dst="198.18.0.2") / UDP()
    lab.send([f] * 3)
    lab.wait_packets(3, hook=gone)
    pktlens("attach", "vb", "--force", *then, ns=lab.b)
    kept = [s for s in ("xdp", "tc") if s != gone[0]][0]
    lab.send([f] * 2)
    doc = lab.wait_packets(5, hook=(kept, "in"))
    old = slot(doc, *gone)
    assert old["packets"] == 3 and old["attached"] is False
    assert slot(doc, kept, "in")["attached"] is True
    out = pktlens("stats", "vb", ns=lab.b).stdout
    rows = {l.split()[0]: l for l in out.splitlines() if l.startswith("  ") and "packets" in l
            and l.split()[0] in ("xdp", "tc")}
    assert "[not attached" in rows[gone[0]] and "[not attached" not in rows[kept]


def test_foreign_xdp_program_not_replaced(lab):
    obj = str(OUT / "pass.bpf.o")
    sh("ip", "-n", lab.b, "link", "set", "vb", "xdpgeneric", "obj", obj, "sec", "xdp")
    foreign = xdp_prog_attached(lab.b, "vb")["prog"]["id"]
    r = pktlens("attach", "vb", *XDP, ns=lab.b, check=False)
    assert r.returncode == 1
    assert f"foreign XDP program (id {foreign}, skb mode) is attached; --force replaces it" in r.stderr
    assert xdp_prog_attached(lab.b, "vb")["prog"]["id"] == foreign
    assert not os.path.exists(f"{PIN_ROOT}/{netns_ino(lab.b)}/vb")
    r = pktlens("attach", "vb", "--force", *XDP, ns=lab.b)
    assert "replaced the foreign XDP program" in r.stdout
    assert xdp_prog_attached(lab.b, "vb")["prog"]["id"] != foreign
    pktlens("detach", "vb", ns=lab.b)
    assert not xdp_prog_attached(lab.b, "vb")


@pytest.mark.parametrize("args,code,msg", [
    (["attach", "nosuchdev0"], 2, "pktlens: attach: nosuchdev0: no such interface"),
    (["attach", "vb", "--flows", "abc"], 2, "pktlens: attach: --flows 'abc' is wrong"),
    (["attach", "vb", "--flows", "0"], 2, "pktlens: attach: --flows '0' is wrong"),
    (["attach", "vb", "--flows", "99999999999"], 2, "pktlens: attach: --flows '99999999999' is wrong"),
    (["attach", "vb", "--xdp", "turbo"], 2, "pktlens: attach: --xdp 'turbo' is wrong"),
    (["attach", "vb", "--bogus"], 2, "pktlens: attach: unknown option '--bogus'"),
    (["attach"], 2, "pktlens: attach: which device? DEV is missing"),
    (["stats", "vb"], 2, "pktlens: stats: vb: not attached (pktlens attach vb)"),
    (["flows", "vb", "--top", "-1"], 2, "pktlens: flows: --top '-1' is wrong"),
    (["flows", "--sort", "size"], 2, "pktlens: flows: --sort 'size' is wrong"),
    (["stats", "--watch", "0"], 2, "pktlens: stats: --watch '0' is wrong"),
    (["detach", "vb"], 2, "pktlens: detach: vb: not attached"),
    (["frobnicate"], 2, "pktlens: what is 'frobnicate'?"),
    (["attach", ""], 2, "pktlens: attach: DEV is empty"),
    (["sample", "", "-c", "1"], 2, "pktlens: sample: DEV is empty"),
    (["stats", ""], 2, "pktlens: stats: DEV is empty"),
    (["policy", "add", "", "--drop"], 2, "pktlens: policy add: DEV is empty"),
    (["filter", "set", "", "udp"], 2, "pktlens: filter set: DEV is empty"),
])
def test_bad_input(lab, args, code, msg):
    r = pktlens(*args, ns=lab.b, check=False)
    assert r.returncode == code
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(msg), r.stderr
    assert not os.path.exists(f"{PIN_ROOT}/{netns_ino(lab.b)}")
    assert not xdp_prog_attached(lab.b, "vb")


def test_interface_down_refused(lab):
    sh("ip", "-n", lab.b, "link", "set", "vb", "down")
    r = pktlens("attach", "vb", ns=lab.b, check=False)
    assert r.returncode == 2
    assert r.stderr.strip() == "pktlens: attach: vb: interface is down (ip link set vb up, or --force)"
    assert not xdp_prog_attached(lab.b, "vb")


def test_unknown_netns():
    r = subprocess.run([PKTLENS, "-n", "pktlens-no-such-ns", "list"], capture_output=True, text=True)
    assert r.returncode == 2
    assert r.stderr.strip() == "pktlens: list: netns 'pktlens-no-such-ns': No such file or directory"


def test_without_privileges(lab):
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "--inh-caps=-all", PKTLENS, "attach", "lo"], capture_output=True, text=True)
    assert r.returncode == 1
    assert r.stderr.strip() == ("pktlens: attach: missing capability CAP_BPF, CAP_NET_ADMIN, "
                                "CAP_PERFMON (run as root)")


@pytest.mark.parametrize("cmd", ["attach", "detach", "list", "stats", "flows"])
def test_help(cmd):
    r = subprocess.run([PKTLENS, cmd, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.startswith(f"Usage: pktlens {cmd}")


def test_plain_output(lab):
    pktlens("attach", "vb", *XDP, ns=lab.b)
    cases = mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"))
    lab.send([c.frame for c in cases])
    lab.wait_packets(len(cases))
    out = pktlens("stats", "vb", ns=lab.b).stdout
    assert f"xdp in   packets {len(cases)}" in out
    assert "1519-9216           : 1          |" in out
    assert "|****************************************|" in out
    out = pktlens("flows", "vb", ns=lab.b).stdout
    assert "[2001:db8::1]:5555" in out and "198.18.0.1:1000" in out
    lst = pktlens("list").stdout
    assert "xdp/skb in" in lst


def test_list_columns_line_up_with_a_long_namespace_name(lab):
    """A namespace's name has no length bound: `list` widens NETNS (and HOOKS) to its widest
    value, so every row's IFACE and HOOKS start under the header's."""
    long_ns = unique("pl-a-namespace-whose-name-is-longer-than-any-column-")
    sh("ip", "netns", "add", long_ns)
    try:
        sh("ip", "-n", long_ns, "link", "add", "vx", "type", "veth", "peer", "name", "vy")
        sh("ip", "-n", long_ns, "link", "set", "vx", "up")
        pktlens("attach", "vx", ns=long_ns)
        pktlens("attach", "vb", "--xdp", "skb", "--tc", "in,out", ns=lab.b)
        lines = pktlens("list").stdout.splitlines()
        iface, hooks = lines[0].index("IFACE"), lines[0].index("HOOKS")
        mine = {ln[iface:].split()[0]: ln for ln in lines[1:]
                if f"({long_ns})" in ln or f"({lab.b})" in ln}
        assert set(mine) == {"vx", "vb"}, lines
        assert mine["vx"][hooks:].startswith("tc/"), lines
        assert mine["vb"][hooks:].startswith("xdp/skb in, tc/"), lines
        assert all(ln[hooks - 1] == " " and ln[iface - 1] == " " for ln in mine.values()), lines
    finally:
        pktlens("detach", "vx", ns=long_ns, check=False)
        sh("ip", "netns", "del", long_ns, check=False)


def test_watch_and_reset(lab):
    from scapy.all import Ether, IP, UDP

    pktlens("attach", "vb", *XDP, ns=lab.b)
    f = Ether(dst=lab.mac(lab.b, "vb")) / IP(src="198.18.0.1", dst="198.18.0.2") / UDP()
    lab.send([f] * 7)
    lab.wait_packets(7)
    w = subprocess.Popen([PKTLENS, "-n", lab.b, "-j", "stats", "vb", "--watch", "1"],
                         stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(w.stdout.readline())
        lab.send([f] * 10)
        second = json.loads(w.stdout.readline())
    finally:
        w.terminate()
        assert w.wait(timeout=5) == 0  # SIGTERM ends --watch cleanly
    assert (first["ifname"], first["hook"], first["dir"]) == ("vb", "xdp", "in")
    assert first["packets"] == 7
    assert second["packets"] in (7, 17) and first["packets"] + 10 >= second["packets"]
    doc = lab.wait_packets(17)
    assert doc["interfaces"][0]["hooks"][0]["packets"] == 17
    r = pktlens_json("stats", "vb", "--reset", ns=lab.b)
    assert r["interfaces"][0]["hooks"][0]["packets"] == 17 and r["interfaces"][0]["reset"]
    doc = pktlens_json("stats", "vb", ns=lab.b)
    assert doc["interfaces"][0]["hooks"][0]["packets"] == 0
    assert doc["interfaces"][0]["flows"] == 0
    assert pktlens_json("flows", "vb", ns=lab.b)["flows"] == []
    lab.send([f] * 2)
    assert lab.wait_packets(2)["interfaces"][0]["hooks"][0]["packets"] == 2
    assert [x["packets"] for x in pktlens_json("flows", "vb", ns=lab.b)["flows"]] == [2]


# reattach: the same restart seen by the reader as reset's (its counters go back); both variant
# (timed intervals): stats --watch runs in the sanitized pass's other watch tests
@pytest.mark.variant
@pytest.mark.parametrize("restart", ["reset", "reattach"])
def test_watch_rates_after_a_reset_or_reattach(lab, restart):
    """stats --reset (or detach and attach again) in a --watch interval, then more but smaller
    packets than before: the line's rates are those packets (--watch subtracted the counts
    before as if they had not gone back: 2 packets shown for 12, and bytes less than before's
    wrapped to some 10^19 b/s)."""
    from scapy.all import Ether, IP, UDP, Raw

    pktlens("attach", "vb", *XDP, ns=lab.b)
    big = Ether(dst=lab.mac(lab.b, "vb")) / IP(src="198.18.0.1", dst="198.18.0.2") / UDP() / \
        Raw(b"b" * 958)
    small = Ether(dst=lab.mac(lab.b, "vb")) / IP(src="198.18.0.1", dst="198.18.0.2") / UDP() / \
        Raw(b"s" * 18)
    lab.send([big] * 10)
    lab.wait_packets(10)
    w = subprocess.Popen([PKTLENS, "-n", lab.b, "-j", "stats", "vb", "--watch", "3"],
                         stdout=subprocess.PIPE, text=True)
    try:
        first = json.loads(w.stdout.readline())
        # at the start of an interval: all of this falls in it
        count_afresh(lab, restart, *XDP)
        lab.send([small] * 12)
        docs = [json.loads(w.stdout.readline()), json.loads(w.stdout.readline())]
    finally:
        w.terminate()
        assert w.wait(timeout=5) == 0
    assert first["packets"] == 10
    assert docs[-1]["packets"] == 12
    dt = [d["time"] for d in [first] + docs]
    pk = sum(d["pps"] * (t1 - t0) for d, t0, t1 in zip(docs, dt, dt[1:]))
    by = sum(d["bps"] * (t1 - t0) / 8 for d, t0, t1 in zip(docs, dt, dt[1:]))
    assert abs(pk - 12) < 0.3 and abs(by - 12 * 60) < 20, docs


def test_watch_json_time_is_the_wall_clock(lab):
    """--watch -j's "time" is when the line was taken, to well under a second: %.9g had
    rounded 1796320634.2 to 1.79632063e+09, ten seconds apart from the clock and the same
    on every line of ten seconds."""
    import time
    pktlens("attach", "vb", *XDP, ns=lab.b)
    w = subprocess.Popen([PKTLENS, "-n", lab.b, "-j", "stats", "vb", "--watch", "1"],
                         stdout=subprocess.PIPE, text=True)
    try:
        lines = [w.stdout.readline() for _ in range(3)]
        now = time.time()
    finally:
        w.terminate()
        assert w.wait(timeout=5) == 0
    times = [json.loads(x)["time"] for x in lines]
    assert all("e" not in x.split('"time":')[1].split(",")[0] for x in lines), lines
    assert abs(times[-1] - now) < 0.5, (times, now)
    assert 0.8 < times[1] - times[0] < 1.5 and 0.8 < times[2] - times[1] < 1.5, times


def test_interface_gone_then_detach_stale(lab):
    sh("ip", "-n", lab.b, "link", "add", "gone0", "type", "veth", "peer", "name", "gone1")
    sh("ip", "-n", lab.b, "link", "set", "gone0", "up")
    pktlens("attach", "gone0", *XDP, ns=lab.b)
    pin = f"{PIN_ROOT}/{netns_ino(lab.b)}/gone0"
    assert os.path.isdir(pin)
    sh("ip", "-n", lab.b, "link", "del", "gone0")
    lst = [a for a in pktlens_json("list", ns=lab.b)["attachments"] if a["pins"] == pin]
    assert lst[0]["state"] == "interface-gone"
    # counters stay readable until the operator removes them
    assert pktlens_json("stats", "gone0", ns=lab.b)["interfaces"][0]["kernel"] is None
    d = pktlens_json("detach", "--stale")
    assert "gone0" in [x["ifname"] for x in d["detached"]]
    assert not os.path.exists(pin)


def test_mounts_bpffs_when_missing(lab):
    """In a private mount namespace without bpffs, attach mounts it (0700) and works. Every
    mount stacked on /sys/fs/bpf goes first: some machines bind sysfs's own directory there
    under the bpffs."""
    script = (f"while umount /sys/fs/bpf 2>/dev/null; do :; done; "
              f"mount | grep -c ' /sys/fs/bpf ' || true; "
              f"{PKTLENS} -n {lab.b} attach vb --xdp skb >/dev/null && "
              f"mount | grep ' /sys/fs/bpf type bpf' && "
              f"stat -c %a /sys/fs/bpf/pktlens && "
              f"{PKTLENS} -n {lab.b} detach vb")
    r = sh("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
    lines = r.stdout.splitlines()
    assert lines[0] == "0"
    assert "type bpf" in lines[1] and lines[2] == "700"
    assert lines[3].startswith("detached vb")
    assert not xdp_prog_attached(lab.b, "vb")


def test_bpffs_missing_without_cap_sys_admin_names_it(lab):
    """bpffs missing and no CAP_SYS_ADMIN to mount it (CAP_BPF, CAP_NET_ADMIN and
    CAP_PERFMON kept): attach says which capability the mount needs, exit 1, and
    leaves nothing on the interface."""
    script = (f"while umount /sys/fs/bpf 2>/dev/null; do :; done; "
              f"nsenter --net=/run/netns/{lab.b} capsh --drop=cap_sys_admin -- "
              f"-c '{PKTLENS} attach vb --xdp skb'; echo rc=$?; "
              f"mount | grep -c ' /sys/fs/bpf type bpf' || true")
    r = sh("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
    assert r.stdout.split() == ["rc=1", "0"], r
    assert r.stderr == ("pktlens: attach: cannot mount bpffs on /sys/fs/bpf: Operation not "
                        "permitted (needs CAP_SYS_ADMIN)\n"), r.stderr
    assert not xdp_prog_attached(lab.b, "vb")


def test_list_refuses_metadata_of_another_size(lab):
    """A pin left by another pktlens version with a larger metadata value is reported as
    another version's, never read into a smaller buffer (list aborted before)."""
    pktlens("attach", "vb", ns=lab.b)
    d = f"{PIN_ROOT}/{netns_ino(lab.b)}"
    size = json.loads(sh("bpftool", "-j", "map", "show", "pinned", f"{d}/vb/meta").stdout)
    fake = f"{d}/zz9"
    os.mkdir(fake, 0o700)
    try:
        sh("bpftool", "map", "create", f"{fake}/meta", "type", "array", "key", "4", "value",
           str(size["bytes_value"] + 65536), "entries", "1", "name", "meta")
        for args in (["-j", "list"], ["list"], ["-j", "stats"]):
            r = pktlens(*args, ns=lab.b, check=False)
            assert r.returncode in (0, 1) and "corrupted" not in r.stderr, r
        got = {a["ifname"]: a for a in pktlens_json("list", ns=lab.b)["attachments"]
               if a["this_netns"]}
        assert got["vb"]["state"] == "attached"
        assert got["zz9"]["state"] != "attached"
    finally:
        sh("rm", "-rf", fake)


def test_flow_times_stay_in_order_while_traffic_flows(lab):
    """`flows -j` read again and again while 50 UDP flows arrive at some 30 kpps: a flow-cache
    slot stamped after the reader took the time was taken for 2^32 units (208 days) earlier,
    so some flows had last_seen before first_seen and lifetimes of 1.8e10 s. Every flow of
    every reading keeps first_seen <= last_seen and a lifetime no longer than the test's."""
    from scapy.all import IP, UDP, Ether, wrpcap

    from lab import PYTHON, SENDRAW

    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    path, stop = os.path.join(lab.tmp, "flows50.pcap"), os.path.join(lab.tmp, "stop")
    wrpcap(path, [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                  IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=2000 + i, dport=9)
                  for i in range(50)])
    start = time.time()
    sender = subprocess.Popen(["ip", "netns", "exec", lab.a, PYTHON, SENDRAW, "va", path, "30000", stop],
                              stdout=subprocess.DEVNULL)
    bad, readings, most = [], 0, 0
    try:
        deadline = time.time() + 20
        while readings < 80 and time.time() < deadline:
            flows = pktlens_json("flows", "vb", ns=lab.b)["flows"]
            if not flows:
                continue
            readings += 1
            most = max(most, len(flows))
            bad += [f for f in flows if f["last_seen"] < f["first_seen"] or
                    not 0 <= f["duration"] <= time.time() - start + 1]
    finally:
        open(stop, "w").close()
        sender.wait(timeout=10)
    assert readings >= 20 and most == 50, (readings, most)
    assert not bad, bad[:3]
