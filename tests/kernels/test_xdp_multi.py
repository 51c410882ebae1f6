# SPDX-License-Identifier: GPL-2.0
"""XDP beside other programs: libxdp's dispatcher (loader/xdp_multi.c), and the fallback.

Where pktlens's program joins the dispatcher, xdp-filter (Debian's xdp-tools) and pktlens share
one interface: Debian's 6.1 with its libxdp 1.3 takes the tail-calling program; 6.12 refuses that
one in libxdp 1.3's dispatcher and takes the object built without tail calls
(pktlens_xdp_notail: counts, samples and applies field rules; filters, expression rules and
sample expressions refused on XDP).
Elsewhere (this machine refuses freplace; 5.10's verifier refuses pktlens's program as an
extension) the attach falls back to a bpf_link and says so, once. Gated on what the attach
reports (`xdp_attach`, `dispatcher_note` in `attach -j`), never on the kernel's version.

Oracles: libxdp's own view of the dispatcher (`xdp-loader status`), the receiving kernel's
UdpNoPorts counter (what reached the stack), the frames sent.
"""
import json
import os
import random
import re
import signal
import subprocess
import time

import pytest

from lab import OUT, PKTLENS, Lab, pktlens, pktlens_json, sh, slot

PORT_DENIED, PORT_OPEN = 5001, 5002

CORE = pytest.mark.core  # on every kernel of CI's matrix (tests/conftest.py)


def nsx(ns, *args, check=True):
    """A command in namespace ns that keeps the host's bpffs (libxdp's pins live there)."""
    return sh("nsenter", f"--net=/run/netns/{ns}", *args, check=check)


def dispatcher(ns, dev="vb"):
    """libxdp's view: [(prio, name, id)] of the programs in dev's dispatcher, or None."""
    out = nsx(ns, "xdp-loader", "status", dev).stdout
    if "xdp_dispatcher" not in out:
        return None
    return [(int(m.group(1)), m.group(2), int(m.group(3)))
            for m in re.finditer(r"=>\s+(\d+)\s+(\S+)\s+(\d+)", out)]


def udp_noports(ns):
    out = sh("ip", "netns", "exec", ns, "nstat", "-az", "-j", "UdpNoPorts").stdout
    return json.loads(out)["kernel"]["UdpNoPorts"]


@pytest.fixture
def labf():
    """va -> vb (198.18.0.1 -> .2, static neighbours) with xdp-filter on vb denying UDP port
    PORT_DENIED, in a dispatcher: skipped where libxdp itself cannot load one."""
    lab = Lab(mtu=1500, addrs=True)
    try:
        lab.static_neighbours(back=False)
        nsx(lab.b, "xdp-filter", "load", "-m", "skb", "vb")
        nsx(lab.b, "xdp-filter", "port", "-m", "dst", "-p", "udp", str(PORT_DENIED))
        if dispatcher(lab.b) is None:
            pytest.skip("libxdp cannot load its dispatcher on this kernel (freplace refused)")
        yield lab
    finally:
        nsx(lab.b, "xdp-filter", "unload", "vb", check=False)
        lab.close()


def attach(lab, *args, env=None):
    r = subprocess.run([PKTLENS, "-n", lab.b, "-j", "attach", "vb", "--xdp", "skb", "--tc", "none",
                        *args], capture_output=True, text=True, env=env, timeout=120)
    return r


def joined_or_skip(lab, *args):
    r = attach(lab, *args)
    if r.returncode and "libxdp's dispatcher refused pktlens's program" in r.stderr:
        # attached alone instead: the dispatcher there is foreign, refused as before
        assert "a foreign XDP program" in r.stderr and "xdp_dispatcher" in r.stderr, r.stderr
        assert filter_id(lab), dispatcher(lab.b)  # and left as it was
        pytest.skip(f"pktlens's program cannot join libxdp's dispatcher here: {r.stderr}")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    if info["xdp_attach"] != "libxdp-dispatcher":
        pytest.skip(f"pktlens's program cannot join libxdp's dispatcher here: "
                    f"{info['dispatcher_note']}")
    return info


def no_tail(info):
    """Whether pktlens joined with its program without tail calls (attach -j says so)."""
    return "without tail calls" in (info.get("dispatcher_note") or "")


def filter_id(lab):
    return [p[2] for p in dispatcher(lab.b) if p[1].startswith("xdpfilt")]


def ours(lab):
    return [p for p in dispatcher(lab.b) if p[1].startswith("pktlens")]


def send_ports(lab, n_denied, n_open):
    from scapy.all import IP, UDP, Ether, Raw

    src, dst = lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")
    E = lambda dp: (Ether(src=src, dst=dst) / IP(src="198.18.0.1", dst="198.18.0.2") /  # noqa
                    UDP(sport=999, dport=dp) / Raw(b"y" * 30))
    frames = [E(PORT_DENIED)] * n_denied + [E(PORT_OPEN)] * n_open
    random.shuffle(frames)
    assert lab.send(frames) == len(frames)


