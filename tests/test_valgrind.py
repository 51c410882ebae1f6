# SPDX-License-Identifier: GPL-2.0
"""pktlens under valgrind memcheck: no invalid access, uninitialised use or leak.

Every command runs as it does in the other tests, inside a lab namespace,
but under memcheck; valgrind writes its report to a log file of its own so
pktlens' stdout and stderr stay as they are and are checked as usual. A
command passes when it exits with its normal code (memcheck turns any error
into exit code 99), the log says "ERROR SUMMARY: 0 errors" and valgrind saw
no syscall on an invalid file descriptor.

Counted as errors: invalid reads and writes, uses of uninitialised values
(also in syscall arguments) and definite, indirect and possible leaks. Memory
still reachable at exit (libraries' caches) is not. tests/valgrind.supp holds
the few reports that are valgrind's or libbpf 1.1's own, each explained.
Valgrind 3.19 also warns "unhandled eBPF command" for BPF commands newer than
it (batch lookups and updates, link_create): it then checks nothing for them,
so pktlens zeroes the buffers those commands fill.
"""
import json
import os
import re
import socket
import subprocess
import time

import pytest

from lab import PKTLENS, PYTHON, ROOT, SAN, SENDRAW, free_port, pktlens, pktlens_json, slot

SUPP = ROOT / "tests" / "valgrind.supp"
CAPTURES = str(ROOT.parent / "shared" / "captures")
VALGRIND = [
    "valgrind", "--tool=memcheck", "--leak-check=full",
    "--show-leak-kinds=definite,indirect,possible",
    "--errors-for-leak-kinds=definite,indirect,possible",
    "--error-exitcode=99", "--track-fds=no", "--track-origins=yes", "--num-callers=40",
    "--child-silent-after-fork=yes", f"--suppressions={SUPP}",
]

# valgrind cannot run an ASan binary: `make test SAN=1` has the sanitizers check instead
pytestmark = pytest.mark.skipif(SAN,
                                reason="SAN=1 build: ASan and valgrind do not mix")

A, B = "198.18.0.1", "198.18.0.2"


def vg(tmp, *args, ns=None, rc=0, timeout=90):
    """Run pktlens under memcheck; check rc and the valgrind log; return the CompletedProcess."""
    log = os.path.join(str(tmp), f"vg-{time.monotonic_ns()}.log")
    cmd = VALGRIND + [f"--log-file={log}", PKTLENS] + (["-n", ns] if ns else []) + [str(a) for a in args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    with open(log) as f:
        report = f.read()
    what = f"pktlens {' '.join(str(a) for a in args)}"
    assert "ERROR SUMMARY: 0 errors" in report, f"{what}: memcheck:\n{report}\n{r.stderr}"
    assert "invalid file descriptor" not in report, f"{what}: bad fd:\n{report}"
    assert r.returncode == rc, f"{what} -> {r.returncode} (want {rc})\n{r.stdout}\n{r.stderr}\n{report}"
    return r


def attachments(ns):
    """The attachments `pktlens list` shows in namespace ns (it also lists other namespaces')."""
    return [a for a in pktlens_json("list", ns=ns)["attachments"] if a["this_netns"]]


def udp(n, sport=1000, dport=2000):
    from scapy.all import IP, UDP, Ether, Raw

    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    return [e / IP(src=A, dst=B) / UDP(sport=sport, dport=dport) / Raw(b"v%03d" % i + b"." * 20)
            for i in range(n)]


def test_filter_run(tmp_path):
    """filter run (XDP and tc) on a capture written here, and on the shared ones if present."""
    from scapy.all import ARP, ICMP, IP, TCP, UDP, Ether, IPv6, wrpcap

    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    frames = [
        e / IP(src=A, dst=B) / UDP(sport=5353, dport=53),
        e / IP(src=A, dst=B) / TCP(sport=40000, dport=80, flags="S"),
        e / ARP(psrc=A, pdst=B),
        e / IP(src=A, dst=B) / UDP(sport=7, dport=53),
        e / IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=9, dport=53),
        e / IP(src=A, dst=B) / ICMP(),
    ]
    pcap = tmp_path / "run.pcap"
    wrpcap(str(pcap), frames)
    for tc in ([], ["--tc"]):
        doc = json.loads(vg(tmp_path, "-j", "filter", "run", *tc, "-r", pcap, "udp dst port 53").stdout)
        assert doc["matches"] == [1, 4, 5] and doc["count"] == 3, doc
    assert vg(tmp_path, "filter", "run", "-r", pcap, "tcp or icmp").stdout == "2\n6\n"

    # real captures, when the shared set is there: same answer as without valgrind
    shared = [os.path.join(CAPTURES, f) for f in ("lp-gateway_or_not.pcap", "lp-ipv6_ext_headers.pcap")]
    for path in (p for p in shared if os.path.exists(p)):
        plain = pktlens("-j", "filter", "run", "-r", path, "ip or ip6 or arp").stdout
        assert vg(tmp_path, "-j", "filter", "run", "-r", path, "ip or ip6 or arp").stdout == plain


