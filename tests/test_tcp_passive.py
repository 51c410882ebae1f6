# SPDX-License-Identifier: GPL-2.0
"""Passive TCP analysis (attach --tcp-passive, bpf/tcp.h).

Oracles are the endpoints' kernels and what the test itself sent: the
client's TcpRetransSegs (/proc/net/snmp, what nstat reads), its TCP_INFO RTT
(what ss -ti shows), a known delay added by a user-space delay line
(tests/delay_relay.py: this kernel has no netem), and scapy segments whose
retransmissions and reorderings are known by construction.
"""
import json
import os
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from lab import PKTLENS, PYTHON, pktlens, pktlens_json, sh, unique  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
# client, server and delay line on one CPU: their segments then leave in the order they were
# sent (from two CPUs, a process' send and a softirq's on the other CPU may overtake each other
# between veths: reordering on the wire, which the router would count)
ONE_CPU = ["taskset", "-c", "0"]
C4, H4, HS4, S4 = "198.18.1.1", "198.18.1.2", "198.18.2.2", "198.18.2.1"

# the server in namespace s: port 5001 reads to EOF, port 5002 echoes what it reads
SERVER = r"""
import socket, sys, threading
def sink(c):
    while c.recv(262144):
        pass
    c.close()
def echo(c):
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()
def serve(port, fn):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(1024)
    while True:
        c, _ = s.accept()
        threading.Thread(target=fn, args=(c,), daemon=True).start()
threading.Thread(target=serve, args=(5002, echo), daemon=True).start()
print("ready", flush=True)
serve(5001, sink)
"""