def udp_flow_packets(lab):
    doc = pktlens_json("flows", "vb", ns=lab.b)
    got = {}
    for f in doc["flows"]:
        if f.get("proto") in ("udp", 17):
            got[f["dport"]] = got.get(f["dport"], 0) + f["packets"]
    return got


@pytest.mark.parametrize("prio,sees_denied", [(5, True), (20, False)], ids=["before", "after"])
def test_xdp_filter_and_pktlens_share_the_interface(labf, prio, sees_denied):
    """xdp-filter (priority 10) drops port PORT_DENIED; pktlens before it counts everything,
    after it exactly what xdp-filter passed. The denied port never reaches the receiver."""
    lab = labf
    info = joined_or_skip(lab, "--xdp-priority", str(prio))
    assert info["xdp_priority"] == prio
    progs = dispatcher(lab.b)
    names = [p[1] for p in progs]
    assert len(filter_id(lab)) == 1 and len(ours(lab)) == 1, progs
    assert names.index(ours(lab)[0][1]) == (0 if sees_denied else 1), progs
    assert ours(lab)[0][0] == prio
    before = udp_noports(lab.b)
    send_ports(lab, 37, 23)
    deadline = time.time() + 10
    want = {PORT_DENIED: 37, PORT_OPEN: 23} if sees_denied else {PORT_OPEN: 23}
    while time.time() < deadline and udp_flow_packets(lab) != want:
        time.sleep(0.2)
    assert udp_flow_packets(lab) == want
    time.sleep(0.3)
    assert udp_noports(lab.b) - before == 23  # the receiving kernel: denied never arrived
    # list and stats show the programs beside pktlens, in run order
    mine = [a for a in pktlens_json("list", ns=lab.b)["attachments"] if a["this_netns"]][0]
    disp = mine["xdp_dispatcher"]
    assert [(p["priority"], p["id"]) for p in disp["programs"]] == [(p[0], p[2]) for p in progs]
    pos = {p["name"][:7]: p["position"] for p in disp["programs"]}
    assert pos == ({"pktlens": "pktlens", "xdpfilt": "after"} if sees_denied else
                   {"xdpfilt": "before", "pktlens": "pktlens"})
    st = pktlens_json("stats", "vb", ns=lab.b)["interfaces"][0]
    assert st["xdp_dispatcher"] == disp
    plain = pktlens("stats", "vb", ns=lab.b).stdout
    assert "libxdp dispatcher" in plain and "xdpfilt_alw_all" in plain


def test_attach_force_detach_never_disturb_the_other_program(labf):
    """pktlens joins, re-attaches (--force, with a rule and a filter), detaches and joins again:
    xdp-filter's program keeps its id and keeps dropping the denied port throughout; detach
    takes out only pktlens's program; counters survive the re-attach."""
    lab = labf
    info = joined_or_skip(lab)
    fid = filter_id(lab)
    chained = not no_tail(info)
    # field rules work either way (without tail calls: the entry's own rule set)
    pktlens("policy", "add", "vb", "--proto", "udp", "--dport", "7777", "--drop", ns=lab.b)
    if chained:
        pktlens("filter", "set", "vb", f"udp port {PORT_OPEN}", ns=lab.b)
    else:
        # without tail calls compiled stages are refused on XDP (exit 1), nothing changes
        for args in (["filter", "set", "vb", f"udp port {PORT_OPEN}"],
                     ["sample", "vb", "-c", "1", "-w", "/dev/null", "udp"]):
            r = pktlens(*args, ns=lab.b, check=False)
            assert r.returncode == 1 and "without tail calls" in r.stderr, (args, r.stderr)
        assert len(pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"]) == 1
    before = udp_noports(lab.b)
    send_ports(lab, 5, 7)
    time.sleep(0.5)
    r = attach(lab, "--force")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["kept_counters"]
    assert filter_id(lab) == fid and len(ours(lab)) == 1
    send_ports(lab, 5, 7)
    time.sleep(0.5)
    x = slot(pktlens_json("stats", "vb", ns=lab.b), "xdp", "in")
    assert x["filter_packets"] == (14 if chained else 0)  # both attachments', in one counter
    assert udp_flow_packets(lab) == {PORT_DENIED: 10, PORT_OPEN: 14}
    pktlens("detach", "vb", ns=lab.b)
    assert filter_id(lab) == fid and ours(lab) == []
    send_ports(lab, 5, 7)
    time.sleep(0.5)
    assert udp_noports(lab.b) - before == 21
    joined_or_skip(lab)
    assert filter_id(lab) == fid and len(ours(lab)) == 1


def test_attach_force_changes_the_xdp_mode_of_pktlens_alone_in_the_dispatcher():
    """pktlens alone in libxdp's dispatcher: attach --force to the other XDP mode works (it was
    refused: 'the libxdp dispatcher there runs in skb mode (1 programs)', though the one
    program there was the one replaced), counters kept, every frame counted once; detach
    leaves no dispatcher."""
    from scapy.all import IP, UDP, Ether, Raw

    lab = Lab(mtu=1500, addrs=True)
    try:
        prio = ["--xdp-priority", "5"]
        r = attach(lab, *prio)
        assert r.returncode == 0, r.stderr
        if json.loads(r.stdout)["xdp_attach"] != "libxdp-dispatcher":
            pytest.skip(f"pktlens's program cannot join libxdp's dispatcher here: {r.stdout}")
        frames = [Ether(src=lab.mac(lab.a, "va"), dst=lab.mac(lab.b, "vb")) /
                  IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=999, dport=4000 + i) / Raw(b"m" * 30)
                  for i in range(5)]
        sent = lab.send(frames)
        for mode, shown in (("native", 1), ("skb", 2), ("native", 1)):   # XDP_ATTACHED_DRV, _SKB
            r = subprocess.run([PKTLENS, "-n", lab.b, "-j", "attach", "vb", "--xdp", mode, "--tc", "none",
                                "--force", *prio], capture_output=True, text=True, timeout=120)
            assert r.returncode == 0, (mode, r.stderr)
            assert json.loads(r.stdout)["kept_counters"]
            link = json.loads(sh("ip", "-n", lab.b, "-j", "-d", "link", "show", "vb").stdout)[0]
            assert link["xdp"]["mode"] == shown, (mode, link["xdp"])
            assert len(ours(lab)) == 1
            sent += lab.send(frames)
            time.sleep(0.5)
            got = udp_flow_packets(lab)   # the lab's own ARP and ND aside
            assert sum(got.get(4000 + i, 0) for i in range(5)) == sent, (mode, got)
        pktlens("detach", "vb", ns=lab.b)
        assert dispatcher(lab.b) is None
    finally:
        lab.close()


