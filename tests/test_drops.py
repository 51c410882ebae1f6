# SPDX-License-Identifier: GPL-2.0
"""`pktlens drops`: why the kernel dropped packets, against the kernel's own counters.

A veth lab (198.18.0.1 on va in namespace a, 198.18.0.2 on vb in namespace b, static
neighbours so nothing else crosses the wire). Each case provokes one kind of drop in b and
compares pktlens's count there with an independent one for the same namespace: the
UdpNoPorts, IpInHdrErrors and TcpInCsumErrors counters of /proc/net/snmp, an nft rule's
counter, the frames scapy sent (other host's MAC, XDP_ABORTED from a test program, a pktlens
drop rule). Other helpers' tests run at the same time: every count is read for one namespace.
"""
import json
import os
import re
import signal
import subprocess
import time

import pytest

from lab import PKTLENS, PYTHON, ROOT, SENDRAW, Exporter, Lab, RouterLab, attachments_in, netns_ino, pktlens, pktlens_json, sh, start_probes



class Drops:
    """`pktlens -j drops ARGS` running until stop(), with --netns NS unless ns=None."""

    def __init__(self, *args, ns=None, global_ns=None):
        cmd = [PKTLENS] + (["-n", global_ns] if global_ns else []) + ["-j", "drops"]
        cmd += (["--netns", ns] if ns else []) + [str(a) for a in args]
        self.p = start_probes(cmd, "pl_drop_")

    def stop(self):
        time.sleep(0.3)     # let the last frames be freed
        self.p.send_signal(signal.SIGINT)
        out, err = self.p.communicate(timeout=30)
        assert self.p.returncode == 0, err
        docs = [json.loads(line) for line in out.splitlines() if line.strip()]
        return docs


def snmp(ns, proto, field):
    out = sh("ip", "netns", "exec", ns, "cat", "/proc/net/snmp").stdout.splitlines()
    rows = [line.split() for line in out if line.startswith(proto + ":")]
    return int(rows[1][rows[0].index(field)])


def by_reason(doc, reason, kind="kernel"):
    return sum(d["packets"] for d in doc["drops"] if d.get("reason") == reason and
               d.get("kind", kind) == kind)


@pytest.fixture
def dlab():
    lab = Lab(mtu=1500, addrs=True)
    try:
        lab.static_neighbours()
        yield lab
    finally:
        lab.close()


def udp(lab, n, dport, sport=40000, dst_mac=None, **ip):
    from scapy.all import IP, UDP, Ether, Raw

    eth = Ether(src=lab.mac(lab.a, "va"), dst=dst_mac or lab.mac(lab.b, "vb"))
    return [eth / IP(src="198.18.0.1", dst="198.18.0.2", **ip) / UDP(sport=sport, dport=dport) /
            Raw(b"d" * (20 + i % 7)) for i in range(n)]


def needs_reasons():
    if not pktlens_json("--version")["features"]["drop-reason"]["available"]:
        pytest.skip("the kernel's kfree_skb has no reason (Linux 5.17+)")


def test_udp_no_socket_equals_udp_noports(dlab):
    needs_reasons()
    tr = Drops(ns=f"/run/netns/{dlab.b}")      # a path
    before = snmp(dlab.b, "Udp", "NoPorts")
    sent = dlab.send(udp(dlab, 23, 5001))     # nothing listens in a new namespace
    time.sleep(0.5)
    after = snmp(dlab.b, "Udp", "NoPorts")
    doc = tr.stop()[-1]
    assert after - before == sent == 23
    assert by_reason(doc, "NO_SOCKET") == after - before
    assert doc["by"] == "reason" and doc["reasons"] is True


def test_flow_shows_the_exact_5tuple(dlab):
    needs_reasons()
    from scapy.all import ICMP, IP, Ether

    tr = Drops("--by", "flow", ns=dlab.b)     # a name in /run/netns
    bad_icmp = Ether(src=dlab.mac(dlab.a, "va"), dst=dlab.mac(dlab.b, "vb")) / \
        IP(src="198.18.0.1", dst="198.18.0.2") / ICMP(type=13, code=0, chksum=0x1234)
    dlab.send(udp(dlab, 5, 9, sport=41234) + udp(dlab, 3, 7, sport=41235) + [bad_icmp] * 2)
    # a flow dropped on two CPUs: first for a bad IP header checksum on CPU 1, then for no
    # socket on CPU 0 (the receiving softirq runs on the sender's CPU)
    hdr = snmp(dlab.b, "Ip", "InHdrErrors")
    dlab.send(udp(dlab, 2, 9, sport=41236, chksum=0x1234), cpu=1)
    dlab.send(udp(dlab, 1, 9, sport=41236), cpu=0)
    doc = tr.stop()[-1]
    hdr = snmp(dlab.b, "Ip", "InHdrErrors") - hdr
    flows = {(d["proto"], d["src"], d["sport"], d["dst"], d["dport"]): d for d in doc["drops"]}
    # ICMP: its type and code named as flows -j names them
    icmp = [d for d in doc["drops"] if d["proto"] == "icmp"]
    assert [(d["icmp_type"], d["icmp_code"], d["packets"]) for d in icmp] == [(13, 0, 2)]
    a = flows[("udp", "198.18.0.1", 41234, "198.18.0.2", 9)]
    b = flows[("udp", "198.18.0.1", 41235, "198.18.0.2", 7)]
    assert (a["packets"], b["packets"]) == (5, 3)
    assert a["reason"] == b["reason"] == "NO_SOCKET"
    assert a["netns"] == netns_ino(dlab.b)
    # its latest drop's reason, not that of the highest-numbered CPU that dropped it
    c = flows[("udp", "198.18.0.1", 41236, "198.18.0.2", 9)]
    assert hdr == 2 and (c["packets"], c["reason"]) == (3, "NO_SOCKET")
    # the bytes of the IP packets: 20 + 8 + payload
    assert a["bytes"] == sum(28 + 20 + i % 7 for i in range(5))


def needs_rx_sock():
    needs_reasons()
    if not pktlens_json("--version")["features"]["drop-rx-sock"]["available"]:
        pytest.skip("the kernel's kfree_skb names no socket (Linux 6.11+)")


def out_of_window(dlab, port, sport, tracer, extra=()):
    """Six segments out of an established connection's window, sent to b:port from
    a:sport (and the frames extra), while tracer() (a Drops) runs; its documents."""
    from scapy.all import IP, TCP, Ether, Raw

    server = subprocess.Popen(["ip", "netns", "exec", dlab.b, PYTHON, "-c",
                               "import socket,time\ns=socket.socket()\n"
                               "s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n"
                               f"s.bind(('198.18.0.2',{port})); s.listen()\nc,_=s.accept()\ntime.sleep(60)"])
    client = None
    try:
        time.sleep(0.5)
        client = subprocess.Popen(["ip", "netns", "exec", dlab.a, PYTHON, "-c",
                                   f"import socket,time\ns=socket.socket(); s.bind(('198.18.0.1',{sport}))\n"
                                   f"s.connect(('198.18.0.2',{port})); s.sendall(b'hi'); time.sleep(60)"])
        time.sleep(1.0)
        tr = tracer()
        eth = Ether(src=dlab.mac(dlab.a, "va"), dst=dlab.mac(dlab.b, "vb"))
        segs = [eth / IP(src="198.18.0.1", dst="198.18.0.2") /
                TCP(sport=sport, dport=port, flags="A", seq=(12345 + i * 100000) & 0xffffffff, ack=1) /
                Raw(b"a" * 20) for i in range(6)]
        assert dlab.send(segs + list(extra)) == 6 + len(extra)
        return tr.stop()
    finally:
        for p in (client, server):
            if p:
                p.kill()
                p.wait()


