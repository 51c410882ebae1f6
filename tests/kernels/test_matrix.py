# SPDX-License-Identifier: GPL-2.0
"""The kernel matrix: what pktlens does on each kernel its users run.

`make test-kernels` boots Debian's own kernels (bookworm 6.1, bookworm-backports 6.12,
bullseye 5.10) in qemu and runs this file in each (scripts/vmtest.sh); `make test` runs it on
the machine's own kernel too. PKTLENS_KERNEL names the kernel; FEATURES below says what each
must report, so a kernel that loses or gains a feature, or a pktlens that misreads one, fails.

Oracles: the model of tests/frames.py and the kernel's own counters (ip -s link, the UDP
NoPorts counter), tcpdump reading the samples, the verifier itself (loadcheck).
"""
import json
import os
import platform
import re
import subprocess
import time

import pytest

from frames import mixed
from lab import OUT, PIN_ROOT, PKTLENS, PYTHON, Lab, netns_ino, pktlens, pktlens_json, sh, slot
from model import check_flows, check_stats

# What each kernel of the matrix has (pktlens -V): the README's kernel table says the same.
ALL = {"tcx", "xdp-frags", "xdp-load-bytes", "bpf-loop", "coarse-clock", "retrans-err",
       "xdp-test-meta", "xdp-dispatcher", "drop-reason", "drop-rx-sock"}
FEATURES = {
    "5.10": {"xdp-dispatcher"},     # kfree_skb's reason came with 5.17
    "6.1": ALL - {"tcx", "retrans-err", "drop-rx-sock"},
    "6.12": ALL - {"retrans-err"},
    "6.18": ALL,
}

CORE = pytest.mark.core  # on every kernel of CI's matrix (tests/conftest.py)


def kernel():
    label = os.environ.get("PKTLENS_KERNEL", "host")
    if label == "host":
        label = ".".join(platform.release().split(".")[:2])
    return label


def features():
    return {k for k, v in pktlens_json("--version")["features"].items() if v["available"]}


@pytest.fixture
def lab1500():
    """va -> vb at MTU 1500: native XDP without multi-buffer support needs frames in one page."""
    lab = Lab(mtu=1500)
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def labip():
    """lab1500 with 198.18.0.1 (va) and .2 (vb), and static neighbours: no ARP on the wire."""
    lab = Lab(mtu=1500, addrs=True)
    try:
        lab.static_neighbours()
        yield lab
    except BaseException:
        lab.close()
        raise
    lab.close()


@pytest.mark.core
def test_features_match_the_kernel():
    k = kernel()
    if k not in FEATURES:
        pytest.skip(f"no expectations for Linux {k}")
    doc = pktlens_json("--version")
    assert doc["kernel"] == platform.release()
    masked = set(os.environ.get("PKTLENS_NO_FEATURES", "").split(","))
    # a kernel can refuse freplace whatever its version (this development machine does):
    # libxdp's own dispatcher is the oracle
    if not libxdp_dispatcher_loads():
        masked.add("xdp-dispatcher")
    assert features() == FEATURES[k] - masked, f"Linux {k}"


def libxdp_dispatcher_loads():
    """Whether libxdp (xdp-loader) puts a program into its dispatcher on a veth here."""
    lab = Lab(mtu=1500)
    try:
        nsx = ["nsenter", f"--net=/run/netns/{lab.b}", "xdp-loader"]
        sh(*nsx, "load", "-m", "skb", "vb", "/usr/lib/x86_64-linux-gnu/bpf/xdp-dispatcher.o",
           "-n", "xdp_pass", check=False)
        out = sh(*nsx, "status", "vb", check=False).stdout
        sh(*nsx, "unload", "--all", "vb", check=False)
        return "xdp_dispatcher" in out
    finally:
        lab.close()


