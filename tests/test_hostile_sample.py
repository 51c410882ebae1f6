# SPDX-License-Identifier: GPL-2.0
"""`pktlens sample` against a hostile or unlucky user (issue 15): files it was not allowed to
write, readers that go away, a full disk, rings too small for one packet, symbolic links and
file modes.

Oracles: the bytes of the files (they must stay as they were, or be what tcpdump and scapy read
back), tcpdump's own warnings, the kernel's chain map (bpftool), the frames scapy sent.
"""
import json
import os
import select
import signal
import stat
import subprocess
import time

import pytest

from lab import PIN_ROOT, PKTLENS, netns_ino, pktlens, pktlens_json, sh
from test_sample import SUMMARY, Sampler, frames, read_file, send_raw

PL_CHAIN_SAMPLE_IN = 10      # include/pktlens/pktlens.h: PL_CHAIN_SAMPLE(PL_DIR_IN)


def attach(lab):
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)


def udp_frames(n, size, dport=2000):
    """n numbered UDP frames of `size` bytes."""
    from scapy.all import IP, UDP, Ether, Raw
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    pad = size - 42 - 6
    assert pad >= 0
    return [bytes(e / IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=1000, dport=dport) /
                  Raw(b"%06d" % i + b"x" * pad)) for i in range(n)]


def counts(err):
    m = SUMMARY.search(err)
    assert m, err
    return dict(matched=int(m[1]), sampled=int(m[2]), written=int(m[3]), lost=int(m[4]),
                unwritten=int(m[5] or 0))


def chained_sample_stage(lab):
    """Whether a SAMPLE stage is chained on the XDP hook (the kernel's prog array)."""
    path = f"{PIN_ROOT}/{netns_ino(lab.b)}/vb/xdp_chain"
    entries = json.loads(sh("bpftool", "-j", "map", "dump", "pinned", path).stdout)
    keys = {int.from_bytes(bytes(int(b, 16) for b in e["key"]), "little") for e in entries}
    return PL_CHAIN_SAMPLE_IN in keys


def wait_until(cond, timeout=10):
    deadline = time.time() + timeout
    while not cond():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def out_dir(lab, files):
    """A fresh directory for output files, holding `files` ({name: bytes})."""
    out = os.path.join(lab.tmp, "out")
    os.mkdir(out)
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    return out