def filter_seen(lab):
    """xdp-filter's own counters: {action: packets} of what reached its program."""
    out = nsx(lab.b, "xdp-filter", "status").stdout
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"XDP_(\w+)\s+(\d+) pkts", out)}


def rule_hits(lab):
    doc = pktlens_json("policy", "list", "vb", ns=lab.b)
    return {r["id"]: r["packets"] for r in doc["interfaces"][0]["rules"]}


@pytest.mark.parametrize("prio", [pytest.param(5, id="before", marks=CORE), pytest.param(20, id="after")])
def test_field_rules_in_the_dispatcher(labf, prio):
    """pktlens in the dispatcher with a port drop rule (with or without tail calls): what it
    drops ends the chain (xdp-filter sees exactly what pktlens passed), what it passes goes on;
    rule and verdict counts are exact; a rule-set swap while attached (del, add) takes effect;
    without tail calls an expression rule is refused, saying why, and changes nothing. Oracles:
    the receiver's UdpNoPorts, xdp-filter's own counters."""
    lab = labf
    port_pl = 5003
    info = joined_or_skip(lab, "--xdp-priority", str(prio))
    pktlens("policy", "add", "vb", "--id", "7", "--proto", "udp", "--dport", str(port_pl),
            "--drop", ns=lab.b)
    if no_tail(info):
        r = pktlens("policy", "add", "vb", "--id", "8", "--drop", "udp port 9", ns=lab.b,
                    check=False)
        assert r.returncode == 1 and "rule 8 (an expression rule)" in r.stderr, r.stderr
        assert "tail call" in r.stderr and "libxdp" in r.stderr and "\n" not in r.stderr[:-1]
    assert set(rule_hits(lab)) == {7}

    def send(n_denied, n_open, n_pl):
        from scapy.all import IP, UDP, Ether, Raw

        src, dst = lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")
        E = lambda dp: (Ether(src=src, dst=dst) / IP(src="198.18.0.1", dst="198.18.0.2") /  # noqa
                        UDP(sport=999, dport=dp) / Raw(b"z" * 30))
        frames = [E(PORT_DENIED)] * n_denied + [E(PORT_OPEN)] * n_open + [E(port_pl)] * n_pl
        random.shuffle(frames)
        assert lab.send(frames) == len(frames)

    nop, f0 = udp_noports(lab.b), filter_seen(lab)
    x0 = slot(pktlens_json("stats", "vb", ns=lab.b), "xdp", "in")
    send(11, 13, 17)
    time.sleep(0.5)
    x = slot(pktlens_json("stats", "vb", ns=lab.b), "xdp", "in")
    f = filter_seen(lab)
    assert udp_noports(lab.b) - nop == 13  # the receiving kernel: the open port alone
    assert rule_hits(lab) == {7: 17}
    assert x["verdicts"]["drop"]["packets"] - x0["verdicts"]["drop"]["packets"] == 17
    passed = x["verdicts"]["pass"]["packets"] - x0["verdicts"]["pass"]["packets"]
    seen = sum(f.values()) - sum(f0.values())
    assert f["DROP"] - f0["DROP"] == 11  # xdp-filter dropped the denied port
    assert passed == x["packets"] - x0["packets"] - 17
    if prio < 10:
        assert seen == passed >= 11 + 13  # after pktlens: exactly what it passed
    else:
        assert seen - 11 == x["packets"] - x0["packets"]  # pktlens: what xdp-filter passed
    # a rule-set swap while attached: without the rule its port reaches the receiver
    pktlens("policy", "del", "vb", "7", ns=lab.b)
    nop = udp_noports(lab.b)
    send(0, 0, 5)
    time.sleep(0.5)
    assert udp_noports(lab.b) - nop == 5
    pktlens("policy", "add", "vb", "--id", "9", "--proto", "udp", "--dport", str(port_pl),
            "--drop", ns=lab.b)
    send(0, 3, 6)
    time.sleep(0.5)
    assert udp_noports(lab.b) - nop == 5 + 3 and rule_hits(lab) == {9: 6}
    pktlens("detach", "vb", ns=lab.b)


