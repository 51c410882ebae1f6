# SPDX-License-Identifier: GPL-2.0
"""`pktlens sample` as tcpdump users expect it (issue 21): in-kernel verdict,
rule and per-flow selection, capture on an interface pktlens has not
attached (and nothing left behind), file rotation, triggers.

Frames are built with scapy and sent from namespace a through the veth into
b, where the capture runs. Oracles: the frames sent (which a drop rule
drops is known from what was sent), tcpdump -r and tshark reading the files,
`tc filter`/`ip link`/bpffs for what is left attached or pinned.
"""
import errno
import glob
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
from test_sample import Sampler


_UDP_HDR = {}


def udp(sport, dport, payload=b"x" * 18, src="198.18.0.1", dst="198.18.0.2"):
    """Ethernet/IPv4/UDP bytes; headers built once per size by scapy, ports patched in (the UDP
    checksum is 0, "none", so it does not depend on them): thousands of frames in milliseconds."""
    key = (len(payload), src, dst)
    if key not in _UDP_HDR:
        from scapy.all import IP, UDP, Ether, Raw
        f = bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                  IP(src=src, dst=dst) / UDP(sport=1, dport=1, chksum=0) / Raw(payload))
        _UDP_HDR[key] = f[:34]
    return _UDP_HDR[key] + struct.pack(">HHHH", sport, dport, 8 + len(payload), 0) + payload


def write_pcap(path, raw):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        for r in raw:
            f.write(struct.pack("<IIII", 0, 0, len(r), len(r)) + r)


def send_raw(lab, raw):
    """Send from one CPU (veth delivers on the sender's CPU)."""
    path = os.path.join(lab.tmp, f"send{time.monotonic_ns()}.pcap")
    write_pcap(path, raw)
    return int(sh("ip", "netns", "exec", lab.a, "taskset", "-c", "0", PYTHON, SENDRAW, "va",
                  path).stdout)


def read_file(path):
    """The frames of a pcap or pcapng file as libpcap reads them (tcpdump -r converts)."""
    data = subprocess.run(["tcpdump", "-r", path, "-w", "-"], check=True,
                          capture_output=True).stdout
    assert data[:4] == struct.pack("<I", 0xA1B2C3D4), data[:4]
    out, off = [], 24
    while off < len(data):
        caplen = struct.unpack_from("<I", data, off + 8)[0]
        out.append(data[off + 16:off + 16 + caplen])
        off += 16 + caplen
    return out


def tcpdump_count(path, expr=""):
    out = sh("tcpdump", "-nn", "-r", path, *([expr] if expr else [])).stdout
    return len(out.splitlines())


def if_names(path):
    """The interface names of a pcapng file's interface blocks, in order (capinfos -I)."""
    out = sh("capinfos", "-I", path).stdout
    return re.findall(r"^\s*Name = (\S+)", out, re.M)


def tcpdump_count_now(path):
    """tcpdump_count() of a file still being written: -1 while tcpdump cannot read it whole
    (its last record half written)."""
    r = sh("tcpdump", "-nn", "-r", path, check=False)
    return len(r.stdout.splitlines()) if r.returncode == 0 else -1


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
        return path, read_file(path), s.counts()

    dropped = [r for r in raw if r[36:38] == (4444).to_bytes(2, "big")]
    path, got, c = run("drop", "--verdict", "drop")
    assert got == dropped and len(dropped) == 10
    # what was not wanted was never selected, so never copied
    assert c["matched"] == 10 and tcpdump_count(path, "udp dst port 4444") == 10
    _, got, c = run("pass", "--verdict", "pass", "--verdict", "redirect")
    assert got == [r for r in raw if r not in dropped] and c["matched"] == 30
    _, got, c = run("r8", "--rule", 8)
    assert got == [r for r in raw if r[36:38] == (6666).to_bytes(2, "big")] and c["matched"] == 10
    # --hook tc where only XDP is attached: refused before anything starts
    r = pktlens("sample", "vb", "--hook", "tc", "-c", 1, ns=lab.b, check=False)
    assert r.returncode == 2 and "--hook tc: no tc hook for the directions" in r.stderr, r.stderr
    r = pktlens("sample", "vb", "--verdict", "dropped", ns=lab.b, check=False)
    assert r.returncode == 2 and "expected pass, drop, redirect, tx or aborted" in r.stderr


@pytest.mark.parametrize("hooks,args,missing,hook", [
    pytest.param(["--xdp", "native", "--tc", "none"], [], "egress", "tc egress", id="xdp"),
    pytest.param(["--xdp", "none", "--tc", "in"], [], "egress", "tc egress", id="tc-in",
                 marks=pytest.mark.variant),
    pytest.param(["--xdp", "none", "--tc", "out"], [], "ingress", "XDP or tc ingress", id="tc-out"),
    pytest.param(["--xdp", "native", "--tc", "out"], ["--hook", "tc"], "ingress", "tc ingress",
                 id="xdp-hook-tc", marks=pytest.mark.variant),
    pytest.param(["--xdp", "none", "--tc", "in,out"], [], None, None, id="tc-both",
                 marks=pytest.mark.variant),
])
def test_a_direction_no_hook_of_the_attachment_takes_is_said(lab, hooks, args, missing, hook):
    """tcpdump shows both directions: a capture of an attachment that has no hook for one of
    them (XDP alone, --tc in, --tc out) says on its "capturing" line which one it takes alone,
    rather than hand over a file that looks complete. Asked for one direction (--in, --out),
    or one both hooks take, nothing is said."""
    pktlens("attach", "vb", *hooks, ns=lab.b)
    raw = [udp(2000 + i, 7000) for i in range(6)]
    s = Sampler(lab, *args, "udp port 7000")
    try:
        send_raw(lab, raw)
        if missing != "ingress":
            lab.wait_packets(len(raw), hook=("xdp" if "native" in hooks else "tc", "in"))
    finally:
        assert s.stop() == 0, s.err
    err, c = s.err.decode(), s.counts()
    said = re.findall(r"^pktlens: sample: vb: capturing 'udp port 7000', snaplen 262144 "
                      r"\((\w+) only: vb's attachment has no (.*) hook; see pktlens attach --tc\)$",
                      err, re.M)
    if missing is None:
        assert said == [] and "only:" not in err, err
    else:
        assert said == [("ingress" if missing == "egress" else "egress", hook)], err
    # only the direction asked for, and one the attachment takes: nothing to say
    if missing is not None:
        s = Sampler(lab, "--in" if missing == "egress" else "--out", "-c", 1)
        s.stop()
        assert b"only:" not in s.err, s.err
    # what the hooks there take is captured whole
    assert c["written"] == (0 if missing == "ingress" else len(raw)), err


@pytest.mark.parametrize("hooks", [["--xdp", "native", "--tc", "none"], ["--xdp", "none", "--tc", "in"]],
                         ids=["xdp", "tc"])
