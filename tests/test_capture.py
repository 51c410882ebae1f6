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
import struct
import subprocess
import time

from lab import PIN_ROOT, PYTHON, SENDRAW, netns_ino, pktlens, sh
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
                       sum(tcpdump_count(p) for p in paths) == len(raw))
        finally:
            assert s.stop() == 0, s.err
        assert sorted(os.listdir(d)) == names
        assert frames_in(paths, fmt == "pcapng") == raw   # each on its own; together: raw
        assert all(900000 < os.path.getsize(p) <= 1000000 for p in paths[:2])
        per[fmt] = tcpdump_count(paths[0])
    per = per["pcap"]
    # -W 2 of the 3 files: exactly 2 left, the newest, holding the newest frames whole
    for f in glob.glob(os.path.join(d, "*")):
        os.unlink(f)
    s = Sampler(lab, "-w", os.path.join(d, "k.pcap"), "-C", 1, "-W", 2, "udp")
    try:
        send_raw(lab, raw)
        wait_until(lambda: sorted(os.listdir(d)) == ["k.pcap0", "k.pcap1"] and
                   tcpdump_count(os.path.join(d, "k.pcap0")) == len(raw) - 2 * per)
    finally:
        assert s.stop() == 0, s.err
    assert sorted(os.listdir(d)) == ["k.pcap0", "k.pcap1"]
    got = frames_in([os.path.join(d, "k.pcap1"), os.path.join(d, "k.pcap0")])
    assert got == raw[per:]
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
    # a generated name that exists and is not this capture's: refused, never replaced
    for f in glob.glob(os.path.join(d, "*")):
        os.unlink(f)
    with open(os.path.join(d, "m.pcap1"), "w") as f:
        f.write("mine")
    s = Sampler(lab, "-w", os.path.join(d, "m.pcap"), "-C", 1, "udp")
    try:
        send_raw(lab, raw[:per + 10])
        s.p.wait(timeout=20)
    finally:
        rc = s.stop()
    assert rc == 1 and b"m.pcap1' exists and this capture did not write it" in s.err, s.err
    assert open(os.path.join(d, "m.pcap1")).read() == "mine"
    assert tcpdump_count(os.path.join(d, "m.pcap")) == per


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


def test_daemon_standing_trigger_writes_a_file_when_it_fires(lab):
    """triggers: in the service config: the daemon keeps a `sample --when --rearm` running; a
    burst fires it (a log line says so) and the file holds the frames after it; SIGTERM to the
    daemon ends the sampler and leaves nothing attached."""
    from test_service import Daemon
    lab.daemons = []
    conf = os.path.join(lab.tmp, "trig.conf")
    with open(conf, "w") as f:
        f.write(f"""name: h21-trigger-test
triggers:
  - dev: vb
    netns: {lab.b}
    when: "dev pps > 200"
    for: 3
    write: {lab.tmp}/fired-%H%M%S.pcap
    keep: 2
    filter: "udp port 7777"
""")
    bad = os.path.join(lab.tmp, "bad.conf")
    with open(bad, "w") as f:
        f.write("triggers:\n  - dev: vb\n    when: \"dev pps >= 5\"\n    for: 1\n"
                "    write: /tmp/x.pcap\n  - dev: vb\n    when: \"pps > 5\"\n")
    r = pktlens("apply", bad, "--dry-run", check=False)
    assert r.returncode == 2 and "bad.conf:3:11: when: 'dev pps >= 5': expected" in r.stderr, \
        r.stderr
    d = Daemon(lab, conf)
    try:
        d.wait_notify()
        d.wait_log(r"trigger .*trig.conf:3: .*vb: waiting for 'dev pps > 200', then capturing 3 s")
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
