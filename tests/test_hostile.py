# SPDX-License-Identifier: GPL-2.0
"""Hostile input and faults, second pass (issue 15): namespaces whose inode the kernel reuses,
interfaces that get a deleted one's index, renamed interfaces, odd names, long messages and the
smaller CLI edges. Each test fails on the code before its fix."""
import json
import os
import subprocess
import time

import pytest

from lab import NS_PREFIX, PIN_ROOT, PKTLENS, PYTHON, SAN, netns_ino, pktlens, pktlens_json, sh, slot, \
    unique


def quiet(ns):
    """No IPv6 in ns: the kernel sends nothing by itself, every frame counted is the test's."""
    sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
       "net.ipv6.conf.default.disable_ipv6=1")
    sh("ip", "-n", ns, "link", "set", "lo", "up")


class ReusedNetns:
    """Namespace `old` with a veth vb <-> va, then deleted; `new()` creates namespaces until one
    gets the deleted one's inode (the kernel hands out the lowest free one), keeping the misses
    until close() so they cannot take it. Everything is removed on close()."""

    def __init__(self):
        self.names, self.held = [], []
        self.old = self.add()
        self.ino = netns_ino(self.old)

    def add(self):
        ns = unique("plr")
        sh("ip", "netns", "add", ns)
        self.names.append(ns)
        quiet(ns)
        return ns

    def veth(self, ns):
        sh("ip", "-n", ns, "link", "add", "vb", "type", "veth", "peer", "name", "va")
        sh("ip", "-n", ns, "link", "set", "vb", "up")
        sh("ip", "-n", ns, "link", "set", "va", "up")

    def delete_old(self):
        sh("ip", "netns", "del", self.old)
        self.names.remove(self.old)

    def new(self, timeout=20):
        deadline, nap = time.time() + timeout, 0.05
        while time.time() < deadline:
            ns = self.add()
            if netns_ino(ns) == self.ino:
                return ns
            self.held.append(ns)
            if len(self.held) > 300:
                break
            # the old namespace is freed by a kernel work item, at once on a quiet host and
            # after many seconds on a busy one: ask less often the longer it takes, so that
            # a slow one leaves tens of namespaces to remove, not hundreds
            time.sleep(nap)
            nap = min(0.5, nap * 1.5)
        pytest.skip("the kernel did not hand the deleted namespace's inode out again")

    def close(self):
        for ns in self.names:
            subprocess.run([PKTLENS, "-n", ns, "detach", "--all"], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        # the deleted namespace's attachment, when the test ended before removing it (or
        # skipped): left, its pins would show under the inode of whichever namespace gets it next
        for a in attachments(self.ino):
            subprocess.run([PKTLENS, "detach", "--netns", a["netns_id"], a["ifname"]],
                           capture_output=True)


@pytest.fixture
def reuse():
    r = ReusedNetns()
    try:
        yield r
    finally:
        r.close()


def attachments(ino):
    return [a for a in pktlens_json("list")["attachments"] if a["netns"] == ino]


def send_frames(ns, n, dev="va"):
    """n UDP frames from dev to its veth peer (scapy, from inside ns)."""
    from scapy.all import IP, UDP, Ether, wrpcap

    from lab import PYTHON, SENDRAW
    path = f"/tmp/{unique('plsend')}.pcap"
    wrpcap(path, [Ether(dst="02:00:00:00:00:01") / IP(src="198.18.10.1", dst="198.18.10.2")
                  / UDP(sport=1, dport=2)] * n)
    try:
        sh("ip", "netns", "exec", ns, PYTHON, SENDRAW, dev, path)
    finally:
        os.unlink(path)


@pytest.mark.parametrize("mech", ["tcx", pytest.param("clsact", marks=pytest.mark.variant)])
def test_new_namespace_never_inherits_a_deleted_ones_attachment(reuse, mech):
    """The kernel reuses a deleted namespace's inode: the new namespace must not see the old
    attachment as its own (not in stats, not 'already attached', no counters carried over by
    --force), and the old one stays listed, readable and removable by itself."""
    reuse.veth(reuse.old)
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", "--tc-mech", mech, ns=reuse.old)
    send_frames(reuse.old, 7)
    time.sleep(0.2)
    assert slot(pktlens_json("stats", "vb", ns=reuse.old), "tc", "in")["packets"] == 7
    reuse.delete_old()
    new = reuse.new()
    reuse.veth(new)
    r = pktlens("stats", "vb", ns=new, check=False)
    assert (r.returncode, r.stderr) == (2, "pktlens: stats: vb: not attached (pktlens attach vb)\n")
    assert pktlens("attach", "vb", "--xdp", "none", "--tc", "in", "--tc-mech", mech, ns=new).returncode == 0
    r = pktlens("attach", "vb", "--xdp", "none", "--tc", "in", "--tc-mech", mech, "--force", ns=new)
    assert "re-attached" in r.stdout
    assert slot(pktlens_json("stats", "vb", ns=new), "tc", "in")["packets"] == 0
    send_frames(new, 3)
    time.sleep(0.2)
    assert slot(pktlens_json("stats", "vb", ns=new), "tc", "in")["packets"] == 3
    mine = {a["netns_id"]: a for a in pktlens_json("list", ns=new)["attachments"]
            if a["netns"] == reuse.ino}
    assert len(mine) == 2
    old_id = next(k for k in mine if k != str(reuse.ino))
    assert old_id.startswith(f"{reuse.ino}:")
    assert (mine[old_id]["state"], mine[old_id]["this_netns"]) == ("netns-gone", False)
    assert (mine[str(reuse.ino)]["state"], mine[str(reuse.ino)]["this_netns"]) == ("attached", True)
    assert {a["netns_id"]: a["state"] for a in attachments(reuse.ino)}[old_id] == "netns-gone"
    # the old counters are still there, in the exporter too, and the old one goes by itself
    d = pktlens_json("detach", "--netns", old_id, "vb")
    assert d["detached"][0]["totals"][0]["packets"] == 7
    assert [a["netns_id"] for a in attachments(reuse.ino)] == [str(reuse.ino)]
    assert slot(pktlens_json("stats", "vb", ns=new), "tc", "in")["packets"] == 3
    r = pktlens("detach", "--netns", old_id, "vb", check=False)
    assert r.returncode == 2 and "no such attachment" in r.stderr


@pytest.mark.parametrize("mech", ["tcx", "clsact"])
def test_list_from_elsewhere_never_names_a_reused_inode(reuse, mech):
    """Seen from another namespace, a deleted namespace's attachment (not set aside: nothing
    attached in the new one) must not carry the name of the namespace that got its inode, nor
    pass as that namespace's; detach --stale removes it."""
    reuse.veth(reuse.old)
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", "--tc-mech", mech, ns=reuse.old)
    old = [a for a in attachments(reuse.ino) if a["ifname"] == "vb"]
    assert [(a["netns_name"], a["state"]) for a in old] == [(reuse.old, "other-netns")]
    reuse.delete_old()
    new = reuse.new()
    for doc in (pktlens_json("list"), pktlens_json("list", ns=new)):
        seen = [(a["netns_name"], a["state"], a["this_netns"]) for a in doc["attachments"]
                if a["netns"] == reuse.ino and a["ifname"] == "vb"]
        assert seen == [(None, "netns-gone", False)]
    text = [ln for ln in pktlens("list").stdout.splitlines() if f"{reuse.ino}" in ln]
    assert len(text) == 1 and f"({new})" not in text[0] and "netns-gone" in text[0]
    r = pktlens("detach", "--stale")
    assert r.returncode == 0 and "detached vb" in r.stdout, r
    assert [a for a in attachments(reuse.ino) if a["ifname"] == "vb"] == []


def test_detach_netns_of_a_deleted_namespace(lab):
    """A deleted namespace's clsact attachment (its inode not reused) is removed by itself from
    any namespace; one of a live namespace from elsewhere is detached inside it."""
    ns = unique("plq")
    sh("ip", "netns", "add", ns)
    try:
        quiet(ns)
        for n in (ns, lab.b):
            sh("ip", "-n", n, "link", "add", "gone0", "type", "veth", "peer", "name", "gone1")
            sh("ip", "-n", n, "link", "set", "gone0", "up")
            pktlens("attach", "gone0", "--xdp", "none", "--tc", "in", "--tc-mech", "clsact", ns=n)
        ino, live = netns_ino(ns), netns_ino(lab.b)
        # from the root namespace: a live namespace's clsact attachment is detached inside it
        pktlens("detach", "--netns", str(live), "gone0")
        out = sh("ip", "netns", "exec", lab.b, "tc", "filter", "show", "dev", "gone0", "ingress").stdout
        assert "pktlens" not in out
        sh("ip", "netns", "del", ns)
        time.sleep(0.3)
        r = pktlens("detach", "--netns", str(ino), "gone0", check=False)
        assert r.returncode == 0, r.stderr
        assert not os.path.exists(f"{PIN_ROOT}/{ino}/gone0")
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_stats_never_shows_another_interfaces_kernel_counters(lab):
    """An attached interface is deleted and another gets its ifindex: stats must not show the
    new interface's kernel counters as the attached one's, nor list call it renamed."""
    sh("ip", "-n", lab.b, "link", "add", "gone0", "type", "veth", "peer", "name", "gone1")
    sh("ip", "-n", lab.b, "link", "set", "gone0", "up")
    pktlens("attach", "gone0", "--xdp", "none", "--tc", "in", ns=lab.b)
    idx = json.loads(sh("ip", "-n", lab.b, "-j", "link", "show", "gone0").stdout)[0]["ifindex"]
    sh("ip", "-n", lab.b, "link", "del", "gone0")
    sh("ip", "-n", lab.b, "link", "add", "other0", "index", idx, "type", "veth", "peer", "name", "other1")
    sh("ip", "-n", lab.b, "link", "set", "other0", "up")
    doc = pktlens_json("stats", "gone0", ns=lab.b)["interfaces"][0]
    assert doc["kernel"] is None
    assert "is gone" in pktlens("stats", "gone0", ns=lab.b).stdout
    st = [a["state"] for a in pktlens_json("list", ns=lab.b)["attachments"]
          if a["ifname"] == "gone0" and a["this_netns"]]
    assert st == ["interface-gone"]
    # a filter or rules added to it would run nowhere: refused, as a sample of it is (they had
    # been "chained on tc in" / "rule 1 added"); flush, del and clear still tidy up
    assert sh("ip", "-n", lab.b, "link", "show", "gone0", check=False).returncode != 0
    for args in (["filter", "set", "gone0", "udp"], ["policy", "add", "gone0", "--drop"]):
        r = pktlens(*args, ns=lab.b, check=False)
        assert (r.returncode, r.stdout, r.stderr) == (
            2, "", f"pktlens: {args[0]} {args[1]}: gone0: the attached interface was deleted (its "
                   "counters: pktlens stats gone0; pktlens detach gone0 removes them)\n")
    pktlens("filter", "clear", "gone0", ns=lab.b)
    # and attaching the new interface is not refused because of the old one
    pktlens("attach", "other0", "--xdp", "none", "--tc", "in", ns=lab.b)


def test_interface_moved_to_another_namespace(lab, tmp_path):
    """An attached interface moved to another namespace (as container tools move veth ends) takes
    its XDP program along: list here says interface-moved, attach there names the attachment and
    the detach that frees it (not --force: the link holds it), and after that detach it attaches
    there."""
    other = f"{NS_PREFIX}plmv{os.getpid()}x{time.monotonic_ns() % 100000}"
    sh("ip", "-n", lab.b, "link", "add", "mv0", "type", "veth", "peer", "name", "mv1")
    sh("ip", "-n", lab.b, "link", "set", "mv0", "up")
    pktlens("attach", "mv0", "--xdp", "skb", "--tc", "none", ns=lab.b)
    sh("ip", "netns", "add", other)
    try:
        sh("ip", "-n", lab.b, "link", "set", "mv0", "netns", other)
        sh("ip", "-n", other, "link", "set", "mv0", "up")
        st = [a["state"] for a in pktlens_json("list", ns=lab.b)["attachments"]
              if a["ifname"] == "mv0" and a["this_netns"]]
        assert st == ["interface-moved"]
        for extra in ([], ["--force"]):
            r = pktlens("attach", "mv0", "--xdp", "skb", "--tc", "none", *extra, ns=other,
                        check=False)
            assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r
            if not extra:
                assert "the interface moved here from there" in r.stderr, r
                assert f"pktlens -n {lab.b} detach mv0" in r.stderr, r
        # the service's plan says the same of it, not "a foreign XDP program"
        conf = tmp_path / "mv.conf"
        conf.write_text(f"interfaces:\n  - match: mv0\n    netns: '{other}'\n    xdp: skb\n"
                        "    tc: none\n")
        r = pktlens("-j", "apply", str(conf), "--dry-run", check=False)
        plan = json.loads(r.stdout)
        assert r.returncode == 1 and not plan["steps"] and not plan["ok"], r
        assert [n for n in plan["blocked"] if "the interface moved here from there" in n
                and f"pktlens -n {lab.b} detach mv0" in n and n.startswith("mv0 (netns ")], plan
        pktlens("detach", "mv0", ns=lab.b)
        pktlens("attach", "mv0", "--xdp", "skb", "--tc", "none", ns=other)
        pktlens("detach", "mv0", ns=other)
    finally:
        subprocess.run(["ip", "netns", "del", other], capture_output=True)


class MovedVb:
    """lab.b's vb attached (tcx in and out), then moved to a namespace of its own, `c`."""

    def __init__(self, lab, hooks=("--xdp", "none", "--tc", "in,out")):
        self.lab, self.c = lab, unique("plc")
        pktlens("attach", "vb", *hooks, ns=lab.b)
        sh("ip", "netns", "add", self.c)
        try:
            quiet(self.c)
            sh("ip", "-n", lab.b, "link", "set", "vb", "netns", self.c)
            sh("ip", "-n", self.c, "link", "set", "vb", "up")
        except BaseException:
            self.close()
            raise

    def close(self):
        subprocess.run([PKTLENS, "-n", self.c, "detach", "--all"], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.c], capture_output=True)