@pytest.mark.variant     # the kernel side: which program variant the probe loads
def test_tcp_receive_path_drops_count_in_the_sockets_namespace(dlab):
    """Segments out of a TCP connection's window are dropped by the socket's receive path,
    where the skb has neither device nor owner: they count in the socket's namespace (the
    tracepoint's rx_sk, Linux 6.11+), so `drops --netns` sees them (they counted under netns
    0, which no per-namespace view showed)."""
    needs_rx_sock()
    doc = out_of_window(dlab, 5202, 43010, lambda: Drops("--by", "flow", ns=dlab.b))[-1]
    mine = [d for d in doc["drops"] if (d["proto"], d["src"], d["sport"], d["dst"], d["dport"]) ==
            ("tcp", "198.18.0.1", 43010, "198.18.0.2", 5202)]
    assert sum(d["packets"] for d in mine) == 6, doc["drops"]
    assert all(d["netns"] == netns_ino(dlab.b) and d["reason"].startswith("TCP_") for d in mine), mine


@pytest.mark.parametrize("how", ["dev", pytest.param("netns", marks=pytest.mark.variant), "events"])
def test_tcp_receive_path_drops_are_of_the_device_they_arrived_on(dlab, how):
    """TCP's receive path lets go of skb->dev, but the device the segment arrived on is
    still known (skb_iif): `drops DEV` counts them (it counted none), `--by dev` names
    the device (it showed none): from within the namespace (pktlens -n B drops DEV) by its
    index, from outside (drops --netns B) as the namespace's other drops on it name it;
    and so do --events."""
    needs_rx_sock()
    extra = []
    if how == "dev":
        tracer = lambda: Drops("vb", "--by", "dev", global_ns=dlab.b)  # noqa: E731
    elif how == "netns":
        tracer, extra = (lambda: Drops("--by", "dev", ns=dlab.b)), udp(dlab, 3, 9)
    else:
        tracer = lambda: Drops("--events", global_ns=dlab.b)  # noqa: E731
    noports = snmp(dlab.b, "Udp", "NoPorts")
    docs = out_of_window(dlab, 5203, 43011, tracer, extra)
    noports = snmp(dlab.b, "Udp", "NoPorts") - noports
    assert noports == len(extra)
    if how == "events":
        seen = [(e["device"], e["sport"], e["dport"]) for e in docs if e.get("event") == "drop"]
        assert seen == [("vb", 43011, 5203)] * 6, docs
        return
    vb = json.loads(sh("ip", "-n", dlab.b, "-j", "link", "show", "vb").stdout)[0]["ifindex"]
    assert [(d["device"], d["ifindex"], d["packets"]) for d in docs[-1]["drops"]] == \
        [("vb", vb, 6 + noports)]


class _Nothing:
    def stop(self):
        time.sleep(0.3)     # let the last segments be freed


def test_tcp_receive_path_drops_are_exported_as_their_devices(dlab):
    """The exporter (in the root namespace) names a TCP receive-path drop's device, known
    by its index alone, by the attachment of that index: device="vb" (it was "")."""
    needs_rx_sock()
    from prometheus_client.parser import text_string_to_metric_families

    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", "--probes", "drops", ns=dlab.b)
    out_of_window(dlab, 5204, 43012, _Nothing)
    ex = Exporter()
    try:
        body = ex.get()[1]
    finally:
        ex.stop()
    got = {}
    for f in text_string_to_metric_families(body):
        for x in f.samples:
            if x.name == "pktlens_kernel_drops_total" and x.labels["netns"] == str(netns_ino(dlab.b)):
                got[x.labels["device"]] = got.get(x.labels["device"], 0) + x.value
    assert got == {"vb": 6}, got


def test_nft_drop_equals_the_rules_counter(dlab):
    needs_reasons()
    sh("ip", "netns", "exec", dlab.b, "nft", "-f", "-", input=(
        "table inet pldrop {\n chain c {\n  type filter hook input priority 0;\n"
        "  udp dport 5353 counter drop\n }\n}\n"))
    tr = Drops(ns=dlab.b)
    dlab.send(udp(dlab, 17, 5353))
    doc = tr.stop()[-1]
    out = sh("ip", "netns", "exec", dlab.b, "nft", "-j", "list", "table", "inet", "pldrop").stdout
    counter = [x["counter"]["packets"] for x in json.loads(out)["nftables"] if "rule" in x
               for x in x["rule"]["expr"] if "counter" in x]
    assert counter == [17]
    assert by_reason(doc, "NETFILTER_DROP") == counter[0]


def bad_tcp_csum(lab, n):
    from scapy.all import IP, TCP, Ether

    eth = Ether(src=lab.mac(lab.a, "va"), dst=lab.mac(lab.b, "vb"))
    return [eth / IP(src="198.18.0.1", dst="198.18.0.2") /
            TCP(sport=40000 + i, dport=80, flags="S", chksum=0x4321) for i in range(n)]


@pytest.mark.parametrize("frames,counter,reason", [
    (lambda lab, n: udp(lab, n, 9, chksum=0x1234), ("Ip", "InHdrErrors"), "IP_CSUM"),
    (bad_tcp_csum, ("Tcp", "InCsumErrors"), "TCP_CSUM"),
], ids=["ip-header", "tcp"])
def test_checksum_errors_equal_the_kernels_counter(dlab, frames, counter, reason):
    needs_reasons()
    tr = Drops(ns=dlab.b)
    before = snmp(dlab.b, *counter)
    dlab.send(frames(dlab, 11))
    time.sleep(0.3)
    after = snmp(dlab.b, *counter)
    doc = tr.stop()[-1]
    assert after - before == 11
    assert by_reason(doc, reason) == after - before


def test_other_host_mac(dlab):
    needs_reasons()
    tr = Drops("--by", "dev", ns=dlab.b)
    sent = dlab.send(udp(dlab, 13, 9, dst_mac="02:00:00:00:00:99"))
    docs = tr.stop()
    assert sent == 13
    # the same run grouped by device: all of them on vb
    dev = [d for d in docs[-1]["drops"] if d["device"] == "vb"]
    assert len(dev) == 1 and dev[0]["packets"] == 13 and dev[0]["netns"] == netns_ino(dlab.b)
    tr = Drops(ns=dlab.b)
    dlab.send(udp(dlab, 6, 9, dst_mac="02:00:00:00:00:98"))
    assert by_reason(tr.stop()[-1], "OTHERHOST") == 6


XDP_ABORT = """
__attribute__((section("xdp"), used)) int abort_all(void *ctx) { return 0; /* XDP_ABORTED */ }
__attribute__((section("license"), used)) char lic[] = "GPL";
"""


