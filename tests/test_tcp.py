# SPDX-License-Identifier: GPL-2.0
"""`pktlens tcp retrans|rtt|connlat`: TCP probes on tracepoints, against the kernel's own numbers.

Real TCP between two namespaces of a veth lab (198.18.0.1 in a, 198.18.0.2 in b),
loss from nftables on the receiver, SYN drops in the sender's namespace. Retransmits must equal
the kernel's TcpRetransSegs of that namespace over the same interval, RTT must agree
with `ss -ti` (median of samples during a transfer queued by a tbf qdisc), connect latency must show a retransmitted SYN, and connections with
the same 4-tuple in two namespaces must stay apart.
"""
import json
import os
import select
import signal
import subprocess
import time

import pytest

from lab import PKTLENS, PYTHON, seconds_running, sh, start_probes

SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.0.2", int(sys.argv[1]))); s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    while True:
        d = c.recv(65536)
        if not d:
            break
        if sys.argv[2] == "echo":
            c.sendall(d)
    c.close()
"""

CLIENT = r"""
import socket, sys, time
port, mode, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
c = socket.socket()
if len(sys.argv) > 4:
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.bind(("198.18.0.1", int(sys.argv[4])))
c.settimeout(120)          # no progress for that long: under TCG with loss both ways, 30 s was hit
c.connect(("198.18.0.2", port))
print(c.getsockname()[1], flush=True)
if mode == "bulk":
    c.sendall(b"x" * n)
else:                      # echo: n round trips of 1 KB, 10 ms apart
    for _ in range(n):
        c.sendall(b"y" * 1024)
        got = 0
        while got < 1024:
            got += len(c.recv(4096))
        time.sleep(0.01)
    sys.stdin.readline()   # keep the connection open until told
c.close()
"""


def netns_path(ns):
    return f"/run/netns/{ns}"


def start_tracer(verb, *args, global_ns=None):
    """`pktlens [-n GLOBAL_NS] -j tcp VERB ARGS`, returned once its probes are attached."""
    return start_probes([PKTLENS] + (["-n", global_ns] if global_ns else []) +
                        ["-j", "tcp", verb, *map(str, args)], "pl_tcp_")


class Tracer:
    """`pktlens [-n GLOBAL_NS] -j tcp VERB ARGS` running until stop()."""

    def __init__(self, verb, *args, global_ns=None):
        self.p = start_tracer(verb, *args, global_ns=global_ns)

    def stop(self):
        self.p.send_signal(signal.SIGINT)
        out, err = self.p.communicate(timeout=30)
        assert self.p.returncode == 0, err
        docs = [json.loads(line) for line in out.splitlines() if line.strip()]
        return docs[:-1], docs[-1]


def start_server(lab, port, mode="sink"):
    p = subprocess.Popen(["ip", "netns", "exec", lab.b, PYTHON, "-c", SERVER, str(port), mode],
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def client(lab, port, mode, n, bind=None, ns=None):
    args = [str(port), mode, str(n)] + ([str(bind)] if bind else [])
    return subprocess.Popen(["ip", "netns", "exec", ns or lab.a, PYTHON, "-c", CLIENT, *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def tcp_mib(ns, field):
    """The kernel's TCP counter @field (RetransSegs, ActiveOpens, ...) of namespace @ns."""
    out = sh("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").stdout.splitlines()
    tcp = [line.split() for line in out if line.startswith("Tcp:")]
    return int(tcp[1][tcp[0].index(field)])


def retrans_segs(ns):
    return tcp_mib(ns, "RetransSegs")


def mss_segments(ns, dev):
    """Make dev in ns send MSS-sized segments (no TSO/GSO): a 1-in-10 loss rule then drops
    one in ten of a bulk transfer's ~1,400 segments per 2 MB, not one in ten of ~30 64 KB
    super-packets, which leaves a transfer without any loss one run in thirty."""
    sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off")


def nft(ns, table, rule, hook="output"):
    """A table `table` with one rule on a hook of namespace ns."""
    sh("ip", "netns", "exec", ns, "nft", "-f", "-", input=(
        f"table inet {table} {{\n chain c {{\n  type filter hook {hook} priority 0;\n"
        f"  {rule}\n }}\n}}\n"))