@pytest.fixture
def moved(lab):
    m = MovedVb(lab)
    yield m
    m.close()


def test_new_interface_under_a_moved_ones_old_name(lab, moved):
    """vb attached, moved to netns c, a new vb made in its place: attach vb, with --force or
    without, is refused as moved there (it said the old one's interface was deleted, and
    --force took the running hooks off vb in c and gave its counters to the new vb)."""
    sh("ip", "-n", lab.b, "link", "add", "vb", "type", "veth", "peer", "name", "vb1")
    sh("ip", "-n", lab.b, "link", "set", "vb", "up")
    ino = netns_ino(moved.c)
    for extra in ([], ["--force"]):
        r = pktlens("attach", "vb", "--xdp", "none", "--tc", "in", *extra, ns=lab.b, check=False)
        assert (r.returncode, r.stdout, r.stderr) == (
            1, "", f"pktlens: attach: vb: the attachment named vb follows its interface, moved "
                   f"since: it is vb in netns {ino} ({moved.c}), where its hooks still run "
                   "(pktlens detach vb removes it, then vb can be attached)\n"), r
    send_frames(lab.a, 3)
    time.sleep(0.2)
    assert slot(pktlens_json("stats", "vb", ns=lab.b), "tc", "in")["packets"] == 3
    pktlens("detach", "vb", ns=lab.b)
    assert not [a for a in pktlens_json("list", ns=moved.c)["attachments"] if a["ifname"] == "vb"
                and (a["this_netns"] or a.get("netns_name") == lab.b)]
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)


def test_attach_refused_where_a_tcx_attachment_moved_to(lab, moved):
    """vb attached with tcx in lab.b, moved to netns c: attach vb there, --force or not, is
    refused naming the attachment and the detach that frees it (it attached a second pair of
    tc programs: every packet counted twice); after that detach it attaches there."""
    ino = netns_ino(lab.b)
    for extra in ([], ["--force"]):
        r = pktlens("attach", "vb", "--xdp", "none", "--tc", "in,out", *extra, ns=moved.c,
                    check=False)
        assert r.returncode == 1 and r.stdout == "" and len(r.stderr.splitlines()) == 1, r
        assert r.stderr.startswith("pktlens: attach: vb: pktlens's tc in program (id "), r
        assert r.stderr.endswith(f") of the attachment of vb in netns {ino} ({lab.b}) runs on "
                                 "it: the interface moved here from there; detach that one "
                                 f"first (pktlens -n {lab.b} detach vb)\n"), r
    assert not [a for a in pktlens_json("list", ns=moved.c)["attachments"]
                if a["ifname"] == "vb" and a["this_netns"]]
    pktlens("detach", "vb", ns=lab.b)
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=moved.c)
    send_frames(lab.a, 3)
    time.sleep(0.2)
    assert slot(pktlens_json("stats", "vb", ns=moved.c), "tc", "in")["packets"] == 3


def test_list_says_a_moved_tcx_attachment_moved_from_everywhere(lab, moved):
    """vb attached with tcx in lab.b, moved to netns c: list says interface-moved from the host,
    from lab.b and from c (from the host and c it said interface-gone), also once a new vb
    takes the name in lab.b."""
    def states():
        return {ns: [a["state"] for a in pktlens_json("list", ns=ns)["attachments"]
                     if a["ifname"] == "vb" and a.get("netns_name") == lab.b]
                for ns in (None, lab.b, moved.c)}
    assert states() == {None: ["interface-moved"], lab.b: ["interface-moved"],
                        moved.c: ["interface-moved"]}
    sh("ip", "-n", lab.b, "link", "add", "vb", "type", "veth", "peer", "name", "vb1")
    sh("ip", "-n", lab.b, "link", "set", "vb", "up")
    assert states() == {None: ["interface-moved"], lab.b: ["interface-moved"],
                        moved.c: ["interface-moved"]}


def test_stats_of_an_attachment_whose_interface_moved(lab, moved):
    """vb attached with tcx in lab.b, moved to netns c: stats in lab.b shows its hooks running
    there and its counters rising (it said its interface index is gone and every hook "not
    running: its program was taken off the interface")."""
    send_frames(lab.a, 3)
    time.sleep(0.2)
    doc = pktlens_json("stats", "vb", ns=lab.b)["interfaces"][0]
    assert doc["moved_to"] == {"ifname": "vb", "ifindex": doc["moved_to"]["ifindex"],
                               "netns": netns_ino(moved.c)}
    assert [h["attached"] for h in doc["hooks"]] == [True, True]
    assert doc["kernel"] is not None and doc["kernel"]["rx_packets"] >= 3
    assert slot({"interfaces": [doc]}, "tc", "in")["packets"] == 3
    out = pktlens("stats", "vb", ns=lab.b).stdout
    assert (f"  moved     to another namespace, its hooks along: it is vb in netns "
            f"{netns_ino(moved.c)} ({moved.c})\n") in out, out
    assert "is gone" not in out and "not running" not in out, out