def test_xdp_aborted_counts_every_frame(dlab, tmp_path):
    src = tmp_path / "abort.c"
    src.write_text(XDP_ABORT)
    obj = tmp_path / "abort.o"
    sh("clang", "-O2", "-target", "bpf", "-c", str(src), "-o", str(obj))
    sh("ip", "-n", dlab.b, "link", "set", "dev", "vb", "xdpgeneric", "obj", str(obj), "sec", "xdp")
    tr = Drops(ns=dlab.b)
    sent = dlab.send(udp(dlab, 19, 9))
    doc = tr.stop()[-1]
    assert sent == 19
    assert by_reason(doc, "XDP_ABORTED", kind="xdp") == sent


def test_namespaces_with_the_same_names_stay_apart(dlab):
    needs_reasons()
    other = Lab(mtu=1500, addrs=True)
    try:
        other.static_neighbours(back=False)
        tr = Drops("--by", "flow")          # every namespace
        dlab.send(udp(dlab, 7, 9, sport=42000))
        other.send(udp(other, 12, 9, sport=42000))
        doc = tr.stop()[-1]
        mine = {d["netns"]: d["packets"] for d in doc["drops"]
                if (d["src"], d["sport"], d["dst"], d["dport"]) ==
                ("198.18.0.1", 42000, "198.18.0.2", 9)}
        assert mine == {netns_ino(dlab.b): 7, netns_ino(other.b): 12}
    finally:
        other.close()


def test_dev_deleted_while_counting_stops_with_its_counts(dlab):
    """`drops DEV` whose DEV is deleted: nothing more can come (a new device of its name is
    another), so it says so and stops, exit 1, with what it counted (it ran on, counting
    nothing, until Ctrl-C)."""
    needs_reasons()
    p = start_probes([PKTLENS, "-n", dlab.b, "-j", "drops", "vb"], "pl_drop_")
    try:
        before = snmp(dlab.b, "Udp", "NoPorts")
        dlab.send(udp(dlab, 7, 5001))
        time.sleep(0.3)
        noports = snmp(dlab.b, "Udp", "NoPorts") - before
        sh("ip", "-n", dlab.a, "link", "del", "va")
        out, err = p.communicate(timeout=10)
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    # -j: the error is a document of its own (as every error under -j), then the counts
    docs = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert p.returncode == 1 and len(docs) == 2, (out, err)
    assert "vb: the interface is gone" in docs[0]["error"]
    assert noports == 7 and by_reason(docs[1], "NO_SOCKET") == noports


def test_dev_is_of_the_current_namespace(dlab):
    tr = Drops("vb", global_ns=dlab.b)
    dlab.send(udp(dlab, 4, 9, dst_mac="02:00:00:00:00:97"))
    doc = tr.stop()[-1]
    assert doc["packets"] == 4


def test_global_netns_without_dev_is_that_namespaces_drops(dlab):
    """`pktlens -n NETNS drops` (no DEV, no --netns) counts NETNS's drops alone, as `-n`
    gives the exporters that namespace's alone: not a's, not other namespaces'."""
    needs_reasons()
    tr = Drops("--by", "dev", global_ns=dlab.b)
    sent = dlab.send(udp(dlab, 5, 9))
    sh("nsenter", f"--net=/run/netns/{dlab.a}", PYTHON, "-c",
       "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
       "for i in range(4): s.sendto(b'x', ('127.0.0.1', 9))\n")
    doc = tr.stop()[-1]
    assert sent == 5
    assert {d["netns"] for d in doc["drops"]} == {netns_ino(dlab.b)}, doc
    assert [d["packets"] for d in doc["drops"] if d["device"] == "vb"] == [5]


def test_namespace_named_as_tcp_names_it(dlab):
    """drops names a row's and an event's namespace as tcp names a connection's: JSON netns and
    netns_name (its name in `ip netns`), text `INODE (NAME)`."""
    needs_reasons()
    ino = netns_ino(dlab.b)
    tr = Drops("--by", "dev", "--events", global_ns=dlab.b)
    dlab.send(udp(dlab, 3, 9))
    docs = tr.stop()
    events = [d for d in docs if d.get("event") == "drop" and d["device"] == "vb"]
    rows = [d for d in docs[-1]["drops"] if d["device"] == "vb"]
    assert len(events) == 3 and len(rows) == 1, docs
    assert {(d["netns"], d["netns_name"]) for d in events + rows} == {(ino, dlab.b)}
    p = start_probes([PKTLENS, "-n", dlab.b, "drops", "--by", "dev"], "pl_drop_")
    dlab.send(udp(dlab, 2, 9))
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    assert [line.split()[-2] for line in rows_in_line(p.communicate(timeout=30)[0].splitlines())
            if line.startswith(f"{ino} ({dlab.b}) ") and " vb " in line] == ["2"]


def rows_in_line(out):
    """The rows under the text table's heading of `drops` output lines @out, after checking each
    row's packet and byte counts end where their headings end."""
    head = [i for i, line in enumerate(out) if "PACKETS" in line][0]
    ends = [out[head].index("PACKETS") + 7, out[head].index("BYTES") + 5]
    rows = out[head + 1:]
    assert rows and all(line.rstrip() for line in rows)
    for line in rows:
        pk = line.split()[-2]
        assert [line.rindex(" " + pk + " ") + 1 + len(pk), len(line.rstrip())] == ends, line
    return rows


@pytest.mark.parametrize("by", ["dev", pytest.param("proto", marks=pytest.mark.variant)])
def test_text_columns_line_up(dlab, by):
    """Text: each row's packet and byte counts end where their headings end."""
    p = start_probes([PKTLENS, "-n", dlab.b, "drops", "vb", "--by", by], "pl_drop_")
    dlab.send(udp(dlab, 3, 9, dst_mac="02:00:00:00:00:96"))
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    rows_in_line(p.communicate(timeout=30)[0].splitlines())


@pytest.mark.parametrize("by", ["flow", "reason"])
def test_text_columns_line_up_with_long_values(dlab, by):
    """Text: a value wider than its column's heading (an [IPv6]:port of 46 characters, a
    pktlens rule of a 15-character interface) widens the column; the counts stay in line.
    (IPv6 is disabled in the lab: b drops those frames, as IPV6DISABLED.)"""
    from scapy.all import IPv6, UDP, Ether, Raw

    needs_reasons()
    src, dst = "2001:db8:1234:5678:9abc:def0:1234:5677", "2001:db8:1234:5678:9abc:def0:1234:5678"
    eth = Ether(src=dlab.mac(dlab.a, "va"), dst=dlab.mac(dlab.b, "vb"))
    frames = [eth / IPv6(src=src, dst=dst) / UDP(sport=65000, dport=65001) / Raw(b"x" * 10)] * 3
    frames += udp(dlab, 2, 9)
    if by == "reason":
        sh("ip", "-n", dlab.b, "link", "add", "pl-long-name-15", "type", "veth", "peer", "name",
           "plx15")
        for dev in ("pl-long-name-15", "plx15"):
            sh("ip", "-n", dlab.b, "link", "set", dev, "up")
        sh("ip", "-n", dlab.b, "addr", "add", "198.18.77.2/24", "dev", "pl-long-name-15")
        sh("ip", "-n", dlab.b, "neigh", "replace", "198.18.77.1", "lladdr", "02:00:00:00:00:01",
           "dev", "pl-long-name-15", "nud", "permanent")
        pktlens("attach", "pl-long-name-15", "--xdp", "none", "--tc", "out", ns=dlab.b)
        pktlens("policy", "add", "pl-long-name-15", "--out", "--proto", "udp", "--drop",
                ns=dlab.b)
    p = start_probes([PKTLENS, "-n", dlab.b, "drops", "--by", by], "pl_drop_")
    dlab.send(frames)
    if by == "reason":
        sh("nsenter", f"--net=/run/netns/{dlab.b}", PYTHON, "-c",
           "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
           "s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b'pl-long-name-15')\n"
           "for i in range(4): s.sendto(b'x', ('198.18.77.1', 9))\n")
    time.sleep(0.3)
    p.send_signal(signal.SIGINT)
    out = p.communicate(timeout=30)[0].splitlines()
    want = f"[{src}]:65000" if by == "flow" else "pktlens rule 1 (pl-long-name-15)"
    assert [line for line in rows_in_line(out) if want in line], out