def wait_flows(lab, want):
    deadline = time.time() + 10
    while time.time() < deadline and udp_flow_packets(lab) != want:
        time.sleep(0.2)
    assert udp_flow_packets(lab) == want


def test_libxdp_programs_join_and_leave_after_pktlens(labf):
    """pktlens joins after xdp-filter (priority 20); then `xdp-loader load` adds another program
    (bench/pass.bpf.c, libxdp's default priority 50) and xdp-filter leaves: libxdp re-links
    pktlens's program into each new dispatcher, and it keeps its id and counts exactly (after
    xdp-filter the open port only, once xdp-filter is gone everything); detach takes out
    pktlens's program alone."""
    lab = labf
    joined_or_skip(lab, "--xdp-priority", "20")
    mine = ours(lab)[0][2]
    try:
        r = nsx(lab.b, "xdp-loader", "load", "-m", "skb", "vb", OUT / "pass.bpf.o", check=False)
        assert r.returncode == 0, r.stderr
        progs = dispatcher(lab.b)
        assert [(p[0], p[1][:7]) for p in progs] == [(10, "xdpfilt"), (20, "pktlens"),
                                                      (50, "bench_x")], progs
        assert progs[1][2] == mine
        other = progs[2][2]
        before = udp_noports(lab.b)
        send_ports(lab, 6, 9)
        wait_flows(lab, {PORT_OPEN: 9})
        nsx(lab.b, "xdp-filter", "unload", "vb")
        progs = dispatcher(lab.b)
        assert [(p[1][:7], p[2]) for p in progs] == [("pktlens", mine), ("bench_x", other)], progs
        send_ports(lab, 4, 5)
        wait_flows(lab, {PORT_DENIED: 4, PORT_OPEN: 14})
        time.sleep(0.3)
        assert udp_noports(lab.b) - before == 9 + 9  # the receiving kernel agrees
        x = slot(pktlens_json("stats", "vb", ns=lab.b), "xdp", "in")
        assert x["verdicts"]["pass"]["packets"] == x["packets"] >= 6 + 9 + 4 + 5 - 6
        assert x["verdicts"]["drop"]["packets"] == 0
        pktlens("detach", "vb", ns=lab.b)
        assert [(p[1][:7], p[2]) for p in dispatcher(lab.b)] == [("bench_x", other)]
    finally:
        nsx(lab.b, "xdp-loader", "unload", "vb", "--all", check=False)


def test_kill9_mid_attach_leaves_the_dispatcher_consistent(labf):
    """attach (fresh and --force) killed at random points: xdp-filter stays, with at most one
    pktlens program beside it; the next attach --force leaves exactly one."""
    lab = labf
    joined_or_skip(lab)
    fid = filter_id(lab)
    rnd = random.Random(24)
    for i in range(8):
        args = [PKTLENS, "-n", lab.b, "attach", "vb", "--xdp", "skb", "--tc", "none"]
        if i % 2 == 0:
            args.append("--force")
        else:
            pktlens("detach", "vb", ns=lab.b, check=False)
        p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rnd.uniform(0.02, 1.5))
        p.send_signal(signal.SIGKILL)
        p.wait()
        progs = dispatcher(lab.b)
        assert progs is not None
        assert [p[2] for p in progs if p[1].startswith("xdpfilt")] == fid, progs
        assert len([p for p in progs if p[1].startswith("pktlens")]) <= 2, progs
    r = attach(lab, "--force")
    assert r.returncode == 0, r.stderr
    assert filter_id(lab) == fid and len(ours(lab)) == 1
    before = udp_noports(lab.b)
    send_ports(lab, 3, 4)
    time.sleep(0.5)
    assert udp_noports(lab.b) - before == 4