@pytest.mark.core
def test_every_program_passes_the_verifier():
    """Each program of each object, loaded alone; only a missing feature may skip one."""
    # pktlens_xdp_notail: the same programs whose entries do not tail-call, for libxdp 1.3's
    # dispatcher; its other programs are pktlens_xdp's own, so only the entries are loaded.
    # Its entries walk field rules with bpf_loop(): only kernels with it (6.12 and later) run it
    objs = [str(OUT / f"{n}.bpf.o") for n in ("pktlens_xdp", "pktlens_tc", "pktlens_tcp",
                                              "pktlens_cap_xdp", "pktlens_cap_tc")]
    notail = "bpf-loop" in features()
    if notail:
        objs.append(str(OUT / "pktlens_xdp_notail.bpf.o") + ":pktlens_xdp,pktlens_xdp_skb")
    r = subprocess.run([str(OUT / "tests" / "loadcheck"), "-j", *objs], capture_output=True,
                       text=True, timeout=600)
    res = json.loads(r.stdout)
    have = features()
    refused = [(x["program"], r.stderr[-3000:]) for x in res if x["result"] == "refused"]
    assert not refused, refused
    assert r.returncode == 0
    for x in res:
        if x["result"] == "skipped":
            assert x["needs"] not in have, x
    # the fallbacks themselves load everywhere
    loaded = {x["program"] for x in res if x["result"] == "loaded"}
    assert {"pktlens_xdp_skb", "pktlens_tc_in_policy_bounded", "pktlens_xdp_skb_policy_bounded",
            "pl_tcp_retransmit_noerr", "pl_tcp_rtt", "pl_tcp_state", "pl_cap_tc_in",
            "pl_cap_tc_out_main", "pl_cap_xdp"} <= loaded
    assert sum(x["result"] in ("loaded", "skipped") for x in res) == len(res)
    assert not notail or any(x["object"].endswith("pktlens_xdp_notail.bpf.o") and
                             x["program"] == "pktlens_xdp_skb" and x["result"] == "loaded"
                             for x in res)


def helpers_called(prog_id):
    """The helpers program prog_id calls as the kernel keeps it, after the verifier's pruning."""
    insns = json.loads(sh("bpftool", "-j", "prog", "dump", "xlated", "id", prog_id).stdout)
    return {m.group(1) for x in insns if (m := re.match(r"\(85\) call (\w+)#", x.get("disasm", "")))}


@pytest.mark.parametrize("mask", [pytest.param("", id="kernel", marks=CORE),
                                  pytest.param("coarse-clock,xdp-load-bytes", id="masked")])
def test_packet_programs_call_what_the_kernel_has_without_reading_its_btf(lab1500, tmp_path, mask):
    """The packet programs learn the kernel's helpers from the loader (a .rodata mask,
    bpf/compat.h), not from the kernel's BTF: as the kernel keeps them, they call the coarse clock
    and bpf_xdp_load_bytes() exactly where `pktlens --version` says the kernel has them (less
    PKTLENS_NO_FEATURES), and no command that loads them (attach, policy, filter, sample) reads
    the kernel's BTF, several megabytes (strace)."""
    if mask and not set(mask.split(",")) & features():
        pytest.skip("the kernel has none of the masked features: [kernel] runs the same")
    lab = lab1500
    env = dict(os.environ)
    env["PKTLENS_NO_FEATURES"] = ",".join(x for x in (env.get("PKTLENS_NO_FEATURES"), mask) if x)
    run = lambda *a, ns=lab.b: subprocess.run([PKTLENS, *(["-n", ns] if ns else []), *a],  # noqa
                                              env=env, capture_output=True, text=True, timeout=120)
    have = {k for k, v in json.loads(run("-j", "--version", ns=None).stdout)["features"].items()
            if v["available"]}
    trace = tmp_path / "openat"
    cmds = [("attach", "vb", "--xdp", "skb", "--tc", "in"),
            ("policy", "add", "vb", "--id", "1", "--proto", "udp", "--dport", "7", "--drop"),
            ("filter", "set", "vb", "udp port 9"),
            ("sample", "vb", "-c", "1", "--duration", "1", "-w", str(tmp_path / "s.pcap"))]
    for cmd in cmds:
        r = subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat", "-o", trace, PKTLENS,
                            "-n", lab.b, *cmd], env=env, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0 and "btf/vmlinux" not in trace.read_text(), (cmd, r.stderr)
    hooks = {(h["hook"], h["dir"]): h["prog_id"] for h in here(lab)[0]["hooks"]}
    xdp, tc = helpers_called(hooks[("xdp", "in")]), helpers_called(hooks[("tc", "in")])
    for calls in (xdp, tc):
        assert ("bpf_ktime_get_coarse_ns" in calls) == ("coarse-clock" in have), (have, calls)
        assert "bpf_ktime_get_ns" in calls
    assert ("bpf_xdp_load_bytes" in xdp) == ("xdp-load-bytes" in have), (have, xdp)
    assert "bpf_skb_load_bytes" in tc
    run("detach", "vb")