def test_pktlens_rule_beside_the_kernels(dlab):
    needs_reasons()
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=dlab.b)
    out = pktlens("-j", "policy", "add", "vb", "--in", "--proto", "udp", "--dport", "4444", "--drop",
                  ns=dlab.b).stdout
    rule = json.loads(out)["id"]
    # another interface's rule of the same id is another rule: a row of its own
    pktlens("attach", "lo", "--xdp", "none", "--tc", "in", ns=dlab.b)
    out = pktlens("-j", "policy", "add", "lo", "--in", "--proto", "udp", "--dport", "4444", "--drop",
                  ns=dlab.b).stdout
    assert json.loads(out)["id"] == rule
    tr = Drops(ns=dlab.b)
    dlab.send(udp(dlab, 8, 4444) + udp(dlab, 3, 9))
    sh("nsenter", f"--net=/run/netns/{dlab.b}", PYTHON, "-c",
       "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
       "for i in range(2): s.sendto(b'x', ('127.0.0.1', 4444))\n")
    doc = tr.stop()[-1]
    rows = {(d["device"], d["netns"]): d["packets"] for d in doc["drops"]
            if d["kind"] == "pktlens" and d["reason"] == f"pktlens rule {rule}"}
    assert rows == {("vb", netns_ino(dlab.b)): 8, ("lo", netns_ino(dlab.b)): 2}
    assert by_reason(doc, "NO_SOCKET") == 3


@pytest.mark.parametrize("how", ["altname", pytest.param("rename", marks=pytest.mark.variant)])
def test_dev_by_another_name_shows_its_rules_drops(dlab, how):
    """DEV is the interface, whatever name it was attached as: an altname of it, or its new
    name after a rename, shows the drops of its attachment's rules as its own name does."""
    needs_reasons()
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=dlab.b)
    out = pktlens("-j", "policy", "add", "vb", "--in", "--proto", "udp", "--dport", "4448", "--drop",
                  ns=dlab.b).stdout
    rule = json.loads(out)["id"]
    frames = udp(dlab, 9, 4448)
    if how == "altname":
        sh("ip", "-n", dlab.b, "link", "property", "add", "dev", "vb", "altname", "vb-other-name")
        name = "vb-other-name"
    else:
        sh("ip", "-n", dlab.b, "link", "set", "dev", "vb", "name", "vbnew")
        name = "vbnew"
    tr = Drops(name, global_ns=dlab.b)
    sent = dlab.send(frames)
    doc = tr.stop()[-1]
    assert sent == 9
    assert by_reason(doc, f"pktlens rule {rule}", kind="pktlens") == sent
    assert by_reason(doc, "TC_INGRESS") == sent


@pytest.mark.parametrize("xdp", ["native", "none"])
def test_limit_rule_drops_beside_the_kernels(dlab, xdp):
    """A --limit rule's dropped excess is a pktlens drop too: every frame sent that did not
    reach UDP in b (Udp NoPorts: nothing listens there); --over pass drops nothing."""
    needs_reasons()
    pktlens("attach", "vb", "--xdp", xdp, "--tc", "in", ns=dlab.b)
    out = pktlens("-j", "policy", "add", "vb", "--proto", "udp", "--dport", "4446", "--limit", "1pps",
                  "--burst", "3", ns=dlab.b).stdout
    rule = json.loads(out)["id"]
    out = pktlens("-j", "policy", "add", "vb", "--proto", "udp", "--dport", "4447", "--limit", "1pps",
                  "--burst", "2", "--over", "pass", ns=dlab.b).stdout
    passing = json.loads(out)["id"]
    tr = Drops(ns=dlab.b)
    before = snmp(dlab.b, "Udp", "NoPorts")
    sent = dlab.send(udp(dlab, 11, 4446) + udp(dlab, 6, 4447))
    time.sleep(0.3)
    reached = snmp(dlab.b, "Udp", "NoPorts") - before
    doc = tr.stop()[-1]
    assert sent == 17 and reached == 3 + 6
    assert by_reason(doc, f"pktlens rule {rule}", kind="pktlens") == sent - reached
    assert by_reason(doc, f"pktlens rule {passing}", kind="pktlens") == 0


def snmp6(ns, field):
    out = sh("ip", "netns", "exec", ns, "cat", "/proc/net/snmp6").stdout.split()
    return int(out[out.index(field) + 1])


def test_ipv6_extension_headers_flow_and_events():
    """An IPv6 packet with extension headers (destination options, a first fragment's header)
    is the UDP flow it carries, in --by flow and --by proto and in --events, as the packet
    programs and the flow table have it: protocol udp and its ports, not the first header's."""
    from scapy.all import IPv6, UDP, Ether, IPv6ExtHdrDestOpt, IPv6ExtHdrHopByHop, Raw

    needs_reasons()
    r = RouterLab()
    try:
        eth = Ether(src=r.mac(r.s, "va"), dst=r.mac(r.h, "vb"))
        ip = IPv6(src=r.S6, dst=r.H6)
        frames = [eth / ip / IPv6ExtHdrDestOpt() / UDP(sport=41001, dport=9) / Raw(b"e" * 10)] * 3 + \
                 [eth / ip / IPv6ExtHdrHopByHop() / IPv6ExtHdrDestOpt() / UDP(sport=41002, dport=7) /
                  Raw(b"e" * 10)] * 2
        got = {}
        for args in (["--by", "flow"], ["--by", "proto"], ["--events"]):
            tr = Drops(*args, ns=r.h)
            before = snmp6(r.h, "Udp6NoPorts")
            sent = r.send(frames)
            time.sleep(0.3)
            noports = snmp6(r.h, "Udp6NoPorts") - before
            got[args[-1]] = tr.stop()
            assert sent == noports == 5
        flows = {(d["proto"], d["src"], d["sport"], d["dst"], d["dport"]): d["packets"]
                 for d in got["flow"][-1]["drops"] if d["reason"] == "NO_SOCKET"}
        assert flows == {("udp", r.S6, 41001, r.H6, 9): 3, ("udp", r.S6, 41002, r.H6, 7): 2}
        protos = {(d["l3"], d["l4"]): d["packets"] for d in got["proto"][-1]["drops"]}
        assert protos.get(("ipv6", "udp")) == 5
        ev = [(d["proto"], d["sport"], d["dport"]) for d in got["--events"]
              if d.get("event") == "drop" and d.get("reason") == "NO_SOCKET"]
        assert sorted(ev) == [("udp", 41001, 9)] * 3 + [("udp", 41002, 7)] * 2
    finally:
        r.close()