def test_verdict_drop_gets_every_prefix_drop(lab, hooks):
    """Drops by address rule are judged before the parse (bpf/early.h), but not while a sample
    runs on the hook: --verdict drop gets every frame a --src or --dst rule dropped, in order,
    and no other; the rules count them all."""
    from scapy.all import IPv6, UDP, Ether, Raw

    pktlens("attach", "vb", *hooks, ns=lab.b)
    pktlens("policy", "add", "vb", "--id", 3, "--src", "198.18.0.0/24", "--drop", ns=lab.b)
    pktlens("policy", "add", "vb", "--id", 4, "--dst", "2001:db8::2/128", "--drop", ns=lab.b)
    raw = []
    for i in range(48):
        if i % 3 == 2:
            raw.append(bytes(Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                             IPv6(src="2001:db8::1", dst=("2001:db8::2", "2001:db8::3")[i % 2]) /
                             UDP(sport=3000 + i, dport=7000) / Raw(bytes([i]) * (10 + i))))
        else:
            raw.append(udp(2000 + i, 7000, bytes([i]) * (20 + i), src=("198.18.0.1", "198.18.1.1")[i % 2]))
    v4 = [r for r in raw if r[12:14] == b"\x08\x00" and r[26:30] == bytes([198, 18, 0, 1])]
    v6 = [r for r in raw if r[12:14] == b"\x86\xdd" and r[38:54] == bytes.fromhex("20010db8" + "0" * 23 + "2")]
    assert len(v4) == 16 and len(v6) == 8
    path = os.path.join(lab.tmp, "drops.pcap")
    s = Sampler(lab, "-w", path, "--verdict", "drop")
    try:
        send_raw(lab, raw)
        lab.wait_packets(len(raw), hook=("tc", "in") if hooks[1] == "none" else None)
    finally:
        assert s.stop() == 0, s.err
    assert read_file(path) == [r for r in raw if r in v4 or r in v6]
    assert s.counts()["matched"] == 24
    rules = {r["id"]: (r["packets"], r["bytes"])
             for r in pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"]}
    assert rules == {3: (16, sum(map(len, v4))), 4: (8, sum(map(len, v6)))}


def flow_tables(lab):
    """The --per-flow tables in vb's sample_flows, as the kernel describes them."""
    pin = os.path.join(PIN_ROOT, str(netns_ino(lab.b)), "vb", "sample_flows")
    ids = [int.from_bytes(bytes(int(b, 16) for b in e["value"]), "little")
           for e in json.loads(sh("bpftool", "-j", "map", "dump", "pinned", pin).stdout)]
    return [json.loads(sh("bpftool", "-j", "map", "show", "id", str(i)).stdout) for i in ids]


def test_per_flow_takes_first_n_of_each_flow(lab):
    """100 flows of 10 packets, --per-flow 3: exactly 300 frames, the first 3 of each flow."""
    raw = [udp(2000 + f, 7000, bytes([f, k]) * 10) for k in range(10) for f in range(100)]
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    assert flow_tables(lab) == []        # none until a sampler wants one
    path = os.path.join(lab.tmp, "flows.pcap")
    s = Sampler(lab, "-w", path, "--per-flow", 3, "udp")
    try:
        send_raw(lab, raw)
        lab.wait_packets(len(raw))
        tables = flow_tables(lab)
        assert len(tables) == 1 and tables[0]["max_entries"] == 16384 and tables[0]["type"] == "lru_hash"
    finally:
        assert s.stop() == 0, s.err
    assert flow_tables(lab) == []        # its memory back when it stops
    got = read_file(path)
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
    assert read_file(path) == raw[:100]


@pytest.mark.parametrize("hooks", [["--xdp", "native", "--tc", "none"], ["--xdp", "none", "--tc", "in"]],
                         ids=["xdp", "tc"])
def test_per_flow_with_policy_takes_first_n_of_what_the_rules_sample(lab, hooks):
    """--policy --per-flow 3 with a --sample 1/1 rule and 20 flows of 10 packets: the first 3 of
    each flow the rule sampled, 60 frames (it took the first 1 of each: --policy's own 1-in-1
    was taken for the per-flow N); other flows' packets, which no rule sampled, none."""
    pktlens("attach", "vb", *hooks, ns=lab.b)
    pktlens("policy", "add", "vb", "--id", 4, "--proto", "udp", "--dport", 7000, "--sample", "1/1",
            ns=lab.b)
    raw = [udp(2000 + f, 7000 + f % 2, bytes([f, k]) * 10) for k in range(10) for f in range(40)]
    path = os.path.join(lab.tmp, "pol.pcap")
    s = Sampler(lab, "-w", path, "--policy", "--per-flow", 3)
    try:
        send_raw(lab, raw)
        lab.wait_packets(len(raw), hook=("tc", "in") if hooks[1] == "none" else None)
    finally:
        assert s.stop() == 0, s.err
    got = read_file(path)
    assert got == [r for r in raw if r[36:38] == (7000).to_bytes(2, "big")][:60]
    assert s.counts()["written"] == 60 and tcpdump_count(path, "udp dst port 7000") == 60


def cap_progs():
    """Names of the capture-only programs loaded anywhere (only this file's tests make them)."""
    progs = json.loads(sh("bpftool", "-j", "prog", "show").stdout)
    return sorted(p.get("name", "") for p in progs if p.get("name", "").startswith("pl_cap"))


def markers():
    return sorted(glob.glob(os.path.join(PIN_ROOT, "cap:*")))


def wait_until(cond, timeout=10.0):
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def wait_file(path, n, timeout=10.0):
    """Until the capture file holds n frames (the sampler writes out every 100 ms)."""
    def full():
        try:
            return tcpdump_count(path) >= n
        except subprocess.CalledProcessError:
            return False
    wait_until(full, timeout)


def nothing_left(lab):
    """No program on vb (XDP, tcx, clsact), no capture program loaded, nothing pinned."""
    link = json.loads(sh("ip", "-n", lab.b, "-j", "-d", "link", "show", "vb").stdout)[0]
    assert "xdp" not in link
    assert sh("tc", "-n", lab.b, "filter", "show", "dev", "vb", "ingress").stdout == ""
    wait_until(lambda: cap_progs() == [])     # freed once the last reference is gone
    assert markers() == []
    assert not os.path.exists(os.path.join(PIN_ROOT, str(netns_ino(lab.b))))


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_attach_beside_a_capture_only_xdp_sampler_names_it(lab, force):
    """attach over a running capture-only `sample --xdp`: refused with one line naming the
    sampler (exit 1), also with --force (the program is the sampler's, held by its bpf_link);
    the capture goes on, and an attach without XDP works beside it."""
    from test_sample import frames
    raw = frames()[:4]
    path = os.path.join(lab.tmp, "beside.pcap")
    s = Sampler(lab, "-w", path, "--xdp")
    try:
        prog = json.loads(sh("ip", "-n", lab.b, "-j", "-d", "link", "show", "vb").stdout)[0]
        ours = prog["xdp"]["prog"]["id"]
        r = pktlens("attach", "vb", "--xdp", "skb", "--tc", "none", *force, ns=lab.b, check=False)
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 1 and len(lines) == 1, r.stderr
        assert lines[0] == (f"pktlens: attach: vb: a capture-only `pktlens sample --xdp` runs "
                            f"XDP program pl_cap_xdp (id {ours}) on it until its capture ends: "
                            "end that capture first, or attach with --xdp none")
        link = json.loads(sh("ip", "-n", lab.b, "-j", "-d", "link", "show", "vb").stdout)[0]
        assert link["xdp"]["prog"]["id"] == ours
        pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
        send_raw(lab, raw)
        wait_file(path, len(raw))
    finally:
        assert s.stop(signal.SIGINT) == 0, s.err
    assert read_file(path) == raw


def test_unattached_interface_gets_a_capture_program_for_the_duration(lab):
    """Exact frames at tc (default) and XDP (--xdp) on an interface never attached; afterwards,
    and after SIGINT, SIGTERM, SIGHUP, nothing is left; after kill -9 the next command cleans."""
    started = []
    try:
        _unattached(lab, started)
    finally:
        for s in started:
            if s.p.poll() is None:
                s.p.kill()
                s.p.wait()


def _unattached(lab, started):
    def start(*args):
        s = Sampler(lab, *args)
        started.append(s)
        return s

    from test_sample import frames
    raw = frames()
    for args, hook in (((), "tc programs pl_cap_tc_in and pl_cap_tc_out (tcx)"),
                       (("--xdp",), "XDP program pl_cap_xdp (generic mode)")):  # MTU 9500
        path = os.path.join(lab.tmp, "cap.pcap")
        s = start("-w", path, *args)
        first = s.err.decode().splitlines()[0]
        assert first == f"pktlens: sample: vb: not attached: attached the capture-only {hook} " \
                        "until the capture ends"
        assert cap_progs() and len(markers()) == 1
        send_raw(lab, raw)
        wait_file(path, len(raw))
        assert s.stop(signal.SIGINT) == 0, s.err
        assert s.counts()["written"] == len(raw)
        assert read_file(path) == raw     # every frame, byte-identical, once
        assert tcpdump_count(path) == len(raw)
        nothing_left(lab)
    for sig in (signal.SIGTERM, signal.SIGHUP):
        s = start("udp")
        assert s.stop(sig) == 0, s.err
        nothing_left(lab)
    s = start("-w", os.path.join(lab.tmp, "k.pcap"))
    mark = markers()
    assert len(mark) == 1 and mark[0].endswith(f":vb:{s.p.pid}")
    s.p.kill()
    s.p.wait()
    assert markers() == mark                    # kill -9: the marker stays ...
    pktlens("list", ns=lab.b)                   # ... until the next command
    nothing_left(lab)
    # what needs a policy is refused on an interface that has none
    r = pktlens("sample", "vb", "--rule", 3, ns=lab.b, check=False)
    assert r.returncode == 2 and "not attached" in r.stderr
    nothing_left(lab)


def test_clsact_capture_killed_is_cleaned_from_any_namespace_and_a_second_is_told_the_first(lab):
    """Without tcx (clsact filters outlive their process; forced here as on Linux before 6.6):
    a second capture-only sampler of the interface is told the first one's pid, and after a
    kill -9 of the first, the next pktlens command, run in another namespace, removes its
    filters with its marker (it removed the marker alone, and the filters stayed on for good,
    refusing every later capture)."""
    env = {**os.environ, "PKTLENS_NO_FEATURES": "tcx"}
    path = os.path.join(lab.tmp, "k.pcap")
    p = subprocess.Popen([PKTLENS, "-n", lab.b, "sample", "vb", "-w", path], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: len(markers()) == 1 and "pl_cap_tc_in" in
                   sh("tc", "-n", lab.b, "filter", "show", "dev", "vb", "ingress").stdout)
        r = subprocess.run([PKTLENS, "-n", lab.b, "sample", "vb", "-c", "1"], env=env,
                           capture_output=True, text=True, timeout=30)
        assert (r.returncode, r.stderr.splitlines()[-1]) == \
            (1, f"pktlens: sample: vb: pktlens sample (pid {p.pid}) is sampling it already"), r.stderr
        assert len(markers()) == 1
    finally:
        p.kill()
        p.wait()
    assert "pl_cap_tc" in sh("tc", "-n", lab.b, "filter", "show", "dev", "vb", "egress").stdout
    subprocess.run([PKTLENS, "-n", lab.a, "list"], env=env, check=True, capture_output=True)
    nothing_left(lab)
    assert sh("tc", "-n", lab.b, "filter", "show", "dev", "vb", "egress").stdout == ""
    assert "clsact" not in sh("tc", "-n", lab.b, "qdisc", "show", "dev", "vb").stdout
    r = subprocess.run([PKTLENS, "-n", lab.b, "sample", "vb", "-c", "1", "--duration", "1"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    nothing_left(lab)


@pytest.mark.parametrize("tcx", [True, pytest.param(False, marks=pytest.mark.variant)],
                         ids=["tcx", "clsact"])
def test_capture_by_an_alternative_name_is_the_interfaces_own(lab, monkeypatch, tcx):
    """`sample ALTNAME` on an interface nothing is attached to names it by its own name, as
    attach and an attached capture do: the first line, the pcapng interfaces tshark reads,
    the marker. It named them by the altname, so a second capture-only sampler by the own
    name (clsact, as before Linux 6.6) was not told the first one's pid but 'File exists'."""
    from test_sample import frames
    if not tcx:
        monkeypatch.setenv("PKTLENS_NO_FEATURES", "tcx")
    sh("ip", "-n", lab.b, "link", "property", "add", "dev", "vb", "altname", "vbalt")
    raw = frames()[:4]
    path = os.path.join(lab.tmp, "alt.pcapng")
    s = Sampler(lab, "-w", path, dev="vbalt")
    try:
        assert s.err.decode().splitlines()[0].startswith("pktlens: sample: vb: not attached: ")
        mark = markers()
        assert len(mark) == 1 and mark[0].endswith(f":vb:{s.p.pid}")
        if not tcx:
            r = pktlens("sample", "vb", "-c", 1, ns=lab.b, check=False)
            assert (r.returncode, r.stderr.splitlines()[-1]) == \
                (1, f"pktlens: sample: vb: pktlens sample (pid {s.p.pid}) is sampling it already")
        send_raw(lab, raw)
        wait_file(path, len(raw))
    finally:
        assert s.stop(signal.SIGINT) == 0, s.err
    assert read_file(path) == raw
    assert if_names(path) == ["vb@tc"]
    nothing_left(lab)


@pytest.mark.parametrize("sign", [-1, pytest.param(1, marks=pytest.mark.variant)],
                         ids=["behind", "ahead"])
def test_capture_in_a_time_namespace_takes_and_stamps_frames_by_the_kernels_clock(lab, sign):
    """In a time namespace (unshare -T, a container CRIU restored) CLOCK_MONOTONIC is the
    kernel's plus an offset, which bpf_ktime_get_ns() has not. The sampler took it for the
    kernel's: behind, the lease it gave the programs had run out already (every frame
    passed by, '0 matched', exit 0); ahead, the files' timestamps were off by the offset.
    Now both are on the kernel's clock: every frame, stamped within seconds of now."""
    from test_sample import frames
    uptime = float(open("/proc/uptime").read().split()[0])
    off = sign * min(100000, int(uptime / 2))
    if abs(off) < 10:
        pytest.skip("the host booted too recently for a clock offset behind it")
    probe = subprocess.run(["unshare", "-T", "--monotonic", str(off), "--fork", "true"],
                           capture_output=True)
    if probe.returncode:
        pytest.skip(f"no time namespaces here: {probe.stderr!r}")
    raw = frames()[:6]
    path = os.path.join(lab.tmp, "timens.pcap")
    p = subprocess.Popen(["unshare", "-T", "--monotonic", str(off), "--fork", PKTLENS, "-n",
                          lab.b, "sample", "vb", "-w", path, "-c", str(len(raw)), "--duration", "20"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        err = ""
        while "capturing" not in err:
            line = p.stderr.readline()
            assert line, err
            err += line
        send_raw(lab, raw)
        err += p.communicate(timeout=30)[1]
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert read_file(path) == raw
    stamps = sh("tshark", "-r", path, "-T", "fields", "-e", "frame.time_epoch").stdout.split()
    assert len(stamps) == len(raw) and all(abs(float(t) - time.time()) < 30 for t in stamps), stamps
    nothing_left(lab)


def test_policy_selection_where_xdp_judges_but_cannot_copy_is_refused(lab):
    """XDP and tc in attached on a kernel without bpf_xdp_load_bytes (forced, as on Linux
    before 5.18): ingress is sampled at tc, behind the XDP policy, so what the policy drops or
    picks never comes there. A selection by the policy (--rule, --policy, a --verdict other
    than pass) is refused in one line naming the feature, exit 1 (it captured nothing and said
    so only at the end); the same sampler of egress alone, and one of everything, run."""
    env = {**os.environ, "PKTLENS_NO_FEATURES": "xdp-load-bytes"}

    def run(*args):
        return subprocess.run([PKTLENS, "-n", lab.b, *args], env=env, capture_output=True,
                              text=True, timeout=30)
    assert run("attach", "vb", "--xdp", "skb", "--tc", "in,out").returncode == 0
    assert run("policy", "add", "vb", "--proto", "udp", "--dport", "7100", "--drop").returncode == 0
    assert run("policy", "add", "vb", "--proto", "udp", "--dport", "7200", "--sample", "1/1").returncode == 0
    for select in (["--rule", "2"], ["--policy"], ["--verdict", "drop"],
                   ["--verdict", "pass", "--verdict", "redirect"]):
        r = run("sample", "vb", "-c", "1", "--duration", "1", *select)
        assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, (select, r.stderr)
        assert r.stderr.startswith(f"pktlens: sample: vb: {select[0]} on ingress: the policy judges it "
                                   "at XDP here, and sampling at XDP needs Linux 5.18"), r.stderr
        if select[0] != "--rule":   # rule 2 is --in
            r = run("sample", "vb", "-c", "1", "--duration", "1", "--out", *select)
            assert r.returncode == 0, (select, r.stderr)
    r = run("sample", "vb", "-c", "1", "--duration", "1")
    assert r.returncode == 0, r.stderr
    run("detach", "vb")


def test_verdict_no_capture_program_gives_is_refused_on_an_unattached_interface(lab):
    """The capture-only programs judge nothing: every packet they see passes. --verdict drop,
    redirect, tx or aborted without pass (at tc or --xdp) would wait forever and capture
    nothing (it was accepted): exit 2, one line, nothing made or attached. With pass among
    them, every frame (tcpdump -r as oracle)."""
    path = os.path.join(lab.tmp, "v.pcap")
    for args in (["--verdict", "drop"], ["--verdict", "redirect", "--verdict", "tx"],
                 ["--verdict", "aborted", "--xdp"], ["--verdict", "tx", "--in", "udp"]):
        r = pktlens("sample", "vb", "-w", path, *args, ns=lab.b, check=False, timeout=10)
        assert r.returncode == 2, (args, r.returncode, r.stderr)
        assert f"--verdict {args[1]}" in r.stderr and "not attached" in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not os.path.exists(path)
        nothing_left(lab)
    raw = [udp(4000 + i, 9000, bytes([i]) * 20) for i in range(10)]
    s = Sampler(lab, "-w", path, "--verdict", "drop", "--verdict", "pass")
    try:
        send_raw(lab, raw)
        wait_file(path, len(raw))
    finally:
        assert s.stop() == 0, s.err
    assert read_file(path) == raw
    nothing_left(lab)


@pytest.mark.parametrize("attach", [None, ["--xdp", "native", "--tc", "none"]],
                         ids=["not-attached", "attached"])
@pytest.mark.parametrize("hook", [[], ["--xdp"]], ids=["tc", "xdp"])
def test_interface_deleted_under_the_capture_ends_it(lab, attach, hook):
    """The interface deleted while a capture runs (its programs go with it): the sampler writes
    out what it has, says so and exits 1, as tcpdump's 'The interface disappeared' (it went
    on forever, capturing nothing); a capture-only one leaves nothing behind."""
    if attach:
        pktlens("attach", "vb", *attach, ns=lab.b)
    path = os.path.join(lab.tmp, "gone.pcap")
    raw = [udp(3000 + i, 9000, bytes([i]) * 20) for i in range(5)]
    s = Sampler(lab, "-w", path, *hook)
    try:
        send_raw(lab, raw)
        wait_file(path, len(raw))
        sh("ip", "-n", lab.a, "link", "del", "va")      # its peer vb goes with it
        s.p.wait(timeout=5)
    finally:
        rc = s.stop()
    assert rc == 1 and b"vb: the interface is gone" in s.err, s.err
    assert s.counts()["written"] == len(raw)
    assert read_file(path) == raw
    wait_until(lambda: cap_progs() == [])
    assert markers() == []


@pytest.mark.parametrize("args,times", [((), 1), (("--in",), 1), (("--out",), 1),
                                         (("--in", "--out"), 2)])
def test_loopback_gives_each_frame_once_as_tcpdump(lab, args, times):
    """Every frame sent on a loopback device comes back in on it: without --in/--out a capture
    of lo takes each once, the frames tcpdump -i lo takes (it skips the outgoing copies);
    --out alone takes them on the way out, --in --out twice."""
    mine = os.path.join(lab.tmp, "lo.pcap")
    theirs = os.path.join(lab.tmp, "lo-tcpdump.pcap")
    td = subprocess.Popen(["nsenter", f"--net=/run/netns/{lab.b}", "tcpdump", "-i", "lo", "-U",
                           "-w", theirs, "udp"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    s = Sampler(lab, "-w", mine, *args, "udp", dev="lo")
    try:
        said = b""
        while b"listening" not in said:                 # tcpdump is capturing
            more = os.read(td.stderr.fileno(), 4096)
            assert more, said
            said += more
        send = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" \
               "for i in range(7):\n    s.sendto(bytes([i]) * (10 + 100 * i), " \
               "('127.0.0.1', 4000 + i))\n"
        sh("nsenter", f"--net=/run/netns/{lab.b}", PYTHON, "-c", send)
        wait_file(mine, 7 * times)
        wait_until(lambda: tcpdump_count_now(theirs) == 7)
    finally:
        td.terminate()
        td.wait()
        assert s.stop(signal.SIGINT) == 0, s.err
    got, want = read_file(mine), read_file(theirs)
    assert len(want) == 7 and got == [f for f in want for _ in range(times)]
    nothing_left(lab)


def test_loopback_rule_capture_takes_an_out_rules_frames(lab):
    """--rule of an --out rule on lo: without --in/--out the capture takes both directions, as
    --policy does (a rule judges each frame once, so each comes once): the 7 frames the rule
    judged on the way out, as its counter says (it took nothing: lo's default was ingress
    alone, which that rule never judges)."""
    pktlens("attach", "lo", "--xdp", "none", "--tc", "in,out", ns=lab.b)
    pktlens("policy", "add", "lo", "--out", "--id", 5, "--proto", "udp", "--pass", ns=lab.b)
    mine = os.path.join(lab.tmp, "lo.pcap")
    s = Sampler(lab, "-w", mine, "--rule", 5, dev="lo")
    try:
        send = "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" \
               "for i in range(7):\n    s.sendto(bytes([i]) * 20, ('127.0.0.1', 4000 + i))\n"
        sh("nsenter", f"--net=/run/netns/{lab.b}", PYTHON, "-c", send)
        wait_file(mine, 7, timeout=5)
    finally:
        assert s.stop(signal.SIGINT) == 0, s.err
    got = read_file(mine)
    assert sorted(int.from_bytes(f[36:38], "big") for f in got) == list(range(4000, 4007))
    rule = pktlens_json("policy", "list", "lo", ns=lab.b)["interfaces"][0]["rules"][0]
    assert rule["id"] == 5 and rule["packets"] == 7


def frames_in(paths, tshark=False):
    """Every file readable on its own (by tcpdump; with tshark, by tshark too); their frames,
    in file order."""
    got = []
    for p in paths:
        frames = read_file(p)
        if tshark:
            ts = sh("tshark", "-r", p, "-T", "fields", "-e", "frame.len").stdout.split()
            assert list(map(int, ts)) == [len(f) for f in frames]
        got += frames
    return got


def test_rotation_by_size_and_time_loses_and_repeats_nothing(lab):
    """-C 1: files of at most 1 MB whose concatenation is exactly what was sent; -W 3 keeps
    exactly the newest 3; -G 1 with a strftime name: a file per second, nothing lost; a name
    this capture did not make is never replaced."""
    raw = [udp(3000, 9000, i.to_bytes(4, "big") * 250) for i in range(2000)]   # 2.1 MB
    d = os.path.join(lab.tmp, "rot")
    os.mkdir(d)
    per = {}
    for fmt in ("pcap", "pcapng"):
        for f in glob.glob(os.path.join(d, "*")):
            os.unlink(f)
        s = Sampler(lab, "-w", os.path.join(d, f"c.{fmt}"), "-C", 1, "udp")
        names = [f"c.{fmt}", f"c.{fmt}1", f"c.{fmt}2"]
        paths = [os.path.join(d, n) for n in names]
        try:
            send_raw(lab, raw)
            wait_until(lambda: sorted(os.listdir(d)) == names and
                       sum(tcpdump_count_now(p) for p in paths) == len(raw))
        finally:
            assert s.stop() == 0, s.err
        assert sorted(os.listdir(d)) == names
        assert frames_in(paths, fmt == "pcapng") == raw   # each on its own; together: raw
        assert all(1000000 < os.path.getsize(p) < 1002000 for p in paths[:2])   # tcpdump's
        per[fmt] = tcpdump_count(paths[0])
    per = per["pcap"]
    # -W 2 of the 3 files: exactly 2 left, the newest, holding the newest frames whole
    for f in glob.glob(os.path.join(d, "*")):
        os.unlink(f)
    s = Sampler(lab, "-w", os.path.join(d, "k.pcap"), "-C", 1, "-W", 2, "udp")
    try:
        send_raw(lab, raw)
        wait_until(lambda: sorted(os.listdir(d)) == ["k.pcap0", "k.pcap1"] and
                   tcpdump_count_now(os.path.join(d, "k.pcap0")) == len(raw) - 2 * per)
    finally:
        assert s.stop() == 0, s.err
    assert sorted(os.listdir(d)) == ["k.pcap0", "k.pcap1"]
    got = frames_in([os.path.join(d, "k.pcap1"), os.path.join(d, "k.pcap0")])
    assert got == raw[per:]
    # -W 1: one file named as given, as tcpdump names it (no digit), holding the newest frames
    for f in glob.glob(os.path.join(d, "*")):
        os.unlink(f)
    one = os.path.join(d, "k.pcap")
    s = Sampler(lab, "-w", one, "-C", 1, "-W", 1, "udp")
    try:
        send_raw(lab, raw)
        wait_until(lambda: os.listdir(d) == ["k.pcap"] and tcpdump_count_now(one) == len(raw) - 2 * per)
    finally:
        assert s.stop() == 0, s.err
    assert os.listdir(d) == ["k.pcap"] and frames_in([one]) == raw[2 * per:]
    # -G 1: a file per second, strftime names; batches a second apart, none lost or repeated
    for f in glob.glob(os.path.join(d, "*")):
        os.unlink(f)
    s = Sampler(lab, "-w", os.path.join(d, "t-%s.pcap"), "-G", 1, "udp")
    try:
        for k in range(2):
            n = len(os.listdir(d))
            send_raw(lab, raw[k * 10:(k + 1) * 10])
            wait_until(lambda: len(os.listdir(d)) > n)
    finally:
        assert s.stop() == 0, s.err
    paths = sorted(glob.glob(os.path.join(d, "t-*.pcap")))
    assert len(paths) >= 3
    assert frames_in(paths) == raw[:20]
    # a generated name that exists and is not this capture's, and not known to be one of its
    # names before the start (FILE2): it stops there, never replaced
    for f in glob.glob(os.path.join(d, "*")):
        os.unlink(f)
    with open(os.path.join(d, "m.pcap2"), "w") as f:
        f.write("mine")
    s = Sampler(lab, "-w", os.path.join(d, "m.pcap"), "-C", 1, "udp")
    try:
        send_raw(lab, raw[:2 * per + 10])
        s.p.wait(timeout=20)
    finally:
        rc = s.stop()
    assert rc == 1 and b"m.pcap2' exists and this capture did not write it" in s.err, s.err
    assert open(os.path.join(d, "m.pcap2")).read() == "mine"
    assert [tcpdump_count(os.path.join(d, f)) for f in ("m.pcap", "m.pcap1")] == [per, per]


@pytest.mark.parametrize("fmt", ["pcap", pytest.param("pcapng", marks=pytest.mark.variant)])
def test_rotation_by_size_splits_at_tcpdumps_packet(lab, fmt):
    """-C 1 ends each file where tcpdump's -C 1 ends it: a new file begins before a packet only
    when this one is already past 1,000,000 bytes, so the packet that crossed the limit is its
    file's last (ours ended one packet earlier, never past the limit). Frames of many sizes
    (2.2 MB, three files). pcap: our files, concatenated by mergecap, split again by tcpdump -C 1
    itself give the same files, packet for packet and byte for byte. pcapng (tcpdump cannot
    write it): the same rule read from the files, every file but the last is past the limit
    and was not before its last block (a block's length ends it)."""
    raw = [udp(3000, 9000, i.to_bytes(4, "big") * (5 + i * 37 % 363)) for i in range(2900)]
    d = os.path.join(lab.tmp, "ours")
    os.mkdir(d)
    base = f"c.{fmt}"
    s = Sampler(lab, "-w", os.path.join(d, base), "-C", 1, "udp")
    try:
        send_raw(lab, raw)
        wait_until(lambda: sum(tcpdump_count_now(p) for p in numbered(d, base)) == len(raw))
    finally:
        assert s.stop() == 0, s.err
    ours = numbered(d, base)
    assert [os.path.basename(p) for p in ours] == [base, base + "1", base + "2"], ours
    assert frames_in(ours, fmt == "pcapng") == raw
    if fmt == "pcapng":
        for p in ours[:-1]:
            with open(p, "rb") as f:
                data = f.read()
            last = struct.unpack("<I", data[-4:])[0]      # the last block's total length
            assert len(data) - last <= 1000000 < len(data), (p, len(data), last)
        return
    merged = os.path.join(lab.tmp, "merged.pcap")
    sh("mergecap", "-a", "-F", "nsecpcap", "-w", merged, *ours)
    ref = os.path.join(lab.tmp, "ref")
    os.mkdir(ref)
    sh("tcpdump", "-Z", "root", "-r", merged, "-w", os.path.join(ref, base), "-C", "1")

    def split(paths):
        return [(os.path.basename(p), tcpdump_count(p), os.path.getsize(p)) for p in paths]
    assert split(ours) == split(numbered(ref, base))


@pytest.mark.parametrize("rot", [["-C", "1"], pytest.param(["-G", "1"], marks=pytest.mark.variant)],
                         ids=["size", "time"])
def test_rotation_refuses_at_the_start_a_next_name_too_long_for_the_directory(lab, rot):
    """-w FILE of 255 bytes (NAME_MAX): FILE is fine, but FILE1, the next file -C (or -G with a
    name without pattern) makes, is one byte too long. Said at the start (exit 2, one line
    naming it, nothing made or attached) as an existing FILE1 is; it started, and its first
    rotation failed ("the next file could not be made")."""
    d = os.path.join(lab.tmp, "long")
    os.mkdir(d)
    path = os.path.join(d, "a" * 255)
    r = pktlens("sample", "vb", "-w", path, *rot, "--duration", 1, ns=lab.b, check=False)
    assert (r.returncode, r.stderr) == \
        (2, f"pktlens: sample: cannot write '{path}1': {os.strerror(errno.ENAMETOOLONG)}\n")
    assert os.listdir(d) == []
    nothing_left(lab)


def numbered(d, base):
    """The files base, base1, base2, ... in d, in that order."""
    names = [f for f in os.listdir(d) if f == base or (f.startswith(base) and
                                                      f[len(base):].isdigit())]
    return [os.path.join(d, f) for f in sorted(names, key=lambda f: int(f[len(base):] or 0))]


def test_rotation_by_time_never_replaces_its_own_earlier_file(lab):
    """-G 1 with a FILE whose name does not change from one period to the next (no strftime
    pattern, or one coarser than SECS, as %Y): a period's file never replaces the previous one
    (it did, and the summary counted frames no file held any more); it gets 1, 2, ... appended
    as -C numbers files, the concatenation is exactly what was sent, and -W 2 keeps the 2 newest."""
    d = os.path.join(lab.tmp, "same")
    os.mkdir(d)
    year = time.strftime("%Y")
    for pattern, base, keep in (("c.pcap", "c.pcap", ()), ("y-%Y.pcapng", f"y-{year}.pcapng", ()),
                                ("k.pcap", "k.pcap", ("-W", 2))):
        s = Sampler(lab, "-w", os.path.join(d, pattern), "-G", 1, *keep, "udp")
        sent = []
        try:
            for k in range(3):
                last = numbered(d, base)[-1]
                raw = [udp(3000 + 10 * k + i, 9000, bytes([k, i]) * 20) for i in range(5)]
                send_raw(lab, raw)
                sent.append(raw)
                wait_until(lambda: numbered(d, base)[-1] != last)    # the next period's file
        finally:
            assert s.stop() == 0, s.err
        paths = numbered(d, base)
        c = s.counts()
        if keep:
            assert len(paths) == 2 and os.path.basename(paths[0]) != base, paths
            assert frames_in(paths)[-5:] == sent[-1]
        else:
            assert os.path.basename(paths[0]) == base and len(paths) >= 4, paths
            assert frames_in(paths, base.endswith("ng")) == sum(sent, [])
            assert c["written"] == 15
        assert c["sampled"] == c["written"] + c["lost"] + c["unwritten"]


def test_rotation_by_time_ends_with_the_duration(lab):
    """-G 1 --duration 2: two files, each a second of the traffic, not a third one begun in
    the capture's last moment (the periods counted from the file's opening, a little before
    --duration's start, and ended first) or for what was left in the ring at the end. Several
    runs: the race was lost about one time in three."""
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    stream = os.path.join(lab.tmp, "stream.pcap")
    write_pcap(stream, [udp(4000 + i, 9000) for i in range(10)])
    stop = os.path.join(lab.tmp, "stop")
    sender = subprocess.Popen(["ip", "netns", "exec", lab.a, PYTHON, SENDRAW, "va", stream, "500",
                               stop], stdout=subprocess.DEVNULL)
    try:
        for run in range(5):
            d = os.path.join(lab.tmp, f"g{run}")
            os.mkdir(d)
            r = subprocess.run([PKTLENS, "-n", lab.b, "-j", "sample", "vb", "-w",
                                os.path.join(d, "t-%s.pcap"), "-G", "1", "--duration", "2", "udp"],
                               capture_output=True, text=True, timeout=30)
            assert r.returncode == 0, r.stderr
            summary = json.loads(r.stdout)
            paths = sorted(glob.glob(os.path.join(d, "t-*.pcap")))
            counts = [tcpdump_count(p) for p in paths]
            assert len(paths) == 2, (run, counts, os.listdir(d))
            assert all(c > 300 for c in counts), counts   # about 500 a second
            assert sum(counts) == summary["written"] > 0
    finally:
        open(stop, "w").close()
        sender.wait(timeout=10)


@pytest.mark.variant     # timing; rotate.c's period code runs in the other -G tests under ASan
def test_rotation_by_size_within_a_period_keeps_its_name_and_clock(lab):
    """-G 8 -C 1: the files -C starts within a period are named as tcpdump names them, the
    period's strftime name with 1, 2, ... appended, and do not restart -G's clock: the next
    period begins 8 s after the capture's start (each -C file was named by the second it
    opened, and -G's period restarted with it, so the next period came 8 s after the last
    -C file)."""
    d = os.path.join(lab.tmp, "gc")
    os.mkdir(d)
    burst = [[udp(3000, 9000, bytes([k, i % 256]) * 500) for i in range(1100)] for k in range(2)]
    s = Sampler(lab, "-w", os.path.join(d, "p-%s.pcap"), "-G", 8, "-C", 1, "udp")
    t0 = time.time()
    try:
        first = os.listdir(d)
        assert len(first) == 1, first
        base = first[0]
        sec0 = int(base[2:-5])
        assert abs(sec0 - t0) <= 2, (base, t0)
        send_raw(lab, burst[0])                        # about 1.1 MB: a -C file begins
        wait_until(lambda: len(os.listdir(d)) == 2)
        time.sleep(max(0.0, t0 + 2.5 - time.time()))  # a later second, the same period
        send_raw(lab, burst[1])
        wait_until(lambda: len(os.listdir(d)) == 3)
        assert sorted(os.listdir(d)) == sorted([base, base + "1", base + "2"]), os.listdir(d)
        if time.time() - t0 > 7:
            pytest.skip("the host took more than a period for two bursts: no timing to test")
        time.sleep(max(0.0, t0 + 8.5 - time.time()))  # the next period, 8 s after the start
        late = [udp(4000 + i, 9000) for i in range(3)]
        send_raw(lab, late)
        wait_until(lambda: len(os.listdir(d)) == 4, timeout=3)
    finally:
        assert s.stop() == 0, s.err
    names = sorted(os.listdir(d))
    new = [n for n in names if n not in (base, base + "1", base + "2")]
    assert len(new) == 1 and sec0 + 8 <= int(new[0][2:-5]) <= sec0 + 9, (names, sec0)
    paths = [os.path.join(d, n) for n in (base, base + "1", base + "2", new[0])]
    assert frames_in(paths) == burst[0] + burst[1] + late


def test_pcapng_rotation_fills_a_file_to_the_byte_and_declares_the_hooks_in_each(lab):
    """-C 1 into pcapng, tcpdump's rule: a file of exactly 1,000,000 bytes is not past the limit
    and takes the next frame too; a file past it takes no more (pcapng blocks are whole 4-byte
    words: the file is filled with frames of known sizes to 120 bytes short, then one egress
    frame of 60 bytes, an EPB of 120, fills it; a second one goes past, a third begins the next
    file). Every file begins with the interface blocks of both hooks the capture covers (XDP
    ingress, tc egress), so a file reads whole whichever hook its packets came through."""
    pktlens("attach", "vb", "--xdp", "native", "--tc", "out", ns=lab.b)
    d = os.path.join(lab.tmp, "ng")
    os.mkdir(d)
    path = os.path.join(d, "c.pcapng")
    limit = 1000000

    def size():
        time.sleep(0.3)     # written out every 100 ms
        return os.path.getsize(path)

    def epb(caplen):        # an EPB: header, data, epb_flags, epb_verdict, end of options
        return 32 + (caplen + 3) // 4 * 4 + 8 + 16 + 4

    def egress():
        out = udp(6000, 9000, b"e" * 18, src="198.18.0.2", dst="198.18.0.1")
        p = os.path.join(lab.tmp, "egress.pcap")
        write_pcap(p, [out])
        sh("ip", "netns", "exec", lab.b, PYTHON, SENDRAW, "vb", p)

    def ifaces(f):
        return sh("tshark", "-r", f, "-T", "fields", "-e", "frame.interface_name").stdout.split()

    s = Sampler(lab, "-w", path, "-C", 1)
    try:
        send_raw(lab, [udp(3000, 9000, i.to_bytes(4, "big") * 350) for i in range(600)])
        have = size()
        # ingress frames that fit as they are up to 120 bytes short: each adds its length + 60
        frames, left = [], limit - have - 120
        while left > 0:
            c = 1440 if left > 1500 + 120 else left - 60 - 120 if left > 1560 else left - 60
            assert 60 <= c <= 1500 and c % 4 == 0, (have, left)
            frames.append(udp(5000, 9000, b"f" * (c - 42)))
            left -= epb(c)
            have += epb(c)
        assert limit - have == 120
        send_raw(lab, frames)
        assert size() == have and len(os.listdir(d)) == 1, (size(), have, os.listdir(d))
        egress()
        assert size() == limit and os.listdir(d) == ["c.pcapng"], (size(), os.listdir(d))
        egress()
        assert size() == limit + 120 and os.listdir(d) == ["c.pcapng"], (size(), os.listdir(d))
        egress()
        wait_until(lambda: os.path.exists(path + "1") and len(sh(
            "tcpdump", "-nn", "-r", path + "1", check=False).stdout.splitlines()) == 1)
    finally:
        assert s.stop() == 0, s.err
    sizes = {f: os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)}
    assert sizes["c.pcapng"] == limit + 120 and sorted(sizes) == ["c.pcapng", "c.pcapng1"], sizes
    assert ifaces(path)[-1] == "vb@tc" and ifaces(path + "1") == ["vb@tc"]
    for f in (path, path + "1"):
        assert if_names(f) == ["vb@xdp", "vb@tc"], (f, if_names(f))


def test_pcapng_files_without_packets_read_as_captures(lab):
    """A pcapng file that got no packet is still a capture tcpdump reads (0 packets): -G's files
    of quiet seconds, a capture that saw nothing. It had only a section header until a packet
    brought its interface block, and libpcap refuses a section without one ('the capture file
    has no Interface Description Blocks'), also while a rotated file waited for its first
    packet."""
    pktlens("attach", "vb", "--xdp", "native", "--tc", "in,out", ns=lab.b)
    d = os.path.join(lab.tmp, "quiet")
    os.mkdir(d)
    s = Sampler(lab, "-w", os.path.join(d, "q-%s.pcapng"), "-G", 1, "udp")
    try:
        wait_until(lambda: len(os.listdir(d)) >= 2, timeout=10)
        empty = sorted(glob.glob(os.path.join(d, "*")))[0]
        assert sh("tcpdump", "-nn", "-r", empty, check=False).returncode == 0
        n = len(os.listdir(d))
        send_raw(lab, [udp(7000 + i, 9000) for i in range(5)])
        wait_until(lambda: len(os.listdir(d)) > n)
    finally:
        assert s.stop() == 0, s.err
    files = sorted(glob.glob(os.path.join(d, "*")))
    counts = []
    for f in files:
        r = sh("tcpdump", "-nn", "-r", f, check=False)
        assert r.returncode == 0, (f, r.stderr)
        counts.append(len(r.stdout.splitlines()))
    assert sum(counts) == 5 and counts.count(0) >= 1, counts
    assert if_names(files[0]) == ["vb@xdp", "vb@tc"], if_names(files[0])
    # a capture that saw nothing at all, on an interface not attached (capture-only programs)
    pktlens("detach", "vb", ns=lab.b)
    path = os.path.join(lab.tmp, "none.pcapng")
    s = Sampler(lab, "-w", path, "udp port 1")
    try:
        time.sleep(0.5)
    finally:
        assert s.stop() == 0, s.err
    r = sh("tcpdump", "-nn", "-r", path, check=False)
    assert r.returncode == 0 and r.stdout == "", r.stderr
    assert if_names(path) == ["vb@tc"], if_names(path)


def test_trigger_writes_nothing_below_and_the_frames_after_it_above(lab):
    """--when 'dev pps > 200' --for 3: 20 frames in a second write nothing; a burst of 600
    fires it, and the file holds exactly the frames sent after it fired (the burst's frames go
    to another port than the expression's)."""
    for bad in ("rule x > 5pps", "dev pps >= 5", "drops > 5pps", "pps > 5/s"):
        r = pktlens("sample", "vb", "--when", bad, "--for", 1, ns=lab.b, check=False)
        assert r.returncode == 2 and f"--when '{bad}'" in r.stderr, r.stderr
    path = os.path.join(lab.tmp, "trig.pcap")
    s = Sampler(lab, "-w", path, "--when", "dev pps > 200", "--for", 3, "udp port 7777",
                ready=False)
    try:
        s.wait_for(b"waiting for 'dev pps > 200'")
        below = [udp(4000 + i, 7777) for i in range(20)]
        for k in range(4):
            send_raw(lab, below[k * 5:(k + 1) * 5])
            time.sleep(0.3)
        assert b"fired" not in s.err and not os.path.exists(path)
        send_raw(lab, [udp(5000, 6666, i.to_bytes(2, "big") * 9) for i in range(600)])
        s.wait_for(b"fired")
        s.wait_for(b"capturing")
        after = [udp(6000 + i, 7777) for i in range(30)]
        send_raw(lab, after)
        assert s.p.wait(timeout=20) == 0      # --for 3: it ends by itself
    finally:
        assert s.stop() == 0, s.err
    assert read_file(path) == after
    assert s.counts()["written"] == 30


@pytest.mark.parametrize("attach", [None, pytest.param(["--xdp", "none", "--tc", "in"],
                                                        marks=pytest.mark.variant)],
                         ids=["capture-only", "attached"])
def test_trigger_counts_its_interface_renamed_and_not_the_one_that_took_its_name(lab, attach):
    """--when 'dev pps > 200' looked the interface up by name every 100 ms: renamed while it
    waited (the capture itself goes on after a rename), the trigger stopped the capture
    ('No such device', exit 1); and once another interface took the old name it counted that
    one's packets, so a flood on the captured interface never fired it. It counts its
    interface by index now: the burst fires it, and the file holds the frames after it."""
    if attach:
        pktlens("attach", "vb", *attach, ns=lab.b)
    path = os.path.join(lab.tmp, "renamed.pcap")
    s = Sampler(lab, "-w", path, "--when", "dev pps > 200", "--for", 2, "udp port 7777",
                ready=False)
    try:
        s.wait_for(b"waiting for 'dev pps > 200'")
        sh("ip", "-n", lab.b, "link", "set", "vb", "name", "vc")
        sh("ip", "-n", lab.b, "link", "add", "vb", "type", "veth", "peer", "name", "vbpeer")
        time.sleep(0.3)
        assert s.p.poll() is None, s.stop()
        send_raw(lab, [udp(5000, 6666, i.to_bytes(2, "big") * 9) for i in range(600)])
        s.wait_for(b"fired")
        s.wait_for(b"capturing")
        after = [udp(6000 + i, 7777) for i in range(30)]
        send_raw(lab, after)
        assert s.p.wait(timeout=20) == 0      # --for 2: it ends by itself
    finally:
        assert s.stop() == 0, s.err
    assert read_file(path) == after
    assert s.counts()["written"] == len(after)
    if attach:
        sh("ip", "-n", lab.b, "link", "del", "vb")
        sh("ip", "-n", lab.b, "link", "set", "vc", "name", "vb")


def test_trigger_firing_while_another_sampler_has_the_interface_waits_again(lab):
    """A --when capture that fires while another `sample` has the (attached) interface says so
    once and waits to fire again: it ended with exit 1, and a daemon's standing trigger lost its
    firings until started again 5 s later. Fired again once the other one ended, it writes the
    frames after that firing, and its summary counts the firing it could not capture."""
    pktlens("attach", "vb", "--xdp", "none", ns=lab.b)
    other = Sampler(lab, "-w", os.path.join(lab.tmp, "other.pcap"), "udp port 9999")
    path = os.path.join(lab.tmp, "busy.pcap")
    s = Sampler(lab, "-w", path, "--when", "dev pps > 200", "--for", 2, "udp port 7777",
                ready=False)
    try:
        s.wait_for(b"waiting for 'dev pps > 200'")
        flood = [udp(5000, 6666, i.to_bytes(2, "big") * 9) for i in range(600)]
        send_raw(lab, flood)
        s.wait_for(b"is sampling it already: not captured; waiting to fire again")
        assert other.stop() == 0, other.err
        time.sleep(1.2)     # the skipped firing's window has passed
        assert s.p.poll() is None and not os.path.exists(path), s.err
        send_raw(lab, flood)
        s.wait_for(b"capturing")
        after = [udp(6000 + i, 7777) for i in range(30)]
        send_raw(lab, after)
        assert s.p.wait(timeout=20) == 0, s.err
    finally:
        other.stop()
        assert s.stop() == 0, s.err
    assert read_file(path) == after
    assert s.err.count(b"not captured; waiting to fire again") == 1, s.err
    m = re.search(rb"; --when fired (\d+) times \((\d+) while another sampler had the "
                  rb"interface: not captured\)\n", s.err)
    assert m and int(m[1]) == int(m[2]) + 1 >= 2, s.err


@pytest.mark.parametrize("cond", ["drops > 5/s extra", "drops NO_SOCKET >= 5/s",
                                  "drops NO_SOCKET 5 /s", "drops > > 5/s"])
def test_trigger_grammar_errors_name_the_grammar_not_a_reason(lab, cond):
    """A 'drops' condition of the wrong shape is refused for its shape (exit 2, one line with the
    grammar), not as a drop reason named by whatever word came second ("no drop reason '>'")."""
    r = pktlens("sample", "vb", "--when", cond, "--for", 1, ns=lab.b, check=False, timeout=10)
    assert r.returncode == 2 and f"--when '{cond}'" in r.stderr, r.stderr
    assert "expected 'rule ID > Npps', 'dev pps > N' or 'drops [REASON] > N/s'" in r.stderr
    assert "no drop reason" not in r.stderr and len(r.stderr.splitlines()) == 1, r.stderr


def test_trigger_rate_is_over_a_second_also_in_the_first_one(lab):
    """--when 'dev pps > 200': bursts of 100 frames 1.3 s apart never make 200 in a second, also
    when the first one lands right after the waiting began (the rate was the window's count
    over the window's length, 100 ms then: 1000/s, and it fired); 300 at once do fire."""
    path = os.path.join(lab.tmp, "burst.pcap")
    burst = os.path.join(lab.tmp, "burst100.pcap")
    write_pcap(burst, [udp(4000 + i, 7777) for i in range(100)])
    # started beforehand, waiting on stdin: the first burst goes out at once when told
    sender = subprocess.Popen(["ip", "netns", "exec", lab.a, "sh", "-c",
                               f"read go; exec {PYTHON} {SENDRAW} va {burst}"],
                              stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
    s = Sampler(lab, "-w", path, "--when", "dev pps > 200", "--for", 1, ready=False)
    try:
        s.wait_for(b"waiting for 'dev pps > 200'")
        sender.communicate(b"go\n", timeout=10)
        for _ in range(2):
            time.sleep(1.3)
            send_raw(lab, [udp(5000 + i, 7777) for i in range(100)])
        time.sleep(0.5)
        assert not os.path.exists(path)
        send_raw(lab, [udp(6000 + i, 7777) for i in range(300)])
        s.wait_for(b"fired")
    finally:
        if sender.poll() is None:
            sender.kill()
            sender.wait()
        assert s.stop() == 0, s.err
    assert s.err.count(b"' fired: ") == 1 and s.counts()["written"] == 0, s.err


@pytest.mark.parametrize("json_out", [False, True])
def test_trigger_that_never_fired_still_sums_up(lab, json_out):
    """A --when capture ended by a signal before its condition held says so (it printed no
    summary at all, and -j nothing on stdout): none matched or written, fired 0 times, no file."""
    path = os.path.join(lab.tmp, f"never{int(json_out)}.pcap")
    s = Sampler(lab, *(["-j"] if json_out else []), "-w", path, "--when", "dev pps > 1000000",
                "--for", 1, ready=False)
    if json_out:
        time.sleep(1.5)     # -j: no info lines on stderr to wait for
    else:
        s.wait_for(b"waiting for 'dev pps > 1000000'")
    send_raw(lab, [udp(4000 + i, 7777) for i in range(5)])
    assert s.stop(signal.SIGINT) == 0, s.err
    assert not os.path.exists(path)
    if json_out:
        doc = json.loads(s.out)
        assert (doc["firings"], doc["matched"], doc["written"]) == (0, 0, 0), doc
    else:
        assert s.counts() == dict(matched=0, sampled=0, written=0, lost=0, unwritten=0)
        assert b"; --when fired 0 times\n" in s.err, s.err


def trigger_conf(lab, fname, name, when, secs, write, keep=None):
    """A service config with one standing trigger on vb of lab.b, for UDP port 7777 (its entry
    on line 3)."""
    conf = os.path.join(lab.tmp, fname)
    with open(conf, "w") as f:
        f.write(f'name: {name}\ntriggers:\n  - dev: vb\n    netns: {lab.b}\n    when: "{when}"\n'
                f'    for: {secs}\n    write: {write}\n' + (f"    keep: {keep}\n" if keep else "") +
                '    filter: "udp port 7777"\n')
    return conf


def test_daemon_standing_trigger_writes_a_file_when_it_fires(lab):
    """triggers: in the service config: the daemon keeps a `sample --when --rearm` running; a
    burst fires it (a log line says so) and the file holds the frames after it; SIGTERM to the
    daemon ends the sampler and leaves nothing attached."""
    from test_service import Daemon
    lab.daemons = []
    conf = trigger_conf(lab, "trig.conf", "h21-trigger-test", "dev pps > 200", 8,
                        f"{lab.tmp}/fired-%H%M%S.pcap", keep=2)
    bad = os.path.join(lab.tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write("triggers:\n  - dev: vb\n    when: \"dev pps >= 5\"\n    for: 1\n"
                "    write: /tmp/x.pcap\n  - dev: vb\n    when: \"pps > 5\"\n")
    r = pktlens("apply", bad, "--dry-run", check=False)
    assert r.returncode == 2 and "bad.conf:3:11: when: 'dev pps >= 5': expected" in r.stderr, \
        r.stderr
    # --for 8: the frames after it go out once its log says capturing, on a loaded host too
    d = Daemon(lab, conf)
    try:
        d.wait_notify()
        d.wait_log(r"trigger .*trig.conf:3: .*vb: waiting for 'dev pps > 200', then capturing 8 s")
        d.wait_log(r"pktlens: sample: vb: waiting for 'dev pps > 200'")
        send_raw(lab, [udp(5000, 6666, i.to_bytes(2, "big") * 9) for i in range(600)])
        d.wait_log(r"pktlens: sample: vb: 'dev pps > 200' fired: \d+/s")
        d.wait_log(r"pktlens: sample: vb: capturing 'udp port 7777', snaplen \d+ into .*fired-")
        after = [udp(6000 + i, 7777) for i in range(30)]
        send_raw(lab, after)
        wait_until(lambda: [p for p in glob.glob(os.path.join(lab.tmp, "fired-*.pcap"))
                            if read_file(p) == after])
        assert d.stop() == 0, d.log()
    finally:
        d.kill()
    assert not [line for _, line in d.lines if "ended (" in line]   # never restarted
    nothing_left(lab)


def files(d, prefix):
    return sorted(glob.glob(os.path.join(d, prefix + "*")))


def counts(d, prefix):
    """tcpdump -r's count of each file (None: not readable yet)."""
    try:
        return [tcpdump_count(p) for p in files(d, prefix)]
    except subprocess.CalledProcessError:
        return None


def test_rotated_capture_counts_every_file_written(lab):
    """The summary's written is what all files of the capture held (tcpdump -r counts them; files
    -W replaced: the frames sent), for -C (pcapng; pcap with -j and -W), -G, and a rotation that
    stopped at a FILE2 this capture did not make: sampled = written + lost + not written."""
    raw = [udp(3000, 9000, i.to_bytes(4, "big") * 250) for i in range(2000)]   # 2.1 MB
    d = os.path.join(lab.tmp, "sum")
    os.mkdir(d)
    # -C 1, pcapng: three files
    s = Sampler(lab, "-w", os.path.join(d, "c.pcapng"), "-C", 1, "udp")
    try:
        send_raw(lab, raw)
        wait_file(os.path.join(d, "c.pcapng2"), 1)
        wait_until(lambda: sum(counts(d, "c.pcapng") or [0]) == len(raw))
    finally:
        assert s.stop() == 0, s.err
    c = s.counts()
    assert len(files(d, "c.pcapng")) == 3
    assert c["written"] == sum(tcpdump_count(p) for p in files(d, "c.pcapng")) == len(raw)
    assert c["sampled"] == c["written"] + c["lost"] + c["unwritten"]
    # FILE2 exists, not this capture's: it stops at the second rotation, the frames of FILE and
    # FILE1 were written
    with open(os.path.join(d, "m.pcap2"), "w") as f:
        f.write("mine")
    s = Sampler(lab, "-w", os.path.join(d, "m.pcap"), "-C", 1, "udp")
    try:
        send_raw(lab, raw)
        s.p.wait(timeout=20)
    finally:
        assert s.stop() == 1, s.err
    c = s.counts()
    per = tcpdump_count(os.path.join(d, "m.pcap"))     # frames in 1 MB of pcap
    assert c["written"] == 2 * per == 2 * tcpdump_count(os.path.join(d, "m.pcap1")) > 1800
    assert c["sampled"] == c["written"] + c["lost"] + c["unwritten"] and c["unwritten"] > 0
    # pcap, -W 2 (the first file replaced, its frames written all the same), -j: JSON summary
    s = Sampler(lab, "-j", "-w", os.path.join(d, "k.pcap"), "-C", 1, "-W", 2, "udp", ready=False)
    try:
        wait_until(lambda: os.path.exists(os.path.join(d, "k.pcap0")))
        send_raw(lab, raw)
        wait_until(lambda: counts(d, "k.pcap") == [len(raw) - 2 * per, per])  # came round
    finally:
        assert s.stop() == 0, s.err
    j = json.loads(s.out.decode().splitlines()[-1])
    assert files(d, "k.pcap") == [os.path.join(d, "k.pcap0"), os.path.join(d, "k.pcap1")]
    assert tcpdump_count(os.path.join(d, "k.pcap0")) == len(raw) - 2 * per
    assert tcpdump_count(os.path.join(d, "k.pcap1")) == per
    assert j["written"] == len(raw) and j["sampled"] == j["written"] + j["lost"] + j["unwritten"]
    # -G 1: a file per second
    s = Sampler(lab, "-w", os.path.join(d, "t-%s.pcap"), "-G", 1, "udp")
    try:
        for k in range(2):
            n = len(files(d, "t-"))
            send_raw(lab, raw[k * 10:(k + 1) * 10])
            wait_until(lambda: len(files(d, "t-")) > n)
    finally:
        assert s.stop() == 0, s.err
    assert s.counts()["written"] == sum(tcpdump_count(p) for p in files(d, "t-")) == 20


def wait_count(s, what, n, timeout=20):
    """Until the sampler's stderr says `what` n times."""
    deadline = time.time() + timeout
    while s.err.count(what) < n:
        left = deadline - time.time()
        assert left > 0 and s.p.poll() is None, f"not {n} x {what!r}: {s.err!r}"
        r, _, _ = select.select([s.p.stderr], [], [], left)
        if r:
            s.err += os.read(s.p.stderr.fileno(), 4096)


def rearm_twice(lab, path, tag):
    """--rearm --for 1 -w path, fired twice; the frames each firing captured (port 7777)."""
    s = Sampler(lab, "-w", path, "--when", "dev pps > 50", "--for", 1, "--rearm",
                "udp port 7777", ready=False)
    sent = []
    try:
        for k in (1, 2):
            wait_count(s, b"waiting for", k)
            send_raw(lab, [udp(5000, 6666, i.to_bytes(2, "big") * 9) for i in range(200)])
            wait_count(s, b"capturing", k)
            sent.append([udp(100 * tag + 10 * k + i, 7777) for i in range(5)])
            send_raw(lab, sent[-1])
            wait_count(s, b"waiting for", k + 1)
    finally:
        assert s.stop() == 0, s.err
    assert s.counts()["written"] == 10
    # the wait a signal ended came after two firings that wrote files
    assert b"'dev pps > 50' did not fire again\n" in s.err and b"nothing written" not in s.err, \
        s.err
    return sent


def test_rearm_never_replaces_an_earlier_firings_file(lab):
    """--rearm -w FILE without a strftime pattern, and with one coarser than the firings: the
    second firing goes to FILE1 as -C numbers files (FILE2 when FILE1 exists and is not the
    capture's, which is left as it was); tcpdump -r finds each firing's frames in its file."""
    d = os.path.join(lab.tmp, "re")
    os.mkdir(d)
    with open(os.path.join(d, "re.pcap1"), "w") as f:
        f.write("mine")
    first, second = rearm_twice(lab, os.path.join(d, "re.pcap"), 1)
    assert sorted(os.listdir(d)) == ["re.pcap", "re.pcap1", "re.pcap2"]
    assert read_file(os.path.join(d, "re.pcap")) == first
    assert read_file(os.path.join(d, "re.pcap2")) == second
    assert open(os.path.join(d, "re.pcap1")).read() == "mine"
    for f in os.listdir(d):
        os.unlink(os.path.join(d, f))
    year = time.strftime("%Y")
    first, second = rearm_twice(lab, os.path.join(d, "x-%Y.pcap"), 2)
    assert sorted(os.listdir(d)) == [f"x-{year}.pcap", f"x-{year}.pcap1"]
    assert read_file(os.path.join(d, f"x-{year}.pcap")) == first
    assert read_file(os.path.join(d, f"x-{year}.pcap1")) == second


def kernel_drop_reasons():
    """The kernel's enum skb_drop_reason names, without the prefix (bpftool reads the BTF)."""
    out = sh("bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux").stdout
    return set(re.findall(r"'SKB_DROP_REASON_(\w+)' val=", out))


def test_rotation_into_a_fifo_or_device_is_refused_without_waiting(lab):
    """-C, -G and --rearm make regular files: -w FIFO or a device with them is bad input (exit
    2, one line, before the sampler starts; a FIFO's open() used to wait for a reader forever,
    a device was refused with exit 1 once capturing), and a FIFO where a later -C file would go
    (FILE2: not known before the start to be one of its names) stops the capture (exit 1), as
    any name not this capture's does, without waiting on it. A first file that exists and is
    not FILE itself (-C -W's FILE0, -G's strftime name) is refused the same way before the
    start (it was exit 1 after capture-only programs were attached and a line said so), with
    --when too unless it is a strftime name (made when it fires)."""
    d = os.path.join(lab.tmp, "first")
    os.mkdir(d)
    for first, w, args in (("k.pcap0", "k.pcap", ["-C", 1, "-W", 3]),
                           (time.strftime("g-%Y.pcap"), "g-%Y.pcap", ["-G", 60])):
        with open(os.path.join(d, first), "w") as f:
            f.write("mine")
        r = pktlens("sample", "vb", "-w", os.path.join(d, w), *args, ns=lab.b, check=False,
                    timeout=10)
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [
            f"pktlens: sample: cannot write '{os.path.join(d, first)}': exists and this capture "
            "did not write it: not replaced (remove it, or name another -w FILE)"], r.stderr
        assert sorted(os.listdir(d)) == [first] and open(os.path.join(d, first)).read() == "mine"
        # --when: a strftime name is made when it fires (it may differ then): it waits; -C -W's
        # FILE0 does not depend on when: refused as before a capture that starts now
        s = Sampler(lab, "-w", os.path.join(d, w), *args, "--when", "dev pps > 1000000",
                    "--for", 1, ready=False)
        if first == "k.pcap0":
            assert s.p.wait(timeout=10) == 2 and s.stop() == 2, s.err
            assert b"cannot write '%s': exists" % os.path.join(d, first).encode() in s.err
        else:
            s.wait_for(b"waiting for")
            assert s.stop() == 0, s.err
        assert open(os.path.join(d, first)).read() == "mine"
        os.unlink(os.path.join(d, first))
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    fifo = os.path.join(lab.tmp, "cap.fifo")
    os.mkfifo(fifo)
    for w, args in ((fifo, ["-C", 1]), (fifo, ["-G", 5]),
                    (fifo, ["--when", "dev pps > 1000000", "--for", 1, "--rearm"]),
                    ("/dev/null", ["-G", 1]), ("/dev/null", ["-C", 1, "--pcapng"])):
        r = pktlens("sample", "vb", "-w", w, *args, ns=lab.b, check=False, timeout=10)
        assert r.returncode == 2, (w, args, r.stderr)
        assert r.stderr.strip().splitlines() == [
            f"pktlens: sample: cannot write '{w}': not a regular file: -C, -G and --rearm write "
            "regular files only"], r.stderr
    assert stat_is_fifo(fifo)
    # the third -C file's name is a FIFO: the capture ends there, saying why
    d = os.path.join(lab.tmp, "rot")
    os.mkdir(d)
    os.mkfifo(os.path.join(d, "c.pcap2"))
    raw = [udp(3000, 9000, i.to_bytes(4, "big") * 250) for i in range(2100)]   # 2.2 MB
    s = Sampler(lab, "-w", os.path.join(d, "c.pcap"), "-C", 1, "udp")
    try:
        send_raw(lab, raw)
        s.p.wait(timeout=20)
    finally:
        if s.p.poll() is None:
            s.p.kill()
    assert s.stop() == 1
    assert "'{}' exists and this capture did not write it".format(
        os.path.join(d, "c.pcap2")) in s.err.decode(), s.err
    assert stat_is_fifo(os.path.join(d, "c.pcap2"))
    assert 0 < sum(tcpdump_count(os.path.join(d, f)) for f in ("c.pcap", "c.pcap1")) < len(raw)


@pytest.mark.parametrize("have, w, args, refused", [
    # sample -w c.pcap -C 1 run again: its earlier run's FILE1 (FILE itself may be replaced)
    (["c.pcap", "c.pcap1"], "c.pcap", ["-C", 1], "c.pcap1"),
    pytest.param(["k.pcap1"], "k.pcap", ["-C", 1, "-W", 3], "k.pcap1", marks=pytest.mark.variant),
    pytest.param(["k.pcap2"], "k.pcap", ["-C", 1, "-W", 3], "k.pcap2", marks=pytest.mark.variant),
    pytest.param(["g.pcap", "g.pcap1"], "g.pcap", ["-G", 60], "g.pcap1",
                 marks=pytest.mark.variant),
    pytest.param(["c.pcap1"], "c.pcap", ["-C", 1, "--when", "dev pps > 1000000", "--for", 1],
                 "c.pcap1", marks=pytest.mark.variant),
], ids=["C-FILE1", "CW-FILE1", "CW-FILE2", "G-FILE1", "when-C-FILE1"])
def test_names_known_before_the_start_are_checked_before_the_start(lab, have, w, args, refused):
    """Every name the rotation will write that is known before the start (-C's FILE1, -C -W N's
    FILE0..FILE(N-1), -G's FILE1 when FILE has no strftime pattern; with --when too, when the
    names do not depend on the time it fires) and exists, not made by this capture: refused
    before anything is attached (exit 2, one line naming it and what to do), the files there
    untouched. A re-run of `-w c.pcap -C 1` that found its earlier run's c.pcap1 captured until
    the first rotation, then stopped (exit 1)."""
    import hashlib
    d = os.path.join(lab.tmp, "known")
    os.mkdir(d)
    for i, f in enumerate(have):
        with open(os.path.join(d, f), "wb") as fh:
            fh.write(b"earlier run %d\n" % i)

    def digests():
        return {f: hashlib.sha256(open(os.path.join(d, f), "rb").read()).hexdigest()
                for f in os.listdir(d)}
    before = digests()
    r = pktlens("sample", "vb", "-w", os.path.join(d, w), *args, ns=lab.b, check=False,
                timeout=10)
    assert (r.returncode, r.stdout, r.stderr) == (2, "", (
        f"pktlens: sample: cannot write '{os.path.join(d, refused)}': exists and this capture "
        "did not write it: not replaced (remove it, or name another -w FILE)\n")), r
    assert digests() == before
    nothing_left(lab)


def stat_is_fifo(path):
    import stat
    return stat.S_ISFIFO(os.lstat(path).st_mode)


def test_bad_names_and_contradictions_are_refused_with_one_line(lab):
    """--rule of a rule the policy does not have or out of policy's range, --when 'rule N' of
    such a rule, a drop reason the kernel's BTF does not have (also in the daemon's config),
    --xdp with --hook tc, --hook twice: exit 2, one line, nothing made or attached before."""
    reasons = kernel_drop_reasons()
    assert "NO_SOCKET" in reasons and "BOGUS_REASON" not in reasons
    pktlens("attach", "vb", "--xdp", "native", "--tc", "in", ns=lab.b)
    pktlens("policy", "add", "vb", "--in", "--id", 7, "--proto", "udp", "--dport", 4444, "--drop",
            ns=lab.b)
    path = os.path.join(lab.tmp, "bad.pcap")
    for args, msg in ((["--rule", 999], "--rule 999: no rule 999"),
                      (["--rule", 262145], "--rule '262145': not a rule id in 1..262144"),
                      (["--when", "rule 99 > 5pps", "--for", 1], "'rule 99 > 5pps': no rule 99"),
                      (["--when", "rule 262145 > 5pps", "--for", 1], "not a rule id in 1..262144"),
                      (["--when", "drops BOGUS_REASON > 5/s", "--for", 1],
                       "no drop reason 'BOGUS_REASON'"),
                      (["--xdp", "--hook", "tc"], "--xdp and --hook tc"),
                      (["--hook", "tc", "--hook", "xdp"], "--hook given twice"),
                      # a number of seconds, but over the 366 days durations take (it said
                      # "not a number of seconds >= 1")
                      (["-G", 99999999999], "-G '99999999999': not a number of seconds from 1 "
                       "to 31622400 (366 days)"),
                      (["--when", "dev pps > 5", "--for", 31622401], "--for '31622401': not a "
                       "number of seconds from 1 to 31622400"),
                      (["--per-flow", 4294967296], "--per-flow '4294967296': not a packet count "
                       "in 1..4294967295")):
        r = pktlens("sample", "vb", "-w", path, *args, ns=lab.b, check=False)
        assert r.returncode == 2 and msg in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert not os.path.exists(path)
    # a rule of the direction the capture does not take could never give it a packet: refused
    # (it captured nothing until --duration, exit 0), also where that direction has a hook
    pktlens("attach", "vb", "--force", "--xdp", "native", "--tc", "in,out", ns=lab.b)
    pktlens("policy", "add", "vb", "--out", "--id", 9, "--proto", "udp", "--drop", ns=lab.b)
    for args, msg in ((["--rule", 7, "--out"], "--rule 7: an --in rule, and this capture takes "
                       "egress only"),
                      (["--rule", 9, "--hook", "xdp"], "--rule 9: an --out rule, and this "
                       "capture takes ingress only"),
                      (["--rule", 9, "--in"], "--rule 9: an --out rule")):
        r = pktlens("sample", "vb", "-w", path, "--duration", 1, *args, ns=lab.b, check=False)
        assert r.returncode == 2 and r.stderr.strip().splitlines() == [
            f"pktlens: sample: vb: {msg}" + ("" if "this capture" in msg else
                                             ", and this capture takes ingress only")], r.stderr
        assert not os.path.exists(path)
    # a reason the kernel has passes the check (then the probes are missing: said so, exit 2)
    r = pktlens("sample", "vb", "--when", "drops no_socket > 5/s", "--for", 1, ns=lab.b,
                check=False)
    assert r.returncode == 2 and "needs the drop probes" in r.stderr, r.stderr
    conf = os.path.join(lab.tmp, "drops.conf")
    with open(conf, "w") as f:
        f.write("triggers:\n  - dev: vb\n    when: \"drops BOGUS_REASON > 5/s\"\n    for: 1\n"
                "    write: /tmp/x.pcap\n")
    r = pktlens("apply", conf, "--dry-run", check=False)
    assert r.returncode == 2 and "no drop reason 'BOGUS_REASON'" in r.stderr, r.stderr
    # rule 7 exists: --rule 7 captures its frames (tcpdump -r counts them)
    raw = mixed()
    s = Sampler(lab, "-w", path, "--rule", 7)
    try:
        send_raw(lab, raw)
        lab.wait_packets(len(raw))
    finally:
        assert s.stop() == 0, s.err
    assert tcpdump_count(path, "udp dst port 4444") == tcpdump_count(path) == 10


@pytest.mark.parametrize("attach", [None, ["--xdp", "native", "--tc", "in,out"]],
                         ids=["capture-only", "attached"])
def test_hook_xdp_with_out_says_xdp_is_ingress_only(lab, attach):
    """XDP sees ingress only: --hook xdp --out is refused as that, also where pktlens's XDP
    program is attached (it used to say no XDP program could copy frames)."""
    if attach:
        pktlens("attach", "vb", *attach, ns=lab.b)
    path = os.path.join(lab.tmp, "out.pcap")
    r = pktlens("sample", "vb", "-w", path, "--hook", "xdp", "--out", ns=lab.b, check=False)
    assert r.returncode == 2, r.stderr
    assert r.stderr == "pktlens: sample: vb: --hook xdp captures ingress only, not --out\n"
    assert not os.path.exists(path)


def test_lock_taken_before_the_owner_is_written(lab):
    """A sampler that finds the lock taken while sample_cfg has no owner yet (the first one
    started in the same instant) says another sampler has it, not 'pid 0'."""
    import fcntl
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    fd = os.open(os.path.join(PIN_ROOT, str(netns_ino(lab.b)), "vb"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        r = pktlens("sample", "vb", "--duration", 1, ns=lab.b, check=False)
    finally:
        os.close(fd)
    assert r.returncode == 1 and "another pktlens sample is sampling it already" in r.stderr, \
        r.stderr
    assert "pid 0" not in r.stderr
    path = os.path.join(lab.tmp, "after.pcap")
    s = Sampler(lab, "-w", path)
    try:
        send_raw(lab, mixed()[:3])
        lab.wait_packets(3)
    finally:
        assert s.stop() == 0, s.err
    assert tcpdump_count(path, "udp") == 3


def test_json_summary_says_what_was_attached_for_the_capture(lab):
    """-j on an interface not attached: the summary object says so and names the capture-only
    programs bpftool shows loaded while it runs; attached: attached true, no capture_only."""
    path = os.path.join(lab.tmp, "j.pcap")
    s = Sampler(lab, "-j", "-w", path, ready=False)
    try:
        wait_until(lambda: os.path.exists(path))
        progs = cap_progs()
        send_raw(lab, mixed()[:3])
        wait_file(path, 3)
    finally:
        assert s.stop(signal.SIGINT) == 0, s.err
    j = json.loads(s.out.decode().splitlines()[-1])
    assert j["attached"] is False and {"pl_cap_tc_in", "pl_cap_tc_out"} <= set(progs)
    assert j["capture_only"] == "tc programs pl_cap_tc_in and pl_cap_tc_out (tcx)"
    assert j["written"] == tcpdump_count(path, "udp") == 3
    nothing_left(lab)
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    r = pktlens("-j", "sample", "vb", "--duration", 1, "-w", path, ns=lab.b)
    j = json.loads(r.stdout.splitlines()[-1])
    assert j["attached"] is True and "capture_only" not in j


def fire_daemon_trigger(lab, d, sent, k, nth):
    """Fire daemon @d's 'dev pps > 50' trigger once its sampler waits the @nth time, and send
    firing @k's five frames (appended to @sent): d.pcap holds the first, d.pcap1 the second."""
    wait_until(lambda: sum("waiting for 'dev pps > 50'" in line and "sample:" in line
                           for _, line in d.lines) >= nth)
    send_raw(lab, [udp(5000, 6666, i.to_bytes(2, "big") * 9) for i in range(200)])
    wait_until(lambda: sum("capturing 'udp port 7777'" in line for _, line in d.lines) >= nth)
    sent.append([udp(7000 + 10 * k + i, 7777) for i in range(5)])
    send_raw(lab, sent[-1])
    path = os.path.join(lab.tmp, "d.pcap" + ("1" if k == 2 else ""))
    wait_until(lambda: os.path.exists(path) and read_file(path) == sent[-1])


def firings_kept(lab, sent):
    """Each of fire_daemon_trigger()'s two firings kept its own file; nothing is left."""
    assert read_file(os.path.join(lab.tmp, "d.pcap")) == sent[0]
    assert read_file(os.path.join(lab.tmp, "d.pcap1")) == sent[1]
    nothing_left(lab)


def test_daemon_trigger_firings_never_replace_each_others_files(lab):
    """A standing trigger whose write: has no strftime pattern: the second firing's file is
    FILE1, the first firing's FILE keeps its frames (tcpdump -r reads each)."""
    from test_service import Daemon
    lab.daemons = []
    conf = trigger_conf(lab, "re.conf", "h21-rearm-test", "dev pps > 50", 1, f"{lab.tmp}/d.pcap")
    d = Daemon(lab, conf)
    sent = []
    try:
        d.wait_notify()
        for k in (1, 2):
            fire_daemon_trigger(lab, d, sent, k, k)
        assert d.stop() == 0, d.log()
    finally:
        d.kill()
    firings_kept(lab, sent)


def test_rearm_never_replaces_a_file_there_before_it_also_after_a_daemon_restart(lab):
    """--rearm's firings never replace a file that existed before the capture, FILE itself
    included (it replaced FILE: --help says such a name gets a number). What it protects: a
    standing trigger's sampler is a new one after the daemon restarts, and its first firing
    replaced the attack pcap the earlier one wrote under the same write: name."""
    from test_service import Daemon
    with open(os.path.join(lab.tmp, "own.pcap"), "w") as f:
        f.write("mine")
    s = Sampler(lab, "-w", os.path.join(lab.tmp, "own.pcap"), "--when", "dev pps > 50", "--for",
                1, "--rearm", "udp port 7777", ready=False)
    try:
        s.wait_for(b"waiting for")
        send_raw(lab, [udp(5000, 6666, i.to_bytes(2, "big") * 9) for i in range(200)])
        s.wait_for(b"capturing")
        first = [udp(7100 + i, 7777) for i in range(5)]
        send_raw(lab, first)
        wait_count(s, b"waiting for", 2)
    finally:
        assert s.stop() == 0, s.err
    assert open(os.path.join(lab.tmp, "own.pcap")).read() == "mine"
    assert read_file(os.path.join(lab.tmp, "own.pcap1")) == first
    lab.daemons = []
    conf = trigger_conf(lab, "rs.conf", "h21-restart-test", "dev pps > 50", 1,
                        f"{lab.tmp}/d.pcap")
    sent = []
    for k in (1, 2):        # two daemons one after the other: a sampler each
        d = Daemon(lab, conf)
        try:
            d.wait_notify()
            fire_daemon_trigger(lab, d, sent, k, 1)
            assert d.stop() == 0, d.log()
        finally:
            d.kill()
    firings_kept(lab, sent)