def here(lab):
    """The attachments of lab's namespace b (list shows every namespace)."""
    return [a for a in pktlens_json("list", ns=lab.b)["attachments"] if a["this_netns"]]


MODES = {
    "tc-auto": ([], "tc"),
    "tc-clsact": (["--tc-mech", "clsact"], "tc"),
    "xdp-skb": (["--xdp", "skb", "--tc", "none"], "xdp"),
    "xdp-native": (["--xdp", "native", "--tc", "none"], "xdp"),
    "xdp-native+tc": (["--xdp", "native", "--tc", "in,out"], "xdp"),
}


# tc-auto (tcx from 6.6, clsact before) and XDP native with tc on every kernel
@pytest.mark.parametrize("mode", [pytest.param(m, marks=CORE)
                                  if m in ("tc-auto", "xdp-native+tc") else m for m in MODES])
def test_attach_counts_exactly_and_detaches_clean(lab1500, mode):
    lab = lab1500
    args, hook = MODES[mode]
    r = pktlens("-j", "attach", "vb", *args, ns=lab.b)
    info = json.loads(r.stdout)
    hooks = {(h["hook"], h["dir"]): h for h in here(lab)[0]["hooks"]}
    if ("tc", "in") in hooks:
        want = "tcx" if "tcx" in features() and "clsact" not in args else "clsact"
        assert hooks[("tc", "in")]["mechanism"] == want, (hooks, info)
    cases = [c for c in mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")) if len(c.frame) <= 1514]
    before = lab.link_stats(lab.a, "va")["tx"]
    assert lab.send([c.frame for c in cases]) == len(cases)
    doc = lab.wait_packets(len(cases), hook=(hook, "in"))
    exp = check_stats(slot(doc, hook, "in"), cases)
    after = lab.link_stats(lab.a, "va")["tx"]
    assert after["packets"] - before["packets"] == exp["packets"]  # the sender's kernel
    flows = pktlens_json("flows", "vb", ns=lab.b)
    check_flows([f for f in flows["flows"] if f["hook"] == hook and f["dir"] == "in"], cases)
    pktlens("detach", "vb", ns=lab.b)
    assert here(lab) == []
    link = json.loads(sh("ip", "-n", lab.b, "-j", "link", "show", "vb").stdout)[0]
    assert "xdp" not in link
    for d in ("ingress", "egress"):
        out = sh("tc", "-n", lab.b, "filter", "show", "dev", "vb", d, check=False).stdout
        assert "pktlens" not in out


def rules(lab):
    return pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"]


def snmp6(ns, field):
    out = sh("ip", "netns", "exec", ns, "cat", "/proc/net/snmp6").stdout.split()
    return int(out[out.index(field) + 1])


def udp_noports(ns):
    out = sh("ip", "netns", "exec", ns, "nstat", "-az", "-j", "UdpNoPorts").stdout
    return json.loads(out)["kernel"]["UdpNoPorts"]


@pytest.mark.parametrize("hookargs", [pytest.param([], id="tc", marks=CORE),
                                      pytest.param(["--xdp", "skb", "--tc", "none"], id="xdp")])
def test_policy_drops_exactly(labip, hookargs):
    """A prefix rule (LPM) and a port rule (the list walk: bounded before 5.17) drop, for
    IPv4 and IPv6 (the trie's and the walk's 16-byte keys); the receiving kernel's UdpNoPorts
    and Udp6NoPorts count exactly what passed."""
    from scapy.all import IP, UDP, Ether, IPv6, Raw

    lab = labip
    sh("ip", "netns", "exec", lab.b, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0",
       "net.ipv6.conf.vb.disable_ipv6=0", "net.ipv6.conf.vb.accept_dad=0")
    sh("ip", "-n", lab.b, "addr", "add", "2001:db8:23::2/64", "dev", "vb", "nodad")
    pktlens("attach", "vb", *hookargs, ns=lab.b)
    # one rule set, loaded in one change: each change verifies the rule-set programs again,
    # 10-15 s under TCG (the single adds run in tests/test_policy.py on the host)
    rules_file = os.path.join(lab.tmp, "rules.txt")
    with open(rules_file, "w") as f:
        f.write("--id 1 --src 198.18.0.1/32 --proto udp --dport 7000-7009 --drop\n"
                "--id 2 --proto udp --dport 7100 --drop\n"
                "--id 3 --src 198.18.2.0/24 --drop\n"
                "# an expression: the translated stage on this kernel\n"
                "--id 4 --drop udp dst port 7400 and udp[8:2] = 0x7878\n"
                "--id 5 --src 2001:db8:24::/48 --drop\n"
                "--id 6 --dst 2001:db8:23::2/128 --proto udp --dport 7600-7601 --drop\n")
    pktlens("policy", "load", "vb", rules_file, ns=lab.b)
    src, dst = lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")
    E = lambda s="198.18.0.1", dp=7000: (Ether(src=src, dst=dst) / IP(src=s, dst="198.18.0.2") /  # noqa
                                         UDP(sport=999, dport=dp) / Raw(b"x" * 20))
    E6 = lambda s="2001:db8:23::1", dp=7600: (Ether(src=src, dst=dst) /  # noqa
                                              IPv6(src=s, dst="2001:db8:23::2") /
                                              UDP(sport=998, dport=dp) / Raw(b"z" * 20))
    frames = ([E(dp=7000 + i % 10) for i in range(30)] + [E(dp=7100)] * 20 +
              [E(s="198.18.2.7", dp=7200)] * 25 + [E(dp=7400)] * 15 + [E(dp=7300)] * 40 +
              [E6(s="2001:db8:24:5::9", dp=7700)] * 12 + [E6(dp=7600 + i % 2) for i in range(9)] +
              [E6(dp=7700)] * 11)
    before, before6 = udp_noports(lab.b), snmp6(lab.b, "Udp6NoPorts")
    lab.send(frames)
    hook = "xdp" if hookargs else "tc"
    doc = lab.wait_packets(len(frames), hook=(hook, "in"))
    s = slot(doc, hook, "in")
    assert s["verdicts"]["drop"]["packets"] == 90 + 21
    assert s["verdicts"]["pass"]["packets"] == 40 + 11
    time.sleep(0.3)
    assert udp_noports(lab.b) - before == 40
    assert snmp6(lab.b, "Udp6NoPorts") - before6 == 11
    hits = {r["id"]: r["packets"] for r in rules(lab)}
    assert hits == {1: 30, 2: 20, 3: 25, 4: 15, 5: 12, 6: 9}


@pytest.mark.parametrize("hookargs", [["--xdp", "none"], ["--xdp", "skb", "--tc", "none"]],
                         ids=["tc", "xdp"])
def test_rules_on_a_tcp_passive_hook(labip, hookargs):
    """A hook that analyses TCP (--tcp-passive) and judges rules: the rule set loads on every
    kernel (5.10's bounded walk too: bpf/policy.h's judgement is verified once, apart from the
    parser's states) and drops exactly; the receiving kernel's UdpNoPorts is the oracle."""
    from scapy.all import IP, UDP, Ether, Raw

    lab = labip
    pktlens("attach", "vb", *hookargs, "--tcp-passive", ns=lab.b)
    pktlens("policy", "add", "vb", "--id", "1", "--proto", "udp", "--dport", "7100", "--drop",
            ns=lab.b)
    src, dst = lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")
    E = lambda dp: (Ether(src=src, dst=dst) / IP(src="198.18.0.1", dst="198.18.0.2") /  # noqa
                    UDP(sport=999, dport=dp) / Raw(b"x" * 20))
    frames = [E(7100)] * 12 + [E(7300)] * 8
    before = udp_noports(lab.b)
    lab.send(frames)
    hook = "xdp" if "skb" in hookargs else "tc"
    doc = lab.wait_packets(len(frames), hook=(hook, "in"))
    assert slot(doc, hook, "in")["verdicts"]["drop"]["packets"] == 12
    time.sleep(0.3)
    assert udp_noports(lab.b) - before == len(frames) - 12
    assert {r["id"]: r["packets"] for r in rules(lab)} == {1: 12}
    # and the rule-set program analyses TCP: the segments it saw (RSTs: no answer to count)
    from scapy.all import TCP
    segs = [Ether(src=src, dst=dst) / IP(src="198.18.0.1", dst="198.18.0.2") /
            TCP(sport=40000 + i, dport=9, flags="R", seq=1000)
            for i in range(4)]
    lab.send(segs)
    lab.wait_packets(len(frames) + len(segs), hook=(hook, "in"))
    st = pktlens_json("stats", "vb", ns=lab.b)["interfaces"][0]["tcp"]
    assert st["segs"] == len(segs), st


@pytest.mark.parametrize("hookargs", [pytest.param([], id="tc"),
                                      pytest.param(["--xdp", "skb", "--tc", "none"], id="xdp", marks=CORE)])
def test_policy_limits_on_this_kernel(labip, hookargs):
    """--limit rules (a global bucket under a spin lock; per-source LRU maps inside a map of
    maps) pass the verifier and police on this kernel: a burst of 10 of 40 frames conforms (a
    1 pps refill adds at most a few), conformed + exceeded = matched, UdpNoPorts counts what
    passed."""
    from scapy.all import IP, UDP, Ether, Raw

    lab = labip
    pktlens("attach", "vb", *hookargs, ns=lab.b)
    pktlens("policy", "add", "vb", "--id", "1", "--proto", "udp", "--dport", "7500", "--limit", "1pps",
            "--burst", "10", ns=lab.b)
    pktlens("policy", "add", "vb", "--id", "2", "--proto", "udp", "--dport", "7600", "--limit", "1pps",
            "--burst", "5", "--per", "src", "--per-size", "8", ns=lab.b)
    src, dst = lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")
    E = lambda dp: Ether(src=src, dst=dst) / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=9, dport=dp) / Raw(b"y" * 20)  # noqa
    frames = [E(7500)] * 40 + [E(7600)] * 40
    before = udp_noports(lab.b)
    lab.send(frames)
    hook = "xdp" if hookargs else "tc"
    lab.wait_packets(len(frames), hook=(hook, "in"))
    time.sleep(0.3)
    got = {r["id"]: r for r in rules(lab)}
    for rid, burst in ((1, 10), (2, 5)):
        r = got[rid]
        assert r["packets"] == 40 and r["conformed_packets"] + r["exceeded_packets"] == 40, r
        assert burst <= r["conformed_packets"] <= burst + 3, r
    assert got[2]["keys"] == 1
    assert udp_noports(lab.b) - before == got[1]["conformed_packets"] + got[2]["conformed_packets"]