def test_icmp_later_fragments_have_no_type_in_events_as_in_flows(dlab):
    """An ICMP echo request in fragments, dropped (another host's MAC): the first fragment
    is type 8 code 0; the later ones carry no ICMP header, so --events says null for their
    type and code, as --by flow does, not Echo Reply's 0/0."""
    from scapy.all import ICMP, IP, Ether, Raw, fragment

    needs_reasons()
    pkt = IP(src="198.18.0.1", dst="198.18.0.2") / ICMP(type=8) / Raw(b"a" * 200)
    frames = [Ether(src=dlab.mac(dlab.a, "va"), dst="02:00:00:00:00:95") / f
              for f in fragment(pkt, fragsize=64)]
    got = {}
    for args in (["--events"], ["--by", "flow"]):
        tr = Drops(*args, ns=dlab.b)
        assert dlab.send(frames) == len(frames) == 4
        got[args[-1]] = tr.stop()
    ev = sorted(((d["icmp_type"], d["icmp_code"]) for d in got["--events"]
                 if d.get("event") == "drop" and d["reason"] == "OTHERHOST"),
                key=lambda t: (t[0] is None, t))
    assert ev == [(8, 0), (None, None), (None, None), (None, None)]
    flows = sorted((d["icmp_type"], d["icmp_code"], d["packets"]) for d in got["flow"][-1]["drops"]
                   if d["reason"] == "OTHERHOST" and d["icmp_type"] is not None)
    nones = [d["packets"] for d in got["flow"][-1]["drops"]
             if d["reason"] == "OTHERHOST" and d["icmp_type"] is None]
    assert flows == [(8, 0, 1)] and nones == [3]


def test_prometheus_one_series_per_device_name(dlab):
    """A device deleted and made anew under its name (another ifindex) is one series per
    reason, holding the drops of both: Prometheus refuses a scrape with a label set twice."""
    from scapy.all import IP, UDP, Ether, Raw, wrpcap

    needs_reasons()
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", "--probes", "drops", ns=dlab.b)
    path = os.path.join(dlab.tmp, "otherhost.pcap")
    wrpcap(path, [Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:99") /
                  IP(src="198.18.9.1", dst="198.18.9.2") / UDP(dport=9) / Raw(b"x" * 20)] * 3)
    for _ in range(2):
        sh("ip", "-n", dlab.b, "link", "add", "px1", "type", "veth", "peer", "name", "px2")
        sh("ip", "-n", dlab.b, "link", "set", "px1", "up")
        sh("ip", "-n", dlab.b, "link", "set", "px2", "up")
        assert sh("ip", "netns", "exec", dlab.b, PYTHON, SENDRAW, "px1", path).stdout.strip() == "3"
        time.sleep(0.3)
        sh("ip", "-n", dlab.b, "link", "del", "px1")
    ex = Exporter()
    try:
        text = ex.get()[1]
    finally:
        ex.stop()
    series = [line.rsplit(" ", 1) for line in text.splitlines()
              if line.startswith("pktlens_kernel_drop")]
    labels = [s[0] for s in series]
    assert len(labels) == len(set(labels)), "a label set twice"
    want = (f'pktlens_kernel_drops_total{{netns="{netns_ino(dlab.b)}",netns_name="{dlab.b}",'
            f'device="px2",reason="OTHERHOST"}}')
    assert dict(series)[want] == "6"


def test_drop_series_carry_the_labels_of_the_namespaces_other_series(dlab):
    """The kernel drop series of a namespace carry the labels its other series begin with:
    netns, and netns_name, its name in `ip netns` (the Grafana legend's {{netns_name}}, a join
    on (netns, netns_name, device)); read by prometheus_client's parser."""
    needs_reasons()
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", "--probes", "drops", ns=dlab.b)
    before = snmp(dlab.b, "Udp", "NoPorts")
    dlab.send(udp(dlab, 4, 9))
    time.sleep(0.3)
    noports = snmp(dlab.b, "Udp", "NoPorts") - before
    ino = str(netns_ino(dlab.b))
    mine = ns_samples(ino)
    named = {n["name"] for n in json.loads(sh("ip", "-j", "netns", "list").stdout or "[]")}
    assert dlab.b in named
    assert {s.labels.get("netns_name") for s in mine} == {dlab.b}, \
        {(s.name, s.labels.get("netns_name")) for s in mine}
    assert [(s.labels, s.value) for s in mine if s.name == "pktlens_kernel_drops_total" and
            s.labels["reason"] == "NO_SOCKET"] == \
        [({"netns": ino, "netns_name": dlab.b, "device": "vb", "reason": "NO_SOCKET"}, noports)]
    assert noports == 4


def ns_samples(ino):
    """One scrape of `export prometheus`, parsed by prometheus_client: the samples of the
    namespace of inode @ino (a string, as the netns label)."""
    from prometheus_client.parser import text_string_to_metric_families

    ex = Exporter()
    try:
        text = ex.get()[1]
    finally:
        ex.stop()
    return [s for f in text_string_to_metric_families(text) for s in f.samples
            if s.labels.get("netns") == ino]


def rx_dropped(ns, dev):
    """The kernel's rx_dropped of @dev in @ns (`ip -s link`)."""
    return json.loads(sh("ip", "-n", ns, "-j", "-s", "link", "show", dev).stdout)[0][
        "stats64"]["rx"]["dropped"]


def test_drops_a_full_table_could_not_count_are_exported(dlab):
    """Drops the probes' table (16,384 keys) had no room for are served as
    pktlens_kernel_drops_lost_total: frames of 17,000 unknown ethertypes (a key each, dropped
    as UNHANDLED_PROTO) fill it, and what the table counted plus what it lost is every drop
    the kernel counted on vb (rx_dropped), the lost ones more than none."""
    import struct

    needs_reasons()
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", "--probes", "drops", ns=dlab.b)
    n = 17000
    eth = bytes.fromhex(dlab.mac(dlab.b, "vb").replace(":", "") +
                        dlab.mac(dlab.a, "va").replace(":", ""))
    path = os.path.join(dlab.tmp, "ethertypes.pcap")
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t in range(0x1000, 0x1000 + n):   # no protocol of the kernel handles these
            frame = eth + struct.pack("!H", t) + bytes(46)
            f.write(struct.pack("<IIII", 0, 0, len(frame), len(frame)) + frame)
    before = rx_dropped(dlab.b, "vb")
    out = sh("ip", "netns", "exec", dlab.a, PYTHON, SENDRAW, "va", path).stdout
    assert int(out) == n
    deadline = time.time() + 10
    while rx_dropped(dlab.b, "vb") - before < n and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    dropped = rx_dropped(dlab.b, "vb") - before
    ino = str(netns_ino(dlab.b))
    mine = ns_samples(ino)
    counted = sum(s.value for s in mine if s.name == "pktlens_kernel_drops_total" and
                  s.labels["device"] == "vb")
    lost = [(s.labels, s.value) for s in mine if s.name == "pktlens_kernel_drops_lost_total"]
    assert dropped == n
    assert len(lost) == 1 and lost[0][0] == {"netns": ino, "netns_name": dlab.b, "device": ""}
    assert lost[0][1] > 0 and counted + lost[0][1] == dropped, (counted, lost, dropped)
    # stats shows the same loss beside vb's drops by reason
    st = pktlens_json("stats", "vb", ns=dlab.b)["interfaces"][0]
    assert st["kernel_drops_lost"] == lost[0][1]
    assert sum(d["packets"] for d in st["kernel_drops"]) == counted
    text = pktlens("stats", "vb", ns=dlab.b).stdout
    assert f"drops not counted (table full, any device of the namespace): {int(lost[0][1])}" in text