def xdp_link(lab):
    """(link id, program id) of the bpf_link that runs vb's XDP program (the kernel's view)."""
    prog = json.loads(sh("ip", "-n", lab.b, "-j", "link", "show", "vb").stdout)[0]["xdp"]["prog"]
    links = [ln["id"] for ln in json.loads(sh("bpftool", "-j", "link", "show").stdout)
             if ln["type"] == "xdp" and ln["prog_id"] == prog["id"]]
    assert len(links) == 1, links
    return links[0], prog["id"]


def test_fallback_is_said_once():
    """Where pktlens attaches XDP alone (the kernel refuses the dispatcher, or it is masked as
    here), attach says so in one line and attaches with a bpf_link as before."""
    lab = Lab(mtu=1500)
    try:
        env = dict(os.environ, PKTLENS_NO_FEATURES="xdp-dispatcher")
        r = subprocess.run([PKTLENS, "-n", lab.b, "attach", "vb", "--xdp", "skb", "--tc", "none"],
                           capture_output=True, text=True, env=env, timeout=60)
        assert r.returncode == 0, r.stderr
        notes = [ln for ln in r.stdout.splitlines() if "libxdp" in ln or "bpf_link" in ln]
        assert len(notes) == 1 and notes[0].startswith("note: ") and "bpf_link" in notes[0], \
            r.stdout
        assert "dispatcher" not in r.stderr
        link = json.loads(sh("ip", "-n", lab.b, "-j", "link", "show", "vb").stdout)[0]
        assert link["xdp"]["prog"]["name"] == "pktlens_xdp_skb"  # alone, no dispatcher
        doc = [a for a in pktlens_json("list", ns=lab.b)["attachments"] if a["this_netns"]][0]
        assert doc["hooks"][0]["mechanism"] == "bpf_link" and doc["xdp_dispatcher"] is None
        r = subprocess.run([PKTLENS, "-n", lab.b, "-j", "attach", "vb", "--xdp", "skb", "--tc",
                            "none", "--force"], capture_output=True, text=True, env=env, timeout=60)
        info = json.loads(r.stdout)
        assert info["xdp_attach"] == "bpf_link" and info["xdp_priority"] is None
        assert "bpf_link" in info["dispatcher_note"]
        pktlens("detach", "vb", ns=lab.b)
        # unmasked: where the kernel refuses pktlens's program in the dispatcher, a note that
        # says --xdp-priority joins it without tail calls is true (5.10 has no bpf_loop(),
        # which that program needs: the note must not send users there)
        info = json.loads(pktlens("-j", "attach", "vb", "--xdp", "skb", "--tc", "none",
                                  ns=lab.b).stdout)
        if info["xdp_attach"] == "bpf_link":
            # alone (refused there, or no dispatcher): a re-attach gives the new program to the
            # kernel's XDP link in place. It took that link down to try the dispatcher again,
            # which refused again, and what crossed until a new link was counted by neither.
            link = xdp_link(lab)
            again = json.loads(pktlens("-j", "attach", "vb", "--xdp", "skb", "--tc", "none",
                                       "--force", ns=lab.b).stdout)
            assert again["xdp_attach"] == "bpf_link" and again["reattached"], again
            now = xdp_link(lab)
            assert now[0] == link[0] and now[1] != link[1], (link, now)
        if "--xdp-priority joins" in (info["dispatcher_note"] or ""):
            info = json.loads(pktlens("-j", "attach", "vb", "--xdp", "skb", "--tc", "none",
                                      "--force", "--xdp-priority", "5", ns=lab.b).stdout)
            assert info["xdp_attach"] == "libxdp-dispatcher", info
        pktlens("detach", "vb", ns=lab.b)
    finally:
        lab.close()


@CORE
def test_native_xdp_a_driver_lacks_is_said_so_alone_or_in_the_dispatcher():
    """A bridge has no native XDP. Attached alone (a bpf_link) the refusal said "driver lacks
    native XDP; try --xdp skb"; in libxdp's dispatcher (Debian's 6.1) it said "Operation not
    supported" alone. Every path says it, exit 1, and nothing is left attached."""
    lab = Lab(mtu=1500)
    try:
        sh("ip", "-n", lab.b, "link", "add", "br0", "type", "bridge")
        sh("ip", "-n", lab.b, "link", "set", "br0", "up")
        r = pktlens("attach", "br0", "--xdp", "native", "--tc", "none", ns=lab.b, check=False)
        assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
        assert "driver lacks native XDP; try --xdp skb" in r.stderr and "br0" in r.stderr, \
            r.stderr
        assert "xdp" not in json.loads(sh("ip", "-n", lab.b, "-j", "link", "show", "br0").stdout)[0]
        assert not [a for a in pktlens_json("list", ns=lab.b)["attachments"] if a["this_netns"]]
    finally:
        lab.close()