def tcpdump_read(path):
    """(packets, stderr) as tcpdump -r reads the file."""
    r = subprocess.run(["tcpdump", "-nn", "-r", path], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return len(r.stdout.splitlines()), r.stderr


# ---- 1: a refused or failed start touches no file ----

def test_refused_or_failed_start_leaves_every_file_alone(lab):
    attach(lab)
    out = out_dir(lab, {"other.pcapng": b"precious\n"})
    mine, other, new = (os.path.join(out, n) for n in ("mine.pcap", "other.pcapng", "new.pcap"))
    raw = frames()[:4]
    first = Sampler(lab, "-w", mine)
    send_raw(lab, raw)
    lab.wait_packets(len(raw))
    time.sleep(0.3)                      # written out every 100 ms
    taken = open(mine, "rb").read()
    assert len(taken) > 24
    # the running sampler's own file, another file, a new name: the interface is taken
    for path in (mine, other, new):
        r = pktlens("sample", "vb", "-w", path, "-c", 1, ns=lab.b, check=False)
        assert r.returncode == 1, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert (f"pid {first.p.pid}" in r.stderr or
                f"cannot write '{mine}': another pktlens sample is writing it" in r.stderr)
    # refused for other reasons: no egress hook, no such device, a bad expression
    for args in (["vb", "--out"], ["nosuchdev0"], ["vb", "tcp port"]):
        r = pktlens("sample", *args, "-w", other, ns=lab.b, check=False)
        assert r.returncode == 2, r.stderr
    assert open(mine, "rb").read() == taken
    assert open(other, "rb").read() == b"precious\n"
    assert sorted(os.listdir(out)) == ["mine.pcap", "other.pcapng"]   # no temporary left
    assert first.stop() == 0, first.err
    assert [g[0] for g in read_file(mine)] == raw
    assert tcpdump_read(mine)[0] == len(raw)


def test_immutable_or_append_only_file_is_refused_before_the_start(lab):
    """FILE that chattr +i or +a keeps from being replaced: bad input, refused before anything
    is attached (exit 2, one line). The rename over it failed only once the capture had begun:
    exit 1, after a capture-only program had been attached for it."""
    out = out_dir(lab, {"keep.pcap": b"precious\n"})
    keep = os.path.join(out, "keep.pcap")
    for flag, what in (("i", "immutable"), ("a", "append-only")):
        if subprocess.run(["chattr", f"+{flag}", keep], capture_output=True).returncode:
            pytest.skip("this file system has no chattr flags")
        try:
            for args in ([], ["-C", 1]):
                r = pktlens("sample", "vb", "-w", keep, *args, "--duration", 1, ns=lab.b,
                            check=False)
                assert (r.returncode, r.stdout, r.stderr) == (2, "", (
                    f"pktlens: sample: cannot write '{keep}': {what} (chattr +{flag}): not "
                    "replaced\n")), r
        finally:
            subprocess.run(["chattr", f"-{flag}", keep])
    assert open(keep, "rb").read() == b"precious\n" and os.listdir(out) == ["keep.pcap"]


def test_file_replaced_once_capturing_and_kept_by_kill9(lab):
    """An existing file is replaced by the new capture when it begins; a kill -9 later leaves
    what was written, readable, and no temporary file."""
    attach(lab)
    out = out_dir(lab, {"cap.pcap": b"old capture\n"})
    path = os.path.join(out, "cap.pcap")
    s = Sampler(lab, "-w", path)
    assert open(path, "rb").read()[:4] == bytes.fromhex("4d3cb2a1")   # pcap, nanoseconds
    raw = udp_frames(20, 200)
    send_raw(lab, raw)
    lab.wait_packets(len(raw))
    time.sleep(0.5)
    s.stop(sig=signal.SIGKILL)
    assert [g[0] for g in read_file(path)] == raw
    assert os.listdir(out) == ["cap.pcap"]


# ---- 2: a reader that goes away ends the sampler, which cleans up ----

def piped_sampler(lab, args, read):
    """`sample vb ARGS udp` writing into a pipe: once its stage is chained, read(p) takes what
    it wants and the pipe is closed. (exit code, stderr, seconds it took to end then)."""
    p = subprocess.Popen([PKTLENS, "-n", lab.b, "sample", "vb", *args, "udp"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_until(lambda: chained_sample_stage(lab))
        read(p)
        p.stdout.close()
        t0 = time.monotonic()
        rc = p.wait(timeout=5)               # no packet comes after: it must notice alone
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return rc, p.stderr.read().decode(), took


@pytest.mark.parametrize("args", [[], ["-j"]], ids=["lines", "json"])
def test_closed_reader_ends_the_sampler(lab, args):
    """`pktlens sample vb | head -1`: once the reader is gone the sampler ends by itself, even
    with no more traffic, prints its summary on stderr and unchains its SAMPLE stage."""
    attach(lab)
    raw = udp_frames(5, 100)

    def head_1(p):
        send_raw(lab, raw)
        assert b"198.18.0.1" in p.stdout.readline()

    rc, err, took = piped_sampler(lab, args, head_1)
    assert rc == 0, err
    assert took < 2, took
    assert "cannot write" not in err and "Broken pipe" not in err
    if args:
        doc = json.loads(err.strip().splitlines()[-1])
        c = dict(matched=doc["matched"], sampled=doc["sampled"], written=doc["written"],
                 lost=doc["lost"], unwritten=doc["unwritten"])
        assert doc.get("unwritten_why", "the reader went away") == "the reader went away"
    else:
        c = counts(err)
    assert c["matched"] == c["sampled"] == 5 and c["lost"] == 0
    assert 1 <= c["written"] <= 5 and c["written"] + c["unwritten"] == 5
    assert not chained_sample_stage(lab)
    # nothing of it is left: the next sampler starts and captures
    s = Sampler(lab, "-c", 1)
    send_raw(lab, raw[:1])
    assert s.stop(sig=0) == 0


@pytest.mark.parametrize("size", [60, 150])
def test_pcap_reader_that_takes_100_bytes(lab, size):
    """`sample -w - | head -c 100`: written counts the records the reader got whole."""
    attach(lab)
    got = b""

    def head_c_100(p):
        nonlocal got
        send_raw(lab, udp_frames(30, size))
        while len(got) < 100:
            r, _, _ = select.select([p.stdout], [], [], 10)
            assert r, got
            got += os.read(p.stdout.fileno(), 100 - len(got))

    rc, err, _ = piped_sampler(lab, ["-w", "-"], head_c_100)
    assert rc == 0, err
    whole = (100 - 24) // (16 + size)        # pcap header, then record header + frame
    c = counts(err)
    assert c["written"] == whole, err
    assert c["matched"] == c["sampled"] == 30 and c["unwritten"] == 30 - whole
    assert "not written (the reader went away)" in err
    assert got[:4] == bytes.fromhex("4d3cb2a1")


def test_reader_gone_before_the_file_header_is_a_reader_gone(lab):
    """`sample -w - | true`: the reader may be gone before the pcap header goes out; that is
    the reader going away as later (exit 0, the summary), not a write failure (exit 1)."""
    attach(lab)
    rd, wr = os.pipe()
    os.close(rd)
    try:
        r = subprocess.run([PKTLENS, "-n", lab.b, "sample", "vb", "-w", "-", "--duration", "5"],
                           stdout=wr, stderr=subprocess.PIPE, text=True, timeout=30)
    finally:
        os.close(wr)
    assert r.returncode == 0 and "Broken pipe" not in r.stderr, r.stderr
    assert "the reader went away" in r.stderr or counts(r.stderr)["unwritten"] == 0, r.stderr
    assert not chained_sample_stage(lab)


def test_stalled_reader_does_not_hold_the_sampler(lab):
    """A reader that never reads: SIGTERM still ends the sampler (within about a second of
    the pipe taking nothing more), with its stage unchained and the summary."""
    attach(lab)
    r, w = os.pipe()
    p = subprocess.Popen([PKTLENS, "-n", lab.b, "sample", "vb", "-w", "-", "udp"], stdout=w,
                         stderr=subprocess.PIPE)
    os.close(w)
    try:
        wait_until(lambda: chained_sample_stage(lab))
        send_raw(lab, udp_frames(200, 1000))      # 200 KB into a 64 KB pipe
        time.sleep(0.5)
        p.send_signal(signal.SIGTERM)
        t0 = time.monotonic()
        rc = p.wait(timeout=10)
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(r)
    err = p.stderr.read().decode()
    assert rc == 1 and took < 3, (rc, took, err)
    assert ("pktlens: sample: cannot write 'standard output': its reader took nothing for a "
            "second after the stop") in err
    c = counts(err)
    assert 0 < c["written"] < 200 and c["written"] + c["unwritten"] == 200, err
    assert not chained_sample_stage(lab)


# ---- 11: a full disk, a ring too small for one packet ----

def on_small_disk(lab, script, raw):
    """`sh -c SCRIPT` in a private mount namespace (its 64 KiB tmpfs stays there); once its
    sampler says it is capturing, RAW is sent. Returns its exit status and stderr once it ends
    by itself (the disk full)."""
    p = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        err = b""
        deadline = time.time() + 20
        while b"capturing" not in err:
            assert time.time() < deadline and p.poll() is None, err
            r, _, _ = select.select([p.stderr], [], [], 1)
            if r:
                err += os.read(p.stderr.fileno(), 4096)
        send_raw(lab, raw)
        _, rest = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return p.returncode, (err + rest).decode()


@pytest.mark.parametrize("rotate", [[], ["-C", "1"]], ids=["file", "size-rotation"])
def test_full_disk_ends_with_whole_records(lab, rotate):
    """A 64 KiB tmpfs in a private mount namespace fills up: one error naming ENOSPC, a summary
    that says why packets were not written, a file tcpdump reads to its end without a warning.
    With -C the first file filling the disk is the output failing, not the next file (none
    was due)."""
    attach(lab)
    mnt = os.path.join(lab.tmp, "small")
    os.mkdir(mnt)
    saved = os.path.join(lab.tmp, "saved.pcap")
    listing = os.path.join(lab.tmp, "listing")
    script = (f"mount -t tmpfs -o size=64k pktlens-small {mnt} || exit 99; "
              f"{PKTLENS} -n {lab.b} sample vb -w {mnt}/f.pcap {' '.join(rotate)} udp; rc=$?; "
              f"cp {mnt}/f.pcap {saved}; ls -A {mnt} > {listing}; exit $rc")
    raw = udp_frames(150, 1000)           # 150 KB into 64 KiB
    rc, err = on_small_disk(lab, script, raw)
    assert rc == 1, err
    lines = err.strip().splitlines()
    assert [x for x in lines if "cannot write" in x] == [
        f"pktlens: sample: cannot write '{mnt}/f.pcap': No space left on device"], err
    assert "reached" not in err and "Input/output error" not in err
    c = counts(err)
    assert "not written (the output failed)" in err
    assert c["written"] > 0 and c["written"] + c["unwritten"] + c["lost"] == c["sampled"]
    n, warn = tcpdump_read(saved)
    assert n == c["written"] and "truncated" not in warn, warn
    assert [g[0] for g in read_file(saved)] == raw[:n]
    assert os.path.getsize(saved) == 24 + n * (16 + 1000)
    assert open(listing).read().split() == ["f.pcap"]     # no temporary left either


def test_full_disk_appending_to_stdout_keeps_what_the_file_held(lab):
    """`sample -w - >> FILE` on a disk that fills up: the cut back to the last whole record
    is made after what FILE held before (the O_APPEND file's offset said 0: FILE was cut to
    the capture's length, 40,000 bytes of it lost)."""
    attach(lab)
    mnt = os.path.join(lab.tmp, "small")
    os.mkdir(mnt)
    saved = os.path.join(lab.tmp, "saved")
    old = bytes(range(256)) * 160                       # 40,960 bytes the user had
    with open(os.path.join(lab.tmp, "old"), "wb") as f:
        f.write(old)
    script = (f"mount -t tmpfs -o size=64k pktlens-small {mnt} || exit 99; "
              f"cp {lab.tmp}/old {mnt}/f; "
              f"{PKTLENS} -n {lab.b} sample vb -w - udp >> {mnt}/f; rc=$?; "
              f"cp {mnt}/f {saved}; exit $rc")
    raw = udp_frames(40, 1000)            # 40 KB into the 24 KiB left
    rc, err = on_small_disk(lab, script, raw)
    assert rc == 1 and "No space left on device" in err, err
    c = counts(err)
    assert 0 < c["written"] < len(raw), err
    data = open(saved, "rb").read()
    assert data[:len(old)] == old
    assert len(data) == len(old) + 24 + c["written"] * (16 + 1000)
    cap = os.path.join(lab.tmp, "cap.pcap")
    with open(cap, "wb") as f:
        f.write(data[len(old):])
    n, warn = tcpdump_read(cap)
    assert n == c["written"] and "truncated" not in warn, warn
    assert [g[0] for g in read_file(cap)] == raw[:n]


@pytest.mark.parametrize("args,need", [
    (["-B", "4"], 512),                    # default snaplen 262144: a 262192-byte record
    (["-B", "64"], 512),
    (["-B", "4", "-s", "65535"], 128),
    (["-B", "4", "-s", "9217"], 32),
])
def test_ring_that_cannot_hold_one_packet_is_refused(lab, args, need):
    attach(lab)
    path = os.path.join(lab.tmp, "ring.pcap")
    r = pktlens("sample", "vb", "-w", path, *args, ns=lab.b, check=False)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pktlens: sample: --buffer-size {args[1]}: ")
    assert f"use -B {need} or more, or a smaller --snaplen" in lines[0]
    assert not os.path.exists(path)
    # just big enough is taken, and captures
    raw = udp_frames(3, 1400)
    s = Sampler(lab, "-w", path, *args[2:], "-B", need)
    send_raw(lab, raw)
    lab.wait_packets(3)
    assert s.stop() == 0, s.err
    assert [g[0] for g in read_file(path)] == raw


def test_small_ring_with_small_snaplen_counts_what_fits(lab):
    """-B 4 -s 1024: one page holds three records of 900-byte frames."""
    attach(lab)
    path = os.path.join(lab.tmp, "small.pcap")
    s = Sampler(lab, "-w", path, "-B", 4, "-s", 1024)
    s.p.send_signal(signal.SIGSTOP)
    try:
        send_raw(lab, udp_frames(20, 900))
        lab.wait_packets(20)
    finally:
        s.p.send_signal(signal.SIGCONT)
    assert s.stop() == 0, s.err
    c = s.counts()
    assert c["written"] >= 3 and c["written"] + c["lost"] == 20 and c["unwritten"] == 0


# ---- the interface goes away under a sampler ----

def said_gone(s, rc, doing):
    """Sampler @s, whose interface was deleted while @doing, ended with exit 1 and said so."""
    err = s.err.decode()
    assert rc == 1, err
    assert "pktlens: sample: vb: the interface is gone (deleted, or moved to another network " \
        f"namespace) while {doing}: stopped\n" in err, err


@pytest.mark.parametrize("how", ["attached", "capture-only"])
def test_interface_deleted_under_the_sampler_ends_it(lab, how):
    """Like tcpdump's "The interface disappeared": a sampler whose interface is deleted ends
    within a flush (exit 1, one line naming it, the summary), with what it took written out
    and nothing of its own left chained or pinned; an attachment whose interface is gone is
    refused at start (exit 2) instead of waiting forever."""
    if how == "attached":
        attach(lab)
    path = os.path.join(lab.tmp, "gone.pcap")
    s = Sampler(lab, "-w", path)
    try:
        raw = udp_frames(3, 100)
        send_raw(lab, raw)
        time.sleep(0.5)
        sh("ip", "-n", lab.b, "link", "del", "vb")   # oracle: the kernel has no vb any more
        s.p.wait(timeout=5)
    finally:
        rc = s.stop(timeout=10)
    said_gone(s, rc, "sampling")
    assert s.counts()["written"] == 3
    assert [g[0] for g in read_file(path)] == raw
    ino = netns_ino(lab.b)
    assert [d for d in os.listdir(PIN_ROOT) if d.startswith(f"cap:{ino}:")] == []
    if how == "attached":
        assert not chained_sample_stage(lab)
        r = pktlens("sample", "vb", "-c", 1, "-w", os.path.join(lab.tmp, "late.pcap"),
                    ns=lab.b, check=False, timeout=10)
        assert r.returncode == 2, r
        assert r.stderr.startswith("pktlens: sample: vb: the attached interface was deleted"), r.stderr
        assert len(r.stderr.splitlines()) == 1, r.stderr
        assert not os.path.exists(os.path.join(lab.tmp, "late.pcap"))


def test_interface_deleted_under_a_waiting_trigger_ends_it(lab):
    """--when 'rule ID > N': counters of the pins are still readable once the interface is
    gone, but the trigger can never fire: the sampler ends (exit 1, one line) instead of
    waiting for ever."""
    attach(lab)
    pktlens("policy", "add", "vb", "--id", 7, "--proto", "udp", "--pass", ns=lab.b)
    path = os.path.join(lab.tmp, "when.pcap")
    s = Sampler(lab, "-w", path, "--when", "rule 7 > 1000pps", "--for", 2, ready=False)
    try:
        s.wait_for(b"waiting for")
        sh("ip", "-n", lab.b, "link", "del", "vb")
        s.p.wait(timeout=5)
    finally:
        rc = s.stop(timeout=10)
    said_gone(s, rc, "waiting for 'rule 7 > 1000pps'")
    assert not os.path.exists(path)


def test_rule_deleted_or_detach_under_a_waiting_trigger_ends_it(lab):
    """What --when names was there at the start: its rule deleted, or the interface detached,
    while the trigger waits is a failure of the run (exit 1, one line saying what happened), not
    bad input (it was exit 2), and a detach under a 'dev pps' trigger ends it at once (it waited
    on and, fired, made a file only to say it was detached)."""
    attach(lab)
    pktlens("policy", "add", "vb", "--id", 7, "--proto", "udp", "--pass", ns=lab.b)
    path = os.path.join(lab.tmp, "when.pcap")
    for when, change, said in (
            ("rule 7 > 1000pps", ("policy", "del", "vb", 7),
             "--when: 'rule 7 > 1000pps': no rule 7 (while waiting): stopped"),
            ("dev pps > 1000000", ("detach", "vb"),
             "detached or re-attached while waiting for 'dev pps > 1000000': stopped")):
        s = Sampler(lab, "-w", path, "--when", when, "--for", 2, ready=False)
        try:
            s.wait_for(b"waiting for")
            pktlens(*change, ns=lab.b)
            s.p.wait(timeout=5)
        finally:
            rc = s.stop(timeout=10)
        err = s.err.decode()
        assert rc == 1 and f"pktlens: sample: vb: {said}\n" in err, err
        assert not os.path.exists(path)


def sampling(lab):
    """Whether a sampler has sample_cfg set for a hook (the kernel copies packets)."""
    path = f"{PIN_ROOT}/{netns_ino(lab.b)}/vb/sample_cfg"
    value = json.loads(sh("bpftool", "-j", "map", "dump", "pinned", path).stdout)[0]["value"]
    return any(int(b, 16) for b in value[:4])      # struct pl_sample_cfg's slots


def test_fifo_without_a_reader_ends_with_the_duration_or_a_signal(lab):
    """-w FIFO that nobody reads: the sampler waits for a reader, but --duration and Ctrl-C
    still end it (exit 0, a summary that says why nothing was written). Its blocking open()
    outlasted --duration for ever, and SIGINT failed it: 'Interrupted system call', exit 1."""
    attach(lab)
    fifo = os.path.join(lab.tmp, "cap.fifo")
    os.mkfifo(fifo)
    raw = udp_frames(3, 100)
    p = subprocess.Popen([PKTLENS, "-n", lab.b, "sample", "vb", "-w", fifo, "--duration", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: sampling(lab) or p.poll() is not None)
        send_raw(lab, raw)
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err
    assert err.splitlines() == [
        f"pktlens: sample: vb: no reader opened '{fifo}' before the capture ended: nothing "
        "written",
        "pktlens: sample vb: 3 matched, 3 sampled, 0 written, 0 lost (ring full), 3 not written "
        "(no reader opened the FIFO)"], err
    s = Sampler(lab, "-j", "-w", fifo, ready=False)
    wait_until(lambda: sampling(lab) or s.p.poll() is not None)
    assert s.stop(sig=signal.SIGINT, timeout=10) == 0, s.err
    doc = json.loads(s.out)
    assert (doc["written"], doc["unwritten"]) == (0, 0) and s.err == b"", s
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    # a reader that comes gets the capture
    td = subprocess.Popen(["tcpdump", "-nn", "-r", fifo], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True)
    s = Sampler(lab, "-w", fifo, "-c", 3)
    send_raw(lab, raw)
    assert s.stop(sig=0, timeout=10) == 0, s.err
    out, _ = td.communicate(timeout=10)
    assert len(out.splitlines()) == 3 and s.counts()["written"] == 3, (out, s.err)



def test_fifo_waiting_for_its_reader_keeps_the_capture_going(lab):
    """-w FIFO whose reader comes seconds later: the kernel side samples meanwhile, the ring
    holding it (the sampler's lease is renewed while the open waits, as while a write waits).
    With the lease left to run out after a second, what came later was not taken."""
    attach(lab)
    fifo = os.path.join(lab.tmp, "late.fifo")
    os.mkfifo(fifo)
    s = Sampler(lab, "-w", fifo, "--duration", 5, ready=False)
    try:
        wait_until(lambda: sampling(lab) or s.p.poll() is not None)
        time.sleep(1.8)                                 # past a lease of 1 s
        send_raw(lab, udp_frames(3, 100))
        td = subprocess.Popen(["tcpdump", "-nn", "-r", fifo], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        assert s.stop(sig=0, timeout=15) == 0, s.err
        out, _ = td.communicate(timeout=10)
    finally:
        if s.p.poll() is None:
            s.p.kill()
    assert len(out.splitlines()) == 3 and s.counts()["written"] == 3, (out, s.err)
    assert b"nothing captured" not in s.err, s.err

# ---- 13: symbolic links, file modes ----

def test_symbolic_links_are_not_followed(lab):
    attach(lab)
    out = out_dir(lab, {"target": b"precious\n"})
    target = os.path.join(out, "target")
    link = os.path.join(out, "link.pcap")
    dangling = os.path.join(out, "dangling.pcap")
    os.symlink(target, link)
    os.symlink(os.path.join(out, "nowhere"), dangling)
    for path in (link, dangling):
        r = pktlens("sample", "vb", "-w", path, "-c", 1, ns=lab.b, check=False)
        assert r.returncode == 2, r.stderr
        assert r.stderr.strip() == (f"pktlens: sample: cannot write '{path}': a symbolic link: "
                                    "not followed (name the file itself, or '-' for standard "
                                    "output)")
        assert os.path.islink(path)
    assert open(target, "rb").read() == b"precious\n"
    assert sorted(os.listdir(out)) == ["dangling.pcap", "link.pcap", "target"]


@pytest.mark.parametrize("args,mode", [([], 0o600), (["--mode", "0640"], 0o640),
                                       (["--mode", "600"], 0o600)])
def test_capture_mode_whatever_the_umask(lab, args, mode):
    attach(lab)
    path = os.path.join(lab.tmp, "m.pcap")
    old = os.path.join(lab.tmp, "old.pcap")
    with open(old, "wb") as f:
        f.write(b"x")
    os.chmod(old, 0o666)
    for p in (path, old):            # a new file, and one replacing a world-writable one
        s = subprocess.Popen([PKTLENS, "-n", lab.b, "sample", "vb", "-w", p, "--duration", "1",
                              *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=lambda: os.umask(0))
        _, err = s.communicate(timeout=20)
        assert s.returncode == 0, err
        st = os.lstat(p)
        assert stat.S_ISREG(st.st_mode) and stat.S_IMODE(st.st_mode) == mode, oct(st.st_mode)


@pytest.mark.parametrize("where", [[], ["-w", "-"]], ids=["lines", "stdout"])
def test_mode_without_a_file_refused(lab, where):
    """--mode sets the permissions of the files -w FILE makes: with none to make (lines, or
    pcap on standard output) it is refused in one line, not ignored while sample runs."""
    attach(lab)
    r = pktlens("sample", "vb", *where, "--mode", "0644", "--duration", "1", ns=lab.b,
                check=False)
    assert r.returncode == 2 and r.stdout == "", r
    assert r.stderr == "pktlens: sample: --mode: only with -w FILE (the permissions of the " \
                       "files it makes)\n", r.stderr


@pytest.mark.parametrize("bad", ["0800", "1777", "rw", "", "-1"])
def test_bad_mode_refused(lab, bad):
    attach(lab)
    path = os.path.join(lab.tmp, "m.pcap")
    r = pktlens("sample", "vb", "-w", path, "--mode", bad, ns=lab.b, check=False)
    assert r.returncode == 2 and f"--mode '{bad}'" in r.stderr, r.stderr
    assert not os.path.exists(path)


# ---- 6: a sampler killed with -9, or stopped: the kernel stops copying within its lease ----

LEASE_S = 1.0    # include/pktlens/pktlens.h: PL_SAMPLE_LEASE_MS


def sample_stats(lab):
    """sample_stats summed over CPUs and hooks: (selected, sampled, lost)."""
    path = f"{PIN_ROOT}/{netns_ino(lab.b)}/vb/sample_stats"
    tot = [0, 0, 0]
    for e in json.loads(sh("bpftool", "-j", "map", "dump", "pinned", path).stdout):
        for v in e["values"]:
            b = bytes(int(x, 16) for x in v["value"])
            for i in range(3):
                tot[i] += int.from_bytes(b[8 * i:8 * i + 8], "little")
    return tuple(tot)


def rx_packets(lab):
    """The kernel's count of what vb received: that traffic arrived, without a pktlens command."""
    return json.loads(sh("ip", "-n", lab.b, "-s", "-j", "link", "show", "vb").stdout)[0][
        "stats64"]["rx"]["packets"]


def send_and_wait(lab, raw):
    before = rx_packets(lab)
    send_raw(lab, raw)
    wait_until(lambda: rx_packets(lab) >= before + len(raw))
    time.sleep(0.2)     # the counters of the last ones


HOOKS = [pytest.param(("--xdp", "native", "--tc", "none"), (), id="xdp"),
         pytest.param(("--xdp", "none", "--tc", "in"), ("--hook", "tc"), id="tc",
                      marks=pytest.mark.variant)]


@pytest.mark.parametrize("att,hook", HOOKS)
def test_sampler_killed_takes_nothing_once_its_lease_ran_out(lab, att, hook):
    """kill -9 leaves the sampler's settings and its expression's stage chained, and nobody
    reads its ring: the programs copied every packet into it (until it was full, then counted
    them lost) until the next sampler, attach --force or detach. Now they take nothing once
    the lease it renewed has run out."""
    pktlens("attach", "vb", *att, ns=lab.b)
    s = Sampler(lab, "-w", os.path.join(lab.tmp, "k.pcap"), *hook, "udp")
    send_and_wait(lab, udp_frames(5, 200))
    taken = sample_stats(lab)
    assert taken[:2] == (5, 5)      # the control: a live sampler takes them
    s.stop(sig=signal.SIGKILL)
    time.sleep(LEASE_S + 0.3)
    send_and_wait(lab, udp_frames(50, 200))
    assert sample_stats(lab) == taken


def test_stopped_sampler_says_what_it_did_not_capture_and_goes_on(lab):
    """SIGSTOP past the lease: the programs take nothing meanwhile; on SIGCONT the sampler says
    so (one line naming the interface) and captures again."""
    attach(lab)
    path = os.path.join(lab.tmp, "s.pcap")
    s = Sampler(lab, "-w", path, "udp")
    s.p.send_signal(signal.SIGSTOP)
    try:
        time.sleep(LEASE_S + 0.3)
        taken = sample_stats(lab)
        send_and_wait(lab, udp_frames(10, 200, dport=3000))
        assert sample_stats(lab) == taken
    finally:
        s.p.send_signal(signal.SIGCONT)
    s.wait_for(b"capturing again")
    line = [ln for ln in s.err.decode().splitlines() if "nothing captured" in ln]
    assert len(line) == 1 and line[0].startswith("pktlens: sample: vb: nothing captured for "), s.err
    after = udp_frames(10, 200, dport=4000)
    send_and_wait(lab, after)
    assert s.stop() == 0, s.err
    assert [g[0] for g in read_file(path)] == after
    assert s.counts()["matched"] == len(after)


def ring_installed(lab):
    path = f"{PIN_ROOT}/{netns_ino(lab.b)}/vb/sample_ring"
    return bool(json.loads(sh("bpftool", "-j", "map", "dump", "pinned", path).stdout))


def list_sampler(lab):
    [a] = [a for a in pktlens_json("list", ns=lab.b)["attachments"] if a["this_netns"]]
    return a["sampler"]


def test_stats_and_list_show_the_sampler_and_take_out_what_a_killed_one_left(lab):
    """stats and list show the sampler's pid and state; one stopped past its lease is stalled
    (left as it is: it may go on); one killed with -9 left its stage chained, its settings
    and its ring until the next sampler, attach --force or detach: the next stats or list
    takes them out, and says so."""
    attach(lab)
    s = Sampler(lab, "-w", os.path.join(lab.tmp, "r.pcap"), "udp")
    pid = s.p.pid
    assert pktlens_json("stats", "vb", ns=lab.b)["interfaces"][0]["sampler"] == {
        "pid": pid, "state": "capturing"}
    assert f"  sampler   pid {pid} capturing\n" in pktlens("stats", "vb", ns=lab.b).stdout
    s.p.send_signal(signal.SIGSTOP)
    try:
        time.sleep(LEASE_S + 0.3)
        got = list_sampler(lab)
        assert got["pid"] == pid and got["state"] == "stalled" and got["lease_late_ms"] > 0, got
        assert chained_sample_stage(lab) and sampling(lab)
    finally:
        s.p.send_signal(signal.SIGCONT)
    s.wait_for(b"capturing again")
    s.stop(sig=signal.SIGKILL)
    assert chained_sample_stage(lab) and sampling(lab) and ring_installed(lab)
    r = pktlens("stats", "vb", ns=lab.b)
    assert r.stderr == (f"pktlens: stats: vb: pktlens sample (pid {pid}) is gone (killed): its "
                        "capture was left on the interface and is taken out now\n")
    assert (f"  sampler   pid {pid} gone (killed): its capture was taken out now\n"
            in r.stdout), r.stdout
    assert not chained_sample_stage(lab) and not sampling(lab) and not ring_installed(lab)
    r = pktlens("stats", "vb", ns=lab.b)
    assert "sampler" not in r.stdout and r.stderr == ""
    assert list_sampler(lab) is None
    # the next sampler starts as ever
    s = Sampler(lab, "-w", os.path.join(lab.tmp, "r2.pcap"), "udp")
    assert list_sampler(lab) == {"pid": s.p.pid, "state": "capturing"}
    assert s.stop() == 0, s.err


def test_reader_slower_than_the_lease_leaves_the_packets_to_the_ring(lab):
    """A reader that takes nothing for longer than the lease: the sampler waits in its write,
    and renews its lease there, so what comes meanwhile goes into the ring as before the
    lease (and is written once the reader reads), not left uncaptured."""
    attach(lab)
    r, w = os.pipe()
    p = subprocess.Popen([PKTLENS, "-n", lab.b, "sample", "vb", "-w", "-", "udp"], stdout=w,
                         stderr=subprocess.PIPE)
    os.close(w)
    got = b""
    try:
        wait_until(lambda: chained_sample_stage(lab))
        send_raw(lab, udp_frames(100, 1000))      # 100 KB into a 64 KB pipe: the write waits
        time.sleep(LEASE_S + 0.5)
        send_raw(lab, udp_frames(20, 1000, dport=3000))
        time.sleep(0.3)
        os.set_blocking(r, False)
        deadline = time.time() + 10
        while len(got) < 24 + 120 * (16 + 1000):     # pcap: file header, 120 records
            assert time.time() < deadline, (len(got), sample_stats(lab))
            try:
                got += os.read(r, 1 << 16)
            except BlockingIOError:
                time.sleep(0.05)
        p.send_signal(signal.SIGTERM)
        while True:
            try:
                chunk = os.read(r, 1 << 16)
            except BlockingIOError:
                time.sleep(0.05)
                continue
            if not chunk:
                break
            got += chunk
        rc = p.wait(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        os.close(r)
    err = p.stderr.read().decode()
    assert rc == 0, err
    assert "nothing captured" not in err, err
    c = counts(err)
    assert c["matched"] == c["written"] == 120 and c["lost"] == 0, err


def test_rearm_sampler_killed_between_firings_leaves_no_ring(lab):
    """--rearm keeps its ring between firings; killed with -9 while it waited, it left the ring
    (up to -B KiB) in the attachment, with no settings to show it: stats takes it out."""
    from test_capture import wait_count
    attach(lab)
    s = Sampler(lab, "-w", os.path.join(lab.tmp, "re.pcap"), "--when", "dev pps > 50", "--for", 1,
                "--rearm", "udp", ready=False)
    wait_count(s, b"waiting for", 1)
    send_raw(lab, udp_frames(200, 100))
    wait_count(s, b"capturing", 1)
    wait_count(s, b"waiting for", 2)
    assert ring_installed(lab) and not sampling(lab)
    s.stop(sig=signal.SIGKILL)
    r = pktlens("stats", "vb", ns=lab.b)
    assert not ring_installed(lab)
    assert "sampler" not in r.stdout and r.stderr == ""