def test_a_set_without_drop_lost_is_still_the_namespaces(dlab):
    """The probes an older pktlens pinned, without drop_lost, are still the namespace's set: a
    new attachment with the probes pins them too (the same kfree_skb link), not a second set
    counting the same drops; the exporter then serves no lost count for the namespace (not
    known), rather than 0."""
    needs_reasons()
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", "--probes", "drops", ns=dlab.b)
    old = attachments_in(dlab.b)[0]["pins"]
    os.unlink(os.path.join(old, "drop_lost"))

    def link(pins):
        return json.loads(sh("bpftool", "-j", "link", "show", "pinned",
                             os.path.join(pins, "drop_kfree_link")).stdout)["id"]

    pktlens("attach", "lo", "--xdp", "none", "--tc", "in", "--probes", "drops", ns=dlab.b)
    new = [a["pins"] for a in attachments_in(dlab.b) if a["ifname"] == "lo"][0]
    assert link(new) == link(old)
    assert not os.path.exists(os.path.join(new, "drop_lost"))
    # not known, rather than 0
    assert pktlens_json("stats", "vb", ns=dlab.b)["interfaces"][0]["kernel_drops_lost"] is None
    ex = Exporter()
    try:
        text = ex.get()[1]
    finally:
        ex.stop()
    assert f'netns="{netns_ino(dlab.b)}"' in text
    assert not [line for line in text.splitlines() if line.startswith(
        f'pktlens_kernel_drops_lost_total{{netns="{netns_ino(dlab.b)}"')]


def test_attached_probe_stats_flows_and_prometheus(dlab):
    needs_reasons()
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", "--probes", "drops", ns=dlab.b)
    att = attachments_in(dlab.b)
    assert att[0]["probes"] == ["drops"]
    tr = Drops(ns=dlab.b)
    before = snmp(dlab.b, "Udp", "NoPorts")
    dlab.send(udp(dlab, 14, 9, sport=43000))
    time.sleep(0.3)
    noports = snmp(dlab.b, "Udp", "NoPorts") - before
    cli = by_reason(tr.stop()[-1], "NO_SOCKET")
    assert cli == noports == 14
    st = pktlens_json("stats", "vb", ns=dlab.b)["interfaces"][0]
    assert {d["reason"]: d["packets"] for d in st["kernel_drops"]}["NO_SOCKET"] == cli
    fl = pktlens_json("flows", "vb", "--sort", "drops", ns=dlab.b)["flows"]
    assert fl[0]["sport"] == 43000 and fl[0]["drops"] == cli
    want = (f'pktlens_kernel_drops_total{{netns="{netns_ino(dlab.b)}",netns_name="{dlab.b}",'
            f'device="vb",reason="NO_SOCKET"}} {cli}')
    ex = Exporter()

    def scraped():
        from prometheus_client.parser import text_string_to_metric_families

        return [s.value for f in text_string_to_metric_families(ex.get()[1]) for s in f.samples
                if s.name == "pktlens_kernel_drops_total" and s.labels["device"] == "vb" and
                s.labels["netns"] == str(netns_ino(dlab.b)) and s.labels["reason"] == "NO_SOCKET"]

    try:
        assert want in ex.get()[1].splitlines()
        # another attachment of the namespace with the probes (listed before vb), whose
        # counts start at 0: the namespace's counters do not go back
        pktlens("attach", "lo", "--xdp", "none", "--tc", "in", "--probes", "drops", ns=dlab.b)
        assert want in ex.get()[1].splitlines()
        # nor when the first one with the probes goes (detached, or re-attached without
        # them) while another keeps them: they count on from where they were (NoPorts)
        pktlens("detach", "vb", ns=dlab.b)
        dlab.send(udp(dlab, 3, 9, sport=43000))
        time.sleep(0.3)
        assert scraped() == [snmp(dlab.b, "Udp", "NoPorts") - before] == [cli + 3]
        pktlens("attach", "vb", "--xdp", "none", "--tc", "in", "--probes", "drops", ns=dlab.b)
        pktlens("attach", "lo", "--xdp", "none", "--tc", "in", "--force", ns=dlab.b)
        dlab.send(udp(dlab, 2, 9, sport=43000))
        time.sleep(0.3)
        assert scraped() == [snmp(dlab.b, "Udp", "NoPorts") - before] == [cli + 5]
        st = pktlens_json("stats", "vb", ns=dlab.b)["interfaces"][0]
        assert {d["reason"]: d["packets"] for d in st["kernel_drops"]}["NO_SOCKET"] == cli + 5
    finally:
        ex.stop()
    pktlens("detach", "lo", ns=dlab.b)
    only_this_namespace_exported(dlab, f"{want.rsplit(' ', 1)[0]} {cli + 5}")
    # detach removes the probes with the rest
    pktlens("detach", "vb", ns=dlab.b)
    assert not os.path.exists(att[0]["pins"]) and attachments_in(dlab.b) == []



def only_this_namespace_exported(dlab, want):
    """`pktlens -n B export prometheus` serves B's series alone, of every family: not those of
    namespace a's attachment with the drop and TCP probes, whose kernel drops and TCP
    histograms the exporter of every namespace serves (it served them with -n too)."""
    from prometheus_client.parser import text_string_to_metric_families
    from scapy.all import IP, UDP, Ether, Raw

    pktlens("attach", "va", "--xdp", "none", "--tc", "in", "--probes", "drops,tcp", ns=dlab.a)
    back = Ether(src=dlab.mac(dlab.b, "vb"), dst=dlab.mac(dlab.a, "va")) / \
        IP(src="198.18.0.2", dst="198.18.0.1") / UDP(sport=43001, dport=9) / Raw(b"r" * 20)
    assert dlab.send([back] * 5, ns=dlab.b, dev="vb") == 5     # a: no socket, dropped
    time.sleep(0.3)

    def series(ex):
        """{sample name: [samples]} of one scrape, read by prometheus_client's parser"""
        try:
            text = ex.get()[1]
        finally:
            ex.stop()
        out = {}
        for f in text_string_to_metric_families(text):
            for s in f.samples:
                out.setdefault(s.name, []).append(s)
        return out

    a, b = str(netns_ino(dlab.a)), str(netns_ino(dlab.b))
    every = series(Exporter())
    assert any(s.labels == {"netns": a, "netns_name": dlab.a, "device": "va",
                            "reason": "NO_SOCKET"} and s.value == 5
               for s in every["pktlens_kernel_drops_total"])
    assert any(s.labels["netns"] == a for s in every["pktlens_tcp_rtt_seconds_bucket"])
    only = series(Exporter(ns=dlab.b))
    nets = {s.labels["netns"] for ss in only.values() for s in ss if "netns" in s.labels}
    assert nets == {b}, nets
    assert [s.value for s in only["pktlens_attachments"]] == [1]
    assert not any(n.startswith("pktlens_tcp_") for n in only)     # a's probes alone had them
    assert [s.value for s in only.get("pktlens_kernel_drops_total", [])
            if s.labels == {"netns": b, "netns_name": dlab.b, "device": "vb",
                            "reason": "NO_SOCKET"}] == [float(want.split()[-1])]