def test_xdp_priority_needs_an_xdp_hook():
    lab = Lab(mtu=1500)
    try:
        r = pktlens("attach", "vb", "--xdp", "none", "--xdp-priority", "3", ns=lab.b, check=False)
        assert r.returncode == 2 and "--xdp-priority without an XDP hook" in r.stderr
        r = pktlens("attach", "vb", "--xdp", "skb", "--xdp-priority", "-1", ns=lab.b, check=False)
        assert r.returncode == 2 and "--xdp-priority '-1' is wrong" in r.stderr
    finally:
        lab.close()


def test_apply_sets_and_changes_the_xdp_priority(labf, tmp_path):
    """A config's xdp-priority places pktlens in the dispatcher (libxdp's own view says where);
    a changed one attaches again there, counters kept, xdp-filter untouched; the same config
    again changes nothing (pktlens's program in the dispatcher counts as its XDP hook)."""
    lab = labf
    fid = filter_id(lab)
    conf = tmp_path / "xdp.conf"

    def apply(prio):
        conf.write_text(f"name: xdp-prio-test\ninterfaces:\n  - match: vb\n    netns: '{lab.b}'\n"
                        f"    xdp: skb\n    tc: none\n    xdp-priority: {prio}\n")
        return subprocess.run([PKTLENS, "apply", str(conf)], capture_output=True, text=True,
                              timeout=120)

    try:
        r = apply(20)
        if r.returncode and "libxdp's dispatcher refused pktlens's program" in r.stderr:
            pytest.skip(f"pktlens's program cannot join libxdp's dispatcher here: {r.stderr}")
        assert r.returncode == 0, r.stderr
        if not ours(lab):
            pytest.skip("pktlens's program runs alone here (no dispatcher)")
        assert [p[0] for p in ours(lab)] == [20] and filter_id(lab) == fid
        send_ports(lab, 3, 4)
        time.sleep(0.5)
        assert udp_flow_packets(lab) == {PORT_OPEN: 4}  # after xdp-filter: the denied never seen
        r = apply(5)
        assert r.returncode == 0, r.stderr
        assert "xdp priority 20 -> 5" in r.stdout, r.stdout
        assert [p[0] for p in ours(lab)] == [5] and filter_id(lab) == fid
        send_ports(lab, 3, 4)
        time.sleep(0.5)
        assert udp_flow_packets(lab) == {PORT_DENIED: 3, PORT_OPEN: 8}  # kept, and now before it
        r = apply(5)
        assert r.returncode == 0 and r.stdout.startswith("nothing to change"), r.stdout
        assert [p[0] for p in ours(lab)] == [5]
    finally:
        pktlens("detach", "vb", ns=lab.b, check=False)
    assert not ours(lab) and filter_id(lab) == fid


def in_list(ns, dev="vb"):
    return [a for a in pktlens_json("list", ns=ns)["attachments"]
            if a["this_netns"] and a["ifname"] == dev]


def test_failed_reattach_in_the_dispatcher_joins_the_old_one_again():
    """A re-attach that fails once the old program left the dispatcher (native XDP on lo, which
    has none) attaches the old one again as it was, at its priority, and says so in one line:
    it was left with nothing running (the old program out, no restore)."""
    lab = Lab(mtu=1500)
    try:
        r = pktlens("-j", "attach", "lo", "--xdp", "skb", "--tc", "none", "--xdp-priority", "7",
                    ns=lab.b)
        if json.loads(r.stdout)["xdp_attach"] != "libxdp-dispatcher":
            pytest.skip(f"pktlens's program cannot join libxdp's dispatcher here: {r.stdout}")
        r = pktlens("attach", "lo", "--xdp", "native", "--tc", "none", "--force", "--xdp-priority",
                    "7", ns=lab.b, check=False)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
        assert "native" in r.stderr and "runs again as it was" in r.stderr, r.stderr
        progs = dispatcher(lab.b, "lo")
        assert [(p[0], p[1][:7]) for p in progs] == [(7, "pktlens")], progs
        att = in_list(lab.b, "lo")
        assert len(att) == 1 and att[0]["state"] == "attached", att
        assert att[0]["hooks"][0]["prog_id"] == progs[0][2]
        pktlens("detach", "lo", ns=lab.b)
        assert dispatcher(lab.b, "lo") is None
    finally:
        lab.close()


