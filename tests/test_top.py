# SPDX-License-Identifier: GPL-2.0
"""`pktlens top` in an 80x24 tmux pane: the screen shows the interface, non-zero rates
and the flow during traffic, and q exits 0."""
import os
import subprocess
import time

import pytest

from lab import PKTLENS, count_afresh, pktlens, sh


def exit_status(path, timeout=5):
    """The exit code the tmux shell wrote to path: its '> path' creates the file before echo
    writes the number, so an empty file is not yet the status."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                text = f.read()
            if text.endswith("\n"):
                return text.strip()
        time.sleep(0.05)
    raise AssertionError(f"no exit status in {path} after {timeout} s")


def start_top(lab, session, cols, lines, status, errors=None, dev="vb"):
    """`top DEV` in a detached tmux pane of @cols x @lines; its exit code goes to @status."""
    to_errors = f" 2> {errors}" if errors else ""
    sh("tmux", "new-session", "-d", "-s", session, "-x", str(cols), "-y", str(lines),
       f"TERM=xterm {PKTLENS} -n {lab.b} top {dev}{to_errors}; echo $? > {status}")


def send_frames(lab, frames, rate, stop):
    """sendraw.py from va: the frames of pcap @frames, @rate a second, until @stop exists."""
    return subprocess.Popen(["ip", "netns", "exec", lab.a, "/usr/bin/python3",
                             os.path.join(os.path.dirname(__file__), "sendraw.py"), "va",
                             frames, str(rate), stop], stdout=subprocess.DEVNULL)


def docs_until(p, done, timeout=15):
    """`top -j`'s documents, read from @p until done(docs) holds or @timeout seconds pass."""
    import json
    docs, deadline = [], time.time() + timeout
    while time.time() < deadline:
        line = p.stdout.readline()
        assert line, p.stderr.read()
        docs.append(json.loads(line))
        if done(docs):
            break
    return docs


def screen_with(session, text, timeout=10):
    """The pane's text once it shows @text (or what it shows after @timeout seconds)."""
    screen, deadline = "", time.time() + timeout
    while time.time() < deadline and text not in screen:
        time.sleep(0.5)
        screen = sh("tmux", "capture-pane", "-p", "-t", session, check=False).stdout
    return screen


def quit_top(session, status):
    """q ends top with exit 0."""
    sh("tmux", "send-keys", "-t", session, "q")
    assert exit_status(status) == "0"


def end_top(session, stop=None, sender=None):
    """Stop the sender (if any) and the tmux session."""
    if sender:
        open(stop, "w").close()
        sender.wait(timeout=10)
    subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)


def test_top_in_tmux(lab):
    from scapy.all import IP, UDP, Ether, Raw, wrpcap
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    session = f"pltop{os.getpid()}"
    status = os.path.join(lab.tmp, "status")
    errors = os.path.join(lab.tmp, "stderr")
    stop = os.path.join(lab.tmp, "stop")
    start_top(lab, session, 80, 24, status, errors)
    frames = os.path.join(lab.tmp, "stream.pcap")
    wrpcap(frames, [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                    IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=4242, dport=9) /
                    Raw(b"t" * 458)])
    time.sleep(0.6)  # the first frame: it says the interval asked for (it said "every 0 s")
    first = sh("tmux", "capture-pane", "-p", "-t", session, check=False).stdout
    assert "every 1 s - q quits" in first, first
    time.sleep(0.9)  # a frame or two with no flow at all first: empty tables, then some
    sender = send_frames(lab, frames, 500, stop)
    try:
        screen = ""
        deadline = time.time() + 15
        while time.time() < deadline:
            time.sleep(1)
            r = sh("tmux", "capture-pane", "-p", "-t", session, check=False)
            assert r.returncode == 0, (f"top ended: status {open(status).read().strip()}, "
                                       f"stderr {open(errors).read()}")
            screen = r.stdout
            rows = [line for line in screen.splitlines() if line.startswith("vb ")]
            if rows and rows[0].split()[3] not in ("0.0", "0") and "198.18.0.1:4242" in screen:
                break
        lines = screen.splitlines()
        assert len(lines) <= 24 and all(len(line) <= 80 for line in lines), screen
        row = [line for line in lines if line.startswith("vb ")][0].split()
        assert row[1:3] == ["xdp", "in"] and float(row[3].rstrip("k")) > 0, screen
        assert "198.18.0.1:4242" in screen and "198.18.0.2:9" in screen, screen
        assert "512-1023" in screen and "#" in screen, screen
        quit_top(session, status)
    finally:
        end_top(session, stop, sender)