@pytest.fixture
def tcplab(lab):
    sh("ip", "-n", lab.a, "addr", "add", "198.18.0.1/24", "dev", "va")
    sh("ip", "-n", lab.b, "addr", "add", "198.18.0.2/24", "dev", "vb")
    procs = []
    yield lab, procs
    for p in procs:
        p.kill()
        p.wait()


def test_retransmits_equal_the_kernels_count(tcplab):
    lab, procs = tcplab
    procs.append(start_server(lab, 5001))
    # loss on the path: the receiver drops 1 in 10 arriving data packets (a drop on the
    # sender's own output would make TCP send again as new data, not retransmit)
    nft(lab.b, "loss", "tcp dport 5001 numgen random mod 10 == 0 drop", hook="input")
    mss_segments(lab.a, "va")
    tr = Tracer("retrans", "--netns", netns_path(lab.a))
    before = retrans_segs(lab.a)
    c = client(lab, 5001, "bulk", 8 << 20)
    port = int(c.stdout.readline())
    assert c.wait(timeout=60) == 0
    time.sleep(0.5)
    after = retrans_segs(lab.a)
    events, summary = tr.stop()
    assert after - before > 0, "the loss rule made no retransmits"
    print(f"RetransSegs +{after - before}, {len(events)} retransmit events")
    mine = [e for e in events if e["lport"] == port]
    assert mine and all(e["laddr"] == "198.18.0.1" and e["raddr"] == "198.18.0.2" and
                        e["rport"] == 5001 for e in mine)
    # every retransmit in that namespace is ours: the counts must be equal
    assert sum(e["segs"] for e in events) == after - before
    conn = [x for x in summary["connections"] if x["lport"] == port]
    assert conn[0]["segs"] == after - before and summary["lost"] == 0


@pytest.mark.variant    # the probes' counting; `tcp retrans` output runs in the tests above
def test_accepted_connection_counts_its_synack_retransmits_once(tcplab):
    """On the server: SYN-ACKs retransmitted while the client lost them, then data
    retransmitted under loss. The accepted socket's own count starts with the SYN-ACK's
    retransmits, already reported as the request's: the events add up to the server
    namespace's RetransSegs, each counted once."""
    lab, procs = tcplab
    procs.append(start_server(lab, 5007, "echo"))
    nft(lab.a, "synack", "tcp sport 5007 tcp flags & (syn | ack) == syn | ack drop", hook="input")
    nft(lab.a, "loss", "tcp sport 5007 numgen random mod 8 == 0 drop", hook="input")
    mss_segments(lab.b, "vb")
    tr = Tracer("retrans", "--netns", netns_path(lab.b))
    before = retrans_segs(lab.b)
    c = client(lab, 5007, "echo", 150)
    time.sleep(1.5)
    sh("ip", "netns", "exec", lab.a, "nft", "delete", "table", "inet", "synack")
    port = int(c.stdout.readline())
    c.stdin.close()
    assert c.wait(timeout=90) == 0
    time.sleep(0.5)
    after = retrans_segs(lab.b)
    events, summary = tr.stop()
    mine = [e for e in events if e["rport"] == port]
    kinds = {e["kind"] for e in mine}
    assert {"synack", "data"} <= kinds, kinds
    assert mine == events and summary["lost"] == 0
    assert sum(e["segs"] for e in events) == after - before, \
        [(e["kind"], e["state"], e["segs"]) for e in events]


ONCE_SERVER = r"""
import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("198.18.0.2", int(sys.argv[1]))); s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    got = b""
    while len(got) < 1000:
        got += c.recv(4096)
    c.sendall(got)
    c.close()              # the server closes first: no TIME_WAIT on the client's port
"""

SAME_PORT_CLIENT = r"""
import socket, sys
for _ in range(int(sys.argv[3])):
    c = socket.socket()
    c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    c.bind(("198.18.0.1", int(sys.argv[2])))
    c.settimeout(10)
    c.connect(("198.18.0.2", int(sys.argv[1])))
    c.sendall(b"z" * 1000)
    got = 0
    while True:
        d = c.recv(4096)
        if not d:
            break
        got += len(d)
    assert got == 1000
    c.close()
"""