def test_failed_reattach_into_the_dispatcher_keeps_the_old_link_and_filter():
    """Alone with a bpf_link and a tcpdump filter, a re-attach with --xdp-priority joins the
    dispatcher; where it must do so without tail calls (6.12, libxdp 1.3) the filter cannot be
    chained again: the old attachment runs again as it was (its link, its filter), and the error
    line carries the whole reason and way out (it was cut at 255 bytes)."""
    lab = Lab(mtu=1500, addrs=True)
    try:
        r = attach(lab)
        assert r.returncode == 0, r.stderr
        if json.loads(r.stdout)["xdp_attach"] != "bpf_link":
            pytest.skip("pktlens's program joined libxdp's dispatcher on its own here")
        pktlens("filter", "set", "vb", f"udp port {PORT_OPEN}", ns=lab.b)
        r = attach(lab, "--force", "--xdp-priority", "5")
        if r.returncode == 0:
            # the dispatcher takes the tail-calling program (6.1), or there is none (fallback)
            info = json.loads(r.stdout)
            assert not no_tail(info), info
        else:
            assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
            err = json.loads(r.stdout)["error"]
            assert "cannot chain the filter again" in err and "without tail calls" in err, err
            assert "or the tc hooks (--xdp none)" in err, err  # the whole way out
            assert err.endswith("runs again as it was"), err
            assert dispatcher(lab.b) is None
            xdp_link(lab)  # the old attachment's link again
            att = in_list(lab.b)
            assert len(att) == 1 and att[0]["state"] == "attached", att
            st = pktlens_json("stats", "vb", ns=lab.b)["interfaces"][0]
            assert st["filter"] == f"udp port {PORT_OPEN}", st
        pktlens("detach", "vb", ns=lab.b)
    finally:
        lab.close()


def test_a_full_dispatcher_is_refused_as_full_and_left_alone():
    """libxdp's dispatcher holds ten programs at most: attach --xdp-priority there says it is
    full (exit 1), with --force too, and leaves all ten running (they were all removed: E2BIG was
    taken for the kernel refusing pktlens's program, and --force removed the dispatcher)."""
    lab = Lab(mtu=1500)
    try:
        for i in range(10):
            r = nsx(lab.b, "xdp-loader", "load", "-m", "skb", "-P", str(100 + i), "vb",
                    OUT / "pass.bpf.o", check=False)
            if r.returncode or dispatcher(lab.b) is None:
                pytest.skip(f"libxdp cannot load its dispatcher on this kernel: {r.stderr}")
        ids = [p[2] for p in dispatcher(lab.b)]
        assert len(ids) == 10
        for force in ([], ["--force"]):
            r = attach(lab, "--xdp-priority", "5", *force)
            assert r.returncode == 1, (force, r.stdout)
            assert "full" in r.stderr and "refused" not in r.stderr, r.stderr
            assert len(r.stderr.splitlines()) == 1, r.stderr
            assert [p[2] for p in dispatcher(lab.b)] == ids
            assert in_list(lab.b) == []
    finally:
        nsx(lab.b, "xdp-loader", "unload", "vb", "--all", check=False)
        lab.close()


def joined_alone(lab):
    """pktlens alone in vb's dispatcher at priority 5: its program's id (skipped where the
    kernel refuses the dispatcher)."""
    r = attach(lab, "--xdp-priority", "5")
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout)
    if info["xdp_attach"] != "libxdp-dispatcher":
        pytest.skip(f"pktlens's program cannot join libxdp's dispatcher here: {r.stdout}")
    return info["hooks"][0]["prog_id"]


def wait_freed(pid):
    """Program pid is freed within 5 s (the kernel frees it after an RCU grace period)."""
    deadline = time.time() + 5
    while time.time() < deadline and sh("bpftool", "prog", "show", "id", pid, check=False).returncode == 0:
        time.sleep(0.2)
    assert sh("bpftool", "prog", "show", "id", pid, check=False).returncode != 0


def test_detach_stale_frees_the_program_of_a_deleted_interface():
    """pktlens in libxdp's dispatcher, its interface deleted: libxdp's pins of the dead
    dispatcher keep pktlens's program; list says interface-gone, detach --stale removes the
    attachment and those pins, and the program is freed (it was never found stale)."""
    lab = Lab(mtu=1500)
    try:
        pid = joined_alone(lab)
        sh("ip", "-n", lab.b, "link", "del", "vb")
        assert [a["state"] for a in in_list(lab.b)] == ["interface-gone"]
        assert sh("bpftool", "prog", "show", "id", pid, check=False).returncode == 0
        r = pktlens("detach", "--stale")  # every namespace's: this VM runs this test alone
        assert "detached vb" in r.stdout, r.stdout
        assert in_list(lab.b) == []
        wait_freed(pid)
    finally:
        lab.close()