def test_policy_list_rules_limit_follows_the_kernel(lab1500):
    lab = lab1500
    pktlens("attach", "vb", ns=lab.b)
    path = os.path.join(lab.tmp, "rules.txt")
    with open(path, "w") as f:
        for i in range(65):
            f.write(f"--proto udp --dport {10000 + i} --drop\n")
    r = pktlens("policy", "load", "vb", path, ns=lab.b, check=False)
    if "bpf-loop" in features():
        assert r.returncode == 0, r.stderr
        assert len(rules(lab)) == 65
    else:
        assert r.returncode == 1, r.stderr
        assert "more than 64" in r.stderr and "needs Linux 5.17" in r.stderr, r.stderr
        assert rules(lab) == []


def sample(lab, n, *args):
    path = os.path.join(lab.tmp, f"s{time.monotonic_ns()}.pcap")
    return path, subprocess.Popen([PKTLENS, "-n", lab.b, "sample", "vb", "-c", str(n), "-w", path,
                                   *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def started(p):
    """What sampler @p said on stderr until it is capturing (or gone, or 30 s passed)."""
    deadline = time.time() + 30
    err = b""
    while b"capturing" not in err and p.poll() is None and time.time() < deadline:
        err += os.read(p.stderr.fileno(), 4096)
    return err


@pytest.mark.parametrize("hookargs", [pytest.param(["--xdp", "skb", "--tc", "in"], id="xdp+tc", marks=CORE),
                                      pytest.param(["--xdp", "skb", "--tc", "none"], id="xdp-only")])
def test_sample_writes_what_was_sent(lab1500, hookargs):
    lab = lab1500
    pktlens("attach", "vb", *hookargs, ns=lab.b)
    cases = [c for c in mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")) if len(c.frame) <= 1514]
    raw = [bytes(c.frame) for c in cases[:20]]
    path, p = sample(lab, len(raw))
    err = started(p)
    if "xdp-load-bytes" not in features() and "none" in hookargs:
        p.wait(timeout=30)
        err += p.stderr.read()
        assert p.returncode == 1, err
        assert b"needs Linux 5.18" in err, err
        return
    assert b"capturing" in err, err
    lab.send([c.frame for c in cases[:20]])
    _, rest = p.communicate(timeout=60)
    assert p.returncode == 0, err + rest
    out = sh("tcpdump", "-r", path, "-nn", "-x").stdout
    assert out.count("\n\t0x0000:") == len(raw), out
    from scapy.all import rdpcap

    assert [bytes(x) for x in rdpcap(path)] == raw


def test_per_flow_sampler_table_and_a_growing_rule_record(lab1500):
    """The maps made on first use: --per-flow's table, put in sample_flows for the sampler's
    run only, and the rule record, replaced by a larger copy when it fills."""
    from scapy.all import IP, UDP, Ether, Raw

    lab = lab1500
    pktlens("attach", "vb", "--xdp", "skb", "--tc", "in", ns=lab.b)
    src, dst = lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")
    frames = [Ether(src=src, dst=dst) / IP(src="198.18.0.1", dst="198.18.0.2") /
              UDP(sport=4000 + f, dport=7000) / Raw(bytes([f, k]) * 10) for k in range(4) for f in range(3)]
    path, p = sample(lab, 6, "--per-flow", "2")
    err = started(p)
    assert b"capturing" in err, err
    lab.send(frames)
    _, rest = p.communicate(timeout=60)
    assert p.returncode == 0, err + rest
    from scapy.all import rdpcap

    assert sorted(bytes(x) for x in rdpcap(path)) == sorted(bytes(f) for f in frames[:6])
    pins = os.path.join(PIN_ROOT, str(netns_ino(lab.b)), "vb")
    assert json.loads(sh("bpftool", "-j", "map", "dump", "pinned", f"{pins}/sample_flows").stdout) == []
    # past the record's first room, and past the counter keys of rule_stats (16,384): the
    # last rules count in a map of rule_gens, looked up through it by the programs
    n = 16500
    path = os.path.join(lab.tmp, "many.txt")
    with open(path, "w") as f:
        f.writelines(f"--src 2001:db8:{i:x}::/48 --drop\n" for i in range(n))
    pktlens("policy", "load", "vb", path, ns=lab.b, timeout=600)
    assert len(rules(lab)) == n
    info = json.loads(sh("bpftool", "-j", "map", "show", "pinned", f"{pins}/policy_rules").stdout)
    assert info["max_entries"] >= n
    assert len(json.loads(sh("bpftool", "-j", "map", "dump", "pinned", f"{pins}/rule_gens").stdout)) == 1
    from scapy.all import IPv6
    lab.send([Ether(src=src, dst=dst) / IPv6(src=f"2001:db8:{i:x}::1", dst="2001:db8:ffff::2") /
              UDP(sport=1, dport=9) for i in (0, n - 1, n - 1)])
    deadline = time.time() + 10
    while sorted(r["packets"] for r in rules(lab) if r["packets"]) != [1, 2] and time.time() < deadline:
        time.sleep(0.2)
    assert sorted(r["packets"] for r in rules(lab) if r["packets"]) == [1, 2]


def test_sample_unattached_captures_and_leaves_nothing(lab1500):
    """sample on an interface never attached: its own tc programs (tcx, or clsact before 6.6)
    capture what was sent; SIGTERM removes them; after kill -9 the next command does."""
    lab = lab1500
    cases = [c for c in mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")) if len(c.frame) <= 1514]
    raw = [bytes(c.frame) for c in cases[:10]]
    filters = lambda: sh("tc", "-n", lab.b, "filter", "show", "dev", "vb", "ingress").stdout  # noqa: E731
    for how in ("count", "kill"):
        path, p = sample(lab, len(raw) if how == "count" else 1000)
        err = started(p)
        assert b"not attached: attached the capture-only tc programs" in err, err
        assert ("tcx" in features()) == (filters() == "")   # clsact shows a filter meanwhile
        if how == "count":
            lab.send([c.frame for c in cases[:10]])
            _, rest = p.communicate(timeout=60)
            assert p.returncode == 0, err + rest
            from scapy.all import rdpcap
            assert [bytes(x) for x in rdpcap(path)] == raw
        else:
            p.kill()
            p.wait()
            pktlens("list", ns=lab.b)
        assert filters() == ""
        assert not [d for d in os.listdir("/sys/fs/bpf/pktlens") if d.startswith("cap:")]


@pytest.mark.parametrize("hookargs", [[], ["--xdp", "skb", "--tc", "none"]], ids=["tc", "xdp"])
def test_filter_set_counts_matches(lab1500, hookargs):
    lab = lab1500
    pktlens("attach", "vb", *hookargs, ns=lab.b)
    pktlens("filter", "set", "vb", "udp and (port 53 or port 3001)", ns=lab.b)
    from scapy.all import wrpcap

    cases = [c for c in mixed(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")) if len(c.frame) <= 1514]
    path = os.path.join(lab.tmp, "f.pcap")
    wrpcap(path, [c.frame for c in cases])
    want = sh("tcpdump", "-r", path, "-nn", "udp and (port 53 or port 3001)").stdout.count("\n")
    lab.send([c.frame for c in cases])
    hook = "xdp" if hookargs else "tc"
    doc = lab.wait_packets(len(cases), hook=(hook, "in"))
    s = slot(doc, hook, "in")
    assert s["packets"] == len(cases)
    assert s["filter_packets"] == want, s


@pytest.mark.parametrize("ctx", [pytest.param([], id="xdp", marks=CORE), pytest.param(["--tc"], id="tc")])
def test_filter_run_agrees_with_libpcap(tmp_path, ctx):
    from scapy.all import wrpcap

    from scapy.all import rdpcap

    path, out = tmp_path / "m.pcap", tmp_path / "ref.pcap"
    frames = [bytes(c.frame) for c in mixed() if len(c.frame) <= 1514]
    wrpcap(str(path), frames)
    for expr in ("udp", "tcp[tcpflags] & tcp-syn != 0", "vlan 100", "ip6 and udp", "len > 1000"):
        got = [frames[int(i) - 1] for i in pktlens("filter", "run", "-r", path, *ctx, expr).stdout.split()]
        sh("tcpdump", "-r", path, "-w", out, expr)  # libpcap's verdicts
        assert got == [bytes(x) for x in rdpcap(str(out))], expr


def test_a_tc_program_longer_than_a_16_bit_jump_loads():
    """`ip6 protochain 6 and port 80` on tc: the jump over a whole copy of the program (the tc
    VLAN copy) needed a gotol, which kernels before 6.6 refuse ("unknown opcode 06"); it hops
    through trampolines now, and the program passes the verifier on every kernel."""
    doc = json.loads(pktlens("-j", "filter", "compile", "--tc", "ip6 protochain 6 and port 80",
                             timeout=600).stdout)
    assert doc["verifier_ok"], {k: v for k, v in doc.items() if k not in ("cbpf", "ebpf")}
    assert doc["ebpf_insns"] > 65536


@pytest.mark.core
def test_tcp_probes_load_and_report(labip):
    """attach --probes tcp, and tcp connlat over a real connection in the lab."""
    lab = labip
    pktlens("attach", "vb", "--probes", "tcp", ns=lab.b)
    assert "tcp" in here(lab)[0]["probes"]
    srv = subprocess.Popen(["ip", "netns", "exec", lab.b, PYTHON, "-c",
                            "import socket;s=socket.socket();s.bind(('198.18.0.2',5201));"
                            "s.listen();c,_=s.accept();n=0\n"
                            "while True:\n d=c.recv(65536)\n if not d: break\n n+=len(d)\n"
                            "print(n)"], stdout=subprocess.PIPE, text=True)
    conn = subprocess.Popen([PKTLENS, "tcp", "connlat", "-j", "--duration", "8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(3)
    sh("ip", "netns", "exec", lab.a, PYTHON, "-c",
       "import socket,time;time.sleep(0.2);s=socket.create_connection(('198.18.0.2',5201));"
       "s.sendall(b'z'*1000000);s.close()")
    assert int(srv.communicate(timeout=60)[0]) == 1000000
    out, err = conn.communicate(timeout=60)
    assert conn.returncode == 0, err
    events = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    assert any(e.get("rport") == 5201 or e.get("dport") == 5201 for e in events), out
    pktlens("detach", "vb", ns=lab.b)


def version(v):
    return tuple(int(x) for x in v.split("."))


@pytest.mark.core
def test_readme_kernel_table_is_true():
    """The README's table says what pktlens reports, and agrees with FEATURES on every kernel."""
    readme = open(os.path.join(os.path.dirname(__file__), "..", "..", "README.md")).read()
    table = readme.split("### Kernels", 1)[1].split("\n\n")[2]
    rows = {}
    for line in table.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows[cells[0].strip("`")] = cells[1:]
    doc = pktlens_json("--version")["features"]
    assert set(rows) == set(doc) == ALL
    for name, (since, with_, without) in rows.items():
        assert [since, with_, without] == [doc[name]["since"], doc[name]["with"],
                                           doc[name]["without"]], name
        for k, have in FEATURES.items():
            newer = version(k) > version(since[1:]) if since.startswith(">") else \
                version(k) >= version(since)
            assert (name in have) == newer, (name, k)


def test_native_xdp_at_jumbo_mtu(lab):
    """MTU 9500: native XDP needs multi-buffer XDP; without it pktlens says so, exit 1."""
    r = pktlens("-j", "attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b, check=False)
    if "xdp-frags" in features():
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["xdp_note"] is None
        return
    assert r.returncode == 1, r.stderr
    assert "needs multi-buffer XDP, Linux 5.18" in r.stderr, r.stderr
    assert here(lab) == []
    # at a one-page MTU it attaches, and says what it does without
    sh("ip", "-n", lab.a, "link", "set", "va", "mtu", "1500")
    sh("ip", "-n", lab.b, "link", "set", "vb", "mtu", "1500")
    r = pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    assert "note: multi-buffer XDP needs Linux 5.18: attaching without it" in r.stdout


def retrans_fail(ns):
    """TcpExtTCPRetransFail of namespace ns: retransmits the kernel counted but could not send."""
    out = sh("ip", "netns", "exec", ns, "cat", "/proc/net/netstat").stdout.splitlines()
    ext = [line.split() for line in out if line.startswith("TcpExt:")]
    return int(ext[1][ext[0].index("TCPRetransFail")])


@pytest.mark.parametrize("local_drop", [pytest.param(False, id="sent", marks=CORE),
                                        pytest.param(True, id="dropped-locally")])
def test_tcp_retrans_equals_the_kernels_count(labip, local_drop):
    """tcp retrans under 1-in-10 loss at the receiver: the retransmitted segments it reports
    equal the sending namespace's RetransSegs (with or without the tracepoint's err). Also
    when the sender's own firewall drops one in ten of its packets: the kernel counts a
    retransmit it then fails to send, and a tracepoint without err never fires for it."""
    from test_tcp import client, mss_segments, nft, retrans_segs, start_server, start_tracer

    lab = labip
    srv = start_server(lab, 5001)
    nft(lab.b, "loss", "tcp dport 5001 numgen random mod 10 == 0 drop", hook="input")
    if local_drop:
        nft(lab.a, "mine", "tcp dport 5001 numgen random mod 10 == 0 drop")
    mss_segments(lab.a, "va")
    tr = start_tracer("retrans", "--netns", f"/run/netns/{lab.a}")
    try:
        before, fail_before = retrans_segs(lab.a), retrans_fail(lab.a)
        c = client(lab, 5001, "bulk", 2 << 20)
        port = int(c.stdout.readline())
        assert c.wait(timeout=300) == 0
        # until the kernel has no more to send (TIME-WAIT, or gone): before 6.16 a retransmit
        # that failed is shown with the socket's next, which may come seconds after the exit
        deadline = time.time() + 120
        while time.time() < deadline and any(
                not line.startswith("TIME-WAIT") for line in sh(
                    "ip", "netns", "exec", lab.a, "ss", "-Htan", "state", "all",
                    f"sport = :{port}").stdout.splitlines()):
            time.sleep(0.5)
        time.sleep(0.5)
        after, failed = retrans_segs(lab.a), retrans_fail(lab.a) - fail_before
    finally:
        tr.send_signal(2)
        out, err = tr.communicate(timeout=60)
        srv.kill()
        srv.wait()
    assert tr.returncode == 0, err
    docs = [json.loads(x) for x in out.splitlines() if x.strip()]
    events, summary = docs[:-1], docs[-1]
    assert after - before > 0, "the loss rule made no retransmits"
    assert failed > 0 or not local_drop, "the sender's firewall failed no retransmit"
    assert all(e["lport"] == port for e in events)
    assert summary["lost"] == 0
    assert sum(e["segs"] for e in events) == after - before, \
        (summary, [(e["state"], e["kind"], e["segs"], e["error"]) for e in events[-20:]])