@pytest.mark.variant    # the probes' counting; `tcp retrans` output runs in the tests above
def test_same_tuple_again_counts_each_connections_retransmits(tcplab):
    """Connections one after another from one bound port: the same 4-tuple, and the kernel
    often gives each new socket the address of the one before. Every one retransmits its
    data once (the receiver drops every second data segment): all are counted, equal to
    the namespace's RetransSegs, in the events and in the connection's summary."""
    lab, procs = tcplab
    srv = subprocess.Popen(["ip", "netns", "exec", lab.b, PYTHON, "-c", ONCE_SERVER, "5008"],
                           stdout=subprocess.PIPE, text=True)
    procs.append(srv)
    assert srv.stdout.readline().strip() == "ready"
    nft(lab.b, "loss", "tcp dport 5008 meta length > 500 numgen inc mod 2 == 0 drop",
        hook="input")
    tr = Tracer("retrans", "--netns", netns_path(lab.a))
    before = retrans_segs(lab.a)
    sh("ip", "netns", "exec", lab.a, PYTHON, "-c", SAME_PORT_CLIENT, "5008", "40408", "8",
       timeout=60)
    time.sleep(0.5)
    after = retrans_segs(lab.a)
    events, summary = tr.stop()
    assert after - before >= 8, after - before
    assert sum(e["segs"] for e in events) == after - before, events
    assert [(c["lport"], c["rport"], c["segs"]) for c in summary["connections"]] == \
        [(40408, 5008, after - before)], summary


def test_syn_retransmit_and_connect_latency(tcplab):
    lab, procs = tcplab
    procs.append(start_server(lab, 5002))
    nft(lab.a, "syn", "tcp dport 5002 tcp flags syn drop")
    lat = Tracer("connlat", "--netns", netns_path(lab.a))
    rtx = Tracer("retrans", "--netns", netns_path(lab.a))
    c = client(lab, 5002, "bulk", 1000)
    time.sleep(1.5)
    sh("ip", "netns", "exec", lab.a, "nft", "delete", "table", "inet", "syn")
    port = int(c.stdout.readline())
    assert c.wait(timeout=30) == 0
    events, summary = lat.stop()
    r_events, _ = rtx.stop()
    mine = [e for e in events if e["lport"] == port]
    assert len(mine) == 1 and mine[0]["latency_ms"] >= 1000, (port, events, summary, r_events)
    assert mine[0]["rport"] == 5002 and mine[0]["raddr"] == "198.18.0.2"
    assert summary["connlat"]["count"] >= 1 and summary["connlat"]["max_us"] >= 1000000
    syns = [e for e in r_events if e["lport"] == port and e["kind"] == "syn"]
    assert syns and all(e["state"] == "SYN_SENT" for e in syns)


V6_SERVER = r"""
import socket, sys
s = socket.socket(socket.AF_INET6); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("::", int(sys.argv[1]))); s.listen(8)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.recv(10)
    c.close()
"""

V6_CLIENT = r"""
import json, socket, sys
out = []
for host in sys.argv[2:]:
    c = socket.socket(socket.AF_INET6)
    c.settimeout(10)
    c.connect((host, int(sys.argv[1])))
    out.append(c.getsockname()[1])
    c.close()
print(json.dumps(out))
"""