def test_error_exits(tmp_path):
    """Failing commands free what they took on the way out."""
    pcap = tmp_path / "none.pcap"
    r = vg(tmp_path, "filter", "run", "-r", pcap, "udp", rc=2)
    assert r.stderr.startswith("pktlens: ") and "none.pcap" in r.stderr
    vg(tmp_path, "filter", "compile", "udp and (", rc=2)
    vg(tmp_path, "filter", "compile", "-ddd", "tcp port 80")


def test_commands(lab, tmp_path):
    """attach, stats -j, flows -j, policy load, sample -c, detach on a veth in a lab namespace."""
    from scapy.all import rdpcap, wrpcap

    ns = lab.b
    t0 = time.monotonic()
    r = vg(tmp_path, "attach", "vb", ns=ns)
    assert r.stdout.startswith("attached vb (ifindex "), r.stdout
    took = {"attach": time.monotonic() - t0}
    hooks = attachments(ns)[0]["hooks"]
    assert [(h["hook"], h["dir"]) for h in hooks] == [("tc", "in"), ("tc", "out")]

    assert lab.send(udp(7)) == 7
    lab.wait_packets(7)
    doc = json.loads(vg(tmp_path, "-j", "stats", "vb", ns=ns).stdout)
    assert doc["interfaces"][0]["ifname"] == "vb"
    assert slot(doc, "tc", "in")["packets"] == 7
    assert slot(doc, "tc", "in")["verdicts"]["pass"]["packets"] == 7
    assert slot(doc, "tc", "out")["packets"] == 0

    doc = json.loads(vg(tmp_path, "-j", "flows", "vb", ns=ns).stdout)
    assert [(f["hook"], f["dir"], f["src"], f["dst"], f["proto"], f["packets"]) for f in doc["flows"]] \
        == [("tc", "in", A, B, "udp", 7)], doc

    # a rule file of every kind (LPM, list with ports, expression, egress); then a bad one
    rules = tmp_path / "rules.txt"
    rules.write_text("# test_valgrind\n"
                     f"--id 1 --src {A}/32 --drop\n"
                     "--id 2 --prio 10 --proto udp --dport 5000-5009 --pass\n"
                     "--id 3 --prio 20 --sample 1/2 'icmp'\n"
                     "--id 4 --out --proto tcp --dport 443 --drop\n"
                     "--id 5 --prio 30 --proto udp --limit 100pps --per src --per-size 64\n"
                     "--id 6 --prio 30 --proto tcp --limit 1mbit --over pass\n")
    t0 = time.monotonic()
    assert vg(tmp_path, "policy", "load", "vb", rules, ns=ns).stdout == f"vb: 6 rules loaded from {rules}\n"
    took["policy load"] = time.monotonic() - t0
    assert lab.send(udp(3, dport=5003) + udp(2)) == 5
    time.sleep(0.3)
    listed = pktlens_json("policy", "list", "vb", ns=ns)["interfaces"][0]["rules"]
    assert {x["id"]: x["packets"] for x in listed} == {1: 2, 2: 3, 3: 0, 4: 0, 5: 2, 6: 0}, listed  # 5 limits, then 1 drops
    bad = tmp_path / "bad.txt"
    bad.write_text("--src 198.18.0.9/32 --drop\n--prio x --pass\n")
    r = vg(tmp_path, "policy", "load", "vb", bad, ns=ns, rc=2)
    assert r.stderr.startswith(f"pktlens: policy load: {bad}:2:"), r.stderr
    pktlens("policy", "flush", "vb", ns=ns)

    # sample while a sender cycles through a few frames; -c ends it
    sent = udp(4, sport=3000)
    src, stop, out = tmp_path / "cycle.pcap", tmp_path / "stop", tmp_path / "sample.pcap"
    wrpcap(str(src), sent)
    sender = subprocess.Popen(["timeout", "-s", "KILL", "120", "ip", "netns", "exec", lab.a, PYTHON,
                               SENDRAW, "va", src, "200", stop], stdout=subprocess.PIPE, text=True)
    try:
        t0 = time.monotonic()
        r = vg(tmp_path, "sample", "vb", "-c", 5, "-w", out, "udp", ns=ns, timeout=60)
        took["sample"] = time.monotonic() - t0
    finally:
        stop.write_text("")
        sender.communicate(timeout=30)
    m = re.search(r"(\d+) matched, (\d+) sampled, (\d+) written, (\d+) lost", r.stderr)
    assert m and int(m[3]) == 5 and int(m[4]) == 0, r.stderr
    got = [bytes(p) for p in rdpcap(str(out))]
    assert len(got) == 5 and all(g in [bytes(s) for s in sent] for g in got)

    t0 = time.monotonic()
    r = vg(tmp_path, "detach", "vb", ns=ns)
    took["detach"] = time.monotonic() - t0
    assert r.stdout.startswith("detached vb: final totals: tc in "), r.stdout
    assert attachments(ns) == []
    r = vg(tmp_path, "stats", "vb", ns=ns, rc=2)
    assert "not attached" in r.stderr, r.stderr
    print("under valgrind: " + ", ".join(f"{k} {v:.1f}s" for k, v in took.items()))