def test_programs_taken_off_by_hand_are_not_a_deleted_interface(lab):
    """vb attached with clsact, its qdisc deleted by hand: attach says the programs were taken
    off vb, not that its interface was deleted."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", "--tc-mech", "clsact", ns=lab.b)
    sh("tc", "-n", lab.b, "qdisc", "del", "dev", "vb", "clsact")
    r = pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b, check=False)
    assert (r.returncode, r.stderr) == (
        1, "pktlens: attach: vb: an earlier attachment whose programs no longer run (something "
           "other than pktlens took them off vb) still holds counters (pktlens detach vb drops "
           "them, --force attaches again and keeps them)\n"), r


@pytest.mark.parametrize("hooks", [["--xdp", "skb", "--tc", "none"], ["--xdp", "none", "--tc", "in"]],
                         ids=["xdp", "tc"])
def test_reattach_renamed_interface_under_its_new_name(lab, hooks):
    """Renamed after attach: attaching the new name is refused as attached already (not a
    foreign program, not a second attachment counting twice); --force moves the attachment
    to the new name with its counters."""
    pktlens("attach", "vb", *hooks, ns=lab.b)
    send_frames(lab.a, 4)
    time.sleep(0.2)
    sh("ip", "-n", lab.b, "link", "set", "vb", "name", "vr")
    r = pktlens("attach", "vr", *hooks, ns=lab.b, check=False)
    assert (r.returncode, r.stderr) == (1, "pktlens: attach: vr: already attached as vb, its name "
                                           "before a rename (pktlens detach vb, or --force to "
                                           "re-attach as vr)\n")
    pktlens("attach", "vr", *hooks, "--force", ns=lab.b)
    names = [a["ifname"] for a in pktlens_json("list", ns=lab.b)["attachments"] if a["this_netns"]]
    assert names == ["vr"]
    send_frames(lab.a, 5)
    time.sleep(0.2)
    hook = ("xdp", "in") if hooks[1] == "skb" else ("tc", "in")
    assert slot(pktlens_json("stats", "vr", ns=lab.b), *hook)["packets"] == 9


ODD_NAMES = [b"\xff\xfe", b"v\x1b[2Jx", b"w\xc3\xa9\\x"]   # not UTF-8; a terminal escape; UTF-8 and a backslash


def run_raw(*args, ns=None, check=True):
    """pktlens with bytes arguments; stdout and stderr as bytes."""
    cmd = [os.fsencode(PKTLENS)] + ([b"-n", ns.encode()] if ns else []) + \
        [a if isinstance(a, bytes) else str(a).encode() for a in args]
    r = subprocess.run(cmd, capture_output=True, timeout=60)
    assert not check or r.returncode == 0, (cmd, r.stdout, r.stderr)
    return r


def terminal_safe(b):
    """Valid UTF-8 with no control character but newlines."""
    text = b.decode("utf-8")
    assert not [c for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) < 0xa0], text
    return text


@pytest.mark.parametrize("attached", [True, False], ids=["attached", "capture-only"])
def test_odd_interface_names_in_sample_summary_and_pcapng(lab, attached):
    """sample's summary line (stderr) and a pcapng file's interface name and description carry
    the name as pktlens shows it everywhere (\\xHH): no raw terminal escape on stderr, and
    pcapng's options stay the UTF-8 its format requires (tcpdump and scapy read the file)."""
    from scapy.all import Ether, IP, UDP, rdpcap, sendp  # noqa: F401
    for i, name in enumerate(ODD_NAMES):
        subprocess.run([b"ip", b"-n", lab.b.encode(), b"link", b"add", b"name", name, b"type",
                        b"veth", b"peer", b"name", f"odd{i}".encode()], check=True)
        subprocess.run([b"ip", b"-n", lab.b.encode(), b"link", b"set", name, b"up"], check=True)
        sh("ip", "-n", lab.b, "link", "set", f"odd{i}", "up")
        if attached:
            run_raw("attach", name, "--xdp", "none", "--tc", "in", ns=lab.b)
        path = os.path.join(lab.tmp, f"odd{i}.pcapng")
        p = subprocess.Popen([os.fsencode(PKTLENS), b"-n", lab.b.encode(), b"sample", name,
                              b"--pcapng", b"-c", b"1", b"-w", path.encode()],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        frame = bytes(Ether(dst="ff:ff:ff:ff:ff:ff") / IP(src="198.18.0.1", dst="198.18.0.2") /
                      UDP(sport=1, dport=2))
        deadline = time.time() + 20
        while p.poll() is None and time.time() < deadline:
            # from the peer, until the sampler took one
            sh("ip", "netns", "exec", lab.b, PYTHON, "-c",
               "import socket,sys; s=socket.socket(socket.AF_PACKET, socket.SOCK_RAW); "
               f"s.bind(('odd{i}', 0)); s.send(bytes.fromhex('{frame.hex()}'))")
            time.sleep(0.2)
        out, err = p.communicate(timeout=20)
        assert p.returncode == 0, err
        text = terminal_safe(err)
        summary = [ln for ln in text.splitlines() if " matched, " in ln]
        assert len(summary) == 1 and summary[0].startswith("pktlens: sample "), text
        data = open(path, "rb").read()
        idb = data[data.index(b"\x01\x00\x00\x00"):]            # first IDB on: options UTF-8
        opts = [o for o in idb.split(b"\x00") if b"@tc" in o or b"hook of" in o]
        assert opts and all(o.decode("utf-8") for o in opts)
        assert not any(b"\x1b" in o or b"\xff" in o for o in opts), opts
        assert len(rdpcap(path)) == 1


def test_odd_interface_names_in_apply_plans(lab):
    """apply (and the daemon's log, the same step lines) names interfaces as everywhere else:
    a terminal escape in a name never reaches the output raw."""
    subprocess.run([b"ip", b"-n", lab.b.encode(), b"link", b"add", b"name", ODD_NAMES[1], b"type",
                    b"veth", b"peer", b"name", b"odd1"], check=True)
    subprocess.run([b"ip", b"-n", lab.b.encode(), b"link", b"set", ODD_NAMES[1], b"up"], check=True)
    cfg = os.path.join(lab.tmp, "odd.yaml")
    with open(cfg, "w") as f:
        f.write(f'interfaces:\n  - match: "v?*x"\n    netns: "{lab.b}"\n    xdp: none\n'
                f'    tc: in\n')
    for extra in (["--dry-run"], []):
        r = run_raw("apply", cfg, *extra)
        text = terminal_safe(r.stdout)
        assert "v\\x1b[2Jx (netns " in text, text
    pktlens("detach", "--all", ns=lab.b)


def test_redirect_targets_with_quotes_or_hash_load_back(lab):
    """Names may hold quotes and '#': `policy list` quotes such a --redirect target, so its
    output loads back to the same rules. It had printed them bare, and load read a quote as
    the start of a quoted word ("unterminated quote") and a leading '#' as a comment."""
    names = [b"q'1", b'd"q', b"#h", b"b'\"x"]
    for i, name in enumerate(names):
        subprocess.run([b"ip", b"-n", lab.b.encode(), b"link", b"add", b"name", name, b"type",
                        b"veth", b"peer", b"name", f"qp{i}".encode()], check=True)
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    for i, name in enumerate(names):
        run_raw("policy", "add", "vb", "--proto", "udp", "--dport", 7000 + i, "--redirect", name,
                ns=lab.b)
    text = run_raw("policy", "list", "vb", ns=lab.b).stdout
    path = os.path.join(lab.tmp, "quoted.rules")
    with open(path, "wb") as f:
        f.write(text)
    r = run_raw("policy", "load", "vb", path, ns=lab.b, check=False)
    assert (r.returncode, r.stderr) == (0, b"")
    # (the '#' comments count packets: the kernel's own may come in between)
    assert [x for x in run_raw("policy", "list", "vb", ns=lab.b).stdout.splitlines()
            if not x.startswith(b"#")] == [x for x in text.splitlines() if not x.startswith(b"#")]
    rules = json.loads(run_raw("-j", "policy", "list", "vb", ns=lab.b).stdout)["interfaces"][0]["rules"]
    assert [r["redirect"] for r in rules] == [n.decode() for n in names]


def test_odd_interface_names_keep_every_output_valid(lab):
    """Interface names that are not UTF-8 or hold control characters: every -j output stays
    valid JSON (and UTF-8), the text output and errors carry no raw control characters, and
    a Prometheus scrape stays valid UTF-8 with one series per interface (promtool agrees)."""
    from lab import Exporter

    for i, name in enumerate(ODD_NAMES):
        subprocess.run([b"ip", b"-n", lab.b.encode(), b"link", b"add", b"name", name, b"type", b"veth",
                        b"peer", b"name", f"odd{i}".encode()], check=True)
        subprocess.run([b"ip", b"-n", lab.b.encode(), b"link", b"set", name, b"up"], check=True)
        run_raw("attach", name, "--xdp", "none", "--tc", "in", ns=lab.b)
        run_raw("policy", "add", name, "--proto", "udp", "--redirect", name, ns=lab.b)
    for args in (["list"], ["stats"], ["flows"], ["policy", "list"]):
        doc = json.loads(run_raw("-j", *args, ns=lab.b).stdout.decode("utf-8"))
        assert doc
        terminal_safe(run_raw(*args, ns=lab.b).stdout)
    names = {a["ifname"] for a in json.loads(run_raw("-j", "list", ns=lab.b).stdout)["attachments"]
             if a["this_netns"]}
    assert names == {"\\xff\\xfe", "v\\x1b[2Jx", "wé\\\\x"}
    # what policy list prints loads back, odd redirect targets too
    text = run_raw("policy", "list", ODD_NAMES[0], ns=lab.b).stdout
    path = os.path.join(lab.tmp, "odd.rules")
    with open(path, "wb") as f:
        f.write(text)
    run_raw("policy", "load", ODD_NAMES[0], path, ns=lab.b)
    assert run_raw("policy", "list", ODD_NAMES[0], ns=lab.b).stdout.split(b"\n")[1] == text.split(b"\n")[1]
    r = run_raw("stats", b"no\x1b]0;x\x07pe", ns=lab.b, check=False)
    assert r.returncode == 2 and terminal_safe(r.stderr).startswith("pktlens: stats: no\\x1b]0;x\\x07pe: ")
    json.loads(run_raw("-j", "stats", b"\xff\x01", ns=lab.b, check=False).stdout.decode("utf-8"))
    e = Exporter()
    try:
        import urllib.request
        with urllib.request.urlopen(f"http://127.0.0.1:{e.port}/metrics", timeout=10) as resp:
            body = resp.read()
    finally:
        e.kill()
    text = body.decode("utf-8")
    ino = netns_ino(lab.b)
    devs = {line.split('device="')[1].split('"')[0] for line in text.splitlines()
            if line.startswith("pktlens_packets_total{") and f'netns="{ino}"' in line}
    assert devs == {"\\\\xff\\\\xfe", "v\\\\x1b[2Jx", "wé\\\\\\\\x"}
    r = subprocess.run(["promtool", "check", "metrics"], input=body, capture_output=True)
    assert r.returncode == 0, r.stdout + r.stderr
    d = json.loads(run_raw("-j", "detach", "--all", ns=lab.b).stdout.decode("utf-8"))
    assert len(d["detached"]) == 3


def test_errors_show_names_as_every_other_output_does(lab):
    """Two interfaces whose names differ by a control byte and its \\xHH spelling: errors
    name each as `list` does (a backslash as \\\\), so they never look alike; a word no
    interface could have (over 15 bytes) keeps its reason in attach's error."""
    a, b = b"h\x01z", b"h\\x01z"
    for i, name in enumerate((a, b)):
        subprocess.run([b"ip", b"-n", lab.b.encode(), b"link", b"add", b"name", name, b"type", b"veth",
                        b"peer", b"name", f"pe{i}".encode()], check=True)
        subprocess.run([b"ip", b"-n", lab.b.encode(), b"link", b"set", name, b"up"], check=True)
        run_raw("attach", name, "--xdp", "none", "--tc", "in", ns=lab.b)
    shown = {n: terminal_safe(run_raw("stats", n, ns=lab.b).stdout).split()[0] for n in (a, b)}
    assert shown == {a: "h\\x01z", b: "h\\\\x01z"}
    errs = {}
    for n in (a, b):
        r = run_raw("attach", n, "--xdp", "none", "--tc", "in", ns=lab.b, check=False)
        errs[n] = terminal_safe(r.stderr)
        assert r.returncode == 1 and errs[n] == \
            f"pktlens: attach: {shown[n]}: already attached (pktlens detach {shown[n]}, or --force to " \
            "re-attach)\n"
    r = run_raw("flows", b"q\\" + a, ns=lab.b, check=False)
    assert r.returncode == 2 and terminal_safe(r.stderr).startswith("pktlens: flows: q\\\\h\\x01z: not attached")
    for n in (16, 40, 300, 5000):
        word = "l" * n
        r = pktlens("attach", word, ns=lab.b, check=False)
        assert (r.returncode, r.stderr) == \
            (2, f"pktlens: attach: {word}: no such interface (names are at most 15 bytes, and no "
                "interface has it as an alternative name)\n")
    run_raw("detach", a, ns=lab.b)
    run_raw("detach", b, ns=lab.b)


def test_odd_interface_names_in_stats_watch(lab):
    """stats --watch's lines name the interface as every other output does: no raw control
    character reaches the terminal (it printed the name's bytes as they are)."""
    for i, name in enumerate(ODD_NAMES):
        subprocess.run([b"ip", b"-n", lab.b.encode(), b"link", b"add", b"name", name, b"type", b"veth",
                        b"peer", b"name", f"odd{i}".encode()], check=True)
        subprocess.run([b"ip", b"-n", lab.b.encode(), b"link", b"set", name, b"up"], check=True)
        run_raw("attach", name, "--xdp", "none", "--tc", "in", ns=lab.b)
    w = subprocess.Popen([PKTLENS, "-n", lab.b, "stats", "--watch", "1"], stdout=subprocess.PIPE)
    try:
        lines = [w.stdout.readline() for _ in range(1 + len(ODD_NAMES))]
    finally:
        w.terminate()
        assert w.wait(timeout=5) == 0
    text = terminal_safe(b"".join(lines))
    assert {line.split()[1] for line in text.splitlines()[1:]} == \
        {"\\xff\\xfe", "v\\x1b[2Jx", "wé\\\\x"}, text


@pytest.mark.parametrize("cmd", ["stats", "flows", "detach"])
def test_commands_on_a_renamed_interfaces_new_name(lab, cmd):
    """vb attached, then renamed vr: `CMD vr` says it is attached as vb and how to reach it,
    not 'not attached (pktlens attach vr)', an attach that is refused."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    sh("ip", "-n", lab.b, "link", "set", "vb", "name", "vr")
    r = pktlens(cmd, "vr", ns=lab.b, check=False)
    assert (r.returncode, r.stdout, r.stderr) == \
        (2, "", f"pktlens: {cmd}: vr: attached as vb, its name before a rename (use vb, or "
                "pktlens attach vr --force to move it to this name)\n")
    assert pktlens("attach", "vr", ns=lab.b, check=False).returncode == 1  # what it used to say
    pktlens(cmd, "vb", ns=lab.b)


def test_new_interface_under_a_renamed_ones_old_name(lab):
    """vb attached, renamed vr, a new vb made: attaching the new vb says whose attachment holds
    the name and how to free it, not 'vb: already attached' (the new vb never was); the advice
    works and both count on their own."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    sh("ip", "-n", lab.b, "link", "set", "vb", "name", "vr")
    sh("ip", "-n", lab.b, "link", "add", "vb", "type", "veth", "peer", "name", "vb1")
    sh("ip", "-n", lab.b, "link", "set", "vb", "up")
    r = pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b, check=False)
    assert (r.returncode, r.stderr) == (1, "pktlens: attach: vb: the attachment named vb follows "
                                           "its interface, renamed vr since (pktlens attach vr "
                                           "--force moves it to that name, pktlens detach vb "
                                           "removes it)\n")
    pktlens("attach", "vr", "--xdp", "none", "--tc", "in", "--force", ns=lab.b)
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    assert sorted((a["ifname"], a["state"]) for a in pktlens_json("list", ns=lab.b)["attachments"]
                  if a["this_netns"]) == [("vb", "attached"), ("vr", "attached")]
    send_frames(lab.a, 3)
    time.sleep(0.2)
    assert slot(pktlens_json("stats", "vr", ns=lab.b), "tc", "in")["packets"] == 3
    assert slot(pktlens_json("stats", "vb", ns=lab.b), "tc", "in")["packets"] == 0