def test_ipv6_and_mapped_addresses_are_whole(tcplab):
    """IPv6 connections (and an IPv6 socket's connect to an IPv4-mapped address) are shown
    with their whole addresses, as the kernel has them, not only their first byte."""
    lab, procs = tcplab
    for ns, dev, a in ((lab.a, "va", "2001:db8:77::1"), (lab.b, "vb", "2001:db8:77::2")):
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0",
           f"net.ipv6.conf.{dev}.disable_ipv6=0", f"net.ipv6.conf.{dev}.accept_dad=0")
        sh("ip", "-n", ns, "addr", "add", a + "/64", "dev", dev, "nodad")
    srv = subprocess.Popen(["ip", "netns", "exec", lab.b, PYTHON, "-c", V6_SERVER, "5006"],
                           stdout=subprocess.PIPE, text=True)
    procs.append(srv)
    assert srv.stdout.readline().strip() == "ready"
    lat = Tracer("connlat", "--netns", netns_path(lab.a))
    out = sh("ip", "netns", "exec", lab.a, PYTHON, "-c", V6_CLIENT, "5006", "2001:db8:77::2",
             "::ffff:198.18.0.2").stdout
    ports = json.loads(out)
    events, _ = lat.stop()
    got = {e["lport"]: (e["laddr"], e["raddr"], e["rport"]) for e in events if e["lport"] in ports}
    assert got == {ports[0]: ("2001:db8:77::1", "2001:db8:77::2", 5006),
                   ports[1]: ("198.18.0.1", "198.18.0.2", 5006)}, events