def test_xdp_clsact(lab, tmp_path):
    """The other attach paths: generic XDP (netlink) and tc through a clsact qdisc."""
    ns = lab.b
    r = vg(tmp_path, "attach", "vb", "--xdp", "skb", "--tc", "in,out", "--tc-mech", "clsact", ns=ns)
    assert r.stdout.startswith("attached vb (ifindex "), r.stdout
    assert "xdp/skb in" in r.stdout and "tc/clsact in+out" in r.stdout, r.stdout
    assert lab.send(udp(3)) == 3
    doc = lab.wait_packets(3, hook=("xdp", "in"))
    assert slot(doc, "xdp", "in")["packets"] == 3 and slot(doc, "tc", "in")["packets"] == 3
    doc = json.loads(vg(tmp_path, "-j", "stats", "vb", ns=ns).stdout)
    assert slot(doc, "xdp", "in")["packets"] == 3
    vg(tmp_path, "detach", "vb", ns=ns)
    assert attachments(ns) == []


def test_ipfix_and_removals(lab, tmp_path):
    """export ipfix reading the log of removed flows while stats --reset, attach --force into
    another size and detach write it (all under memcheck)."""
    ns = lab.b
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=ns)
    log = os.path.join(str(tmp_path), "vg-export.log")
    exp = subprocess.Popen(VALGRIND + [f"--log-file={log}", PKTLENS, "export", "ipfix",
                                       "--collector", f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
                                       "--interval", "1", "--duration", "12"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(3)       # memcheck starts slowly
        assert lab.send(udp(7)) == 7
        vg(tmp_path, "stats", "vb", "--reset", ns=ns)
        assert lab.send(udp(5, sport=1001)) == 5
        vg(tmp_path, "attach", "vb", "--force", "--flows", "64", "--xdp", "native", "--tc", "none",
           ns=ns, timeout=180)
        assert lab.send(udp(3, sport=1002)) == 3
        vg(tmp_path, "detach", "vb", ns=ns)
        out, err = exp.communicate(timeout=120)
    finally:
        if exp.poll() is None:
            exp.kill()
    with open(log) as f:
        report = f.read()
    assert "ERROR SUMMARY: 0 errors" in report, f"export ipfix: memcheck:\n{report}\n{err}"
    assert exp.returncode == 0, err