def test_force_does_not_take_a_renamed_interfaces_attachment(lab):
    """vb attached, renamed vr, a new vb made: `attach vb --force` is refused as attach vb is
    (it had re-attached, taking vr's hooks off and carrying vr's counters to the new vb)."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    sh("ip", "-n", lab.b, "link", "set", "vb", "down")
    sh("ip", "-n", lab.b, "link", "set", "vb", "name", "vr")
    sh("ip", "-n", lab.b, "link", "set", "vr", "up")
    sh("ip", "-n", lab.b, "link", "add", "vb", "type", "veth", "peer", "name", "vb1")
    sh("ip", "-n", lab.b, "link", "set", "vb", "up")
    send_frames(lab.a, 2)
    r = pktlens("attach", "vb", "--xdp", "none", "--tc", "in", "--force", ns=lab.b, check=False)
    assert (r.returncode, r.stdout, r.stderr) == (
        1, "", "pktlens: attach: vb: the attachment named vb follows its interface, renamed vr "
               "since (pktlens attach vr --force moves it to that name, pktlens detach vb "
               "removes it)\n")
    # vr still counts, under its attachment
    send_frames(lab.a, 3)
    time.sleep(0.2)
    assert slot(pktlens_json("stats", "vb", ns=lab.b), "tc", "in")["packets"] == 5
    assert [(a["ifname"], a["state"]) for a in pktlens_json("list", ns=lab.b)["attachments"]
            if a["this_netns"]] == [("vb", "interface-renamed (now vr)")]


def test_interface_recreated_under_the_same_name(lab):
    """An attached interface deleted and made again: attach says the old attachment's
    programs no longer run and what keeps or drops its counters, not 'already attached'."""
    for _ in range(2):
        sh("ip", "-n", lab.b, "link", "add", "re0", "type", "veth", "peer", "name", "re1")
        sh("ip", "-n", lab.b, "link", "set", "re0", "up")
        if _ == 0:
            pktlens("attach", "re0", "--xdp", "none", "--tc", "in", ns=lab.b)
            sh("ip", "-n", lab.b, "link", "del", "re0")
    r = pktlens("attach", "re0", "--xdp", "none", "--tc", "in", ns=lab.b, check=False)
    assert (r.returncode, r.stderr) == (1, "pktlens: attach: re0: an earlier attachment whose "
                                           "programs no longer run (its interface was deleted) still "
                                           "holds counters (pktlens detach re0 drops them, --force "
                                           "carries them over to this one)\n")
    pktlens("detach", "re0", ns=lab.b)
    pktlens("attach", "re0", "--xdp", "none", "--tc", "in", ns=lab.b)
    assert [a["state"] for a in pktlens_json("list", ns=lab.b)["attachments"]
            if a["this_netns"] and a["ifname"] == "re0"] == ["attached"]


def test_force_over_a_deleted_interface_keeps_one_row_per_flow(lab):
    """re0 attached, a flow counted, re0 deleted and made again (another ifindex), attach
    --force carries the counters over: the flow's later packets add to the same row, which
    names the new interface's index, not two identical rows."""
    def make():
        sh("ip", "-n", lab.b, "link", "add", "re0", "type", "veth", "peer", "name", "re1")
        sh("ip", "-n", lab.b, "link", "set", "re0", "up")
        sh("ip", "-n", lab.b, "link", "set", "re1", "up")

    def udp_flows():
        return [(f["ifindex"], f["src"], f["sport"], f["packets"])
                for f in pktlens_json("flows", "re0", ns=lab.b)["flows"] if f["proto"] == "udp"]

    make()
    pktlens("attach", "re0", "--xdp", "skb", "--tc", "none", ns=lab.b)
    send_frames(lab.b, 2, dev="re1")
    time.sleep(0.2)
    old = json.loads(sh("ip", "-n", lab.b, "-j", "link", "show", "re0").stdout)[0]["ifindex"]
    assert udp_flows() == [(old, "198.18.10.1", 1, 2)]
    sh("ip", "-n", lab.b, "link", "del", "re0")
    make()
    new = json.loads(sh("ip", "-n", lab.b, "-j", "link", "show", "re0").stdout)[0]["ifindex"]
    assert new != old
    pktlens("attach", "re0", "--xdp", "skb", "--tc", "none", "--force", ns=lab.b)
    send_frames(lab.b, 3, dev="re1")
    time.sleep(0.2)
    assert udp_flows() == [(new, "198.18.10.1", 1, 5)]
    doc = pktlens_json("stats", "re0", ns=lab.b)
    assert slot(doc, "xdp", "in")["packets"] == sum(
        f["packets"] for f in pktlens_json("flows", "re0", ns=lab.b)["flows"])