def test_top_ends_with_its_input_and_says_when_the_terminal_is_unknown(lab):
    """stdin at its end (/dev/null, a closed pipe): nothing can press q, so top exits (it used to
    redraw forever); without TERM it says so in one line instead of ncurses' own message."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    import pty

    env = dict(os.environ, TERM="xterm")
    for stdin in (subprocess.DEVNULL, subprocess.PIPE):
        master, slave = pty.openpty()  # the screen needs a terminal on stdout, stdin need not be one
        p = subprocess.Popen([PKTLENS, "-n", lab.b, "top", "vb"], stdin=stdin,
                             stdout=slave, stderr=subprocess.PIPE, env=env, text=True)
        os.close(slave)
        if p.stdin:
            p.stdin.close()
        try:
            assert p.wait(timeout=10) == 0
        finally:
            p.kill()
            os.close(master)
        assert p.stderr.read() == ""
    env.pop("TERM")
    r = subprocess.run([PKTLENS, "-n", lab.b, "top", "vb"], env=env, capture_output=True, text=True,
                       timeout=10, stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stderr) == (2, "pktlens: top: cannot use the terminal: TERM is not set\n")
    r = subprocess.run([PKTLENS, "-n", lab.b, "top", "vb"], env=dict(env, TERM="nosuchterm0"),
                       capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stderr) == (2, "pktlens: top: cannot use the terminal: TERM 'nosuchterm0' "
                                           "is not known here\n")
    # known, but it cannot redraw in place: one line, not a screen written over itself
    r = subprocess.run([PKTLENS, "-n", lab.b, "top", "vb"], env=dict(env, TERM="dumb"),
                       capture_output=True, text=True, timeout=10, stdin=subprocess.DEVNULL)
    assert (r.returncode, r.stderr) == (2, "pktlens: top: cannot use the terminal: TERM 'dumb' cannot "
                                           "move the cursor (top -j needs no terminal)\n")


@pytest.mark.variant     # ncurses' signals: the same code as q ends the view with
@pytest.mark.parametrize("sig", ["INT", "TERM"])
def test_top_ends_on_ctrl_c_and_sigterm_with_exit_0(lab, sig):
    """Ctrl-C (SIGINT) and SIGTERM end the live view with exit 0 and the terminal restored,
    as they end top -j, stats --watch and the exporters (ncurses' handler made it exit 1)."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    session, status = f"pltop{os.getpid()}{sig}", os.path.join(lab.tmp, f"top-{sig}.status")
    start_top(lab, session, 80, 24, status)
    try:
        screen_with(session, "vb")
        sh("pkill", f"-{sig}", "-f", f"^{PKTLENS} -n {lab.b} top vb")
        assert exit_status(status) == "0"
    finally:
        end_top(session)


def test_top_json_gives_the_intervals_numbers_without_a_terminal(lab):
    """top -j (its help lists -j): one JSON object per interval, no terminal needed, with the
    rates, the interval's top flows and its size mix; what was sent is the oracle (summed over
    the intervals, in case the frames straddle two). It used to draw the ncurses screen on
    stdout whatever -j said, and refuse to run without TERM."""
    import json
    from scapy.all import IPv6, UDP, Dot1Q, Ether, Raw
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    env = {k: v for k, v in os.environ.items() if k != "TERM"}
    p = subprocess.Popen([PKTLENS, "-n", lab.b, "-j", "top", "vb"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    big = (Ether(src="02:00:00:00:00:01", dst=lab.mac(lab.b, "vb")) / Dot1Q(vlan=42) /
           IPv6(src="2001:db8::1", dst="2001:db8::2") / UDP(sport=5353, dport=8053) / Raw(b"b" * 700))
    small = (Ether(src="02:00:00:00:00:01", dst=lab.mac(lab.b, "vb")) /
             IPv6(src="2001:db8::3", dst="2001:db8::4") / UDP(sport=7, dport=9) / Raw(b"s" * 10))

    def flows(d, sport):
        return [f for f in d["flows"] if f.get("l3") == "ipv6" and f.get("sport") == sport]

    try:
        first = json.loads(p.stdout.readline() or "null")
        assert first, p.stderr.read()
        lab.send([big] * 30 + [small] * 5)
        docs = docs_until(p, lambda docs: sum(f["packets"] for d in docs for f in flows(d, 7)) >= 5
                          and sum(f["packets"] for d in docs for f in flows(d, 5353)) >= 30)
        p.send_signal(2)
        assert p.wait(timeout=10) == 0
    finally:
        p.kill()
    assert p.stderr.read() == ""
    for d in docs:
        assert 0.9 < d["interval"] < 2 and abs(d["time"] - time.time()) < 20
        assert [(r["ifname"], r["hook"], r["dir"]) for r in d["interfaces"]] == [("vb", "tc", "in")]
    assert docs[-1]["interfaces"][0]["packets"] - first["interfaces"][0]["packets"] >= 35
    pkts = sum(d["interfaces"][0]["pps"] * d["interval"] for d in docs)
    assert 35 - 0.01 <= pkts < 35 + 5, pkts   # and the odd frame of the kernel's own
    big_f = [f for d in docs for f in flows(d, 5353)]
    assert all((f["src"], f["dst"], f["dport"], f["vlan"], f["proto"]) ==
               ("2001:db8::1", "2001:db8::2", 8053, 42, "udp") for f in big_f), big_f
    assert sum(f["packets"] for f in big_f) == 30
    assert sum(f["bytes"] for f in big_f) == 30 * len(big)
    d = [d for d in docs if flows(d, 5353)][0]
    assert abs(flows(d, 5353)[0]["bps"] - flows(d, 5353)[0]["bytes"] * 8 / d["interval"]) < 1
    assert d["flows"][0]["sport"] == 5353  # most bytes first
    assert sum(f["bytes"] for d in docs for f in flows(d, 7)) == 5 * len(small)
    # the size mix: 30 frames of 764 bytes, 5 of 72
    assert abs(sum(d["sizes"]["512-1023"] * d["interval"] for d in docs) - 30) < 0.01
    assert abs(sum(d["sizes"]["65-127"] * d["interval"] for d in docs) - 5) < 0.01


def test_top_screen_after_a_reset_counts_from_zero(lab):
    """stats --reset between two frames: the screen's rates count from zero, as -j's do (the
    screen subtracted the larger count before the reset: 2^64 less a little, shown as
    some 147 Pb/s, on the interface, flow and size rows)."""
    import re
    from scapy.all import IP, UDP, Ether, Raw
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    lab.send([Ether(src="02:00:00:00:00:01", dst=lab.mac(lab.b, "vb")) /
              IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=4343, dport=9) /
              Raw(b"r" * 300)] * 400)
    session = f"pltopr{os.getpid()}"
    status = os.path.join(lab.tmp, "status")
    start_top(lab, session, 100, 30, status)
    try:
        time.sleep(1.5)
        pktlens("stats", "vb", "--reset", ns=lab.b)
        screens = []
        for _ in range(12):
            time.sleep(0.25)
            screens.append(sh("tmux", "capture-pane", "-p", "-t", session).stdout)
        assert any("vb " in s for s in screens), screens[-1]
        for s in screens:
            # rates with a G, T or P prefix: nothing here comes near a gigabit
            assert not re.search(r"\d[GTP]b?\b", s), s
        quit_top(session, status)
    finally:
        end_top(session)


# reattach: the same restart seen by the reader as reset's (its counters go back); both variant
# (a 12 s wait under ASan): top -j's reading runs in the sanitized pass's other top tests
@pytest.mark.variant
@pytest.mark.parametrize("restart", ["reset", "reattach"])
def test_top_json_counts_what_came_after_a_reset_or_reattach(lab, restart):
    """stats --reset (or detach and attach again) and then more packets than before, in one
    interval: the interval's rates and its flow show those packets, all of them (top subtracted
    the count before, as counters that had not gone back: 15 packets sent, 5 shown)."""
    import json
    from scapy.all import IP, UDP, Ether, Raw
    hooks = ("--xdp", "none", "--tc", "in")
    pktlens("attach", "vb", *hooks, ns=lab.b)
    frame = (Ether(src="02:00:00:00:00:01", dst=lab.mac(lab.b, "vb")) /
             IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=4545, dport=9) / Raw(b"q" * 100))
    p = subprocess.Popen([PKTLENS, "-n", lab.b, "-j", "top", "vb", "--interval", "3"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)

    def mine(d):
        return sum(f["packets"] for f in d["flows"] if f.get("sport") == 4545)

    try:
        assert p.stdout.readline(), p.stderr.read()   # top has its first reading: send now
        lab.send([frame] * 10)
        seen, deadline = 0, time.time() + 15
        while seen < 10 and time.time() < deadline:
            line = p.stdout.readline()
            assert line, p.stderr.read()
            seen += mine(json.loads(line))
        assert seen == 10
        # at the start of an interval: all of this falls in it
        count_afresh(lab, restart, *hooks)
        lab.send([frame] * 15)
        docs = [json.loads(p.stdout.readline() or "null"), json.loads(p.stdout.readline() or "null")]
        assert all(docs), p.stderr.read()
        p.send_signal(2)
        assert p.wait(timeout=10) == 0
    finally:
        p.kill()
    assert sum(mine(d) for d in docs) == 15, docs
    pkts = sum(d["interfaces"][0]["pps"] * d["interval"] for d in docs)
    assert abs(pkts - 15) < 0.01, docs
    assert abs(sum(d["sizes"]["128-255"] * d["interval"] for d in docs) - 15) < 0.01, docs


@pytest.mark.parametrize("cmd", [["top", "vb"], ["stats", "vb", "--watch", "1"]], ids=["top", "watch"])
def test_a_view_whose_interface_is_detached_says_so(lab, cmd):
    """top -j DEV and stats --watch while DEV is detached: a runtime failure (exit 1) in one
    line that says so (they said 'No such file or directory', --watch adding 'attached by an
    older pktlens? pktlens attach --force')."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    p = subprocess.Popen([PKTLENS, "-n", lab.b, "-j", *cmd], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline(), p.stderr.read()
        pktlens("detach", "vb", ns=lab.b)
        assert p.wait(timeout=10) == 1
    finally:
        p.kill()
    assert p.stderr.read() == f"pktlens: {cmd[0]}: vb: detached meanwhile\n"


def test_watch_of_every_interface_goes_on_when_one_is_detached(lab):
    """stats --watch without DEV while one of two attachments is detached: the other is still
    watched and Ctrl-C ends it with 0 (it ended with 'vb: detached meanwhile', exit 1, as a
    watch of the DEV named does)."""
    import json
    import signal
    for dev in ("vb", "lo"):
        pktlens("attach", dev, "--xdp", "none", "--tc", "in", ns=lab.b)
    p = subprocess.Popen([PKTLENS, "-n", lab.b, "stats", "--watch", "1"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().startswith("TIME"), p.stderr.read()
        assert [p.stdout.readline().split()[1] for _ in range(2)] == ["lo", "vb"]
        pktlens("detach", "vb", ns=lab.b)
        assert p.stderr.readline() == "pktlens: stats: vb: detached meanwhile; watching the others\n"
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=10) == 0
    finally:
        p.kill()
    # the interval that said so is the last printed, and shows lo alone
    assert p.stdout.read().splitlines()[-1].split()[1:4] == ["lo", "tc", "in"]
    assert json.loads(pktlens("-j", "stats", ns=lab.b).stdout)["interfaces"][0]["ifname"] == "lo"


@pytest.mark.parametrize("cols,lines", [(20, 14), (80, 7)], ids=["narrow", "short"])
def test_top_in_a_small_terminal_draws_and_quits(lab, cols, lines):
    """A pane under 24 columns while packets of two sizes flow: the size bars' room went
    negative, cast to unsigned, so top looped over some 2^31 '#'s a frame: a blank screen at
    full CPU that no q could end. A pane under 12 lines: the size mix, drawn from the bottom,
    overwrote the title and headers. Either must draw what fits and quit on q."""
    from scapy.all import IP, UDP, Ether, Raw, wrpcap
    pktlens("attach", "vb", "--xdp", "native", "--tc", "none", ns=lab.b)
    session = f"pltopn{os.getpid()}"
    status = os.path.join(lab.tmp, "status")
    stop = os.path.join(lab.tmp, "stop")
    frames = os.path.join(lab.tmp, "mix.pcap")
    e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
    ip = IP(src="198.18.0.1", dst="198.18.0.2")
    wrpcap(frames, [e / ip / UDP(sport=4646, dport=9) / Raw(b"n" * 458)] * 3 +
           [e / ip / UDP(sport=4647, dport=9) / Raw(b"n" * 60)])
    sender = send_frames(lab, frames, 200, stop)
    start_top(lab, session, cols, lines, status)
    try:
        screen = screen_with(session, "vb ")
        rows = screen.splitlines()
        assert rows[0].startswith("pktlens top - 1 interface"[:cols]), screen
        assert rows[1].startswith("IFACE") and rows[2].startswith("vb "), screen
        if lines >= 14:
            assert "256-511" in screen and "65-127" in screen, screen
        quit_top(session, status)
    finally:
        end_top(session, stop, sender)


def test_top_size_mix_and_flows_count_an_arriving_packet_once_with_xdp_and_tc(lab):
    """XDP and tc ingress attached at once both count each arriving packet (each under its own
    hook row): the size mix, packets per second by size, and the top flows must count it once,
    as the IPFIX export and the dashboard do (it added the hooks up: 40 of 20 frames)."""
    import json
    from scapy.all import IP, UDP, Ether, Raw
    pktlens("attach", "vb", "--xdp", "native", ns=lab.b)
    p = subprocess.Popen([PKTLENS, "-n", lab.b, "-j", "top", "vb"], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = json.loads(p.stdout.readline() or "null")
        assert first, p.stderr.read()
        assert {(r["hook"], r["dir"]) for r in first["interfaces"]} >= {("xdp", "in"), ("tc", "in")}
        lab.send([Ether(src="02:00:00:00:00:01", dst=lab.mac(lab.b, "vb")) /
                  IP(src="198.18.0.1", dst="198.18.0.2") / UDP(sport=4747, dport=9) /
                  Raw(b"o" * 358)] * 20)

        def tc_in(docs):
            return [r for d in docs for r in d["interfaces"] if (r["hook"], r["dir"]) == ("tc", "in")]

        docs = docs_until(p, lambda docs: tc_in(docs) and tc_in(docs)[-1]["packets"] >= 20
                          and len(docs) >= 2)
        p.send_signal(2)
        assert p.wait(timeout=10) == 0
    finally:
        p.kill()
    assert abs(sum(d["sizes"]["256-511"] * d["interval"] for d in docs) - 20) < 0.01, docs
    # and its flow once, as XDP's (it was listed twice, under each hook: two like rows on the
    # screen, which has no hook column, and 40 packets of 20 added up)
    mine = [(f["hook"], f["packets"]) for d in docs for f in d["flows"] if f.get("sport") == 4747]
    assert sum(n for _, n in mine) == 20 and {h for h, _ in mine} == {"xdp"}, mine


def test_top_with_tcp_passive_fits_80_columns(lab):
    """attach --tcp-passive adds SRTT_MS and RETX to the flow rows: in 80 columns they must fit
    (the address columns kept their 29 characters, the rows ran to 96 and wrapped into the next
    row, which overwrote them). An interface name of IFNAMSIZ - 1 characters shows whole (it was
    cut to 12: 'vb.long-name' for two interfaces 'vb.long-name.1' and '.2')."""
    from scapy.all import IP, TCP, Ether, Raw, wrpcap
    dev = "vb.long-name-15"
    sh("ip", "-n", lab.b, "link", "set", "vb", "name", dev)
    sh("ip", "-n", lab.b, "link", "set", dev, "up")
    pktlens("attach", dev, "--xdp", "native", "--tcp-passive", ns=lab.b)
    session = f"pltopp{os.getpid()}"
    status = os.path.join(lab.tmp, "status")
    stop = os.path.join(lab.tmp, "stop")
    frames = os.path.join(lab.tmp, "tcp.pcap")
    wrpcap(frames, [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                    IP(src="198.18.0.1", dst="198.18.0.2") /
                    TCP(sport=4848, dport=80, flags="A", seq=1000 + 100 * i) / Raw(b"p" * 100)
                    for i in range(50)])
    sender = send_frames(lab, frames, 100, stop)
    start_top(lab, session, 80, 24, status, dev=dev)
    try:
        screen = screen_with(session, "198.18.0.1:4848")
        lines = screen.splitlines()
        assert [x.split()[:3] for x in lines if x.startswith(dev[:12])] == \
            [[dev, "xdp", "in"], [dev, "tc", "in"], [dev, "tc", "out"]], screen
        head = [x for x in lines if x.startswith("PROTO")]
        assert head and head[0].rstrip().endswith("SRTT_MS   RETX"), screen
        row = [x for x in lines if "198.18.0.1:4848" in x]
        assert row and len(row[0].split()) == 7 and "198.18.0.2:80" in row[0], screen
        assert len(lines) <= 24 and all(len(x) <= 80 for x in lines), screen
        quit_top(session, status)
    finally:
        end_top(session, stop, sender)


@pytest.mark.variant
def test_top_in_a_wide_terminal_shows_whole_ipv6_endpoints(lab):
    """The address columns kept 29 characters however wide the pane: an IPv6 flow's
    [address]:port (up to 47) lost its port even in 120 columns. In 80 they still fit (the
    tests above); wider, each endpoint shows whole."""
    from scapy.all import IPv6, UDP, Ether, Raw, wrpcap
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    src, dst = "2001:db8:1234:5678:9abc:def0:1234:5678", "2001:db8:aaaa:bbbb:cccc:dddd:eeee:ffff"
    session = f"pltopw{os.getpid()}"
    status = os.path.join(lab.tmp, "status")
    stop = os.path.join(lab.tmp, "stop")
    frames = os.path.join(lab.tmp, "v6.pcap")
    wrpcap(frames, [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02") /
                    IPv6(src=src, dst=dst) / UDP(sport=65535, dport=65534) / Raw(b"w" * 200)])
    sender = send_frames(lab, frames, 100, stop)
    start_top(lab, session, 120, 24, status)
    try:
        screen = screen_with(session, f"[{dst}]:65534")
        row = [x for x in screen.splitlines() if f"[{src}]:65535" in x]
        assert row and row[0].split()[:4] == ["udp", "in", f"[{src}]:65535", f"[{dst}]:65534"], \
            screen
        assert all(len(x) <= 120 for x in screen.splitlines()), screen
        quit_top(session, status)
    finally:
        end_top(session, stop, sender)


def top_in_pty(lab, rows, cols, keys=b"q", stdout_pty=True, settle=1.5, timeout=10):
    """`top vb` with TERM=xterm on a pseudo-terminal of @rows x @cols (its stdin; its stdout
    too with @stdout_pty, else a pipe): after @settle seconds @keys are typed. Returns the
    exit status (None: still running after @timeout, then killed), what it wrote to stdout and
    its stderr."""
    import fcntl
    import pty
    import select
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    p = subprocess.Popen([PKTLENS, "-n", lab.b, "top", "vb"], stdin=slave,
                         stdout=slave if stdout_pty else subprocess.PIPE, stderr=subprocess.PIPE,
                         env=dict(os.environ, TERM="xterm"), start_new_session=True)
    os.close(slave)
    out, typed, deadline = b"", False, time.time() + timeout
    start = time.time()
    try:
        while time.time() < deadline and p.poll() is None:
            if not typed and time.time() - start > settle:
                os.write(master, keys)
                typed = True
            if select.select([master], [], [], 0.1)[0]:
                try:
                    out += os.read(master, 65536)
                except OSError:
                    pass
        status = p.poll()
        if status is None:
            p.kill()
            p.wait()
        if not stdout_pty:
            out = p.stdout.read()
        return status, out, p.stderr.read().decode()
    finally:
        os.close(master)
        if not stdout_pty:
            p.stdout.close()
        p.stderr.close()


@pytest.mark.parametrize("rows,cols", [(5, 10), (8, 8), (10, 5), (4, 9), (6, 10), (1, 1)])
def test_top_in_a_tiny_terminal_does_not_crash(lab, rows, cols):
    """A terminal smaller than a line of the view: mvprintw() formats into ncurses' buffer of
    (LINES + 1) * (COLS + 1) bytes, which the longer lines overran: SIGSEGV. Each line is cut
    at the width instead; q quits with exit 0."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    status, out, err = top_in_pty(lab, rows, cols)
    assert (status, err) == (0, ""), (status, err, out[-300:])


@pytest.mark.parametrize("keys", [b"q", b"q\n"])
def test_top_refuses_an_output_that_is_not_a_terminal(lab, keys):
    """`top > file` (or a pipe) with the keyboard on stdin: ncurses set cbreak on stdout, not on
    the keyboard, so q was never read (not even with Enter: top ignored it) and top ran until
    killed, filling the file with escape sequences. It says stdout is not a terminal and
    points to top -j instead: exit 2 at once, nothing on stdout."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    status, out, err = top_in_pty(lab, 24, 80, keys=keys, stdout_pty=False, timeout=5)
    assert (status, out, err) == (2, b"", "pktlens: top: standard output is not a terminal (top -j "
                                          "needs none)\n")