@pytest.mark.parametrize("hooks", [["--tc", "in"], ["--tc", "in,out"]])
def test_reattach_keeps_the_probe_counters(dlab, hooks):
    """attach --force (and apply) over an attachment with --probes drops: the drops counted
    before stay, the ones after add to them, none is counted twice (the kernel's NoPorts)."""
    needs_reasons()
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", "--probes", "drops", ns=dlab.b)
    before = snmp(dlab.b, "Udp", "NoPorts")

    def counted():
        st = pktlens_json("stats", "vb", ns=dlab.b)["interfaces"][0]
        return {d["reason"]: d["packets"] for d in st["kernel_drops"]}.get("NO_SOCKET", 0)

    dlab.send(udp(dlab, 4, 9, sport=43100))
    time.sleep(0.3)
    assert counted() == snmp(dlab.b, "Udp", "NoPorts") - before == 4
    for n in (3, 5):
        pktlens("attach", "vb", "--xdp", "none", *hooks, "--probes", "drops", "--force",
                ns=dlab.b)
        dlab.send(udp(dlab, n, 9, sport=43100))
        time.sleep(0.3)
        assert counted() == snmp(dlab.b, "Udp", "NoPorts") - before
    assert counted() == 12
    fl = pktlens_json("flows", "vb", "--sort", "drops", ns=dlab.b)["flows"]
    assert fl[0]["sport"] == 43100 and fl[0]["drops"] == 12
    # without --probes the next one has none; with them again, they start afresh
    pktlens("attach", "vb", "--xdp", "none", *hooks, "--force", ns=dlab.b)
    assert attachments_in(dlab.b)[0]["probes"] == []
    pktlens("attach", "vb", "--xdp", "none", *hooks, "--probes", "drops", "--force", ns=dlab.b)
    dlab.send(udp(dlab, 2, 9, sport=43100))
    time.sleep(0.3)
    assert counted() == 2

LO_NOPORT = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(int(sys.argv[1])):
    s.sendto(b"n", ("127.0.0.1", 9))