def test_vlan_interfaces_named_with_dots(lab):
    """eth0.100 is how VLAN interfaces are named, and bpffs refuses '.' in a name: a dotted
    interface attaches, counts what the kernel says it received, takes rules, survives --force
    and a rename, is captured without an attach, and leaves no pins behind."""
    from scapy.all import IP, UDP, Ether

    # a veth pair named like VLANs (the test kernel may lack 8021q): the name is what matters
    dev, peer = "vb.3017", "va.3017"
    sh("ip", "-n", lab.b, "link", "add", dev, "type", "veth", "peer", "name", peer, "netns", lab.a)
    sh("ip", "-n", lab.b, "link", "set", dev, "up")
    sh("ip", "-n", lab.a, "link", "set", peer, "up")
    pktlens("attach", dev, "--xdp", "none", "--tc", "in", ns=lab.b)
    mac = lab.mac(lab.b, dev)
    frames = [Ether(dst=mac) / IP(src="198.18.0.1", dst="198.18.0.2")
              / UDP(sport=4000 + i, dport=6000 + i % 2) for i in range(11)]
    before = lab.link_stats(lab.b, dev)["rx"]["packets"]
    lab.send(frames, dev=peer)
    lab.wait_packets(11, dev=dev)
    assert slot(pktlens_json("stats", dev, ns=lab.b), "tc", "in")["packets"] == 11 == \
        lab.link_stats(lab.b, dev)["rx"]["packets"] - before
    mine = [a for a in pktlens_json("list", ns=lab.b)["attachments"] if a["this_netns"]]
    assert [(a["ifname"], a["state"]) for a in mine] == [(dev, "attached")]
    assert "." not in os.path.basename(mine[0]["pins"]) and os.path.isdir(mine[0]["pins"])
    pktlens("policy", "add", dev, "--proto", "udp", "--dport", 6001, "--drop", ns=lab.b)
    pktlens("attach", dev, "--xdp", "none", "--tc", "in", "--force", ns=lab.b)
    lab.send(frames, dev=peer)
    lab.wait_packets(22, dev=dev)
    rules = pktlens_json("policy", "list", dev, ns=lab.b)["interfaces"][0]["rules"]
    assert [r["packets"] for r in rules] == [5]
    # renamed to another dotted name: found under the old one, re-attached under the new
    sh("ip", "-n", lab.b, "link", "set", dev, "name", "v.l.a.n")
    assert [a["state"] for a in pktlens_json("list", ns=lab.b)["attachments"]
            if a["this_netns"]] == ["interface-renamed (now v.l.a.n)"]
    pktlens("attach", "v.l.a.n", "--xdp", "none", "--tc", "in", "--force", ns=lab.b)
    assert slot(pktlens_json("stats", "v.l.a.n", ns=lab.b), "tc", "in")["packets"] == 22
    pins = [a["pins"] for a in pktlens_json("list", ns=lab.b)["attachments"] if a["this_netns"]]
    assert [os.path.basename(x) for x in pins] == ["v%2el%2ea%2en"]
    d = pktlens_json("detach", "v.l.a.n", ns=lab.b)
    assert d["detached"][0]["ifname"] == "v.l.a.n"
    assert not os.path.exists(pins[0]) and not os.path.exists(mine[0]["pins"])
    # a capture on a dotted interface nothing attached
    out = os.path.join(lab.tmp, "vlan.pcap")
    p = subprocess.Popen([PKTLENS, "-n", lab.b, "sample", "v.l.a.n", "-w", out, "-c", "4",
                          "udp dst port 6000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    deadline = time.time() + 10
    while time.time() < deadline and not any(n.startswith("cap:") for n in os.listdir(PIN_ROOT)):
        time.sleep(0.05)
    time.sleep(0.3)
    lab.send(frames, dev=peer)
    _, err = p.communicate(timeout=20)
    assert p.returncode == 0, err
    got = sh("tcpdump", "-nr", out).stdout.splitlines()
    assert len(got) == 4 and all(".6000:" in line for line in got), got
    assert not [n for n in os.listdir(PIN_ROOT) if n.startswith("cap:")]
    assert sh("tc", "-n", lab.b, "filter", "show", "dev", "v.l.a.n", "ingress").stdout == ""


def long_expr(size, tail):
    """A valid expression of exactly `size` bytes ending in `tail`."""
    head = "tcp port 80"
    while len(head) + len(" or tcp port 80") + len(" or ") + len(tail) <= size:
        head += " or tcp port 80"
    return head + " " * (size - len(head) - len(" or ") - len(tail)) + " or " + tail


def test_long_expressions_keep_their_reason_and_one_limit(lab):
    """An error about a long expression keeps its reason (it used to be cut at 1,024 bytes), and
    every command that takes an expression accepts 2,047 bytes and refuses 2,048 with exit 2."""
    bad = long_expr(1900, "tcp port foo")
    r = pktlens("filter", "compile", bad, check=False)
    assert r.returncode == 2 and r.stderr.rstrip("\n").endswith("unknown port 'foo'"), r.stderr[-200:]
    assert bad in r.stderr
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    path = os.path.join(lab.tmp, "long.rules")
    with open(path, "w") as f:
        f.write(f"--proto udp --drop '{bad}'\n")
    r = pktlens("policy", "load", "vb", path, ns=lab.b, check=False)
    assert r.returncode == 2 and r.stderr.rstrip("\n").endswith("unknown port 'foo'"), r.stderr[-200:]
    cap = os.path.join(lab.tmp, "one.pcap")
    from scapy.all import IP, UDP, Ether, wrpcap
    wrpcap(cap, [Ether() / IP(src="198.18.10.1", dst="198.18.10.2") / UDP(sport=1, dport=2)])
    ok, over = long_expr(2047, "udp"), long_expr(2048, "udp")
    assert len(ok) == 2047 and len(over) == 2048
    commands = [(["filter", "compile"], None), (["filter", "run", "-r", cap], None),
                (["filter", "set", "vb"], lab.b), (["policy", "add", "vb", "--drop"], lab.b),
                (["sample", "vb", "-c", "1", "--duration", "1"], lab.b)]
    for args, ns in commands:
        r = pktlens(*args, over, ns=ns, check=False)
        assert r.returncode == 2 and "expression is 2048 bytes long, at most 2047 are kept" in r.stderr, \
            (args, r.stderr[-300:])
        assert len(r.stderr.splitlines()) == 1
    for args, ns in commands:
        r = pktlens(*args, ok, ns=ns, check=False)
        assert r.returncode == 0, (args, r.stderr[-300:])


def test_rule_files_with_a_bom_and_over_the_rule_limit(lab):
    """A UTF-8 byte order mark at the start of a rule file is skipped (not an expression); a
    file with more rules than an interface takes is refused at the first line too many."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    path = os.path.join(lab.tmp, "bom.rules")
    with open(path, "wb") as f:
        f.write(b"\xef\xbb\xbf--proto udp --dport 53 --drop\n--src 198.18.0.0/15 --pass\n")
    assert pktlens("policy", "load", "vb", path, ns=lab.b).returncode == 0
    rules = [r["rule"] for r in pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"]]
    assert rules == ["--id 1 --in --prio 1000 --proto udp --dport 53 --drop",
                     "--id 2 --in --prio 1000 --src 198.18.0.0/15 --pass"]
    big = os.path.join(lab.tmp, "big.rules")
    with open(big, "w") as f:
        f.write("# 262,145 rules\n")
        f.writelines(f"--dst 2001:db8:{i >> 16:x}:{i & 0xffff:x}::/64 --drop\n" for i in range(262145))
    r = pktlens("policy", "load", "vb", big, ns=lab.b, check=False, timeout=300)
    assert (r.returncode, r.stderr) == (2, f"pktlens: policy load: {big}:262146:1: more than 262144 rules: "
                                           "at most 262144 per interface\n")
    assert len(pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"]) == 2


def test_global_options_and_netns_errors(lab):
    """-j -V prints JSON, -j alone a JSON error (exit 2); --netns=X works like --netns X; an
    error entering the namespace names the command."""
    doc = json.loads(pktlens("-j", "-V").stdout)
    assert doc["version"] == pktlens("-V").stdout.split()[1] and "features" in doc
    assert json.loads(pktlens("-V", "-j").stdout)["version"]
    r = pktlens("-j", check=False)
    assert r.returncode == 2 and "error" in json.loads(r.stdout)
    assert pktlens(f"--netns={lab.b}", "-j", "list").stdout == pktlens("-j", "list", ns=lab.b).stdout
    pktlens(f"--netns=/run/netns/{lab.b}", "attach", "vb", "--xdp", "none", "--tc", "in")
    assert pktlens_json("stats", "vb", ns=lab.b)["interfaces"][0]["ifname"] == "vb"
    for args in (["stats"], ["policy", "list"], ["detach", "--all"]):
        r = pktlens("-n", "nosuchns0", *args, check=False)
        assert (r.returncode, r.stderr) == (2, f"pktlens: {args[0]}: netns 'nosuchns0': No such file or "
                                               "directory\n")
    r = pktlens("--netns=", "list", check=False)
    assert r.returncode == 2


def test_netns_by_pid(lab):
    """-n PID enters the network namespace of that process, as nsenter -t does, where no
    namespace has that name; a PID that is not there is an error naming it."""
    p = subprocess.Popen(["nsenter", f"--net=/run/netns/{lab.b}", "sleep", "30"])
    try:
        want = os.stat(f"/run/netns/{lab.b}").st_ino
        for _ in range(100):    # until nsenter has entered it
            if os.stat(f"/proc/{p.pid}/ns/net").st_ino == want:
                break
            time.sleep(0.05)
        pktlens("-n", str(p.pid), "attach", "vb", "--xdp", "none", "--tc", "in")
        assert [a["ifname"] for a in pktlens_json("list", ns=lab.b)["attachments"]
                if a["this_netns"]] == ["vb"]
        assert pktlens_json("-n", str(p.pid), "stats", "vb")["interfaces"][0]["ifname"] == "vb"
    finally:
        p.kill()
        p.wait()
    r = pktlens("-n", str(p.pid), "list", check=False)
    assert (r.returncode, r.stderr) == (2, f"pktlens: list: netns '{p.pid}': No such file or "
                                           "directory\n")



def test_a_netns_that_is_no_network_namespace_is_not_opened(tmp_path):
    """-n and --netns opened the path to read it whatever it was: a FIFO hung the command for
    good (no writer ever came), a device was opened (a tape rewinds, a watchdog starts), and a
    file or another kind of namespace was said as 'setns: Invalid argument'. Now only a network
    namespace's file is opened; anything else is 'not a network namespace', exit 2."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    plain = tmp_path / "plain"
    plain.write_text("x")
    for path in (fifo, plain, tmp_path, "/proc/self/ns/user"):
        r = pktlens("-n", path, "list", check=False, timeout=10)
        assert (r.returncode, r.stderr) == (2, f"pktlens: list: netns '{path}': not a network "
                                               "namespace\n"), r
        r = pktlens("tcp", "rtt", "--netns", path, "--duration", "1", check=False, timeout=10)
        assert (r.returncode, r.stderr) == (2, f"pktlens: tcp rtt: --netns '{path}': not a network "
                                               "namespace\n"), r
    # a network namespace's own files still work: a process's link and a bind mount
    assert pktlens("-n", "/proc/self/ns/net", "-j", "list").returncode == 0


@pytest.mark.skipif(SAN, reason="the sanitizers' runtime reads its options and, for the leak "
                    "check, the process's threads from /proc")
def test_a_netns_is_entered_where_proc_is_not_mounted(lab):
    """The namespace file is reopened through /proc/self/fd once known to be one; without /proc
    (a mount namespace without it) that said 'No such file or directory' of a namespace that
    is there."""
    r = subprocess.run(["unshare", "-m", "sh", "-c",
                        f'umount -l /proc && exec "$0" -n /run/netns/{lab.b} -j list', PKTLENS],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_an_alternative_name_is_its_interface(lab):
    """attach took an interface's altname (ip link property add ... altname) and pinned the
    attachment under the interface's name, but every other command looked for pins under the
    altname and said 'attached as vb, its name before a rename' (there was none), and sample
    put capture-only programs beside the attachment. Now an altname is its interface."""
    sh("ip", "-n", lab.b, "link", "property", "add", "dev", "vb", "altname", "h4alt")
    r = pktlens("attach", "h4alt", "--xdp", "none", "--tc", "in", ns=lab.b)
    # and names it, as list does (it said 'attached h4alt')
    assert r.stdout.startswith("attached vb (ifindex "), r.stdout
    assert pktlens_json("stats", "h4alt", ns=lab.b)["interfaces"][0]["ifname"] == "vb"
    r = pktlens("policy", "add", "h4alt", "--proto", "udp", "--pass", ns=lab.b)
    assert r.stdout == "vb: rule 1 added: --id 1 --in --prio 1000 --proto udp --pass\n"
    r = pktlens("sample", "h4alt", "--duration", "1", "-w", os.devnull, ns=lab.b)
    assert "not attached" not in r.stderr and "sample vb: " in r.stderr, r.stderr
    r = pktlens("detach", "h4alt", ns=lab.b)
    assert r.stdout.startswith("detached vb: final totals"), r.stdout
    assert [a for a in pktlens_json("list", ns=lab.b)["attachments"] if a["this_netns"]] == []


def test_a_rules_file_that_cannot_run_in_list_order_says_so(lab, tmp_path):
    """'--id 262144 --pass' then '--drop': no id is free after 262144, so the drop took id 1
    and ran first, dropping everything the file meant to pass, with nothing said; `policy add`
    the same. Both still do what they did (ids decide), and now say which rule runs out of its
    place."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    f = tmp_path / "r.rules"
    f.write_text("--id 262144 --pass\n--drop\n")
    r = pktlens("policy", "load", "vb", f, ns=lab.b)
    assert r.stderr == (f"pktlens: policy load: {f}:2:1: rule id 1 runs before rule id 262144 "
                        "(line 1), listed above it in priority 1000: the ids given leave no room "
                        "to run them in list order (ids run in order within a priority); give "
                        "them ids further apart, or another --prio\n"), r.stderr
    assert [x["id"] for x in pktlens_json("policy", "list", "vb", ns=lab.b)["interfaces"][0]["rules"]] \
        == [1, 262144]
    # in list order, or ids given out of it on purpose (policy list's own output): nothing said
    for text in ("--id 10 --pass\n--drop\n", "--id 20 --pass\n--id 10 --drop\n"):
        f.write_text(text)
        assert pktlens("policy", "load", "vb", f, ns=lab.b).stderr == ""
    f.write_text(pktlens("policy", "list", "vb", ns=lab.b).stdout)
    assert pktlens("policy", "load", "vb", f, ns=lab.b).stderr == ""
    # policy add without --id once 262144 is taken: the lowest free id, before the rest
    pktlens("policy", "flush", "vb", ns=lab.b)
    pktlens("policy", "add", "vb", "--id", "262144", "--pass", ns=lab.b)
    r = pktlens("policy", "add", "vb", "--drop", ns=lab.b)
    assert (r.stdout, r.stderr) == ("vb: rule 1 added: --id 1 --in --prio 1000 --drop\n",
                                    "pktlens: policy add: vb: rule id 1 runs before rule id 262144, "
                                    "added before it in priority 1000: no id is free after 262144 "
                                    "(ids run in order within a priority); give it an --id or "
                                    "another --prio to run it after\n"), r
    assert pktlens("policy", "add", "vb", "--prio", "5", "--drop", ns=lab.b).stderr == ""

def test_a_long_alternative_name_is_its_interface(lab):
    """An altname may be 127 bytes (ALTIFNAMSIZ), and long ones are what altnames are for, but
    one over 15 bytes was refused as 'no such interface (names are at most 15 bytes)' by attach
    and as 'not attached (pktlens attach ALT)' by the others (an attach that failed). Now every
    command resolves it (RTM_GETLINK by IFLA_ALT_IFNAME) and acts on, and names, vb."""
    alt = "h6-" + "x" * 36 + "1"
    assert len(alt) == 40
    sh("ip", "-n", lab.b, "link", "property", "add", "dev", "vb", "altname", alt)
    r = pktlens("attach", alt, "--xdp", "none", "--tc", "in", ns=lab.b)
    assert r.stdout.startswith("attached vb (ifindex "), r.stdout
    before = lab.link_stats(lab.b, "vb")["rx"]["packets"]
    send_frames(lab.a, 7)
    lab.wait_packets(7)
    kernel = lab.link_stats(lab.b, "vb")["rx"]["packets"] - before
    by_alt, by_name = pktlens_json("stats", alt, ns=lab.b), pktlens_json("stats", "vb", ns=lab.b)
    assert by_alt["interfaces"][0]["ifname"] == "vb"
    assert by_alt["interfaces"][0]["hooks"][0]["packets"] == kernel == 7
    assert by_alt["interfaces"][0]["hooks"] == by_name["interfaces"][0]["hooks"]
    flows = [pktlens_json("flows", d, ns=lab.b)["flows"] for d in (alt, "vb")]
    assert [(f["ifname"], f["packets"]) for f in flows[0]] == \
        [(f["ifname"], f["packets"]) for f in flows[1]] == [("vb", 7)]
    r = pktlens("policy", "add", alt, "--proto", "udp", "--pass", ns=lab.b)
    assert r.stdout == "vb: rule 1 added: --id 1 --in --prio 1000 --proto udp --pass\n"
    assert pktlens("policy", "list", alt, ns=lab.b).stdout == \
        pktlens("policy", "list", "vb", ns=lab.b).stdout
    r = pktlens("sample", alt, "--duration", "1", "-w", os.devnull, ns=lab.b)
    assert "sample vb: " in r.stderr and "not attached" not in r.stderr, r.stderr
    r = pktlens("drops", alt, "--duration", "1", ns=lab.b)
    assert "counting on vb," in r.stderr, r.stderr
    # a long name no interface has is still refused as no interface, by every command
    for cmd in (["attach"], ["stats"], ["policy", "list"], ["detach"]):
        r = pktlens(*cmd, alt[:-1] + "2", ns=lab.b, check=False)
        assert (r.returncode, r.stderr) == (2, f"pktlens: {' '.join(cmd)}: {alt[:-1]}2: no such "
                                            "interface (names are at most 15 bytes, and no "
                                            "interface has it as an alternative name)\n")
    r = pktlens("detach", alt, ns=lab.b)
    assert r.stdout == "detached vb: final totals: tc in 7 packets, " \
        f"{by_name['interfaces'][0]['hooks'][0]['bytes']} bytes\n", r.stdout
    assert [a for a in pktlens_json("list", ns=lab.b)["attachments"] if a["this_netns"]] == []


def test_detach_netns_takes_no_altname_of_this_namespace(lab, lab2):
    """detach --netns NETNS DEV names an attachment of NETNS as list shows it; a long DEV was
    taken as an altname of this namespace and its interface's name (vb) looked up in NETNS,
    detaching lab2's vb there. Now it is no attachment of NETNS, and nothing is detached."""
    alt = "h6-this-namespaces-altname-" + "z" * 12 + "1"
    sh("ip", "-n", lab.b, "link", "property", "add", "dev", "vb", "altname", alt)
    for b in (lab.b, lab2.b):
        pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=b)
    other = [a for a in pktlens_json("list", ns=lab2.b)["attachments"] if a["this_netns"]]
    r = pktlens("detach", "--netns", other[0]["netns_id"], alt, ns=lab.b, check=False)
    assert (r.returncode, r.stdout) == (2, ""), r.stdout
    assert r.stderr == f"pktlens: detach: --netns {other[0]['netns_id']} {alt}: no such " \
        "attachment (see pktlens list)\n"
    assert [a for a in pktlens_json("list", ns=lab2.b)["attachments"] if a["this_netns"]] == other
    # without --netns it is this namespace's vb
    assert pktlens("detach", alt, ns=lab.b).stdout.startswith("detached vb: ")


def test_a_long_alternative_name_is_a_redirect_target(lab):
    """policy --redirect looked its target up with if_nametoindex(), which takes no name over
    15 bytes: an interface's long altname was 'no such interface'. Now it is that interface."""
    alt = "h6-redirect-target-" + "y" * 20 + "1"
    sh("ip", "-n", lab.b, "link", "property", "add", "dev", "vb", "altname", alt)
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    r = pktlens("policy", "add", "vb", "--proto", "udp", "--redirect", alt, ns=lab.b)
    assert r.stdout == "vb: rule 1 added: --id 1 --in --prio 1000 --proto udp --redirect vb\n"
    r = pktlens("policy", "add", "vb", "--proto", "udp", "--redirect", alt[:-1] + "2", ns=lab.b,
                check=False)
    assert r.returncode == 2 and f"--redirect '{alt[:-1]}2': no such interface" in r.stderr


def test_numbers_are_decimal(lab):
    """Leading zeros do not make a number octal (--flows 020 is 20, not 16); 0x is not a number."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", "--flows", "020", ns=lab.b)
    assert pktlens_json("stats", "vb", ns=lab.b)["interfaces"][0]["flows_max"] == 20
    for args in (["attach", "vb", "--force", "--flows", "0x20"], ["stats", "vb", "--watch", "0x1"],
                 ["policy", "add", "vb", "--dport", "0x50", "--drop"]):
        r = pktlens(*args, ns=lab.b, check=False)
        assert r.returncode == 2 and len(r.stderr.splitlines()) == 1, (args, r.stderr)



def test_a_number_past_its_range_is_told_the_range():
    """A count too big for its option was 'expected a positive number' or 'not a packet count
    >= 1', which it was: the refusal now names the range the number must be in."""
    for args, want in ((["flows", "--top", "4294967296"],
                        "flows: --top '4294967296' is wrong: expected a number from 1 to 4294967295"),
                       (["drops", "--top", "0"],
                        "drops: --top '0' is wrong: expected a number from 1 to 4294967295"),
                       (["sample", "lo", "-c", "18446744073709551616"],
                        "sample: -c '18446744073709551616': not a packet count in "
                        "1..18446744073709551615")):
        r = pktlens(*args, check=False)
        assert (r.returncode, r.stderr) == (2, f"pktlens: {want}\n"), r

@pytest.mark.parametrize("args", [["list"], ["stats", "vb"], ["-j", "stats", "vb"],
                                  ["flows", "vb"], ["policy", "list", "vb"],
                                  ["-j", "policy", "list"], ["filter", "compile", "udp"],
                                  ["--help"], ["-j", "-V"]])
def test_output_that_cannot_be_written_is_an_error(lab, args):
    """What a command prints must reach standard output: on a full disk (/dev/full) or a
    closed descriptor it fails (exit 1) with one line naming the cause, instead of exit 0 with
    a cut file (a `policy list > f` that `policy load` would then take as all the rules)."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    pktlens("policy", "add", "vb", "--proto", "udp", "--dport", "53", "--drop", ns=lab.b)
    cmd = [PKTLENS, "-n", lab.b, *args]
    ok = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout, ok
    with open("/dev/full", "w") as full:
        r = subprocess.run(cmd, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60)
    assert (r.returncode, r.stderr) == (1, "pktlens: cannot write to standard output: No space "
                                           "left on device\n"), r
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                       timeout=60, preexec_fn=lambda: os.close(1))
    assert (r.returncode, r.stderr) == (1, "pktlens: cannot write to standard output: Bad file "
                                           "descriptor\n"), r


def test_failing_command_with_unwritable_output_says_one_line(lab):
    """-j writes a command's error document to stdout too: when that cannot be written either,
    the command's own line is the only one (its exit code unchanged)."""
    with open("/dev/full", "w") as full:
        r = subprocess.run([PKTLENS, "-n", lab.b, "-j", "stats", "nosuch"], stdout=full,
                           stderr=subprocess.PIPE, text=True, timeout=60)
    assert (r.returncode, r.stderr) == (2, "pktlens: stats: nosuch: not attached (pktlens "
                                           "attach nosuch)\n"), r


def test_smaller_refusals():
    """Things that were accepted and could never work, or said the wrong thing."""
    r = pktlens("export", "ipfix", "--collector", "127.0.0.1:0", "--duration", "1", check=False)
    assert (r.returncode, r.stderr) == (2, "pktlens: export ipfix: --collector '127.0.0.1:0': port 0: "
                                           "not a port to send to (1-65535)\n")
    # getaddrinfo() would send to 99999 modulo 65536, and to 80 for "+80"
    for port in ("65536", "99999", "+80", "-1", "80x", "123456"):
        r = pktlens("export", "ipfix", "--collector", f"127.0.0.1:{port}", "--duration", "1",
                    check=False)
        assert (r.returncode, r.stderr) == (2, f"pktlens: export ipfix: --collector '127.0.0.1:{port}':"
                                               f" port {port}: not a port to send to (1-65535)\n")
    # an IPv6 collector without a port: the address's last colon is no port's ("port 1]")
    r = pktlens("export", "ipfix", "--collector", "[::1]", "--duration", "1", check=False)
    assert (r.returncode, r.stderr) == (2, "pktlens: export ipfix: --collector '[::1]': not "
                                           "HOST:PORT\n")
    # a listen port out of range is named as such (it said 'not ADDR:PORT')
    for listen, port in (("127.0.0.1:0", "0"), ("[::1]:65536", "65536"), (":0", "0")):
        r = pktlens("export", "prometheus", "--listen", listen, "--duration", "1", check=False)
        assert (r.returncode, r.stderr) == (2, f"pktlens: export prometheus: --listen '{listen}': "
                                               f"port {port}: not a port to listen on (1-65535)\n")
    # a value left out before the next option is said so (it took the option as the value)
    for args, opt, nxt in ((["export", "ipfix", "--collector", "--duration", "1"], "--collector", "--duration"),
                           (["sample", "vb", "-w", "--count=3"], "-w", "--count=3"),
                           (["stats", "vb", "--watch", "--json"], "--watch", "--json")):
        r = pktlens(*args, check=False)
        assert r.returncode == 2 and r.stderr.endswith(f": {opt} needs a value before {nxt}\n"), \
            (args, r.stderr)
    r = pktlens("tcp", "life", "--by", "rport", check=False)
    assert (r.returncode, r.stderr) == (2, "pktlens: tcp life: --by: only tcp rtt groups by raddr or "
                                           "rport\n")
    r = pktlens("tcp", "rtt", "--netns", "/dev/null", "--duration", "1", check=False)
    assert (r.returncode, r.stderr) == (2, "pktlens: tcp rtt: --netns '/dev/null': not a network "
                                           "namespace\n")
    for rule, msg in ((["--proto", "icmp", "--dport", "80"], "--proto icmp has no ports"),
                      (["--src", "198.18.0.0/16", "--src", "198.18.1.0/24"], "--src given twice"),
                      (["--in", "--out"], "--out: a rule has one direction")):
        r = pktlens("policy", "add", "vb", *rule, "--drop", check=False)
        assert r.returncode == 2 and msg in r.stderr, r.stderr


def test_listen_on_an_ipv4_mapped_address():
    """[::ffff:127.0.0.1]:PORT listens on 127.0.0.1:PORT (an IPv6-only socket cannot bind it),
    instead of failing with libmicrohttpd's 'port 0'."""
    from lab import free_port
    port = free_port()
    p = subprocess.Popen([PKTLENS, "export", "prometheus", "--listen", f"[::ffff:127.0.0.1]:{port}",
                          "--duration", "5"], stderr=subprocess.PIPE, text=True)
    try:
        import urllib.request
        deadline = time.time() + 5
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
                    assert resp.status == 200
                    break
            except OSError:
                assert time.time() < deadline and p.poll() is None, p.stderr.read()
                time.sleep(0.1)
    finally:
        p.terminate()
        p.wait(timeout=10)


def evil_map(path, kind, key, value=32768, entries=8):
    """A map pinned at path, of another layout than pktlens's (kind, key size, values of 32 KiB),
    holding `entries` entries, so a reader that takes it for its own reads 32 KiB per entry and
    CPU into buffers sized for its struct. Returns the pin it stood in for, renamed aside."""
    aside = os.path.join(os.path.dirname(path), "aside_" + os.path.basename(path))
    os.rename(path, aside)
    sh("bpftool", "map", "create", path, "type", kind, "key", key, "value", value,
       "entries", entries, "name", "other")
    for i in range(entries):
        sh("bpftool", "map", "update", "pinned", path, "key", i, *["0"] * (key - 1),
           "value", *["1"] * value)
    return aside


def replaced_pin_said_then_counts_back(lab, pin, aside, cmds, before):
    """Run each of cmds while pin is another map (the real one renamed to aside): exit 0, or 1
    with one line naming vb, never a sanitizer's report; then the pin goes back, and every
    count is there."""
    try:
        for cmd in cmds:
            r = pktlens(*cmd, ns=lab.b, check=False)
            assert r.returncode in (0, 1), (cmd, r.returncode, r.stderr)
            assert "Sanitizer" not in r.stderr, (cmd, r.stderr)
            if r.returncode:
                assert r.stderr.count("\n") == 1 and "vb" in r.stderr, (cmd, r.stderr)
    finally:
        os.unlink(pin)
        os.rename(aside, pin)
    after = slot(pktlens_json("stats", "vb", ns=lab.b), "tc", "in")
    assert after["packets"] >= before["packets"] >= 3


@pytest.mark.parametrize("name,cmds", [
    ("stats", [["stats", "vb"], ["-j", "stats", "vb"], ["policy", "list", "vb"]]),
    pytest.param("flows", [["flows", "vb"], ["-j", "stats", "vb"]], marks=pytest.mark.variant),
    pytest.param("rule_stats", [["policy", "list", "vb"], ["-j", "stats", "vb"]],
                 marks=pytest.mark.variant),
    ("drop_stats", [["stats", "vb"], ["-j", "stats", "vb"]]),
])
def test_pinned_maps_of_another_layout_are_never_read_as_ours(lab, name, cmds):
    """A pin replaced by a map of another layout (another pktlens version's, or not pktlens's):
    the commands that read it say so in one line (exit 1) or leave it out, never read it into
    their structs (`stats` overran its heap buffer and aborted: malloc(): invalid size), and
    once the pin is back every count is there."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", "--probes", "drops", ns=lab.b)
    pktlens("policy", "add", "vb", "--proto", "udp", "--pass", ns=lab.b)
    send_frames(lab.a, 3)
    time.sleep(0.2)
    before = slot(pktlens_json("stats", "vb", ns=lab.b), "tc", "in")
    pin = f"{PIN_ROOT}/{netns_ino(lab.b)}/vb/{name}"
    info = json.loads(sh("bpftool", "-j", "map", "show", "pinned", pin).stdout)
    kind = "array" if info["type"] != "array" else "hash"
    aside = evil_map(pin, kind if name == "stats" else info["type"].replace("lru_", ""),
                     info["bytes_key"])
    replaced_pin_said_then_counts_back(lab, pin, aside, cmds, before)


@pytest.mark.parametrize("kind", ["percpu_array", pytest.param("percpu_hash", marks=pytest.mark.variant)])
def test_a_per_cpu_map_in_place_of_the_metadata_is_never_read_as_ours(lab, kind):
    """The metadata pin replaced by a per-CPU map of its very key and value sizes: a lookup of
    one fills a value per CPU, so a reader that checked only the sizes wrote past its struct
    (`stats` died of SIGSEGV). Every command that reads the metadata says so in one line (exit 1)
    or leaves the attachment out, and once the pin is back every count is there."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    send_frames(lab.a, 3)
    time.sleep(0.2)
    before = slot(pktlens_json("stats", "vb", ns=lab.b), "tc", "in")
    pin = f"{PIN_ROOT}/{netns_ino(lab.b)}/vb/meta"
    info = json.loads(sh("bpftool", "-j", "map", "show", "pinned", pin).stdout)
    aside = os.path.join(os.path.dirname(pin), "aside_meta")
    os.rename(pin, aside)
    sh("bpftool", "map", "create", pin, "type", kind, "key", info["bytes_key"],
       "value", info["bytes_value"], "entries", 4, "name", "other")
    if kind == "percpu_hash":
        sh("bpftool", "map", "update", "pinned", pin, "key", *["0"] * info["bytes_key"],
           "value", *["1"] * info["bytes_value"])
    replaced_pin_said_then_counts_back(lab, pin, aside, [
        ["list"], ["-j", "list"], ["stats", "vb"], ["-j", "stats"], ["flows", "vb"],
        ["policy", "list", "vb"], ["policy", "add", "vb", "--proto", "udp", "--pass"],
        ["filter", "set", "vb", "udp"]], before)


@pytest.mark.parametrize("name,kind", [
    ("stats_base", "percpu_array"),
    pytest.param("flows_base", "percpu_hash", marks=pytest.mark.variant),
])
def test_a_per_cpu_map_in_place_of_a_reset_base_is_never_read_as_ours(lab, tmp_path, name, kind):
    """The bases `stats --reset` pins (stats_base, flows_base: one value per key) replaced by
    per-CPU maps of their very key and value sizes: a lookup of one copies a value per CPU, so
    a reader that checked only the sizes overran its buffers (`stats` died of SIGSEGV; a batch
    read of flows_base corrupted the heap). Readers say so in one line (exit 1), and with the pin back the counts are."""
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=lab.b)
    send_frames(lab.a, 2)
    time.sleep(0.2)
    pktlens("stats", "vb", "--reset", ns=lab.b)
    send_frames(lab.a, 3)
    time.sleep(0.2)
    before = slot(pktlens_json("stats", "vb", ns=lab.b), "tc", "in")
    pin = f"{PIN_ROOT}/{netns_ino(lab.b)}/vb/{name}"
    info = json.loads(sh("bpftool", "-j", "map", "show", "pinned", pin).stdout)
    assert "percpu" not in info["type"]
    aside = os.path.join(os.path.dirname(pin), "aside_" + name)
    os.rename(pin, aside)
    # more entries than a batch read of one value each has room for when each is one per CPU
    n = 4200 if kind == "percpu_hash" else 0
    sh("bpftool", "map", "create", pin, "type", kind, "key", info["bytes_key"],
       "value", info["bytes_value"], "entries", max(n, 64), "name", "other")
    if n:
        batch = tmp_path / "updates"
        with open(batch, "w") as f:
            for i in range(n):
                f.write(f"map update pinned {pin} key {i & 255} {i >> 8} "
                        + " ".join(["0"] * (info["bytes_key"] - 2)) + " value "
                        + " ".join(["1"] * info["bytes_value"]) + "\n")
        sh("bpftool", "batch", "file", batch)
    replaced_pin_said_then_counts_back(
        lab, pin, aside, [["stats", "vb"], ["-j", "stats"], ["flows", "vb"], ["-j", "flows", "vb"]],
        before)