class PathLab:
    """client c (va) -- router h (vb | vc, pktlens) -- [delay d (vd | ve)] -- server s (vz).

    198.18.1.0/24 between c and h, 198.18.2.0/24 between h and s; with a delay, namespace d
    relays frames between vd and ve and holds those travelling from s towards h.
    """

    def __init__(self, delay_ms=None, gso=False):
        self.c, self.h, self.s = unique("plc"), unique("plh"), unique("pls")
        self.d = unique("pld") if delay_ms else None
        self.namespaces, self.procs = [], []
        self.tmp = sh("mktemp", "-d", "/tmp/pktlens-tcpp-XXXXXX").stdout.strip()
        try:
            for ns in [self.c, self.h, self.s] + ([self.d] if self.d else []):
                sh("ip", "netns", "add", ns)
                self.namespaces.append(ns)
                sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                   "net.ipv6.conf.default.disable_ipv6=1", "net.ipv4.conf.all.rp_filter=0",
                   "net.ipv4.conf.default.rp_filter=0")
                sh("ip", "-n", ns, "link", "set", "lo", "up")
            sh("ip", "netns", "exec", self.h, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            sh("ip", "-n", self.c, "link", "add", "va", "type", "veth", "peer", "name", "vb",
               "netns", self.h)
            if self.d:
                sh("ip", "-n", self.h, "link", "add", "vc", "type", "veth", "peer", "name", "vd",
                   "netns", self.d)
                sh("ip", "-n", self.d, "link", "add", "ve", "type", "veth", "peer", "name", "vz",
                   "netns", self.s)
                for dev in ("vd", "ve"):
                    sh("ip", "-n", self.d, "link", "set", dev, "up")
            else:
                sh("ip", "-n", self.h, "link", "add", "vc", "type", "veth", "peer", "name", "vz",
                   "netns", self.s)
            for ns, dev, a in ((self.c, "va", C4), (self.h, "vb", H4), (self.h, "vc", HS4),
                               (self.s, "vz", S4)):
                sh("ip", "-n", ns, "addr", "add", a + "/24", "dev", dev)
                sh("ip", "-n", ns, "link", "set", dev, "up")
                # one wire segment per skb (the client's TcpRetransSegs counts segments),
                # checksums complete (the delay line relays frames as they are); with gso the
                # veths' defaults: TSO skbs of many segments each, forwarded whole
                if not gso:
                    sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off",
                       "gro", "off", "tx", "off")
            sh("ip", "-n", self.c, "route", "add", "default", "via", H4)
            sh("ip", "-n", self.s, "route", "add", "default", "via", HS4)
            # static neighbours: no ARP through the delay line
            for ns, dev, ip, peer_ns, peer_dev in ((self.c, "va", H4, self.h, "vb"),
                                                   (self.h, "vb", C4, self.c, "va"),
                                                   (self.h, "vc", S4, self.s, "vz"),
                                                   (self.s, "vz", HS4, self.h, "vc")):
                mac = json.loads(sh("ip", "-n", peer_ns, "-j", "link", "show", peer_dev).stdout)[0]["address"]
                sh("ip", "-n", ns, "neigh", "replace", ip, "lladdr", mac, "dev", dev, "nud", "permanent")
            if self.d:
                ready = os.path.join(self.tmp, "relay")
                # real-time priority: the delay is the relay's wake-up on a loaded host too
                self.procs.append(subprocess.Popen(["ip", "netns", "exec", self.d, *ONE_CPU, "chrt", "-f", "50",
                                                    PYTHON,
                                                    os.path.join(HERE, "delay_relay.py"), "vd", "ve",
                                                    str(delay_ms), ready]))
                self._wait(lambda: os.path.exists(ready), "the delay relay")
            srv = subprocess.Popen(["ip", "netns", "exec", self.s, *ONE_CPU, "chrt", "-f", "50", PYTHON, "-c",
                                    SERVER],
                                   stdout=subprocess.PIPE, text=True)
            self.procs.append(srv)
            assert srv.stdout.readline().strip() == "ready"
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _wait(cond, what, timeout=10.0):
        deadline = time.time() + timeout
        while not cond():
            assert time.time() < deadline, f"{what} did not start"
            time.sleep(0.02)

    def client(self, code):
        """Run Python @code in c; it prints one JSON document."""
        r = subprocess.run(["ip", "netns", "exec", self.c, *ONE_CPU, "chrt", "-f", "50", PYTHON, "-c", code],
                           capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def retrans_segs(self):
        """The client's TcpRetransSegs (what nstat reads from /proc/net/snmp)."""
        lines = [ln.split() for ln in sh("ip", "netns", "exec", self.c, "cat", "/proc/net/snmp").stdout
                 .splitlines() if ln.startswith("Tcp:")]
        return int(lines[1][lines[0].index("RetransSegs")])

    def close(self):
        for p in self.procs:
            p.kill()
            p.wait()
        self.procs = []
        for ns in reversed(self.namespaces):
            subprocess.run(["timeout", "-s", "KILL", "30", PKTLENS, "-n", ns, "detach", "--all"], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces = []
        subprocess.run(["rm", "-rf", self.tmp])


@pytest.fixture
def path():
    labs = []

    def make(delay_ms=None, gso=False):
        labs.append(PathLab(delay_ms, gso))
        return labs[-1]
    try:
        yield make
    finally:
        for lab in labs:
            lab.close()


def tcp_rows(doc, src, sport=None, dport=None):
    """The flows of `flows -j` from @src (and ports) that carry the passive TCP object."""
    return [f for f in doc["flows"] if f.get("proto") == "tcp" and f["src"] == src and f.get("tcp")
            and (sport is None or f["sport"] == sport) and (dport is None or f["dport"] == dport)]


@pytest.mark.parametrize("gso,hooks", [(False, []), (True, []),
                                       pytest.param(True, ["--xdp", "skb", "--tc", "in,out"], marks=pytest.mark.variant)],
                         ids=["segments", "gso", "gso-xdp-skb"])
def test_retrans_vs_client_kernel(path, gso, hooks):
    """A transfer through the router with random loss at the server's input: the
    retransmissions pktlens counts at the router for the client's direction equal the
    client kernel's TcpRetransSegs delta (TLP and spurious retransmissions are segments on
    the wire too, and the loss is behind the router, so it sees every one). Bound: the
    counts agree exactly unless the client retransmitted before its own segment left
    the router... which cannot happen here; we allow a difference of 1 + 2% for a
    retransmission merged by the client (tcp_retrans_try_collapse sends one segment for
    two, and counts one). With gso the client sends TSO skbs, which tc sees whole: each
    counts as the gso_segs wire segments it stands for, as the client's kernel counts them;
    XDP in skb mode sees them linearized, so tc ingress analyses beside it."""
    lab = path(gso=gso)
    for dev in ("vb", "vc"):
        pktlens("attach", dev, "--tcp-passive", *hooks, ns=lab.h)    # veth: tc ingress + egress
    sh("ip", "netns", "exec", lab.s, "nft", "-f", "-", input="""
table inet pltest {
  chain in {
    type filter hook input priority 0;
    tcp dport 5001 numgen random mod 100 < LOSS counter drop
  }
}
""".replace("LOSS", "10" if gso else "4"))    # gso: fewer, bigger skbs
    before = lab.retrans_segs()
    out = lab.client(f"""
import json, socket
c = socket.create_connection(("{S4}", 5001))
c.sendall(b"x" * {6000000 if gso else 1500000})
c.shutdown(socket.SHUT_WR)
c.recv(1)
print(json.dumps({{"sport": c.getsockname()[1]}}))
c.close()
""")
    delta = lab.retrans_segs() - before
    nft = sh("ip", "netns", "exec", lab.s, "nft", "list", "table", "inet", "pltest").stdout
    dropped = int(nft.split("counter packets ")[1].split()[0])
    assert dropped > 0 and delta > 0, (dropped, delta)
    # the client's direction, seen at vb (tc in) and vc (tc out): one connection state
    rows = tcp_rows(pktlens_json("flows", ns=lab.h), C4, sport=out["sport"])
    assert {(r["ifname"], r["dir"]) for r in rows} == {("vb", "in"), ("vc", "out")}
    got = rows[0]["tcp"]["retrans"]
    assert all(r["tcp"] == rows[0]["tcp"] for r in rows)
    assert abs(got - delta) <= 1 + delta // 50, (got, delta, dropped)
    assert rows[0]["tcp"]["reorder"] == 0
    # the server's direction lost nothing before the router: its own half, not the client's
    # (only its FIN again, once for each of the client's ACKs of it that were dropped: the
    # server may still be retransmitting it, so read once two readings a second apart agree)
    def server_half():
        return tcp_rows(pktlens_json("flows", ns=lab.h), S4, dport=out["sport"])

    back, deadline = server_half(), time.time() + 15
    while time.time() < deadline:
        time.sleep(1)
        again = server_half()
        if again == back:
            break
        back = again
    for doc in (pktlens_json("flows", ns=lab.h), pktlens_json("flows", "--sort", "rtt", ns=lab.h)):
        back = tcp_rows(doc, S4, dport=out["sport"])
        assert back and back[0]["tcp"]["reorder"] == 0
        assert back[0]["tcp"]["retrans"] <= 3 < got, (back[0]["tcp"], got)
    # the plain table shows the same halves: RETX is the column after SRTT_MS
    plain = {ln.split()[5].split(":")[0]: int(ln.split()[-4])
             for ln in pktlens("flows", "vb", ns=lab.h).stdout.splitlines() if f":{out['sport']}" in ln}
    assert plain == {C4: got, S4: back[0]["tcp"]["retrans"]}, plain
    st = pktlens_json("stats", "vb", ns=lab.h)["interfaces"][0]["tcp"]
    assert st["retrans"] == got and st["state_lost"] == 0


@pytest.mark.parametrize("where", ["server", pytest.param("client", marks=pytest.mark.variant)])
def test_loss_before_the_analysing_host(path, where):
    """Loss upstream of the analysing hook: the router drops the first transmission of 4% of
    the client's data segments (a set of the sequence numbers it dropped lets each one's
    retransmission through), and pktlens on the server's vz sees the holes and then their
    fills. Each fill comes after the server's SACK reported the hole, so it is the client's
    retransmission, not reordering: the count equals the client kernel's TcpRetransSegs
    delta (bound as test_retrans_vs_client_kernel), and nothing is out of order. With the
    client's own va attached too ("client"), the client's tc egress analyses its segments
    before the loss: every retransmission repeats bytes seen there."""
    lab = path()
    pktlens("attach", "vz", "--tcp-passive", ns=lab.s)
    if where == "client":
        pktlens("attach", "va", "--tcp-passive", ns=lab.c)
    sh("ip", "netns", "exec", lab.h, "nft", "-f", "-", input="""
table inet pltest {
  set dropped { typeof tcp sequence; size 65535; flags dynamic; }
  chain forward {
    type filter hook forward priority 0;
    tcp dport 5001 tcp sequence @dropped accept
    tcp dport 5001 meta length > 200 numgen random mod 100 < 4 add @dropped { tcp sequence } counter drop
  }
}
""")
    before = lab.retrans_segs()
    out = lab.client(f"""
import json, socket
c = socket.create_connection(("{S4}", 5001))
c.sendall(b"x" * 1500000)
c.shutdown(socket.SHUT_WR)
c.recv(1)
print(json.dumps({{"sport": c.getsockname()[1]}}))
c.close()
""")
    delta = lab.retrans_segs() - before
    nft = sh("ip", "netns", "exec", lab.h, "nft", "list", "table", "inet", "pltest").stdout
    dropped = int(nft.split("counter packets ")[1].split()[0])
    assert dropped > 10 and delta >= dropped, (dropped, delta)
    for ns, dev in ((lab.s, "vz"),) + (((lab.c, "va"),) if where == "client" else ()):
        rows = tcp_rows(pktlens_json("flows", dev, ns=ns), C4, sport=out["sport"])
        assert len(rows) == 1, rows
        t = rows[0]["tcp"]
        assert abs(t["retrans"] - delta) <= 1 + delta // 50 and t["reorder"] == 0, (t, delta, dropped)


def test_big_tcp_counts_every_segment(lab):
    """IPv6 BIG TCP (gso_max_size above 64 KiB): the sender's GSO skbs of more than 64 KiB
    have IPv6 payload length 0; analysed at the sender's tc egress, their segments and
    retransmissions still count (the skb's length, gso_segs segments), equal to the sender
    kernel's TcpRetransSegs under random loss at the receiver."""
    for ns, dev, a in ((lab.a, "va", "2001:db8::1"), (lab.b, "vb", "2001:db8::2")):
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0",
           f"net.ipv6.conf.{dev}.disable_ipv6=0")
        sh("ip", "-n", ns, "addr", "add", a + "/64", "dev", dev, "nodad")
        r = sh("ip", "-n", ns, "link", "set", dev, "gso_max_size", "185000", "gro_max_size",
               "185000", check=False)
        if r.returncode:
            pytest.skip(f"no BIG TCP here: {r.stderr}")
    pktlens("attach", "va", "--tcp-passive", ns=lab.a)
    sh("ip", "netns", "exec", lab.b, "nft", "-f", "-", input="""
table inet pltest {
  chain in {
    type filter hook input priority 0;
    tcp dport 5001 numgen random mod 100 < 3 counter drop
  }
}
""")

    def retrans_segs():
        snmp = [ln.split() for ln in sh("ip", "netns", "exec", lab.a, "cat", "/proc/net/snmp")
                .stdout.splitlines() if ln.startswith("Tcp:")]
        return int(snmp[1][snmp[0].index("RetransSegs")])

    srv = subprocess.Popen(["ip", "netns", "exec", lab.b, PYTHON, "-c", """
import socket
s = socket.socket(socket.AF_INET6)
s.bind(("2001:db8::2", 5001))
s.listen()
print("ready", flush=True)
c, _ = s.accept()
while c.recv(262144):
    pass
c.close()
"""], stdout=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline().strip() == "ready"
        before = retrans_segs()
        out = subprocess.run(["ip", "netns", "exec", lab.a, PYTHON, "-c", """
import socket
c = socket.create_connection(("2001:db8::2", 5001))
c.sendall(b"x" * 20000000)
c.shutdown(socket.SHUT_WR)
c.recv(1)
print(c.getsockname()[1])
"""], capture_output=True, text=True, timeout=60, check=True)
        sport = int(out.stdout)
        srv.wait(timeout=30)
    finally:
        srv.kill()
        srv.wait()
    delta = retrans_segs() - before
    assert delta > 0, delta
    doc = pktlens_json("stats", "va", ns=lab.a)["interfaces"][0]
    out_hook = [h for h in doc["hooks"] if h["dir"] == "out"][0]
    assert out_hook["size_log2"][-1] > 0, out_hook["size_log2"]   # skbs above 64 KiB did pass
    rows = [f["tcp"] for f in pktlens_json("flows", "va", ns=lab.a)["flows"]
            if f.get("proto") == "tcp" and f.get("sport") == sport]
    assert len(rows) == 1 and rows[0]["segs"] >= 20000000 // 9500, rows   # the MTU: 9500
    assert abs(rows[0]["retrans"] - delta) <= 1 + delta // 50, (rows[0], delta)


def stack(lab, upper):
    """Put the client's link of @lab on a device stacked on the router's vb (and the client's
    va for a VLAN): the router's address moves to it, the client's neighbour follows."""
    up = {"vlan": "vb.107", "macvlan": "mvb", "bridge": "brb"}[upper]
    sh("ip", "-n", lab.h, "addr", "del", H4 + "/24", "dev", "vb")
    if upper == "vlan":
        r = sh("ip", "-n", lab.c, "link", "add", "link", "va", "name", "va.107", "type", "vlan",
               "id", "107", check=False)
        if r.returncode:
            pytest.skip(f"no VLAN devices on this kernel: {r.stderr.strip()}")
        sh("ip", "-n", lab.c, "addr", "del", C4 + "/24", "dev", "va")
        sh("ip", "-n", lab.h, "link", "add", "link", "vb", "name", up, "type", "vlan", "id", "107")
        cdev = "va.107"
        sh("ip", "-n", lab.c, "addr", "add", C4 + "/24", "dev", cdev)
    elif upper == "macvlan":
        sh("ip", "-n", lab.h, "link", "add", "link", "vb", "name", up, "type", "macvlan",
           "mode", "bridge")
        cdev = "va"
    else:
        sh("ip", "-n", lab.h, "link", "add", up, "type", "bridge")
        sh("ip", "-n", lab.h, "link", "set", "vb", "master", up)
        cdev = "va"
    sh("ip", "-n", lab.h, "addr", "add", H4 + "/24", "dev", up)
    for ns, dev in ((lab.c, cdev), (lab.h, up)):
        sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "netns", "exec", ns, "ethtool", "-K", dev, "tso", "off", "gso", "off", "gro", "off",
           check=False)
    mac = json.loads(sh("ip", "-n", lab.h, "-j", "link", "show", up).stdout)[0]["address"]
    sh("ip", "-n", lab.c, "route", "replace", "default", "via", H4, "dev", cdev)
    sh("ip", "-n", lab.c, "neigh", "replace", H4, "lladdr", mac, "dev", cdev, "nud", "permanent")
    mac = json.loads(sh("ip", "-n", lab.c, "-j", "link", "show", cdev).stdout)[0]["address"]
    sh("ip", "-n", lab.h, "neigh", "replace", C4, "lladdr", mac, "dev", up, "nud", "permanent")
    return up


@pytest.mark.parametrize("upper", ["vlan", "macvlan", "bridge"])
def test_stacked_devices_analyse_each_segment_once(path, upper):
    """pktlens on a router's veth and on a VLAN, macvlan or bridge stacked on it: every segment
    passes both hooks, and each end is analysed once (at the first), so the client's
    retransmissions are its kernel's TcpRetransSegs delta, not every segment again, and the
    server's direction, lossless before the router, shows none either way."""
    lab = path()
    up = stack(lab, upper)
    for dev in ("vb", up, "vc"):
        pktlens("attach", dev, "--tcp-passive", ns=lab.h)
    sh("ip", "netns", "exec", lab.s, "nft", "-f", "-", input="""
table inet pltest {
  chain in {
    type filter hook input priority 0;
    tcp dport 5001 numgen random mod 100 < 3 counter drop
  }
}
""")
    before = lab.retrans_segs()
    out = lab.client("""
import json, socket
c = socket.create_connection(("%s", 5001))
c.sendall(b"x" * 600000)
c.shutdown(socket.SHUT_WR)
c.recv(1)
print(json.dumps({"sport": c.getsockname()[1]}))
c.close()
""" % S4)
    delta = lab.retrans_segs() - before
    doc = pktlens_json("flows", ns=lab.h)
    rows = tcp_rows(doc, C4, sport=out["sport"])
    assert {r["ifname"] for r in rows} >= {"vb", up, "vc"}, rows
    got = rows[0]["tcp"]
    assert all(r["tcp"] == got for r in rows)
    assert delta > 0 and abs(got["retrans"] - delta) <= 1 + delta // 50, (got, delta)
    assert got["reorder"] == 0
    back = tcp_rows(doc, S4, dport=out["sport"])
    assert back and back[0]["tcp"]["retrans"] <= 3 and back[0]["tcp"]["reorder"] == 0
    # one of the two stacked hooks analysed the client's segments: their counts add up to it
    st = {d: pktlens_json("stats", d, ns=lab.h)["interfaces"][0]["tcp"] for d in ("vb", up)}
    assert st["vb"]["retrans"] + st[up]["retrans"] == got["retrans"], st


def echo_rounds(n, pause=0.0):
    """Client code: @n requests of 100 bytes to the server's echo port, each read back whole,
    @pause seconds apart; prints its port and the kernel's RTT (TCP_INFO tcpi_rtt, as ss -ti)."""
    return f"""
import json, socket, struct, time
c = socket.socket()
c.connect(("{S4}", 5002))
for i in range({n}):
    c.sendall(b"q" * 100)
    got = 0
    while got < 100:
        got += len(c.recv(100 - got))
    time.sleep({pause})
info = c.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
rtt_us = struct.unpack("I", info[68:72])[0]     # tcpi_rtt
print(json.dumps({{"sport": c.getsockname()[1], "tcpi_rtt_us": rtt_us}}))
c.close()
"""


def test_rtt_known_delay(path):
    """40 ms held by the delay line between router and server, XDP only on both router
    interfaces (each direction enters on another one): the server side of the handshake
    and the timestamp RTT towards the server are 40 ms plus the base RTT within 10%, the
    client side is the base alone, and the smoothed RTT agrees with the client's own
    (TCP_INFO, as ss -ti) within a factor of 1.5."""
    delay = 40
    lab = path(delay)
    for dev in ("vb", "vc"):
        pktlens("attach", dev, "--xdp", "native", "--tc", "none", "--tcp-passive", ns=lab.h)
    out = lab.client(echo_rounds(12))
    doc = pktlens_json("flows", ns=lab.h)
    up = tcp_rows(doc, C4, sport=out["sport"])
    down = tcp_rows(doc, S4, dport=out["sport"])
    assert [r["ifname"] for r in up] == ["vb"] and [r["ifname"] for r in down] == ["vc"]
    t = up[0]["tcp"]
    assert t["timestamps"] and down[0]["tcp"]["rtt_syn_us"] == t["rtt_syn_us"]
    base = t["rtt_synack_us"]           # router -> client -> router: no delay there
    expect = delay * 1000 + base
    assert base < 0.1 * delay * 1000, t
    assert 0.9 * expect <= t["rtt_syn_us"] <= 1.1 * expect, (t, expect)
    # the whole handshake against the client kernel's RTT
    assert abs(t["rtt_syn_us"] + t["rtt_synack_us"] - out["tcpi_rtt_us"]) <= 0.1 * out["tcpi_rtt_us"], (t, out)
    assert t["rtt_samples"] >= 3, t
    # a sample also holds the server's wake-up to answer (application time on a loaded
    # host): min and smoothed within 10%, the max within half again
    for k in ("rtt_min_us", "rtt_srtt_us"):
        assert 0.9 * expect <= t[k] <= 1.1 * expect, (k, t, expect)
    assert t["rtt_min_us"] <= t["rtt_max_us"] <= 1.5 * expect, t
    assert 1 / 1.5 <= t["rtt_srtt_us"] / out["tcpi_rtt_us"] <= 1.5, (t, out)
    assert t["retrans"] == 0 and t["reorder"] == 0
    # per interface: the server side's samples completed on vc, the client side's on vb
    st = {i["ifname"]: i["tcp"] for i in pktlens_json("stats", ns=lab.h)["interfaces"]}
    slow = (expect * 9 // 10).bit_length() - 1     # log2 slot of 0.9 * expect
    assert sum(st["vc"]["rtt_log2_us"][slow:]) >= 1 + t["rtt_samples"], st["vc"]
    assert sum(st["vb"]["rtt_log2_us"][slow:]) == 0, st["vb"]
    # --sort rtt puts the delayed direction first
    first = pktlens_json("flows", "--sort", "rtt", "--top", "1", ns=lab.h)["flows"][0]
    assert first["src"] == C4 and first["sport"] == out["sport"]


def test_an_end_host_samples_arrivals_only(path):
    """On an end host (the client's va, tc in and out), a segment the host sends completes no
    RTT sample: what it echoes (the server's TSval) or answers arrived here, and the span is
    the host's own delay, 50 ms of the client's think time between requests here. So the
    interface's histogram and the client's flows hold the round trips to the server only:
    every sample far below that think time, the server's half without timestamp samples."""
    lab = path()
    pktlens("attach", "va", "--tcp-passive", ns=lab.c)
    out = lab.client(echo_rounds(15, pause=0.05))
    doc = pktlens_json("flows", "va", ns=lab.c)
    up, down = tcp_rows(doc, C4, sport=out["sport"]), tcp_rows(doc, S4, dport=out["sport"])
    assert len(up) == 1 and len(down) == 1, doc
    assert up[0]["tcp"]["rtt_samples"] >= 10 and up[0]["tcp"]["rtt_max_us"] < 25000, up
    assert down[0]["tcp"]["rtt_samples"] == 0, down
    st = pktlens_json("stats", "va", ns=lab.c)["interfaces"][0]["tcp"]
    # the client's ACK of the SYN-ACK: sent here, so only the SYN -> SYN-ACK half arrived
    assert st["syn_samples"] == 1 and st["ts_samples"] == up[0]["tcp"]["rtt_samples"], st
    assert sum(st["rtt_log2_us"][15:]) == 0, st     # none of 32 ms or more


@pytest.mark.parametrize("where", ["client", pytest.param("router", marks=pytest.mark.variant)])
def test_every_round_of_a_request_response_is_sampled(path, where):
    """Requests answered across the 20 ms delay line, the client thinking 60 ms between
    them: the client ACKs each answer at once, with a newer TSval than its request's, and
    the server never echoes it (it echoes the newest TSval in its window: the next
    request's, RFC 7323). That TSval must not keep the request's from being remembered:
    every round is a sample of the path (at the client's end host, or at the router),
    none of them the client's think time; before, only the first round was."""
    rounds = 10
    lab = path(delay_ms=20)
    if where == "client":
        pktlens("attach", "va", "--tcp-passive", ns=lab.c)
    else:
        for dev in ("vb", "vc"):
            pktlens("attach", dev, "--tcp-passive", ns=lab.h)
    out = lab.client(echo_rounds(rounds, pause=0.06))
    doc = pktlens_json("flows", *(["va"] if where == "client" else ["vb"]),
                       ns=lab.c if where == "client" else lab.h)
    up = tcp_rows(doc, C4, sport=out["sport"])
    assert len(up) == 1, doc
    t = up[0]["tcp"]
    assert t["rtt_samples"] >= rounds - 1, t
    assert 20000 <= t["rtt_min_us"] and t["rtt_max_us"] < 45000, t


def test_half_closed_connection_keeps_sampling(path):
    """A half-close: the client sends its request and its FIN, then the server answers with
    2 MB. The server's TSvals after the client's FIN are still remembered and echoed (its FIN
    ends them): on the server's own vz (its segments leave there, the client's ACKs come in),
    the server's direction has timestamp RTT samples of the 20 ms the delay line holds its
    frames plus the path, where after the first FIN neither direction had any."""
    lab = path(delay_ms=20)
    pktlens("attach", "vz", "--tcp-passive", ns=lab.s)
    srv = subprocess.Popen(["ip", "netns", "exec", lab.s, PYTHON, "-c", """
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 5003))
s.listen(1)
print("ready", flush=True)
c, _ = s.accept()
while c.recv(65536):
    pass
c.sendall(b"y" * 2000000)
c.close()
"""], stdout=subprocess.PIPE, text=True)
    lab.procs.append(srv)
    assert srv.stdout.readline().strip() == "ready"
    out = lab.client(f"""
import json, socket
c = socket.create_connection(("{S4}", 5003))
c.sendall(b"get")
c.shutdown(socket.SHUT_WR)
n = 0
while True:
    d = c.recv(262144)
    if not d:
        break
    n += len(d)
print(json.dumps({{"sport": c.getsockname()[1], "n": n}}))
""")
    assert out["n"] == 2000000
    back = tcp_rows(pktlens_json("flows", "vz", ns=lab.s), S4, dport=out["sport"])
    assert len(back) == 1, back
    t = back[0]["tcp"]
    assert t["rtt_samples"] >= 5, t
    assert 20000 <= t["rtt_min_us"] and t["rtt_srtt_us"] < 40000, t


def test_many_connections(path):
    """300 concurrent short connections through the router (tc hooks): every one gets both
    handshake halves, and the connection table holds each once."""
    n = 300
    lab = path()
    for dev in ("vb", "vc"):
        pktlens("attach", dev, "--tcp-passive", ns=lab.h)
    out = lab.client(f"""
import json, socket
socks = [socket.socket() for _ in range({n})]
for s in socks:
    s.setblocking(False)
    s.connect_ex(("{S4}", 5001))
ports = []
import select
pending = set(socks)
while pending:
    _, w, _ = select.select([], list(pending), [], 10)
    assert w, "connect timed out"
    for s in w:
        assert s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        pending.discard(s)
ports = [s.getsockname()[1] for s in socks]
for s in socks:
    s.close()
print(json.dumps(ports))
""")
    assert len(set(out)) == n
    doc = pktlens_json("flows", ns=lab.h)
    rows = {r["sport"]: r["tcp"] for r in tcp_rows(doc, C4, dport=5001) if r["ifname"] == "vb"}
    assert set(rows) == set(out)
    missing = [p for p in out if rows[p]["rtt_syn_us"] is None or rows[p]["rtt_synack_us"] is None]
    assert not missing, (len(missing), rows[missing[0]])
    st = pktlens_json("stats", ns=lab.h)["interfaces"]
    assert sum(i["tcp"]["syn_samples"] for i in st) == 2 * n
    assert all(i["tcp"]["state_lost"] == 0 for i in st)


def test_ts_max_is_the_namespaces(path):
    """The outstanding-timestamp map is the namespace's, sized by its first analysing attach:
    a later attach's --tcp-ts-max does not resize it, and attach and stats say the size it
    has, not the one asked for; with no other analysing attachment left, attach --force
    asking for what it asked before keeps it (and the connections), another size sizes it
    again."""
    lab = path()
    pktlens("attach", "vb", "--tcp-passive", "--tcp-ts-max", 32, ns=lab.h)
    r = pktlens("attach", "vc", "--tcp-passive", "--tcp-ts-max", 64, ns=lab.h)
    assert "(outstanding timestamps: 32)" in r.stdout, r.stdout
    assert "sized by its first analysing attach: 32, not --tcp-ts-max 64" in r.stdout, r.stdout
    doc = json.loads(pktlens("-j", "attach", "vc", "--force", "--tcp-passive", "--tcp-ts-max", 64,
                             ns=lab.h).stdout)
    assert doc["tcp_ts_max"] == 32, doc
    st = {i["ifname"]: i["tcp"]["ts_max"] for i in pktlens_json("stats", ns=lab.h)["interfaces"]}
    assert st == {"vb": 32, "vc": 32}, st
    out = lab.client(f"""
import json, socket
c = socket.create_connection(("{S4}", 5001))
c.sendall(b"x" * 1000)
print(json.dumps({{"sport": c.getsockname()[1]}}))
c.close()
""")

    def conn():
        return [r["tcp"] for r in tcp_rows(pktlens_json("flows", "vc", ns=lab.h), C4, sport=out["sport"])]

    seen = conn()
    assert len(seen) == 1 and seen[0]["rtt_syn_us"], seen
    # vb, which sized the maps, goes: vc again as it asked before keeps them and its
    # connections (the same command twice never loses what the first collected)...
    pktlens("detach", "vb", ns=lab.h)
    r = pktlens("attach", "vc", "--force", "--tcp-passive", "--tcp-ts-max", 64, ns=lab.h)
    assert "(outstanding timestamps: 32)" in r.stdout, r.stdout
    assert conn() == seen
    assert pktlens_json("stats", "vc", ns=lab.h)["interfaces"][0]["tcp"]["ts_max"] == 32
    # ... another size, with no other analysing attachment left, sizes them again
    r = pktlens("attach", "vc", "--force", "--tcp-passive", "--tcp-ts-max", 128, ns=lab.h)
    assert "(outstanding timestamps: 128)" in r.stdout and "note: the namespace" not in r.stdout, r.stdout
    assert pktlens_json("stats", "vc", ns=lab.h)["interfaces"][0]["tcp"]["ts_max"] == 128
    assert conn() == []


def test_egress_only_says_what_it_analyses(lab):
    """Without an ingress hook only what this host sends is analysed (forwarded segments are
    analysed where they arrive): attach says so, and the segments arriving are not counted."""
    r = pktlens("attach", "vb", "--xdp", "none", "--tc", "out", "--tcp-passive", ns=lab.b)
    assert "note: no ingress hook: --tcp-passive analyses only what this host sends out of vb" \
        in r.stdout, r.stdout
    frames = tcp_frames(lab, 40002, [(1000, 100, "A"), (1000, 100, "A")])
    assert lab.send(frames) == len(frames)
    time.sleep(0.3)
    assert pktlens_json("stats", "vb", ns=lab.b)["interfaces"][0]["tcp"]["segs"] == 0
    for hooks in (["--xdp", "none", "--tc", "in"], ["--xdp", "skb", "--tc", "out"]):
        r = pktlens("attach", "vb", "--force", *hooks, "--tcp-passive", ns=lab.b)
        assert "no ingress hook" not in r.stdout, r.stdout


@pytest.mark.parametrize("hooks", [[], ["--xdp", "skb", "--tc", "in,out"], ["--tc", "in"]],
                         ids=["tc", "xdp-skb", "tc-in"])
def test_loopback_analysed_once(lab, hooks):
    """What lo sends comes in again on lo: each segment is analysed once (at egress where lo
    has that hook), so a local transfer shows the retransmissions the namespace's kernel counts
    (none, unless a loaded host made it send a tail loss probe), not every segment again, with
    both handshake halves and its segments counted once."""
    def retrans_segs():
        snmp = [ln.split() for ln in sh("ip", "netns", "exec", lab.b, "cat", "/proc/net/snmp")
                .stdout.splitlines() if ln.startswith("Tcp:")]
        return int(snmp[1][snmp[0].index("RetransSegs")])

    sh("ip", "-n", lab.b, "link", "set", "lo", "up")
    pktlens("attach", "lo", "--tcp-passive", *hooks, ns=lab.b)
    before = retrans_segs()
    out = subprocess.run(["ip", "netns", "exec", lab.b, PYTHON, "-c", """
import json, socket, threading
srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen()
def sink():
    c, _ = srv.accept()
    while c.recv(65536):
        pass
    c.close()
t = threading.Thread(target=sink)
t.start()
c = socket.create_connection(srv.getsockname())
c.sendall(b"x" * 300000)
sport = c.getsockname()[1]
c.close()
t.join()
print(json.dumps({"sport": sport}))
"""], capture_output=True, text=True, timeout=30, check=True)
    sport = json.loads(out.stdout)["sport"]
    time.sleep(0.3)
    delta = retrans_segs() - before
    halves = {}                 # each direction's half, from every row that shows it
    for f in pktlens_json("flows", ns=lab.b)["flows"]:
        if f.get("proto") == "tcp" and sport in (f["sport"], f["dport"]) and f["tcp"]:
            halves.setdefault(f["sport"], []).append(f["tcp"])
    assert len(halves) == 2, halves
    assert all(t == ts[0] for ts in halves.values() for t in ts), halves
    assert sum(ts[0]["retrans"] for ts in halves.values()) == delta <= 2, (halves, delta)
    assert all(ts[0]["reorder"] == 0 for ts in halves.values()), halves
    assert all(ts[0]["rtt_syn_us"] and ts[0]["rtt_synack_us"] for ts in halves.values()), halves
    st = pktlens_json("stats", "lo", ns=lab.b)["interfaces"][0]["tcp"]
    assert st["retrans"] == delta and st["syn_samples"] == 2, st
    if not hooks:
        # a re-attach that fails once the old hooks are down (native XDP on lo), asking for
        # another timestamp map size: the old one runs again as it was, its connections too
        # (they were in the failed attach's new maps: every flow's "tcp" became null)
        r = pktlens("attach", "lo", "--force", "--tcp-passive", "--tcp-ts-max", 64, "--xdp", "native",
                    ns=lab.b, check=False)
        assert r.returncode == 1 and "runs again as it was" in r.stderr, r.stderr
        again = {}
        for f in pktlens_json("flows", ns=lab.b)["flows"]:
            if f.get("proto") == "tcp" and sport in (f["sport"], f["dport"]):
                again.setdefault(f["sport"], []).append(f["tcp"])
        assert again == halves, again
        assert pktlens_json("stats", "lo", ns=lab.b)["interfaces"][0]["tcp"]["ts_max"] == 16384
        pins = f"/sys/fs/bpf/pktlens/{os.stat(f'/run/netns/{lab.b}').st_ino}"
        ids = [json.loads(sh("bpftool", "-j", "map", "show", "pinned", f"{pins}/{p}").stdout)["id"]
               for p in ("tcp:ts", "lo/tcp_ts")]
        assert ids[0] == ids[1], ids    # the namespace's pin is the restored one's map


def tcp_frames(lab, sport, segs, ts=None):
    """Scapy frames a -> b: segments (seq, payload length, flags[, window]) of one connection."""
    from scapy.all import IP, TCP, Ether, Raw

    src, dst = lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")
    out = []
    for i, s in enumerate(segs):
        seq, ln, fl = s[:3]
        win = s[3] if len(s) > 3 else 5000
        opts = [("NOP", None), ("NOP", None), ("Timestamp", (ts + i, 0))] if ts else []
        p = Ether(src=src, dst=dst) / IP(src="198.18.0.1", dst="198.18.0.2") / \
            TCP(sport=sport, dport=80, seq=seq, ack=1, flags=fl, window=win, options=opts)
        if ln:
            p = p / Raw(b"z" * ln)
        out.append(p)
    return out


@pytest.mark.parametrize("hook", ["xdp", "tc"])
def test_reorder_and_duplicates(lab, hook):
    """Segments out of order and repeated, built by scapy: a segment below the highest end
    that fills the gap seen is out of order, one that repeats bytes already seen is a
    retransmission; exact counts, on XDP and on tc. Then the outstanding-timestamp map's
    full case: 40 SYNs with timestamps into a map of 16."""
    hooks = ["--xdp", "native", "--tc", "none"] if hook == "xdp" else ["--xdp", "none", "--tc", "in"]
    pktlens("attach", "vb", "--tcp-passive", "--tcp-ts-max", 16, *hooks, ns=lab.b)
    if hook == "tc":    # a rule set judges ingress: its programs (loader/ruleset.c) analyse TCP too
        pktlens("policy", "add", "vb", "--in", "--proto", "udp", "--drop", ns=lab.b)
    segs = [
        (1000, 100, "A"),            # hi 1100
        (1200, 100, "A"),            # gap [1100, 1200)
        (1100, 100, "A"),            # fills it: reorder 1
        (1100, 100, "A"),            # again: retrans 1
        (1000, 100, "A"),            # retrans 2
        (1300, 100, "PA"),           # new
        (1500, 100, "A"),            # gap [1400, 1500)
        (1400, 100, "A"),            # reorder 2
        (1400, 100, "A"),            # retrans 3
        (1000, 0, "A"),              # a pure ACK takes no sequence space: nothing
        (1900, 100, "A"),            # gap [1600, 1900)
        (1700, 100, "A"),            # inside it: reorder 3, the gap is now [1600, 1700)
        (1600, 100, "A"),            # reorder 4
        (2000, 0, "A", 0),           # zero window
        (2000, 0, "R"),              # RST
    ]
    frames = tcp_frames(lab, 40000, segs)
    # the timestamp map: 40 connections' SYNs, each TSval remembered until its echo
    from scapy.all import IP, TCP, Ether
    src, dst = lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")
    for i in range(40):
        frames.append(Ether(src=src, dst=dst) / IP(src="198.18.0.1", dst="198.18.0.2") /
                      TCP(sport=41000 + i, dport=80, seq=7, flags="S",
                          options=[("MSS", 1460), ("Timestamp", (100 + i, 0))]))
    assert lab.send(frames) == len(frames)
    doc = lab.wait_packets(len(frames))
    t = [f["tcp"] for f in pktlens_json("flows", ns=lab.b)["flows"] if f.get("sport") == 40000]
    assert len(t) == 1, t
    t = t[0]
    assert (t["retrans"], t["reorder"], t["zero_win"], t["rst"]) == (3, 4, 1, 1), t
    assert t["segs"] == 12 and not t["timestamps"] and t["rtt_srtt_us"] is None
    st = doc["interfaces"][0]["tcp"]
    assert (st["segs"], st["retrans"], st["reorder"]) == (len(frames), 3, 4), st
    assert st["ts_max"] == 16 and st["ts_full"] == 40 - 16, st
    # the last detach takes the namespace's shared maps and its pin directory with it
    pins = f"/sys/fs/bpf/pktlens/{os.stat(f'/run/netns/{lab.b}').st_ino}"
    assert sorted(os.listdir(pins)) == ["tcp:state", "tcp:ts", "vb"]
    pktlens("detach", "vb", ns=lab.b)
    assert not os.path.exists(pins)
    # so does a re-attach without --tcp-passive over the last one with it
    pktlens("attach", "vb", "--tcp-passive", ns=lab.b)
    assert sorted(os.listdir(pins)) == ["tcp:state", "tcp:ts", "vb"]
    pktlens("attach", "vb", "--force", ns=lab.b)
    assert sorted(os.listdir(pins)) == ["vb"]


@pytest.mark.parametrize("hook", ["xdp", pytest.param("tc", marks=pytest.mark.variant)])
def test_several_gaps_and_reported_holes(lab, hook):
    """Several holes at once, by scapy: each fill of any of them is out of order, where only
    the newest gap was kept (the fills of older ones counted as retransmissions); a fill in
    the middle of a gap leaves both parts; a fill after the receiver reported the hole (an
    ACK at its start with a SACK block, or a duplicate ACK) is the sender's retransmission."""
    from scapy.all import IP, TCP, Ether, Raw

    hooks = ["--xdp", "native", "--tc", "none"] if hook == "xdp" else ["--xdp", "none", "--tc", "in"]
    pktlens("attach", "vb", "--tcp-passive", *hooks, ns=lab.b)
    cases = {   # sport: (segments (end, seq, ack, payload, flags[, SACK block]), (retrans, reorder))
        # four holes open, filled oldest last; then their fills again
        52001: ([("c", 1000, 1, 100, "A"), ("c", 1200, 1, 100, "A"), ("c", 1400, 1, 100, "A"),
                 ("c", 1600, 1, 100, "A"), ("c", 1800, 1, 100, "A"), ("c", 1700, 1, 100, "A"),
                 ("c", 1500, 1, 100, "A"), ("c", 1300, 1, 100, "A"), ("c", 1100, 1, 100, "A"),
                 ("c", 1100, 1, 100, "A"), ("c", 1500, 1, 100, "A")], (2, 4)),
        # a hole of three segments filled in the middle, then below and above
        52002: ([("c", 1000, 1, 100, "A"), ("c", 1400, 1, 100, "A"), ("c", 1200, 1, 100, "A"),
                 ("c", 1100, 1, 100, "A"), ("c", 1300, 1, 100, "A")], (0, 3)),
        # the receiver's SACK reports the hole: its fill is a retransmission; a later hole
        # that the receiver has not reported yet is out of order
        52003: ([("c", 1000, 1, 100, "A"), ("c", 1200, 1, 100, "A"),
                 ("s", 1, 1100, 0, "A", (1200, 1300)), ("c", 1100, 1, 100, "A"),
                 ("c", 1400, 1, 100, "A"), ("c", 1300, 1, 100, "A")], (1, 1)),
        # no SACK: the duplicate ACK reports it
        52004: ([("c", 1000, 1, 100, "A"), ("s", 1, 1100, 0, "A"), ("c", 1200, 1, 100, "A"),
                 ("s", 1, 1100, 0, "A"), ("c", 1100, 1, 100, "A")], (1, 0)),
    }
    src, dst = lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")
    frames = []
    for sport, (segs, _) in cases.items():
        for end, seq, ack, ln, fl, *sack in segs:
            a, b, sp, dp = ("198.18.0.1", "198.18.0.2", sport, 80) if end == "c" else \
                ("198.18.0.2", "198.18.0.1", 80, sport)
            opts = [("NOP", None), ("NOP", None), ("SAck", sack[0])] if sack else []
            p = Ether(src=src, dst=dst) / IP(src=a, dst=b) / TCP(sport=sp, dport=dp, seq=seq, ack=ack,
                                                                 flags=fl, window=5000, options=opts)
            frames.append(p / Raw(b"z" * ln) if ln else p)
    assert lab.send(frames) == len(frames)
    lab.wait_packets(len(frames))
    got = {f["sport"]: (f["tcp"]["retrans"], f["tcp"]["reorder"])
           for f in pktlens_json("flows", ns=lab.b)["flows"] if f.get("sport") in cases and f["tcp"]}
    assert got == {sport: want for sport, (_, want) in cases.items()}, got


@pytest.mark.parametrize("hook", ["xdp", "tc"])
def test_sequence_wrap_and_port_reuse(lab, hook):
    """Sequence numbers across 2^32 compare in sequence space; a 4-tuple used again by a
    new connection (a SYN with another ISN, whether or not the old one's FIN or RST passed
    here) starts its sequence space afresh, while a SYN sent again (the same ISN) is a
    retransmission."""
    hooks = ["--xdp", "native", "--tc", "none"] if hook == "xdp" else ["--xdp", "none", "--tc", "in"]
    pktlens("attach", "vb", "--tcp-passive", *hooks, ns=lab.b)
    w = 0xFFFFFF00
    cases = {   # sport: (segments, (retrans, reorder))
        # in order across the wrap, a gap across it, its fill, the fill again
        50001: ([(w, 100, "A"), (w + 100, 200, "A"), ((w + 500) % 2**32, 100, "A"),
                 ((w + 300) % 2**32, 200, "A"), ((w + 300) % 2**32, 200, "A")], (1, 1)),
        # the old connection ends unseen; the new one's ISN is below the old data
        50002: ([(100000, 0, "S"), (100001, 1000, "A"), (101001, 1000, "A"),
                 (5000, 0, "S"), (5001, 1000, "A"), (6001, 1000, "A")], (0, 0)),
        # ... or above it
        50003: ([(5000, 0, "S"), (5001, 1000, "A"),
                 (900000, 0, "S"), (900001, 1000, "A"), (900001, 1000, "A")], (1, 0)),
        # the old one's FIN passed
        50004: ([(100000, 0, "S"), (100001, 1000, "A"), (101001, 0, "FA"),
                 (5000, 0, "S"), (5001, 1000, "A")], (0, 0)),
        # the SYN twice more, the FIN once more
        50005: ([(7, 0, "S"), (7, 0, "S"), (7, 0, "S"), (8, 100, "A"), (108, 0, "FA"),
                 (108, 0, "FA")], (3, 0)),
    }
    frames = [f for sport, (segs, _) in cases.items() for f in tcp_frames(lab, sport, segs)]
    assert lab.send(frames) == len(frames)
    lab.wait_packets(len(frames))
    def counts():
        return {f["sport"]: (f["tcp"]["retrans"], f["tcp"]["reorder"]) if f["tcp"] else None
                for f in pktlens_json("flows", ns=lab.b)["flows"] if f.get("sport") in cases}
    got = counts()
    assert got == {sport: want for sport, (_, want) in cases.items()}, got
    # attach --force over the namespace's only analysing attachment keeps its connections and
    # their counts (it made the shared maps afresh: every flow's "tcp" became null)
    pktlens("attach", "vb", "--force", "--tcp-passive", *hooks, ns=lab.b)
    assert counts() == got


def both_ends(lab, sport, segs):
    """Scapy frames of one connection 198.18.0.1:sport <-> 198.18.0.2:80, both ends' segments
    sent into vb (the hook sees both directions arrive): (end 'c' or 's', seq, ack, payload
    length, flags[, TSval, TSecr])."""
    from scapy.all import IP, TCP, Ether, Raw

    src, dst = lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")
    out = []
    for end, seq, ack, ln, fl, *ts in segs:
        a, b, sp, dp = ("198.18.0.1", "198.18.0.2", sport, 80) if end == "c" else \
            ("198.18.0.2", "198.18.0.1", 80, sport)
        opts = [("NOP", None), ("NOP", None), ("Timestamp", tuple(ts))] if ts else []
        p = Ether(src=src, dst=dst) / IP(src=a, dst=b) / TCP(sport=sp, dport=dp, seq=seq, ack=ack,
                                                             flags=fl, window=5000, options=opts)
        out.append(p / Raw(b"z" * ln) if ln else p)
    return out


@pytest.mark.parametrize("hook", ["xdp", "tc"])
def test_reused_tuples_repeated_syns_and_old_tsvals(lab, hook):
    """Both ends' segments by scapy: a 4-tuple whose old connection only the server's data
    showed (a download seen mid-stream) starts afresh at the new SYN, so the new connection's
    server data is new, not retransmitted; the same SYN again after the RST that refused it
    (or after a FIN) is a retransmission; and a TSval older than one seen is not remembered
    again, so its echo gives no second sample."""
    hooks = ["--xdp", "native", "--tc", "none"] if hook == "xdp" else ["--xdp", "none", "--tc", "in"]
    pktlens("attach", "vb", "--tcp-passive", *hooks, ns=lab.b)
    old = [x for i in range(3) for x in (("s", 1000000 + 100 * i, 77, 100, "A"),
                                         ("c", 77, 1000100 + 100 * i, 0, "A"))]
    new = [("c", 5000, 0, 0, "S"), ("s", 500000, 5001, 0, "SA"), ("c", 5001, 500001, 0, "A")]
    new += [x for i in range(5) for x in (("s", 500001 + 100 * i, 5001, 100, "A"),
                                          ("c", 5001, 500101 + 100 * i, 0, "A"))]
    cases = {   # sport: (segments, {end: (retrans, reorder, rtt samples)})
        51001: (old + new, {"c": (0, 0, 0), "s": (0, 0, 0)}),
        # refused twice, its RST never reached the client: its SYN twice more
        51002: ([("c", 7, 0, 0, "S"), ("s", 0, 8, 0, "RA"), ("c", 7, 0, 0, "S"),
                 ("s", 0, 8, 0, "RA"), ("c", 7, 0, 0, "S")], {"c": (2, 0, 0)}),
        # the same SYN after the connection's FINs
        51003: ([("c", 7, 0, 0, "S"), ("s", 90, 8, 0, "SA"), ("c", 8, 91, 100, "A"),
                 ("c", 108, 91, 0, "FA"), ("s", 91, 109, 0, "FA"), ("c", 7, 0, 0, "S")],
                {"c": (1, 0, 0)}),
        # TSvals 100 and 200 echoed, then 100 again (a retransmission) and its echo
        51004: ([("c", 1000, 1, 100, "A", 100, 0), ("s", 1, 1100, 0, "A", 5000, 100),
                 ("c", 1100, 1, 100, "A", 200, 5000), ("s", 1, 1200, 0, "A", 5001, 200),
                 ("c", 1000, 1, 100, "A", 100, 5001), ("s", 1, 1200, 0, "A", 5002, 100)],
                {"c": (1, 0, 2)}),
    }
    frames = [f for sport, (segs, _) in cases.items() for f in both_ends(lab, sport, segs)]
    assert lab.send(frames) == len(frames)
    lab.wait_packets(len(frames))
    got = {}
    for f in pktlens_json("flows", ns=lab.b)["flows"]:
        for sport, (_, want) in cases.items():
            end = "c" if f.get("sport") == sport else "s" if f.get("dport") == sport else None
            if end in want and f["tcp"]:
                t = f["tcp"]
                got.setdefault(sport, {})[end] = (t["retrans"], t["reorder"], t["rtt_samples"])
    assert got == {sport: want for sport, (_, want) in cases.items()}, got


def test_synack_sent_again(lab):
    """The client's SYN-ACK lost beyond this host: the server sends it again after its 1 s
    timeout, and once more as its answer to the client's SYN sent again, close behind. The
    client's ACK answers the first of those two (here 100 ms before the second, which passes
    just before the ACK): the client side's handshake RTT is measured from it, where it was
    measured from the last SYN-ACK (microseconds); a later SYN-ACK again and its ACK leave
    the sample as it was. The SYN and the SYN-ACKs sent again are retransmissions."""
    from scapy.all import raw

    pktlens("attach", "vb", "--tcp-passive", "--xdp", "none", "--tc", "in", ns=lab.b)
    syn, sa = ("c", 7, 0, 0, "S"), ("s", 90, 8, 0, "SA")
    # (seconds to wait before it, segment)
    plan = [(0, syn), (0, sa), (0.7, sa), (0.1, syn), (0, sa), (0, ("c", 8, 91, 0, "A")),
            (0.05, sa), (0, ("c", 8, 91, 0, "A"))]
    frames = both_ends(lab, 53001, [seg for _, seg in plan])
    sender = os.path.join(lab.tmp, "paced.json")
    with open(sender, "w") as f:
        json.dump([[wait, raw(fr).hex()] for (wait, _), fr in zip(plan, frames)], f)
    sh("ip", "netns", "exec", lab.a, PYTHON, "-c", f"""
import json, socket, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("va", 0))
for wait, fr in json.load(open({sender!r})):
    time.sleep(wait)
    s.send(bytes.fromhex(fr))
""")
    lab.wait_packets(len(frames))
    rows = {f["sport"]: f["tcp"] for f in pktlens_json("flows", ns=lab.b)["flows"]
            if 53001 in (f.get("sport"), f.get("dport")) and f["tcp"]}
    assert 90000 <= rows[53001]["rtt_synack_us"] < 600000, rows
    assert (rows[53001]["retrans"], rows[80]["retrans"]) == (1, 3), rows


def ipfix_records(data_msgs):
    """Decode IPFIX messages (RFC 7011): [(template id, {(pen, ie): value})], by the templates
    they carry; values as unsigned numbers, addresses as bytes."""
    import struct
    templates, out = {}, []
    for msg in data_msgs:
        assert struct.unpack("!H", msg[:2])[0] == 10
        off = 16
        while off + 4 <= len(msg):
            sid, slen = struct.unpack("!HH", msg[off:off + 4])
            body, off = msg[off + 4:off + slen], off + slen
            if sid == 2:
                p = 0
                while p + 4 <= len(body):
                    tid, n = struct.unpack("!HH", body[p:p + 4])
                    p += 4
                    fields = []
                    for _ in range(n):
                        ie, ln = struct.unpack("!HH", body[p:p + 4])
                        p += 4
                        pen = 0
                        if ie & 0x8000:
                            pen = struct.unpack("!I", body[p:p + 4])[0]
                            p += 4
                        fields.append((pen, ie & 0x7fff, ln))
                    templates[tid] = fields
            elif sid in templates:
                fields = templates[sid]
                size = sum(f[2] for f in fields)
                for p in range(0, len(body) - size + 1, size):
                    rec, q = {}, p
                    for pen, ie, ln in fields:
                        raw = body[q:q + ln]
                        rec[(pen, ie)] = int.from_bytes(raw, "big") if ln <= 8 else raw
                        q += ln
                    out.append((sid, rec))
    return out


def test_export_ipfix_and_prometheus(lab):
    """The scapy connection of test_reorder_and_duplicates through the exporters: IPFIX's
    TCP template carries tcpRstTotalCount (IANA 220) and the enterprise counters (PEN
    32473), Prometheus the interface's counters and RTT histogram."""
    import socket

    from lab import Exporter
    pktlens("attach", "vb", "--tcp-passive", "--xdp", "none", "--tc", "in", ns=lab.b)
    segs = [(1000, 100, "A"), (1200, 100, "A"), (1100, 100, "A"), (1100, 100, "A"),
            (2000, 0, "A", 0), (2000, 0, "R")]
    frames = tcp_frames(lab, 40001, segs, ts=500)
    assert lab.send(frames) == len(frames)
    lab.wait_packets(len(frames))
    col = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    col.bind(("127.0.0.1", 0))
    col.settimeout(0.5)
    sh(PKTLENS, "export", "ipfix", "--collector", f"127.0.0.1:{col.getsockname()[1]}",
       "--interval", 1, "--duration", 1)
    msgs = []
    try:
        while True:
            msgs.append(col.recv(65535))
    except socket.timeout:
        pass
    col.close()
    ours = [r for tid, r in ipfix_records(msgs) if tid == 258 and r[(0, 7)] == 40001]
    assert len(ours) == 1, ours
    r = ours[0]
    assert r[(0, 220)] == 1                                  # tcpRstTotalCount
    assert (r[(32473, 6)], r[(32473, 7)], r[(32473, 8)]) == (1, 1, 1), r
    assert r[(0, 8)] == 0xC6120001 and r[(0, 11)] == 80     # 198.18.0.1, port 80
    exp = Exporter()
    try:
        _, text, _ = exp.get()
    finally:
        exp.stop()
    ino = str(os.stat(f"/run/netns/{lab.b}").st_ino)
    mine = [ln for ln in text.splitlines() if f'netns="{ino}"' in ln]
    assert f'pktlens_tcp_passive_reorder_segments_total{{netns="{ino}",netns_name="{lab.b}",device="vb"}} 1' in mine, mine
    assert any(ln.startswith("pktlens_tcp_passive_retrans_segments_total{") and ln.endswith(" 1")
               for ln in mine)
    assert any(ln.startswith("pktlens_tcp_passive_rtt_seconds_count{") for ln in mine)
    # the bucket bounds are exactly the largest whole-microsecond sample of each log2 slot
    # (slot k holds [2^k, 2^(k+1)) us; `le` is inclusive; a rounded "4.1943" would leave out
    # samples up to 4.194303 s)
    les = [ln.split('le="')[1].split('"')[0] for ln in mine
           if ln.startswith("pktlens_tcp_passive_rtt_seconds_bucket{")]
    assert les == [f"{(2 ** (k + 1) - 1) / 1e6:.10g}" for k in range(25)] + ["+Inf"], les
    assert les[20] == "2.097151" and les[24] == "33.554431", les