"""


def test_failed_reattach_leaves_the_old_one_running(dlab):
    """attach --force that fails once the old hooks and probes are down (native XDP on lo,
    which has none): the old attachment runs again as it was, its tc hook and drop probes
    counting on from where they were (the kernel's NoPorts), not left with nothing attached."""
    needs_reasons()
    pktlens("attach", "lo", "--xdp", "none", "--tc", "in", "--probes", "drops", ns=dlab.b)
    before = snmp(dlab.b, "Udp", "NoPorts")
    sh("nsenter", f"--net=/run/netns/{dlab.b}", PYTHON, "-c", LO_NOPORT, "3")
    r = pktlens("attach", "lo", "--xdp", "native", "--tc", "in", "--probes", "drops", "--force",
                ns=dlab.b, check=False)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
    assert "native" in r.stderr and "runs again as it was" in r.stderr, r.stderr
    att = [a for a in attachments_in(dlab.b) if a["ifname"] == "lo"]
    assert len(att) == 1 and att[0]["state"] == "attached" and att[0]["probes"] == ["drops"]
    sh("nsenter", f"--net=/run/netns/{dlab.b}", PYTHON, "-c", LO_NOPORT, "2")
    time.sleep(0.3)
    st = pktlens_json("stats", "lo", ns=dlab.b)["interfaces"][0]
    noports = snmp(dlab.b, "Udp", "NoPorts") - before
    assert noports == 5
    assert {d["reason"]: d["packets"] for d in st["kernel_drops"]}.get("NO_SOCKET") == noports
    # each datagram and its ICMP port unreachable crossed lo's tc ingress once
    assert [h["packets"] for h in st["hooks"] if (h["hook"], h["dir"]) == ("tc", "in")] == [10]
    pktlens("detach", "lo", ns=dlab.b)


SEND9 = """
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(9):
    s.sendto(b"o" * (100 + i), ("198.18.0.1", 7000))
"""


def test_bytes_on_transmit_count_from_the_network_header(dlab):
    """A drop on transmit (a pktlens --out rule on tc egress, the kernel's TC_EGRESS) counts
    the IP packet's bytes, as one on receive does, not the Ethernet header before it."""
    needs_reasons()
    pktlens("attach", "vb", "--xdp", "none", "--tc", "out", ns=dlab.b)
    pktlens("policy", "add", "vb", "--out", "--proto", "udp", "--dport", "7000", "--drop", ns=dlab.b)
    tr = Drops("--by", "flow", ns=dlab.b)
    sh("nsenter", f"--net=/run/netns/{dlab.b}", PYTHON, "-c", SEND9)
    flows = [d for d in tr.stop()[-1]["drops"] if d["dport"] == 7000]
    assert len(flows) == 1 and flows[0]["packets"] == 9
    assert flows[0]["bytes"] == sum(20 + 8 + 100 + i for i in range(9))


def test_watch_prints_the_interval_the_end_cuts_short(dlab):
    """--watch prints the drops of the last interval too, the one --duration or Ctrl-C ends:
    the intervals add up to every drop (here the first interval is the last)."""
    needs_reasons()
    p = start_probes([PKTLENS, "-j", "drops", "--netns", dlab.b, "--watch", "6", "--duration",
                      "6"], "pl_drop_")
    sent = dlab.send(udp(dlab, 9, 9))
    assert p.poll() is None, "--duration ended before the frames were sent"
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    docs = [json.loads(line) for line in out.splitlines() if line.strip()]
    assert sent == 9 and [by_reason(d, "NO_SOCKET") for d in docs] == [9]
    tr = Drops("--watch", "60", ns=dlab.b)
    sent = dlab.send(udp(dlab, 5, 9))
    assert [by_reason(d, "NO_SOCKET") for d in tr.stop()] == [sent] == [5]


def test_watch_intervals_lose_events_of_their_own(dlab):
    """--watch with --events: each interval's `lost` is of that interval, as its packets are:
    over the run every drop counted is an event printed or one lost, once."""
    needs_reasons()
    p = start_probes([PKTLENS, "-j", "drops", "--netns", dlab.b, "--watch", "1", "--duration",
                      "4", "--events", "--rate", "1"], "pl_drop_")
    sent = 0
    for _ in range(3):
        sent += dlab.send(udp(dlab, 6, 9))
        time.sleep(1)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    docs = [json.loads(line) for line in out.splitlines() if line.strip()]
    events = [d for d in docs if d.get("event") == "drop"]
    reports = [d for d in docs if "event" not in d]
    assert sent == 18 and len(reports) >= 3
    packets = sum(d["packets"] for d in reports)
    lost = sum(d["lost"]["events_rate"] + d["lost"]["events_ring"] for d in reports)
    assert sum(by_reason(d, "NO_SOCKET") for d in reports) == sent
    assert len(events) + lost == packets, (len(events), [d["lost"] for d in reports], packets)


FLOOD = """
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.time() + 10
while time.time() < end:
    s.sendto(b"f", ("127.0.0.1", 9))
    time.sleep(0.001)
"""


def test_events_while_drops_go_on_end_with_the_counts(dlab):
    """--events ended by --duration while drops keep coming (UDP to a closed port on b's
    loopback): the last read's events are no error; the counts are printed, exit 0, and every
    drop counted is an event printed or one counted as lost."""
    needs_reasons()
    flood = subprocess.Popen(["nsenter", f"--net=/run/netns/{dlab.b}", "timeout", "-s", "KILL", "15",
                              PYTHON, "-c", FLOOD])
    try:
        time.sleep(0.5)
        r = subprocess.run([PKTLENS, "-j", "drops", "--netns", dlab.b, "--events", "--rate",
                            "1000000", "--duration", "2"], capture_output=True, text=True, timeout=60)
    finally:
        flood.kill()
        flood.wait()
    assert r.returncode == 0, r.stderr
    docs = [json.loads(line) for line in r.stdout.splitlines()]
    events = [d for d in docs[:-1] if d.get("event") == "drop"]
    assert len(events) == len(docs) - 1 and "event" not in docs[-1]
    lost = docs[-1]["lost"]
    assert by_reason(docs[-1], "NO_SOCKET") > 0
    assert len(events) + lost["events_ring"] + lost["events_rate"] <= docs[-1]["packets"]


@pytest.mark.parametrize("args,what", [
    (["--by", "reasons"], "--by 'reasons' is wrong"),
    (["--top", "0"], "--top '0' is wrong"),
    (["--top", "x"], "--top 'x' is wrong"),
    (["--watch", "0"], "--watch '0' is wrong"),
    (["--rate", "5"], "--rate: only with --events"),
    (["--netns", "/dev/null"], "--netns '/dev/null': not a network namespace"),
    (["pl-no-such-dev0"], "pl-no-such-dev0: no such interface"),
    (["--duration", "0"], "--duration"),
])
def test_bad_input_exits_2_with_one_line(args, what):
    r = subprocess.run([PKTLENS, "drops", *args], capture_output=True, text=True)
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("pktlens: drops: ") and what in lines[0]


@pytest.mark.variant    # timed
def test_seconds_are_the_counting_not_the_naming(dlab):
    """`seconds` is how long the counters counted: --duration's, not that plus the lookup of
    the dropping functions' names in /proc/kallsyms after it (3.13 s for --duration 3)."""
    flood = subprocess.Popen(["nsenter", f"--net=/run/netns/{dlab.b}", "timeout", "-s", "KILL", "15",
                              PYTHON, "-c", FLOOD])
    try:
        time.sleep(0.3)
        r = subprocess.run([PKTLENS, "-j", "drops", "--netns", dlab.b, "--by", "location", "--duration", "1"],
                           capture_output=True, text=True, timeout=60)
    finally:
        flood.kill()
        flood.wait()
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["packets"] > 0 and 1.0 <= doc["seconds"] < 1.1, r.stdout[-300:]


def test_tracepoints_the_kernel_lacks_are_named():
    """A kernel without the drop tracepoints in its BTF (here: an empty /sys/kernel/btf in a
    mount namespace of its own): drops names the tracepoint in one line and exits 1."""
    r = subprocess.run(["unshare", "-m", "sh", "-c",
                        'mount -t tmpfs none /sys/kernel/btf && exec "$@"', "sh", PKTLENS,
                        "drops", "--duration", "1"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "the drop probes need tracepoint kfree_skb, which this kernel's BTF " \
           "(/sys/kernel/btf/vmlinux) does not have" in r.stderr, r.stderr


def test_readme_man_and_help_agree():
    """Every option of `drops --help` is in the README's command table and the man page."""
    help_ = subprocess.run([PKTLENS, "drops", "--help"], capture_output=True, text=True).stdout
    opts = set(re.findall(r"--[a-z]+", help_.split("\n\n")[0]))
    readme = (ROOT / "README.md").read_text()
    row = [line for line in readme.splitlines() if line.startswith("| `drops ")]
    man = (ROOT / "docs" / "pktlens.8").read_text().replace("\\-", "-")
    assert row and opts == set(re.findall(r"--[a-z]+", re.match(r"\| `(.*?)` \|", row[0])[1]))
    assert opts <= set(re.findall(r"--[a-z]+", man[man.index("drops"):]))
    main = subprocess.run([PKTLENS, "--help"], capture_output=True, text=True).stdout
    assert "pktlens drops [DEV]" in main


def test_apply_config_probes_drops(dlab, tmp_path):
    """The service config's `probes: [drops]` attaches the drop probe as `attach --probes drops`
    does, and a change of probes (to [tcp, drops], then [tcp]) is a change apply carries out."""
    needs_reasons()
    conf = tmp_path / "pktlens.conf"
    ino = netns_ino(dlab.b)

    def apply(probes):
        conf.write_text(f'name: drops-test\ninterfaces:\n  - match: vb\n    netns: "{dlab.b}"\n'
                        f'    xdp: none\n    tc: in\n    probes: [{probes}]\n')
        doc = pktlens_json("apply", str(conf))
        assert doc["ok"], doc
        return attachments_in(dlab.b)[0]

    try:
        assert apply("drops")["probes"] == ["drops"]
        tr = Drops(ns=dlab.b)
        dlab.send(udp(dlab, 6, 9, sport=43001))
        cli = by_reason(tr.stop()[-1], "NO_SOCKET")
        st = pktlens_json("stats", "vb", ns=dlab.b)["interfaces"][0]
        assert cli == 6 and {d["reason"]: d["packets"] for d in st["kernel_drops"]}["NO_SOCKET"] == 6
        assert apply("tcp, drops")["probes"] == ["tcp", "drops"]
        assert apply("tcp")["probes"] == ["tcp"]
        assert not [p for p in os.listdir(f"/sys/fs/bpf/pktlens/{ino}/vb") if p.startswith("drop_")]
    finally:
        pktlens("detach", "vb", ns=dlab.b, check=False)


def test_a_stop_while_the_reader_lags_cuts_no_output(dlab):
    """-j drops --events into a reader that lags (a pipe of one page, full): Ctrl-C while the
    write waits interrupted it, and the command failed ('cannot write to standard output:
    Interrupted system call', exit 1) with its events cut. The output goes on while the reader
    takes some: every event the kernel counted, then the summary, exit 0."""
    import fcntl

    needs_reasons()
    p = start_probes([PKTLENS, "-n", dlab.b, "-j", "drops", "--events", "--rate", "10000"],
                     "pl_drop_")
    fcntl.fcntl(p.stdout.fileno(), 1031, 4096)      # F_SETPIPE_SZ: one page
    before = snmp(dlab.b, "Udp", "NoPorts")
    dlab.send(udp(dlab, 300, 9))                    # 300 events: far more than a page
    time.sleep(1)
    p.send_signal(signal.SIGINT)
    time.sleep(0.3)
    out, err = p.communicate(timeout=30)
    assert p.returncode == 0, err
    docs = [json.loads(line) for line in out.splitlines() if line.strip()]
    events = [d for d in docs if d.get("event") == "drop" and d.get("reason") == "NO_SOCKET"]
    assert len(events) == snmp(dlab.b, "Udp", "NoPorts") - before == 300
    assert "drops" in docs[-1]