def test_detach_stale_takes_only_its_own_pins_from_a_shared_dispatcher(labf):
    """As above with xdp-filter in the dispatcher too: the interface may live on where pktlens
    cannot look, so detach --stale removes pktlens's pins alone from libxdp's directory (its
    program is freed) and leaves xdp-filter's (it removed the directory, every program's)."""
    pid = joined_or_skip(labf, "--xdp-priority", "5")["hooks"][0]["prog_id"]
    others = [p for _, name, p in dispatcher(labf.b) if p != pid]
    assert len(others) == 1, dispatcher(labf.b)
    root = "/sys/fs/bpf/xdp"
    # libxdp's directory of vb's dispatcher: the one whose program pins hold ours (another
    # namespace's interface of the same index may have one too)
    disp = json.loads(sh("ip", "-n", labf.b, "-j", "link", "show", "vb").stdout)[0]["xdp"]["prog"]["id"]
    dirs = [d for d in os.listdir(root) if d.endswith(f"-{disp}")]
    assert len(dirs) == 1, (disp, os.listdir(root))
    path = os.path.join(root, dirs[0])

    def pinned():
        return {json.loads(sh("bpftool", "-j", "prog", "show", "pinned", os.path.join(path, f))
                           .stdout)["id"] for f in os.listdir(path) if f.endswith("-prog")}

    assert pinned() == {pid, others[0]}
    sh("ip", "-n", labf.b, "link", "del", "vb")
    try:
        r = pktlens("detach", "--stale")
        assert "detached vb" in r.stdout, r.stdout
        wait_freed(pid)
        assert sh("bpftool", "prog", "show", "id", others[0], check=False).returncode == 0
        assert pinned() == {others[0]}
    finally:
        # what xdp-filter's unload cannot do on a deleted interface: its pins, libxdp's directory
        sh("rm", "-rf", path, check=False)
        sh("rm", "-rf", "/sys/fs/bpf/xdp-filter", check=False)


def test_an_interface_moved_away_takes_its_dispatcher_member_along():
    """pktlens in libxdp's dispatcher, the interface moved to another namespace: its program
    runs on there. list says interface-moved; an attach there is refused as moved here (it took
    the program out as an orphan); detach in the old namespace takes it out there, as a
    bpf_link's detach does (it said 'detached' and left the program running); then the attach
    there works."""
    lab = Lab(mtu=1500)
    there = lab.b + "m"
    sh("ip", "netns", "add", there)
    try:
        pid = joined_alone(lab)
        sh("ip", "-n", lab.b, "link", "set", "vb", "netns", there)
        sh("ip", "-n", there, "link", "set", "vb", "up")
        assert [a["state"] for a in in_list(lab.b)] == ["interface-moved"]
        args = ("attach", "vb", "--xdp", "skb", "--tc", "none", "--xdp-priority", "5")
        r = pktlens(*args, "--force", ns=there, check=False)
        assert r.returncode == 1 and "moved here from there" in r.stderr, r.stderr
        assert f"pktlens -n {lab.b} detach vb" in r.stderr, r.stderr
        assert [p[2] for p in dispatcher(there)] == [pid]
        r = pktlens("detach", "vb", ns=lab.b)
        assert "detached vb" in r.stdout, r.stdout
        assert dispatcher(there) is None and in_list(lab.b) == []
        pktlens(*args, ns=there)
        assert [p[1][:7] for p in dispatcher(there)] == ["pktlens"]
    finally:
        subprocess.run([PKTLENS, "-n", there, "detach", "--all"], capture_output=True)
        nsx(there, "xdp-loader", "unload", "vb", "--all", check=False)
        sh("ip", "netns", "del", there, check=False)
        lab.close()


def test_an_interface_moved_to_another_index_is_found_and_detached_where_it_runs():
    """libxdp names a dispatcher's pins by the interface's index at attach time. Moved to a
    namespace where that index is taken, the interface gets another one: libxdp found no pins
    for it there, list said interface-gone, and detach in the old namespace said 'detached'
    and left pktlens's program running in the dispatcher where the interface went. Now the
    pins follow it: list says interface-moved, detach takes the program out there (the
    dispatcher goes with it, as libxdp's own view says) and the program is freed."""
    lab = Lab(mtu=1500)
    there = lab.b + "i"
    sh("ip", "netns", "add", there)
    try:
        pid = joined_alone(lab)
        before = json.loads(sh("ip", "-n", lab.b, "-j", "link", "show", "vb").stdout)[0]["ifindex"]
        for i in range(before + 1):     # every index up to vb's taken there
            sh("ip", "-n", there, "link", "add", f"d{i}", "type", "dummy")
        sh("ip", "-n", lab.b, "link", "set", "vb", "netns", there)
        link = json.loads(sh("ip", "-n", there, "-j", "-d", "link", "show", "vb").stdout)[0]
        assert link["ifindex"] != before and link["xdp"]["prog"]["name"] == "xdp_dispatcher"
        assert [a["state"] for a in in_list(lab.b)] == ["interface-moved"]
        r = pktlens("detach", "vb", ns=lab.b)
        assert "detached vb" in r.stdout, r.stdout
        link = json.loads(sh("ip", "-n", there, "-j", "-d", "link", "show", "vb").stdout)[0]
        assert "xdp" not in link and in_list(lab.b) == [], link
        wait_freed(pid)
    finally:
        nsx(there, "xdp-loader", "unload", "vb", "--all", check=False)
        sh("ip", "netns", "del", there, check=False)
        lab.close()