def test_rtt_agrees_with_ss(tcplab):
    lab, procs = tcplab
    # queueing delay: a bulk transfer through a slow token bucket on a's egress builds a
    # queue of up to 100 ms, large and steady enough to compare RTTs
    sh("tc", "-n", lab.a, "qdisc", "add", "dev", "va", "root", "tbf", "rate", "8mbit",
       "burst", "64kb", "latency", "100ms")
    procs.append(start_server(lab, 5003))
    tr = Tracer("rtt", "--by", "rport", "--netns", netns_path(lab.a))
    c = client(lab, 5003, "bulk", 4 << 20)       # about 4 s at 8 Mbit/s
    procs.append(c)
    port = int(c.stdout.readline())
    ss_rtts = []
    while c.poll() is None and len(ss_rtts) < 200:
        ss = sh("ip", "netns", "exec", lab.a, "ss", "-tin", "dst", "198.18.0.2",
                f"sport = :{port}").stdout
        if "rtt:" in ss:
            ss_rtts.append(float(ss.split(" rtt:")[1].split("/")[0]) * 1000)
        time.sleep(0.1)
    assert c.wait(timeout=30) == 0
    _, doc = tr.stop()
    assert len(ss_rtts) >= 10
    ss_rtt = sorted(ss_rtts)[len(ss_rtts) // 2]
    mine = [h for h in doc["rtt"] if h["rport"] == 5003]
    assert len(mine) == 1 and mine[0]["count"] >= 20   # ACKs, coalesced by GRO
    p50 = mine[0]["p50_us"]
    assert ss_rtt / 2 <= p50 <= ss_rtt * 2, (p50, ss_rtt, ss_rtts)


def test_same_tuple_in_two_namespaces(tcplab, lab2):
    lab, procs = tcplab
    sh("ip", "-n", lab2.a, "addr", "add", "198.18.0.1/24", "dev", "va")
    sh("ip", "-n", lab2.b, "addr", "add", "198.18.0.2/24", "dev", "vb")
    procs.append(start_server(lab, 5004))
    procs.append(start_server(lab2, 5004))
    tr = Tracer("connlat")
    only_a = Tracer("connlat", "--netns", lab.a)     # a name, as ip netns lists it
    for lb in (lab, lab2):
        c = client(lb, 5004, "bulk", 10, bind=40404, ns=lb.a)
        assert c.wait(timeout=20) == 0
    events, _ = tr.stop()
    only, _ = only_a.stop()
    same = [e for e in events if (e["laddr"], e["lport"], e["raddr"], e["rport"]) ==
            ("198.18.0.1", 40404, "198.18.0.2", 5004)]
    ino_a = os.stat(netns_path(lab.a)).st_ino
    ino_a2 = os.stat(netns_path(lab2.a)).st_ino
    assert sorted(e["netns"] for e in same) == sorted([ino_a, ino_a2])
    assert [e["netns"] for e in only if e["lport"] == 40404] == [ino_a]


def test_global_netns_is_that_namespaces_connections(tcplab):
    """`pktlens -n NETNS tcp` (no --netns) traces NETNS's connections alone, as `-n` gives
    drops and the exporters that namespace's alone: as many as its ActiveOpens, none of b's."""
    lab, procs = tcplab
    procs.append(start_server(lab, 5009))
    tr = Tracer("connlat", global_ns=lab.a)
    before = {ns: tcp_mib(ns, "ActiveOpens") for ns in (lab.a, lab.b)}
    for ns in (lab.a, lab.b, lab.a, lab.b, lab.a):   # b connects to its own address
        assert client(lab, 5009, "bulk", 10, ns=ns).wait(timeout=20) == 0
    events, _ = tr.stop()
    opened = {ns: tcp_mib(ns, "ActiveOpens") - before[ns] for ns in (lab.a, lab.b)}
    assert opened == {lab.a: 3, lab.b: 2}
    assert [e["netns"] for e in events] == [os.stat(netns_path(lab.a)).st_ino] * opened[lab.a]


def without_btf(*args):
    """pktlens ARGS as on a kernel without the tracepoints in its BTF: an empty
    /sys/kernel/btf in a mount namespace of its own."""
    return subprocess.run(["unshare", "-m", "sh", "-c",
                           'mount -t tmpfs none /sys/kernel/btf && exec "$@"', "sh", PKTLENS,
                           *map(str, args)], capture_output=True, text=True, timeout=60)


def test_tracepoints_the_kernel_lacks_are_named(tcplab):
    """A kernel without the tracepoints (or without BTF, which tp_btf reads them from): each
    command names the tracepoint it needs in one line, exits 1, and attaches nothing."""
    lab, _ = tcplab
    for args, tp in ((["tcp", "retrans", "--duration", 1], "tcp_retransmit_skb"),
                     (["-j", "tcp", "rtt", "--duration", 1], "tcp_probe"),
                     (["tcp", "connlat", "--duration", 1], "inet_sock_set_state"),
                     (["tcp", "life", "--duration", 1], "inet_sock_set_state"),
                     (["-n", lab.a, "attach", "va", "--xdp", "none", "--probes", "tcp"],
                      "tcp_retransmit_skb")):
        r = without_btf(*args)
        assert r.returncode == 1, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert f"need tracepoint {tp}, which this kernel's BTF (/sys/kernel/btf/vmlinux) " \
               "does not have" in r.stderr, r.stderr
    from lab import pktlens_json
    assert [a for a in pktlens_json("list", ns=lab.a)["attachments"] if a["this_netns"]] == []


def test_an_all_digit_namespace_name_before_the_pid():
    """--netns 1234 is the namespace named 1234 in /run/netns when there is one, else the
    namespace of PID 1234: what -n takes (--netns had tried the PID first: the test process's
    own namespace, not the one named after it)."""
    name = str(os.getpid())
    sh("ip", "netns", "add", name)
    try:
        sh("ip", "-n", name, "link", "set", "lo", "up")
        tr = Tracer("connlat", "--netns", name)
        code = ("import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1); "
                "c = socket.create_connection(s.getsockname()); c.close()")
        sh("ip", "netns", "exec", name, PYTHON, "-c", code)
        events, _ = tr.stop()
        ino = os.stat(netns_path(name)).st_ino
        assert events and all(e["netns"] == ino for e in events), (ino, events)
        r = subprocess.run([PKTLENS, "-n", name, "-j", "list"], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
    finally:
        sh("ip", "netns", "del", name, check=False)
    # no namespace of that name: the process's
    r = subprocess.run([PKTLENS, "tcp", "connlat", "--netns", name, "--duration", "1"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr


def test_bad_input():
    for args, msg in ((["tcp", "retrans", "--netns", "/nonexistent"], "--netns '/nonexistent'"),
                      (["tcp", "life", "--netns", "no-such-ns"], "--netns 'no-such-ns'"),
                      (["tcp", "rtt", "--netns", ".."], "--netns '..'"),
                      (["tcp", "rtt", "--by", "lport"], "--by 'lport'"),
                      (["tcp", "connlat", "--min-ms", "x"], "--min-ms 'x'"),
                      (["tcp", "retrans", "--duration", "0"], "--duration '0'"),
                      # a second --netns silently replaced the first (and traced on)
                      (["tcp", "rtt", "--netns", "/proc/self/ns/net", "--netns=/proc/self/ns/net",
                        "--duration", "1"], "--netns given twice"),
                      (["tcp", "latency"], "what is 'latency'")):
        r = subprocess.run([PKTLENS, *args], capture_output=True, text=True)
        assert r.returncode == 2 and msg in r.stderr and len(r.stderr.splitlines()) == 1, r


@pytest.mark.variant
def test_duration_traces_the_whole_seconds():
    """--duration 1 traces for a whole second from the moment the probes are attached. It
    counted wall-clock seconds (time()), so it stopped at the next whole second: 0.01 to 0.99 s
    of tracing, and a retransmit or connection later in the asked second was never seen."""
    elapsed = seconds_running(["tcp", "retrans", "--duration=1"], "tracing")
    assert 0.97 <= elapsed < 5, elapsed


def test_options_of_another_command_are_refused():
    """--hist draws rtt's and connlat's histograms and --min-ms filters connlat: given to a
    command that has none, they are refused as --by is (exit 2, one line saying which command
    takes them), not ignored while the command traces on (retrans --hist, life --hist), and
    not refused as a bad value (rtt --min-ms 5 said 'connlat takes 0..3600000')."""
    for args, msg in ((["retrans", "--hist"], "--hist: only tcp rtt and tcp connlat"),
                      (["life", "--hist"], "--hist: only tcp rtt and tcp connlat"),
                      (["rtt", "--min-ms", "5"], "--min-ms: only tcp connlat"),
                      (["life", "--min-ms", "5"], "--min-ms: only tcp connlat"),
                      (["retrans", "--min-ms", "0"], "--min-ms: only tcp connlat")):
        r = subprocess.run([PKTLENS, "tcp", *args, "--duration", "1"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 2 and msg in r.stderr and len(r.stderr.splitlines()) == 1, r
        assert r.stdout == "", r


def probe_progs():
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True).stdout
    return [p for p in json.loads(out) if p.get("name", "").startswith("pl_tcp_retransmit")]


def test_attach_probes_join_retransmits_to_flows(tcplab):
    """attach --probes tcp: flows of the host's own connection show its retransmits."""
    from lab import pktlens, pktlens_json
    lab, procs = tcplab
    r = pktlens("attach", "va", "--probes", "udp", ns=lab.a, check=False)
    assert r.returncode == 2 and "--probes 'udp'" in r.stderr
    before_progs = len(probe_progs())
    pktlens("attach", "va", "--xdp", "none", "--tc", "in,out", "--probes", "tcp", ns=lab.a)
    mine = [a for a in pktlens_json("list", ns=lab.a)["attachments"] if a["this_netns"]]
    assert [a["probes"] for a in mine] == [["tcp"]]
    procs.append(start_server(lab, 5005))
    nft(lab.b, "loss", "tcp dport 5005 numgen random mod 10 == 0 drop", hook="input")
    mss_segments(lab.a, "va")
    before = retrans_segs(lab.a)
    c = client(lab, 5005, "bulk", 8 << 20)
    port = int(c.stdout.readline())
    assert c.wait(timeout=60) == 0
    time.sleep(0.5)
    delta = retrans_segs(lab.a) - before
    assert delta > 0
    flows = pktlens_json("flows", "va", "--sort", "retrans", ns=lab.a)["flows"]
    out = [f for f in flows if f.get("sport") == port and f["dir"] == "out"]
    back = [f for f in flows if f.get("dport") == port and f["dir"] == "in"]
    assert out[0]["retrans_segs"] == delta and back[0]["retrans_segs"] == delta
    assert flows[0]["retrans_segs"] == delta          # sorted by retransmits
    assert all(f["retrans_segs"] is None for f in flows if f.get("proto") != "tcp")
    # detach takes the probes with it
    pktlens("detach", "va", ns=lab.a)
    deadline = time.time() + 5
    while len(probe_progs()) > before_progs and time.time() < deadline:
        time.sleep(0.1)
    assert len(probe_progs()) == before_progs


def test_life_reports_lifetime_and_bytes(tcplab):
    lab, procs = tcplab
    procs.append(start_server(lab, 5006))
    tr = Tracer("life", "--netns", netns_path(lab.a))
    c = client(lab, 5006, "bulk", 100000)
    port = int(c.stdout.readline())
    assert c.wait(timeout=20) == 0
    time.sleep(0.5)
    events, summary = tr.stop()
    mine = [e for e in events if e["lport"] == port]
    assert len(mine) == 1 and mine[0]["event"] == "close", events
    assert mine[0]["raddr"] == "198.18.0.2" and mine[0]["rport"] == 5006
    # bytes_acked counts acknowledged sequence space: the SYN and the FIN take one each
    assert 100000 <= mine[0]["tx_bytes"] <= 100002 and mine[0]["rx_bytes"] <= 2, mine
    assert 0 < mine[0]["lifetime_ms"] < 20000 and summary["connections"] == len(events)


@pytest.mark.parametrize("verb", ["connlat", pytest.param("life", marks=pytest.mark.variant),
                                  pytest.param("retrans", marks=pytest.mark.variant)])
def test_pretty_summary_after_event_lines(tcplab, verb):
    """-p pretty-prints the summary at the end, as it does rtt's (and drops' and sample's);
    the events before it stay one JSON object per line. connlat, life and retrans printed
    their summary on one line whatever -p said."""
    lab, procs = tcplab
    procs.append(start_server(lab, 5010))
    p = start_probes([PKTLENS, "-p", "tcp", verb, "--netns", lab.a], "pl_tcp_")
    plain = Tracer(verb, "--netns", lab.a)
    if verb == "retrans":     # one SYN retransmit: the first SYN is dropped
        nft(lab.a, "syn", "tcp dport 5010 tcp flags syn numgen inc mod 2 == 0 drop")
    assert client(lab, 5010, "bulk", 10).wait(timeout=20) == 0
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    events, summary = plain.stop()
    assert events, "no events to print before the summary"
    lines = out.splitlines()
    got = [json.loads(line) for line in lines[:len(events)]]
    assert [sorted(e) for e in got] == [sorted(e) for e in events]
    pretty = "\n".join(lines[len(events):])
    assert json.loads(pretty).keys() == summary.keys() and "\n    \"lost\": 0" in pretty, out


def test_percentiles_fall_in_the_bucket_of_their_sample(tcplab):
    """p50/p90/p99 are interpolated within the log2 bucket that holds the sample of that rank,
    [2^k, 2^(k+1) - 1] us as the buckets are labelled: one fast connect and one slow one (its
    first SYN dropped) have their p50 in the fast one's bucket. Interpolating up to 2^(k+1)
    put it at the next bucket's first value, a bucket without a sample (64 -> 127 holding
    the fast connect: p50 128 us)."""
    lab, procs = tcplab
    procs.append(start_server(lab, 5011))
    tr = Tracer("connlat", "--netns", lab.a)
    assert client(lab, 5011, "bulk", 10).wait(timeout=20) == 0
    nft(lab.a, "syn", "tcp dport 5011 tcp flags syn numgen inc mod 2 == 0 drop")
    assert client(lab, 5011, "bulk", 10).wait(timeout=20) == 0
    events, summary = tr.stop()
    lat = sorted(int(round(e["latency_ms"] * 1000)) for e in events)
    assert len(lat) == 2 and lat[1] >= 1000000, lat
    h = summary["connlat"]
    for pct in (50, 90, 99):
        rank = -(-pct * len(lat) // 100)            # nearest rank, 1-based
        k = max(lat[rank - 1].bit_length() - 1, 0)  # its log2 bucket
        lo, hi = (1 << k if k else 0), (2 << k) - 1
        assert lo <= h[f"p{pct}_us"] <= hi, (pct, lat, h)


SYN_FLOOD = r"""
import resource, socket, sys, time
n = int(sys.argv[2])
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if soft < n + 100:     # the soft limit up to what is needed, as far as the hard one allows
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(n + 100, hard), hard))
socks = []
for _ in range(n):
    c = socket.socket()
    c.setblocking(False)
    try:
        c.connect(("198.18.0.2", int(sys.argv[1])))
    except BlockingIOError:
        pass
    socks.append(c)
time.sleep(float(sys.argv[3]))
for c in socks:
    c.close()
"""


def test_summary_counts_the_retransmits_whose_lines_were_lost(tcplab):
    """A reader that falls behind loses retransmit lines (the ring is full: "lost"), not
    their counts: the per-connection summary at the end is the probe's own count of every
    retransmit, equal to the namespace's RetransSegs. 5,000 connects whose SYNs get no
    answer retransmit 10,000+ SYNs while the tracer is stopped; the summary had held only
    the ~9,400 the ring kept."""
    lab, _ = tcplab
    nft(lab.b, "syn", "tcp dport 5012 drop", hook="input")
    tr = Tracer("retrans", "--netns", lab.a)
    tr.p.send_signal(signal.SIGSTOP)
    try:
        before = retrans_segs(lab.a)
        sh("ip", "netns", "exec", lab.a, PYTHON, "-c", SYN_FLOOD, "5012", "5000", "3.5",
           timeout=60)
        after = retrans_segs(lab.a)
    finally:
        tr.p.send_signal(signal.SIGCONT)
    events, summary = tr.stop()
    conns = summary["connections"]
    assert summary["lost"] > 0 and len(conns) == 5000 and all(c["rport"] == 5012 for c in conns)
    # every retransmit line, printed or lost, and every segment the kernel counted
    assert sum(c["retransmits"] for c in conns) == len(events) + summary["lost"]
    assert sum(c["segs"] for c in conns) == after - before, \
        (after - before, len(events), summary["lost"])


CONNECT_FAILS = r"""
import socket, sys
c = socket.socket(socket.AF_INET6 if ":" in sys.argv[1] else socket.AF_INET)
c.settimeout(2.5)
try:
    c.connect((sys.argv[1], int(sys.argv[2])))
except OSError:
    pass
print(c.getsockname()[1])
"""


@pytest.mark.parametrize("dst", ["198.18.0.2", pytest.param("2001:db8:77::2",
                                                            marks=pytest.mark.variant)])
def test_retransmit_dropped_by_the_device_queue_names_its_error(tcplab, dst):
    """A retransmit a qdisc drops (here a pfifo of no room on the sender's interface) is
    counted by the kernel and fails with the queue's NET_XMIT_DROP, which TCP passes up as
    a positive number: it is shown as ENOBUFS ("No buffer space available"), as the kernel's
    net_xmit_errno() names it, where -j said "?" and the line "Unknown error -1"."""
    lab, _ = tcplab
    if ":" in dst:
        for ns, dev, a in ((lab.a, "va", "2001:db8:77::1"), (lab.b, "vb", dst)):
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=0")
            sh("ip", "-n", ns, "addr", "add", a + "/64", "dev", dev, "nodad")
    mac = json.loads(sh("ip", "-j", "-n", lab.b, "link", "show", "vb").stdout)[0]["address"]
    # no neighbour discovery (the queue drops it too): the SYNs reach the queue and no further
    sh("ip", "-n", lab.a, "neigh", "replace", dst, "lladdr", mac, "dev", "va", "nud", "permanent")
    sh("tc", "-n", lab.a, "qdisc", "replace", "dev", "va", "root", "pfifo", "limit", "0")
    tr = Tracer("retrans", "--netns", lab.a)
    text = start_probes([PKTLENS, "tcp", "retrans", "--netns", lab.a], "pl_tcp_")
    before = retrans_segs(lab.a)
    port = int(sh("ip", "netns", "exec", lab.a, PYTHON, "-c", CONNECT_FAILS, dst, "5014").stdout)
    after = retrans_segs(lab.a)
    events, _ = tr.stop()
    text.send_signal(signal.SIGINT)
    out, err = text.communicate(timeout=30)
    assert text.returncode == 0, err
    assert after - before >= 1 and sum(e["segs"] for e in events) == after - before, events
    assert {(e["lport"], e["kind"], e["error"]) for e in events} == {(port, "syn", "ENOBUFS")}
    lines = [line for line in out.splitlines() if f":{port} " in line and " syn " in line]
    assert len(lines) >= len(events) and \
        all(line.endswith("(not sent: No buffer space available)") for line in lines), out
