# SPDX-License-Identifier: GPL-2.0
"""Service mode: the YAML config, `pktlens apply`, `pktlens daemon`, the systemd unit.

Namespaces are named plq<pid>x<n> (the configs cover them with the glob plq<pid>x*) and
one peer namespace plp<pid>x<n> that holds the other end of every veth and that no config
covers. Oracles: the pins in bpffs (an attachment exists once its directory does: attach
renames it into place complete), the kernel's link counters and IP counters for traffic,
the frames the tests send, the daemon's sd_notify datagrams on a socket of the test's own.
"""
import fcntl
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from lab import (NS_PREFIX, PKTLENS, PIN_ROOT, PYTHON, ROOT, SAN, SENDRAW, attachments_in, free_port, pktlens,
                 pktlens_json, sh, unique)

PEER = "plp"
COVERED = "plq"


def glob_covered():
    return f"{NS_PREFIX}{COVERED}{os.getpid()}x*"


def ns_ino(ns):
    return os.stat(f"/run/netns/{ns}").st_ino


def pins(ns, ifname):
    return Path(PIN_ROOT) / str(ns_ino(ns)) / ifname


def attached(ns, ifname):
    return (pins(ns, ifname) / "meta").exists()


def wait_for(cond, timeout=20.0, step=0.01, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class ServiceLab:
    """Covered namespaces, a peer namespace, veths between them, config files; always cleaned."""

    def __init__(self):
        self.namespaces = []
        self.daemons = []
        self.tmp = tempfile.mkdtemp(prefix="pktlens-svc-")
        self.frames_file = None
        try:
            self.peer = self.netns(PEER)
        except BaseException:
            self.close()
            raise

    def netns(self, prefix=COVERED):
        ns = unique(prefix)
        sh("ip", "netns", "add", ns)
        self.namespaces.append(ns)
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
           "net.ipv6.conf.default.disable_ipv6=1")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        return ns

    def veth(self, ns, name, peer_name, up=False, addr=None):
        sh("ip", "-n", ns, "link", "add", name, "type", "veth", "peer", "name", peer_name,
           "netns", self.peer)
        if up:
            sh("ip", "-n", ns, "link", "set", name, "up")
            sh("ip", "-n", self.peer, "link", "set", peer_name, "up")
        if addr:
            sh("ip", "-n", ns, "addr", "add", addr + "/24", "dev", name)

    def config(self, text, name="pktlens.conf"):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def mac(self, ns, dev):
        return json.loads(sh("ip", "-n", ns, "-j", "link", "show", dev).stdout)[0]["address"]

    def rx(self, ns, dev):
        return json.loads(sh("ip", "-n", ns, "-j", "-s", "link", "show", dev).stdout)[0]["stats64"]["rx"]

    def send(self, peer_dev, n, dst_mac="ff:ff:ff:ff:ff:ff", dport=7, dst="198.18.7.2"):
        """n UDP frames out of peer_dev (in the peer namespace); returns n."""
        from scapy.all import IP, UDP, Ether, Raw, wrpcap  # noqa: slow to import

        path = os.path.join(self.tmp, f"f{random.random()}.pcap")
        wrpcap(path, [Ether(dst=dst_mac, src="02:00:00:00:00:01") / IP(src="198.18.7.1", dst=dst) /
                      UDP(sport=40000 + i, dport=dport) / Raw(b"x" * 64) for i in range(n)])
        out = sh("ip", "netns", "exec", self.peer, PYTHON, SENDRAW, peer_dev, path).stdout
        return int(out.strip())

    def close(self):
        for d in self.daemons:
            d.kill()
        for ns in reversed(self.namespaces):
            subprocess.run([PKTLENS, "-n", ns, "detach", "--all"], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.namespaces = []
        shutil.rmtree(self.tmp, ignore_errors=True)


@pytest.fixture
def svc():
    lab = ServiceLab()
    try:
        yield lab
    finally:
        lab.close()


class Daemon:
    """`pktlens daemon` with a NOTIFY_SOCKET of our own; its log lines, timestamped."""

    def __init__(self, lab, config, wrap=()):
        self.path = os.path.join(lab.tmp, f"notify{random.random()}")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.notes = []
        self.lines = []
        env = dict(os.environ, NOTIFY_SOCKET=self.path)
        env.pop("JOURNAL_STREAM", None)
        # wrap: argv that execs the rest in place (the pid stays the daemon's)
        self.p = subprocess.Popen([*wrap, PKTLENS, "daemon", "--config", config], stderr=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, text=True, env=env)
        lab.daemons.append(self)
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.p.stderr:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_notify(self, what=b"READY=1", timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.p.poll() is None, f"daemon exited {self.p.returncode}:\n{self.log()}"
            self.sock.settimeout(max(0.05, min(0.5, deadline - time.monotonic())))
            try:
                msg = self.sock.recv(4096)
            except socket.timeout:
                continue
            self.notes.append(msg)
            if what in msg.split(b"\n"):
                return time.monotonic()
        raise AssertionError(f"no {what} in {timeout} s:\n{self.log()}")

    def log(self):
        return "\n".join(line for _, line in self.lines)

    def wait_log(self, pattern, timeout=20, start=0):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, (_, line) in enumerate(self.lines[start:]):
                if rx.search(line):
                    return start + i, line
            time.sleep(0.02)
        raise AssertionError(f"no log line /{pattern}/ in {timeout} s:\n{self.log()}")

    def stop(self, sig=signal.SIGTERM, timeout=60):
        self.p.send_signal(sig)
        rc = self.p.wait(timeout=timeout)
        self.t.join(timeout=5)
        return rc

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.sock.close()

    def status(self, key, task=None):
        path = f"/proc/{self.p.pid}/task/{task}/status" if task else f"/proc/{self.p.pid}/status"
        for line in open(path):
            if line.startswith(key + ":"):
                return int(line.split()[1])
        raise KeyError(key)

    def cpu_ticks(self):
        f = open(f"/proc/{self.p.pid}/stat").read().rsplit(")", 1)[1].split()
        return int(f[11]) + int(f[12])


class NetnsEvents:
    """inotify on /run/netns (ctypes): how many events the daemon could have seen."""

    def __enter__(self):
        import ctypes

        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK)
        assert self.fd >= 0
        mask = 0x100 | 0x200 | 0x40 | 0x80 | 0x4 | 0x400 | 0x800  # CREATE DELETE MOVED_* ATTRIB *_SELF
        assert self.libc.inotify_add_watch(self.fd, b"/run/netns", mask) >= 0
        return self

    def count(self):
        n = 0
        while True:
            try:
                buf = os.read(self.fd, 65536)
            except BlockingIOError:
                return n
            off = 0
            while off < len(buf):
                n += 1
                off += 16 + int.from_bytes(buf[off + 12:off + 16], "little")

    def __exit__(self, *exc):
        os.close(self.fd)


def stats_in(ns, dev):
    """Packets the tc ingress hook of dev counted."""
    doc = pktlens_json("stats", dev, ns=ns)
    return sum(h["packets"] for h in doc["interfaces"][0]["hooks"] if (h["hook"], h["dir"]) == ("tc", "in"))


def rules_of(ns, dev):
    doc = pktlens_json("policy", "list", dev, ns=ns)["interfaces"][0]["rules"]
    return [(r["rule"], r["packets"]) for r in doc]


def listed(ns):
    return {a["ifname"]: a for a in attachments_in(ns)}


# ---- the config ----

BAD_CONFIGS = [
    ("interfaces:\n  - match: sv0\n    bogus: 1\n", 3, 5, "interfaces entry: unknown key 'bogus' (known: match, netns,"),
    ("interface:\n  - match: sv0\n", 1, 1, "config: unknown key 'interface' (known: name, interfaces,"),
    ("interfaces:\n  - match: sv0\n    xdp: fast\n", 3, 10, "xdp: 'fast' is not auto, native, skb, generic or none"),
    ("interfaces:\n  - match: sv0\n    tc: both\n", 3, 9, "tc: 'both' is not auto, in,out, out,in, in, out or none"),
    ("interfaces:\n  - match: sv0\n    flows: 10\n", 3, 12, "flows: '10' is not a number from 16 to 16777216"),
    ("interfaces:\n  - match: sv0\n    flows: 1k\n", 3, 12, "flows: '1k' is not a number"),
    ("interfaces:\n  - netns: '*'\n", 2, 5, "interfaces entry: 'match' is missing"),
    ("interfaces:\n  - match: sv0\n    match: sv1\n", 3, 5, "interfaces entry: 'match' is given twice (line 2)"),
    ("interfaces:\n  - match: sv0\n    xdp: none\n    tc: none\n", 2, 5, "nothing to attach (xdp: none and tc: none)"),
    ("interfaces:\n  - match: sv0\n    xdp-priority: -3\n", 3, 19,
     "xdp-priority: '-3' is not a number from 0 to 2147483647"),
    ("interfaces:\n  - match: sv0\n    xdp-priority: 2147483648\n", 3, 19,
     "xdp-priority: '2147483648' is not a number from 0 to 2147483647"),
    ("interfaces:\n  - match: sv0\n    xdp-priority: 5\n    xdp: none\n", 2, 5,
     "xdp-priority without an XDP hook (xdp: native or skb)"),
    ("interfaces:\n  - match: sv0\n    filter: 'tcp port http-nope'\n", 3, 13, "filter 'tcp port http-nope': "),
    ("interfaces:\n  - match: sv0\n    rules:\n      - '--proto udp --dropp'\n", 4, 22,
     "unknown option '--dropp'"),
    ("interfaces:\n  - match: sv0\n    rules:\n      - --src 198.18.300.0/24 --drop\n", 4, 15,
     "--src '198.18.300.0/24': not an IPv4 or IPv6 address"),
    ("interfaces:\n  - match: sv0\n    rules:\n      - '--id 3 --drop'\n      - '--id 3 --pass'\n", 5, 10,
     "rule id 3 is given twice (line 4)"),
    # a priority runs by id: given ids that would run the rules out of the order listed
    ("interfaces:\n  - match: sv0\n    rules:\n      - '--id 7 --proto udp --dport 53 --pass'\n"
     "      - '--id 3 --proto udp --drop'\n", 5, 10,
     "rule id 3 is listed after rule id 7 (line 4) of the same priority, 1000, but would run before it"),
    ("interfaces:\n  - match: sv0\n    rules:\n      - '--proto udp --dport 53 --pass'\n"
     "      - '--id 1 --proto udp --drop'\n", 4, 10, "no rule id is free below rule id 1,"),
    ("interfaces:\n  - match: sv0\n    rules:\n      - '--id 4 --proto udp --dport 53 --pass'\n"
     "      - '--proto tcp --pass'\n      - '--id 5 --proto udp --drop'\n", 5, 10,
     "no rule id is free between rule ids 4 and 5,"),
    ("interfaces:\n  - match: sv0\n    rules:\n      - '--proto udp --limit 10furlongs'\n", 4, 30,
     "--limit '10furlongs': not RATE[pps|bps|kbit|mbit|gbit]"),
    ("interfaces:\n  - match: sv0\n    rules:\n      - '--limit 100 --per src --per-size 0'\n", 4, 43,
     "--per-size '0': not a number 1-16777216"),
    ("interfaces:\n  - match: sv0\n    netns: a/b\n", 3, 12, "netns: 'a/b' is not a name in /run/netns"),
    ("interfaces:\n  - match: sv0\n    netns: '.'\n", 3, 12, "netns: '.' is not a name in /run/netns"),
    ("interfaces:\n  - match: sv0\n    netns: [x, '..']\n", 3, 16, "netns: '..' is not a name in /run/netns"),
    ("interfaces:\n  - match: sv0\n    netns: []\n", 3, 12, "netns: an empty list (leave 'netns' out"),
    # 127 bytes is an alternative name's room (ip link property add ... altname)
    ("interfaces:\n  - match: " + "a" * 128 + "\n", 2, 12, "longer than an interface name can be (15 bytes, an alternative name 127)"),
    ("interfaces: {match: sv0}\n", 1, 13, "interfaces: expected a list of entries"),
    ("interfaces:\n  - match: sv0\n    rules: '--drop'\n", 3, 12, "rules: expected a list of rules"),
    ("interfaces:\n  - match: [sv0\n", 3, 1, "not YAML: "),
    ("interfaces: []\n---\ninterfaces: []\n", 3, 1, "a second YAML document"),
    # what libyaml's reader refuses (it gives an offset, not a position): counted in characters
    ("interfaces:\n  - match: sv0\n    filter: 'udp \x01'\n", 3, 18, "not YAML: control characters"),
    ("name: '\u00e9\u00e9\x01'\n", 1, 10, "not YAML: control characters"),
    ("export:\n  prometheus: {listen: 'localhost'}\n", 2, 24, "listen: 'localhost' is not ADDR:PORT"),
    ("export:\n  ipfix: {interval: 5}\n", 2, 10, "ipfix: 'collector' is missing"),
    ("export:\n  ipfix: {collector: '127.0.0.1:4739', template-refresh: 0}\n", 2, 58,
     "template-refresh: '0' is not a number from 1 to 86400"),
    # read as export ipfix --collector reads it (it took '::1' for host '::', port 1)
    ("export:\n  ipfix: {collector: '::1'}\n", 2, 22, "collector: '::1': not HOST:PORT (an IPv6 address goes in brackets"),
    ("export:\n  ipfix: {collector: 'localhost:nosuchsvc'}\n", 2, 22, "port nosuchsvc: no such UDP service"),
    # a host no resolver could take: said now (a name that does not resolve yet is waited for)
    ("export:\n  ipfix: {collector: 'col lector:4739'}\n", 2, 22,
     "collector: 'col lector:4739': host 'col lector': not an address nor a host name"),
    ("on-stop: later\n", 1, 10, "on-stop: 'later' is not keep or detach"),
    # a file cut short after its first lines manages nothing only when it says so
    ("name: cut\n", 1, 1, "no 'interfaces' (to manage nothing, write 'interfaces: []')"),
    ("name: cut\ninterfaces:\n", 2, 12, "interfaces: no entries (to manage nothing, write"),
    ("interfaces:\n  - match: sv0\n    \"tc\\0x\": in\n", 3, 5, "a key contains a NUL byte"),
    ("interfaces:\n  - match: sv0\n    netns: .x\n", 3, 12, "netns: '.x': names beginning with '.'"),
    ("probes: [udp]\n", 1, 10, "probes: 'udp' is not a probe"),
    # a bad value of a list: its own line and column, not the list's
    ("interfaces:\n  - match:\n      - sv0\n      - " + "b" * 128 + "\n", 4, 9,
     "match: '" + "b" * 128 + "' is longer than an interface name can be"),
    ("interfaces:\n  - match: sv0\n    netns:\n      - x\n      - a/b\n", 5, 9,
     "netns: 'a/b' is not a name in /run/netns"),
    ("interfaces:\n  - match: [sv0, '', sv1]\n", 2, 18, "match: an empty name"),
    # names the kernel cannot have (as triggers' dev): a pattern that could never match
    ("interfaces:\n  - match: [sv0, 'sv0:1']\n", 2, 18, "match: 'sv0:1': an interface name has no ':'"),
    ("interfaces:\n  - match: 'veth *'\n", 2, 12, "match: 'veth *': an interface name has no white space"),
    ("probes:\n  - tcp\n  - udp\n", 3, 5, "probes: 'udp' is not a probe"),
    # as attach --probes: none stands alone, each probe once
    ("probes: [tcp, none]\n", 1, 15, "probes: 'none' with other probes (none stands alone)"),
    ("interfaces:\n  - match: sv0\n    probes: [drops, drops]\n", 3, 21, "probes: 'drops' is given twice"),
    ("interfaces:\n  - match: sv0\n    tcp-passive: maybe\n", 3, 18, "tcp-passive: 'maybe' is not true or false"),
    ("interfaces:\n  - match: sv0\n    tcp-ts-max: 64\n", 2, 5, "tcp-ts-max without tcp-passive: true"),
    ("interfaces:\n  - match: sv0\n    tcp-ts-max: 64\n    tcp-passive: off\n", 2, 5,
     "tcp-ts-max without tcp-passive: true"),
    ("triggers:\n  - dev: sv0\n    netns: ''\n    when: 'dev pps > 5'\n    for: 1\n    write: /tmp/x.pcap\n",
     3, 12, "netns: '' is not a name in /run/netns or \"/\""),
    ("triggers:\n  - dev: 'sv 0'\n    when: 'dev pps > 5'\n    for: 1\n    write: /tmp/x.pcap\n",
     2, 10, "dev: 'sv 0' is not an interface name"),
    ("triggers:\n  - dev: 'eth0:1'\n    when: 'dev pps > 5'\n    for: 1\n    write: /tmp/x.pcap\n",
     2, 10, "dev: 'eth0:1' is not an interface name"),
    # a directory, as `sample -w` refuses it (the daemon's sampler would fail every 5 s)
    ("triggers:\n  - dev: sv0\n    when: 'dev pps > 5'\n    for: 1\n    write: /tmp\n",
     5, 12, "write: '/tmp' names a directory, not a file"),
    ("triggers:\n  - dev: sv0\n    netns: a/b\n    when: 'dev pps > 5'\n    for: 1\n    write: /tmp/x.pcap\n",
     3, 12, "netns: 'a/b' is not a name in /run/netns"),
    # a directory: accepted, its sampler was refused (exit 2) and started again every 5 s
    ("triggers:\n  - dev: sv0\n    when: 'dev pps > 5'\n    for: 1\n    write: /tmp/\n",
     5, 12, "write: '/tmp/' names a directory, not a file"),
    ("triggers:\n  - dev: sv0\n    when: 'dev pps > 5'\n    for: 1\n    write: /var/tmp/..\n",
     5, 12, "write: '/var/tmp/..' names a directory, not a file"),
]


def test_config_errors_name_file_line_col_and_change_nothing(svc):
    """Every error names FILE:LINE:COL, exit 2, nothing attached; unknown keys are errors."""
    ns = svc.netns()
    svc.veth(ns, "sv0", "pv0")
    glob = glob_covered()
    for n, (text, line, col, msg) in enumerate(BAD_CONFIGS):
        path = svc.config(text, f"bad{n}.conf")
        ways = (["apply", path], ["apply", path, "--dry-run"], ["daemon", "--config", path])
        # the sanitized pass: each config through one of the three, in turn (about 0.1 s a run
        # there); the first pass: through all three
        for args in ways[n % 3:n % 3 + 1] if SAN else ways:
            r = subprocess.run([PKTLENS] + args, capture_output=True, text=True, timeout=30)
            cmd = args[0]
            assert r.returncode == 2, (text, r)
            assert r.stderr.startswith(f"pktlens: {cmd}: {path}:{line}:{col}: ") and msg in r.stderr, \
                (text, r.stderr)
            assert r.stderr.count("\n") == 1, r.stderr
        assert not attached(ns, "sv0")
    # a rule file's errors name the rule file
    rules = os.path.join(svc.tmp, "edge.rules")
    with open(rules, "w") as f:
        f.write("# edge\n--proto udp --drop\n\n  --proto tcp --dport 99999 --drop\n")
    path = svc.config(f"interfaces:\n  - match: sv0\n    netns: '{glob}'\n    rules-file: edge.rules\n", "rf.conf")
    r = pktlens("apply", path, check=False)
    assert r.returncode == 2 and r.stderr == \
        f"pktlens: apply: {rules}:4:23: --dport '99999': not a port 0-65535 or range LO-HI\n", r.stderr
    path = svc.config(f"interfaces:\n  - match: sv0\n    netns: '{glob}'\n    rules-file: nope.rules\n", "rf2.conf")
    r = pktlens("apply", path, check=False)
    assert r.returncode == 2 and r.stderr.startswith(f"pktlens: apply: {path}:4:17: rules-file: cannot read "
                                                     f"'{svc.tmp}/nope.rules': No such file"), r.stderr
    # one without rules (a failed save, an editor's truncate met by a reload) would remove
    # every rule of the entry: refused unless it says so, as policy load's
    for n, text in enumerate(("", "# edge\n\n  # none yet\r\n", "# sv0: 0 rules?\n")):
        name = os.path.join(svc.tmp, f"none{n}.rules")
        with open(name, "w") as f:
            f.write(text)
        path = svc.config(f"interfaces:\n  - match: sv0\n    netns: '{glob}'\n    rules-file: {name}\n",
                          f"rfn{n}.conf")
        for args in (["apply", path, "--dry-run"], ["daemon", "--config", path]):
            r = subprocess.run([PKTLENS] + args, capture_output=True, text=True, timeout=10)
            assert r.returncode == 2 and r.stderr.startswith(
                f"pktlens: {args[0]}: {path}:4:17: rules-file: {name}: no rules: ") and \
                r.stderr.count("\n") == 1, r.stderr
    with open(os.path.join(svc.tmp, "none.rules"), "w") as f:
        f.write("# any-name: 0 rules\n")
    path = svc.config(f"interfaces:\n  - match: sv0\n    netns: '{glob}'\n    rules-file: none.rules\n",
                      "rfe.conf")
    pktlens("apply", path, "--dry-run")
    # a rules file that is not a regular file, or a huge one, is refused at once: a FIFO would
    # hang apply, and the daemon's reload with it
    fifo = os.path.join(svc.tmp, "rules.fifo")
    os.mkfifo(fifo)
    huge = os.path.join(svc.tmp, "huge.rules")
    with open(huge, "w") as f:
        f.write(("# " + "x" * 97 + "\n") * ((5 << 20) // 100 + 1))
    for n, (name, msg) in enumerate([(fifo, "not a regular file"), ("/dev/zero", "not a regular file"),
                                     (huge, "larger than 4 MiB: not a rules file")]):
        path = svc.config(f"interfaces:\n  - match: sv0\n    netns: '{glob}'\n    rules-file: {name}\n",
                          f"rfx{n}.conf")
        for args in (["apply", path], ["daemon", "--config", path]):
            r = subprocess.run([PKTLENS] + args, capture_output=True, text=True, timeout=10)
            assert r.returncode == 2 and r.stderr == \
                f"pktlens: {args[0]}: {path}:4:17: rules-file: '{name}': {msg}\n", r.stderr
    # nor is the config itself when it is a FIFO or a device: refused without waiting
    for name in (fifo, "/dev/zero"):
        for args in (["apply", name], ["apply", name, "--dry-run"], ["daemon", "--config", name]):
            r = subprocess.run([PKTLENS] + args, capture_output=True, text=True, timeout=10)
            assert (r.returncode, r.stderr) == (2, f"pktlens: {args[0]}: {name}: not a regular file\n"), r
    # empty, or comments alone: no config (a truncated file is not "manage nothing")
    for n, text in enumerate(("", "\n# a comment\n", "---\n", "~\n")):
        path = svc.config(text, f"empty{n}.conf")
        for args in (["apply", path], ["apply", path, "--dry-run"], ["daemon", "--config", path]):
            r = subprocess.run([PKTLENS] + args, capture_output=True, text=True, timeout=30)
            assert (r.returncode, r.stderr) == (2, f"pktlens: {args[0]}: {path}: empty: no config in it (to "
                                                   "manage nothing, write 'interfaces: []')\n"), r
    r = pktlens("apply", os.path.join(svc.tmp, "missing.conf"), check=False)
    assert r.returncode == 2 and "missing.conf: cannot read it: No such file or directory" in r.stderr
    assert not attached(ns, "sv0")


def test_config_nesting_and_aliases_are_bounded(svc):
    """A config nested deep or made huge by aliases is refused at once, FILE:LINE:COL, exit 2
    (before, '[' 50,000 deep took seconds and grew as the square of the depth, and aliases of
    aliases took gigabytes); anchors and aliases that share rules between entries work."""
    ns = svc.netns()
    svc.veth(ns, "sv0", "pv0")
    svc.veth(ns, "sv1", "pv1")
    glob = glob_covered()
    bomb = "".join(f"x{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]\n" for i in range(1, 8))
    cases = [
        ("interfaces: " + "[" * 200000 + "]" * 200000 + "\n", 1, 28, "nested deeper than 16 levels"),
        ("interfaces:\n" + "  " + "- " * 500000 + "x\n", 2, 33, "nested deeper than 16 levels"),
        ("x0: &a0 '--drop'\n" + bomb, 7, 50, "aliases (*name) that stand for more than 1048576 nodes"),
        ("interfaces: &i\n  - match: sv0\n    rules: *i\n", 3, 12, "an alias (*name) of no anchor before it"),
        ("a: &r x\nb: [" + ", ".join(["*r"] * 70000) + "]\n", 2, 5 + 4 * 65536, "more than 65536 aliases"),
        ("a: [" + ", ".join(f"&r{i} x" for i in range(1100)) + "]\n", 1, 9135, "more than 1024 anchors"),
    ]
    for n, (text, line, col, msg) in enumerate(cases):
        path = svc.config(text, f"limit{n}.conf")
        for args in (["apply", path, "--dry-run"], ["daemon", "--config", path]):
            t0 = time.monotonic()
            r = subprocess.run([PKTLENS] + args, capture_output=True, text=True, timeout=60)
            assert time.monotonic() - t0 < 5, (msg, time.monotonic() - t0)
            assert r.returncode == 2 and msg in r.stderr and r.stderr.count("\n") == 1, (msg, r.stderr[:300])
            assert r.stderr.startswith(f"pktlens: {args[0]}: {path}:{line}:{col}: "), r.stderr[:300]
    # what aliases repeat is bounded by its cost too: one filter is built once however many
    # entries name it (2,000 builds of a long one took 50 s), and the rules (lists and files:
    # a file is no node) are counted all told
    expr = " or ".join(f"udp port {1000 + i}" for i in range(95))
    many = svc.config(f'interfaces:\n  - &e\n    match: sv0\n    netns: "{glob}"\n    filter: "{expr}"\n' +
                      "  - *e\n" * 2000, "filters.conf")
    rules = os.path.join(svc.tmp, "many.rules")
    with open(rules, "w") as f:
        f.write("".join(f"--src 198.18.{i >> 8 & 255}.{i & 255}/32 --drop\n" for i in range(60000)))
    huge = svc.config(f'interfaces:\n  - &e\n    match: sv0\n    netns: "{glob}"\n    rules-file: {rules}\n' +
                      "  - *e\n" * 20, "rulesfile.conf")
    for path, rc, msg in ((many, 0, "plan: 1 to add"),
                          (huge, 2, f"pktlens: apply: {rules}: more than 1048576 rules in the config all told")):
        t0 = time.monotonic()
        r = subprocess.run([PKTLENS, "apply", path, "--dry-run"], capture_output=True, text=True, timeout=120)
        assert time.monotonic() - t0 < (15 if SAN else 5), (path, time.monotonic() - t0)
        assert r.returncode == rc and msg in r.stdout + r.stderr, (path, r.stdout[-300:], r.stderr[:300])
    # shared by anchors: both interfaces get the same rules
    conf = svc.config(f'name: anchors\ninterfaces:\n  - &e\n    match: sv0\n    netns: "{glob}"\n    tc: in\n'
                      '    rules: &common\n      - "--proto udp --dport 53 --pass"\n      - "--proto tcp --drop"\n'
                      f'  - match: sv1\n    netns: "{glob}"\n    tc: in\n    rules: *common\n', "anchors.conf")
    assert pktlens_json("apply", conf)["ok"]
    for dev in ("sv0", "sv1"):
        assert [r.split("--prio 1000 ")[1] for r, _ in rules_of(ns, dev)] == \
            ["--proto udp --dport 53 --pass", "--proto tcp --drop"]


@pytest.mark.parametrize("shape", ["entries", pytest.param("names", marks=pytest.mark.variant)])
def test_config_of_many_entries_or_names_loads_at_once(svc, shape):
    """Finding the entries that never apply compared each entry with every earlier one, name by
    name: the time grew as the square of the entries (20,000 one-name entries took 36 s to load
    on a busy host, 200,000 in a 4 MiB config hours) and of the names of two entries (40,000
    names each: 33 s), at apply, daemon start and each reload.
    Now such a config loads in a moment; an entry shadowed early on is still warned of."""
    n = 60000 if shape == "entries" else 80000
    names = [f"h{i}" for i in range(n)]
    if shape == "entries":
        text = "interfaces:\n  - match: h0\n  - match: h0\n" + \
            "".join(f"  - match: {m}\n" for m in names[1:])
    else:
        text = "interfaces:\n  - match: h0\n  - match: h0\n" + \
            f"  - match: [{', '.join(names)}]\n  - match: [{', '.join(reversed(names))}]\n"
    path = svc.config(text, f"many-{shape}.conf")
    t0 = time.monotonic()
    r = subprocess.run([PKTLENS, "apply", path, "--dry-run"], capture_output=True, text=True, timeout=300)
    assert time.monotonic() - t0 < (15 if SAN else 5), time.monotonic() - t0
    assert r.returncode == 0 and "plan: 0 to add" in r.stdout, (r.stdout[-300:], r.stderr[:300])
    assert re.findall(r"warning: \S+:(\d+):\d+: this interfaces entry never applies: the entry at line (\d+) ",
                      r.stderr)[:1] == [("3", "2")], r.stderr[:300]


def test_daemon_errors_before_it_runs_are_json_under_j(svc):
    """`-j daemon`: the error that ends it before it runs (no config, one that is not YAML,
    one with a bad value) is one JSON document on stdout as every command's, and the same
    line on stderr; without -j stdout stays empty."""
    missing = os.path.join(svc.tmp, "nosuch.conf")
    cases = [(missing, f"daemon: {missing}: cannot read it: No such file or directory")]
    for n, (text, where) in enumerate([("interfaces: [\n", "2:1: not YAML"),
                                       ("interfaces:\n  - match: x\n    flows: many\n", "3:12: ")]):
        path = svc.config(text, f"jbad{n}.conf")
        cases.append((path, f"daemon: {path}:{where}"))
    for path, msg in cases:
        for j in (["-j"], []):
            r = subprocess.run([PKTLENS] + j + ["daemon", "--config", path], capture_output=True,
                               text=True, timeout=60)
            assert r.returncode == 2 and r.stderr.startswith("pktlens: " + msg), (path, r.stderr)
            assert r.stderr.count("\n") == 1
            if j:
                assert json.loads(r.stdout) == {"error": r.stderr[len("pktlens: "):-1]}
            else:
                assert r.stdout == ""


def test_apply_without_a_kernel_feature_a_step_needs_changes_nothing(svc):
    """A kernel without bpf_loop() (forced, as Linux before 5.17) walks at most 64 list rules a
    direction: a config whose second interface has 65 changes nothing, --dry-run says so too,
    exit 1 (the first interface was attached, then the second failed: '1 of 2 steps done')."""
    env = {**os.environ, "PKTLENS_NO_FEATURES": "bpf-loop"}
    ns = svc.netns()
    svc.veth(ns, "sv0", "pv0")
    svc.veth(ns, "sv1", "pv1")
    glob = glob_covered()
    rules = "".join(f'      - "--proto udp --dport {7000 + i} --drop"\n' for i in range(65))
    conf = svc.config(f'name: bounded\ninterfaces:\n  - match: sv0\n    netns: "{glob}"\n    tc: in\n'
                      f'  - match: sv1\n    netns: "{glob}"\n    tc: in\n    rules:\n{rules}', "bounded.conf")
    for dry in (["--dry-run"], []):
        r = subprocess.run([PKTLENS, "apply", conf] + dry, env=env, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 1, r
        assert "sv1" in r.stderr and "65 ingress rules" in r.stderr and "needs Linux 5.17" in r.stderr, r.stderr
        assert listed(ns) == {}, (dry, listed(ns))
    # within the bound: both attached
    conf = svc.config(conf and open(conf).read().replace('--dport 7064 --drop"\n', '--dport 7064 --pass"\n')
                      .replace('      - "--proto udp --dport 7064 --pass"\n', ''), "bounded64.conf")
    r = subprocess.run([PKTLENS, "apply", conf], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r
    assert sorted(listed(ns)) == ["sv0", "sv1"] and len(rules_of(ns, "sv1")) == 64


def test_config_booleans_are_yaml_booleans(svc):
    """tcp-passive takes YAML's booleans (True, yes, on, ...) as true and false: a config
    written either way attaches the same, and a second apply with the other spelling
    changes nothing."""
    a = svc.netns()
    svc.veth(a, "sv0", "pv0")
    base = f'name: booltest\ninterfaces:\n  - match: sv0\n    netns: "{glob_covered()}"\n    tcp-passive: '
    for words, want in ((("yes", "True", "on", "TRUE", "true"), True), (("No", "false", "off", "FALSE"), False)):
        for i, w in enumerate(words):
            r = pktlens("-j", "apply", svc.config(base + w + "\n", f"b{w}.conf"), check=False)
            assert r.returncode == 0, (w, r.stderr)
            steps = json.loads(r.stdout)["steps"]
            if i:
                assert steps == [], (w, steps)
        # the programs were loaded for passive TCP analysis (stats reads its counters), or not
        assert (pktlens_json("stats", "sv0", ns=a)["interfaces"][0]["tcp"] is not None) == want, words
    # the plan says what changes: passive TCP, and its timestamp map's size (it said "hooks
    # tc/tcx in+out -> tc/tcx in+out", and from/to had no field for it)
    conf = svc.config(base + "yes\n    tcp-ts-max: 64\n", "bts.conf")
    out = pktlens("apply", conf, "--dry-run").stdout
    assert ": tcp-passive off -> on (tcp-ts-max 64)\n" in out and "hooks" not in out, out
    steps = json.loads(pktlens("-j", "apply", conf, "--dry-run").stdout)["steps"]
    assert [(s["from"]["tcp_passive"], s["from"]["tcp_ts_max"], s["to"]["tcp_passive"], s["to"]["tcp_ts_max"])
            for s in steps] == [(False, None, True, 64)], steps
    # the namespace's timestamp map is already sized by another analysing attachment: the step
    # says so, as `attach` does (apply said nothing, and stats then showed another size)
    svc.veth(a, "sv1", "pv1", up=True)
    pktlens("attach", "sv1", "--tcp-passive", "--tcp-ts-max", 32, ns=a)
    r = pktlens("apply", conf)
    assert "; note: the namespace's outstanding-timestamp map was sized by its first analysing " \
        "attach: 32, not tcp-ts-max 64 (" in r.stdout, r.stdout
    assert pktlens_json("stats", "sv0", ns=a)["interfaces"][0]["tcp"]["ts_max"] == 32
    doc = json.loads(pktlens("-j", "apply", svc.config(base + "yes\n    tcp-ts-max: 128\n", "bts2.conf")).stdout)
    assert [s["note"] for s in doc["steps"]] == [
        "note: the namespace's outstanding-timestamp map was sized by its first analysing attach: 32, "
        "not tcp-ts-max 128 (detach every tcp-passive attachment of the namespace to size it again)"], doc



def test_config_filter_over_lines_plans_on_one_line(svc):
    """A filter written as a YAML block scalar (newlines, a tab) is kept with blanks, as
    `filter set` and policy rules keep them: the plan names it on one line (its newlines had
    split the plan's line)."""
    a = svc.netns()
    svc.veth(a, "sv0", "pv0")
    conf = svc.config(f'name: blanks\ninterfaces:\n  - match: sv0\n    netns: "{glob_covered()}"\n'
                      '    tc: in\n    filter: |\n      udp and\n      \tport 53\n', "blanks.conf")
    lines = pktlens("apply", conf, "--dry-run").stdout.splitlines()
    assert len(lines) == 2 and lines[0].endswith(", filter 'udp and  port 53 '"), lines

def test_every_key_is_documented():
    """Each key the parser knows is in the commented example and the man page; the example parses."""
    src = (ROOT / "service" / "config.c").read_text()
    keys = set()
    for table in re.findall(r"static const char \*const \w+_keys\[\] = \{(.*?)\};", src, re.S):
        keys |= set(re.findall(r'"([a-z-]+)"', table))
    assert {"match", "netns", "xdp", "tc", "flows", "filter", "rules", "rules-file", "probes",
            "prometheus", "ipfix", "listen", "collector", "interval", "on-stop", "name"} <= keys
    example = (ROOT / "docs" / "pktlens.conf").read_text()
    man = (ROOT / "docs" / "pktlens.8").read_text().replace("\\-", "-")
    for k in sorted(keys):
        assert re.search(rf"^\s*#?\s*-?\s*{re.escape(k)}:", example, re.M), f"{k} not in docs/pktlens.conf"
        assert re.search(rf"\b{re.escape(k)}\b", man), f"{k} not in docs/pktlens.8"
    r = pktlens("apply", str(ROOT / "docs" / "pktlens.conf"), "--dry-run", "-j", check=False)
    assert r.returncode in (0, 1) and "pktlens.conf:" not in r.stderr, r.stderr
    assert json.loads(r.stdout)["name"] == str(ROOT / "docs" / "pktlens.conf")


# ---- apply ----

def test_apply_adopts_is_idempotent_and_dry_run_is_what_apply_does(svc):
    a, b = svc.netns(), svc.netns()
    for ns, i in ((a, 0), (a, 1), (b, 2)):
        svc.veth(ns, f"sv{i}", f"pv{i}", up=True)
    svc.veth(a, "other0", "po0", up=True)
    svc.veth(b, "hand0", "ph0", up=True)
    # made by hand: sv1 (named by the config: adopted, counters kept), hand0 (not named: left alone)
    pktlens("attach", "sv1", "--xdp", "none", "--tc", "in", ns=a)
    pktlens("attach", "hand0", ns=b)
    assert svc.send("pv1", 7) == 7
    wait_for(lambda: stats_in(a, "sv1") == 7, what="7 packets on sv1")
    conf = svc.config(f"""
name: svc-test
interfaces:
  - match: "sv*"
    netns: "{glob_covered()}"
    flows: 4096
    filter: "udp"
    rules:
      - "--proto udp --dport 9 --drop"
      - "--proto udp --dport 7 --pass"
""")
    # a reader holds the change lock shared (an exporter reading, another dry run): a dry run
    # only reads, so it does not wait for readers; an apply waits until they are done
    # (held here, not by flock(1): killing flock leaves its command holding the lock)
    reader = os.open(PIN_ROOT, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(reader, fcntl.LOCK_SH)
        plan = json.loads(pktlens("-j", "apply", conf, "--dry-run", timeout=15).stdout)
        applying = subprocess.Popen([PKTLENS, "-j", "apply", conf], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True)
        time.sleep(0.5)
        assert applying.poll() is None, "apply did not wait for the reader"
    finally:
        os.close(reader)
    assert plan["dry_run"] and plan["ok"] and not any(attached(ns, d) for ns, d in ((a, "sv0"), (b, "sv2")))
    out, err = applying.communicate(timeout=60)
    assert applying.returncode == 0, err
    done = json.loads(out)
    assert done["ok"]

    def key(s):
        return {k: v for k, v in s.items() if k not in ("done", "error", "final_totals", "note", "seconds")}

    assert [key(s) for s in plan["steps"]] == [key(s) for s in done["steps"]]
    assert all(s["done"] for s in done["steps"])
    assert sorted((s["action"], s["ifname"]) for s in done["steps"]) == \
        [("add", "sv0"), ("add", "sv2"), ("adopt", "sv1")]
    adopt = [s for s in done["steps"] if s["action"] == "adopt"][0]
    assert adopt["managed_by_before"] is None and "owner" in adopt["changes"]
    # the pins: what the config says, owned by it; the rest untouched
    la, lb = listed(a), listed(b)
    assert set(la) == {"sv0", "sv1"} and set(lb) == {"sv2", "hand0"}
    for att in (la["sv0"], la["sv1"], lb["sv2"]):
        assert att["managed_by"] == "svc-test" and att["flows_max"] == 4096
        assert att["netns_name"] in (a, b)
    assert lb["hand0"]["managed_by"] is None and lb["hand0"]["flows_max"] == 65536
    assert stats_in(a, "sv1") == 7, "adopting reset sv1's counters"
    # a second apply changes nothing and says so
    r = pktlens("apply", conf)
    assert r.stdout == f"nothing to change: 3 attachments as {conf} says\n"
    assert pktlens_json("apply", conf)["steps"] == []
    # traffic counted exactly, against the kernel's own counter; rules judge it
    before = svc.rx(a, "sv0")["packets"]
    assert svc.send("pv0", 11, dport=9) + svc.send("pv0", 5, dport=7) == 16
    wait_for(lambda: stats_in(a, "sv0") == 16, what="16 packets on sv0")
    assert svc.rx(a, "sv0")["packets"] - before == 16
    assert rules_of(a, "sv0") == [("--id 1 --in --prio 1000 --proto udp --dport 9 --drop", 11),
                                  ("--id 2 --in --prio 1000 --proto udp --dport 7 --pass", 5)]
    # a changed rule set: the unchanged rule keeps its id and counter; plan == what is done
    text = open(conf).read().replace('"--proto udp --dport 7 --pass"', '"--proto tcp --drop"')
    conf2 = svc.config(text, "v2.conf")
    plan = pktlens_json("apply", conf2, "--dry-run")
    done = pktlens_json("apply", conf2)
    assert [key(s) for s in plan["steps"]] == [key(s) for s in done["steps"]] and len(done["steps"]) == 3
    assert all(s["changes"] == ["rules"] and s["rules_kept"] == 1 for s in done["steps"])
    assert rules_of(a, "sv0") == [("--id 1 --in --prio 1000 --proto udp --dport 9 --drop", 11),
                                  ("--id 3 --in --prio 1000 --proto tcp --drop", 0)]
    assert stats_in(a, "sv0") == 16 and stats_in(a, "sv1") == 7
    # an entry gone: what this config manages there goes (final totals printed); hand0 stays
    conf3 = svc.config(text.replace('"sv*"', '"sv0"'), "v3.conf")
    r = pktlens("apply", conf3)
    assert "remove sv1 (netns " in r.stdout and "no longer matched by the config; final totals: tc in 7 packets" in r.stdout
    assert "remove sv2 (netns " in r.stdout and "applied: 0 added, 0 changed, 2 removed, 1 unchanged" in r.stdout
    assert set(listed(a)) == {"sv0"} and set(listed(b)) == {"hand0"}
    assert not (pins(a, "sv1")).exists()


def test_apply_plans_interfaces_that_traded_names(svc):
    """Two attached interfaces trade names, a third one after them: the plan (made at every
    daemon start and event too) follows each interface by its index to its new name; it
    crashed when the pins under a name belonged to a live interface listed before the last."""
    a = svc.netns()
    for i in range(3):
        svc.veth(a, f"sv{i}", f"pv{i}")
    conf = svc.config(f'name: swaptest\ninterfaces:\n  - match: "sv*"\n    netns: "{glob_covered()}"\n')
    pktlens("apply", conf)
    idx = {a_["ifname"]: a_["ifindex"] for a_ in listed(a).values()}
    for cmd in (("sv0", "svt"), ("sv1", "sv0"), ("svt", "sv1")):
        sh("ip", "-n", a, "link", "set", cmd[0], "name", cmd[1])
    now = {l["ifname"]: l["ifindex"] for l in json.loads(sh("ip", "-n", a, "-j", "link", "show").stdout)}
    assert (now["sv0"], now["sv1"]) == (idx["sv1"], idx["sv0"])
    r = pktlens("-j", "apply", conf, "--dry-run", check=False)
    assert r.returncode == 0, r
    steps = json.loads(r.stdout)["steps"]
    assert sorted((s["ifname"], s["pinned_as"], s["changes"]) for s in steps) == \
        [("sv0", "sv1", ["rename"]), ("sv1", "sv0", ["rename"])], steps
    # nothing changed: the pins are where they were
    assert {n: att["ifindex"] for n, att in listed(a).items()} == idx


def test_apply_limit_rules_police_and_stay(svc):
    """A config's --limit rule (issue 20) is the command line's: it polices, list shows its
    conformed and exceeded packets, and a second apply keeps it with its counters; a changed
    rate is a changed rule."""
    a = svc.netns()
    svc.veth(a, "sv0", "pv0", up=True)
    base = f'name: limtest\ninterfaces:\n  - match: sv0\n    netns: "{glob_covered()}"\n    xdp: none\n    rules:\n'
    conf = svc.config(base + '      - "--proto udp --dport 9 --limit 2pps --burst 3 --over drop"\n')
    assert pktlens_json("apply", conf)["ok"]
    assert svc.send("pv0", 20, dport=9) == 20
    wait_for(lambda: stats_in(a, "sv0") == 20, what="20 packets on sv0")
    rule = pktlens_json("policy", "list", "sv0", ns=a)["interfaces"][0]["rules"][0]
    assert rule["rule"] == "--id 1 --in --prio 1000 --proto udp --dport 9 --limit 2pps --burst 3packets " \
                           "--per rule --over drop", rule
    assert rule["limit"]["rate"] == 2 and rule["limit"]["burst"] == 3
    assert rule["packets"] == 20 and rule["conformed_packets"] + rule["exceeded_packets"] == 20, rule
    # 20 packets sent in well under 8 s: 3 of the burst and at most a few refills conform
    assert 3 <= rule["conformed_packets"] <= 3 + 2 * 8 and rule["exceeded_packets"] >= 1, rule
    assert pktlens("apply", conf).stdout.startswith("nothing to change"), "the same limit rule changed"
    conf2 = svc.config(base + '      - "--proto udp --dport 9 --limit 3pps --burst 3 --over drop"\n', "v2.conf")
    done = pktlens_json("apply", conf2)
    assert [s["changes"] for s in done["steps"]] == [["rules"]] and done["steps"][0]["rules_kept"] == 0
    assert rules_of(a, "sv0") == [("--id 2 --in --prio 1000 --proto udp --dport 9 --limit 3pps --burst 3packets "
                                   "--per rule --over drop", 0)]


def test_apply_rules_run_in_the_order_listed_whatever_ran_before(svc):
    """A config's rules run in the order listed (first match wins), also when the rules already
    running came in another order or a rule is put before them: the same file judges the same
    way whatever was applied before, and rules that stay keep their counters."""
    a = svc.netns()
    svc.veth(a, "sv0", "pv0", up=True)
    base = f'name: ordtest\ninterfaces:\n  - match: sv0\n    netns: "{glob_covered()}"\n    tc: in\n    rules:\n'
    drop9, pass_udp = '      - "--proto udp --dport 9 --drop"\n', '      - "--proto udp --pass"\n'
    v1 = svc.config(base + drop9, "v1.conf")
    v2 = svc.config(base + pass_udp + drop9, "v2.conf")
    v3 = svc.config(base + drop9 + pass_udp, "v3.conf")
    pktlens("apply", v1)
    assert svc.send("pv0", 3, dport=9) == 3
    wait_for(lambda: stats_in(a, "sv0") == 3, what="3 packets on sv0")
    # a rule put before the running one: it comes first, the running one keeps its counter
    done = pktlens_json("apply", v2)
    assert done["ok"] and [(s["changes"], s["rules_kept"]) for s in done["steps"]] == [(["rules"], 1)]
    assert pktlens("apply", v2).stdout.startswith("nothing to change")
    assert svc.send("pv0", 4, dport=9) == 4
    wait_for(lambda: stats_in(a, "sv0") == 7, what="7 packets on sv0")
    assert rules_of(a, "sv0") == [("--id 1 --in --prio 1000 --proto udp --pass", 4),
                                  ("--id 2 --in --prio 1000 --proto udp --dport 9 --drop", 3)]
    # the two swapped: the drop comes first again, each keeps its counter
    plan = pktlens_json("apply", v3, "--dry-run")
    assert [(s["changes"], s["rules_kept"]) for s in plan["steps"]] == [(["rules"], 2)], plan
    assert pktlens_json("apply", v3)["ok"]
    assert pktlens("apply", v3).stdout.startswith("nothing to change")
    assert svc.send("pv0", 5, dport=9) == 5
    wait_for(lambda: stats_in(a, "sv0") == 12, what="12 packets on sv0")
    assert sorted((r.split("--prio 1000 ")[1], n) for r, n in rules_of(a, "sv0")) == \
        [("--proto udp --dport 9 --drop", 8), ("--proto udp --pass", 4)]
    assert [r.split("--prio 1000 ")[1] for r, _ in rules_of(a, "sv0")] == \
        ["--proto udp --dport 9 --drop", "--proto udp --pass"]


def test_apply_whose_output_cannot_be_written_keeps_the_final_totals(svc):
    """apply with standard output closed changes nothing (exit 1); with it full, a removal's
    final totals go to stderr instead of going with the pins."""
    a = svc.netns()
    svc.veth(a, "sv0", "pv0", up=True)
    conf = svc.config(f'name: outtest\ninterfaces:\n  - match: sv0\n    netns: "{glob_covered()}"\n    tc: in\n')
    r = subprocess.run([PKTLENS, "apply", conf], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, timeout=60, preexec_fn=lambda: os.close(1))
    assert r.returncode == 1 and r.stderr.startswith("pktlens: apply: cannot write to standard output: "
                                                     "Bad file descriptor: nothing changed"), r.stderr
    assert not attached(a, "sv0")
    pktlens("apply", conf)
    assert svc.send("pv0", 5) == 5
    wait_for(lambda: stats_in(a, "sv0") == 5, what="5 packets on sv0")
    empty = svc.config("name: outtest\ninterfaces: []\n", "empty.conf")
    with open("/dev/full", "w") as full:
        r = subprocess.run([PKTLENS, "apply", empty], stdout=full, stderr=subprocess.PIPE, text=True,
                           timeout=60)
    assert r.returncode == 1 and re.search(r"^pktlens: apply: remove sv0 \(netns .*final totals: tc in "
                                           r"5 packets, .*\(standard output did not take it\)$",
                                           r.stderr, re.M), r.stderr
    assert not attached(a, "sv0")


def udp_delivered(ns):
    """UDP datagrams the namespace's kernel took in (to a socket or to none): /proc/net/snmp."""
    out = sh("nsenter", f"--net=/run/netns/{ns}", "cat", "/proc/net/snmp").stdout
    head, vals = [line.split() for line in out.splitlines() if line.startswith("Udp:")][:2]
    row = dict(zip(head[1:], map(int, vals[1:])))
    return row["InDatagrams"] + row["NoPorts"]


@pytest.mark.parametrize("order", ["given-first", "given-last", "between"])
def test_apply_rules_with_ids_run_in_the_order_listed(svc, order):
    """Rules given an --id and rules without one run in the order listed: a rule without
    --id takes an id between those of the rules listed around it (before, it took the lowest
    free id and could run before a rule listed above it, turning a drop into a pass)."""
    a = svc.netns()
    svc.veth(a, "sv0", "pv0", up=True, addr="198.18.7.2")
    base = f'name: idord\ninterfaces:\n  - match: sv0\n    netns: "{glob_covered()}"\n    tc: in\n    rules:\n'
    drop = '      - "{}--proto udp --dport 9 --drop"\n'
    pas = '      - "{}--proto udp --pass"\n'
    # (rules, whether the drop comes first)
    rules, drops = {
        "given-first": (drop.format("--id 5 ") + pas.format(""), True),
        "given-last": (pas.format("") + drop.format("--id 5 "), False),
        "between": (drop.format("--id 3 ") + pas.format("") + '      - "--id 9 --proto tcp --pass"\n', True),
    }[order]
    conf = svc.config(base + rules)
    assert pktlens_json("apply", conf)["ok"]
    assert pktlens("apply", conf).stdout.startswith("nothing to change")
    before = udp_delivered(a)
    assert svc.send("pv0", 6, dport=9) == 6
    wait_for(lambda: stats_in(a, "sv0") >= 6, what="6 packets on sv0")
    time.sleep(0.2)
    assert udp_delivered(a) - before == (0 if drops else 6)
    got = {r.split("--prio 1000 ")[1]: n for r, n in rules_of(a, "sv0")}
    assert got["--proto udp --dport 9 --drop"] == (6 if drops else 0), got
    assert got["--proto udp --pass"] == (0 if drops else 6), got


def test_apply_entry_that_gives_a_virtual_device_no_hook_changes_nothing(svc):
    """tc: none with xdp: auto (none on a virtual device) leaves a veth nothing to attach: the
    plan says so, naming the entry (FILE:LINE:COL), dry run and apply alike, and changes
    nothing; the daemon logs it for such an interface and attaches the others."""
    a = svc.netns()
    for i in range(2):
        svc.veth(a, f"sv{i}", f"pv{i}")
    g = glob_covered()
    conf = svc.config(f'name: nohook\ninterfaces:\n  - match: "sv*"\n    netns: "{g}"\n')
    pktlens("apply", conf)
    bad = svc.config(f'name: nohook\ninterfaces:\n  - match: sv9\n    netns: "{g}"\n'
                     f'  - match: "sv*"\n    netns: "{g}"\n    tc: none\n', "bad.conf")
    for dry in ([], ["--dry-run"]):
        r = pktlens("apply", bad, *dry, check=False)
        assert r.returncode == 1 and r.stdout == "", r
        for n in ("sv0", "sv1"):
            assert f"pktlens: apply: {n} (netns " in r.stderr and \
                f"): {bad}:5:5: nothing to attach (xdp: auto is none on a virtual device, and tc: none)" \
                in r.stderr, r.stderr
        doc = json.loads(pktlens("-j", "apply", bad, *dry, check=False).stdout)
        assert not doc["ok"] and len(doc["blocked"]) == 2 and not any(s.get("done") for s in doc["steps"])
    assert {n: [(h["hook"], h["dir"]) for h in att["hooks"]] for n, att in listed(a).items()} == \
        {n: [("tc", "in"), ("tc", "out")] for n in ("sv0", "sv1")}
    # the daemon: the matching veth that gets no hook is logged, sv9 (first entry) attached
    pktlens("detach", "--all", ns=a)
    d = Daemon(svc, bad)
    d.wait_notify()
    svc.veth(a, "sv9", "pv9")
    wait_for(lambda: attached(a, "sv9"), what="sv9 attached")
    d.wait_log(rf"sv0 \(netns .*\): {re.escape(bad)}:5:5: nothing to attach")
    assert set(listed(a)) == {"sv9"}
    assert d.p.poll() is None


def test_apply_xdp_the_driver_refuses_leaves_the_tc_hooks_counting(svc):
    """A change adding XDP to a tc attachment that the driver refuses (a bridge has no native
    XDP) leaves the attachment as it was, counting: the old tc hooks were taken down before
    the XDP attach was tried ("program-gone", nothing counted until the next apply)."""
    a = svc.netns()
    sh("ip", "-n", a, "link", "add", "br0", "type", "bridge")
    sh("ip", "-n", a, "link", "set", "br0", "up")
    sh("ip", "-n", a, "addr", "add", "198.18.9.1/24", "dev", "br0")
    base = f'name: brtest\ninterfaces:\n  - match: br0\n    netns: "{glob_covered()}"\n    tc: out\n'
    old = svc.config(base + "    xdp: none\n", "old.conf")
    new = svc.config(base + "    xdp: native\n", "new.conf")
    pktlens("apply", old)
    r = pktlens("apply", new, check=False)
    assert r.returncode == 1 and "driver lacks native XDP" in r.stderr, r
    assert listed(a)["br0"]["state"] == "attached"

    def counts():
        st = pktlens_json("stats", "br0", ns=a)["interfaces"][0]
        return st["kernel"]["tx_packets"], sum(h["packets"] for h in st["hooks"] if h["dir"] == "out")

    (tx0, out0) = counts()
    sh("ip", "netns", "exec", a, "ping", "-b", "-c", "2", "-i", "0.2", "-W", "1", "198.18.9.255", check=False)
    tx, out = counts()
    assert tx - tx0 >= 2 and out - out0 == tx - tx0, (tx0, out0, tx, out)
    assert pktlens("apply", old).stdout.startswith("nothing to change")


def test_a_pattern_passes_over_interfaces_without_ethernet_a_name_is_blocked(svc):
    """pktlens analyses Ethernet frames: a pattern covers the Ethernet interfaces it matches
    and passes over a tun device (no link-layer header) it also matches; a config that names
    the tun device is blocked, saying why, and changes nothing."""
    a = svc.netns()
    svc.veth(a, "sv0", "pv0")
    sh("ip", "-n", a, "tuntap", "add", "mode", "tun", "name", "sv7")
    sh("ip", "-n", a, "link", "set", "sv7", "up")
    g = glob_covered()
    conf = svc.config(f'name: l2\ninterfaces:\n  - match: "sv*"\n    netns: "{g}"\n')
    assert pktlens_json("apply", conf)["ok"]
    assert set(listed(a)) == {"sv0"}
    assert pktlens("apply", conf).stdout.startswith("nothing to change")
    named = svc.config(f'name: l2\ninterfaces:\n  - match: [sv0, sv7]\n    netns: "{g}"\n',
                       "named.conf")
    for dry in ([], ["--dry-run"]):
        r = pktlens("apply", named, *dry, check=False)
        assert r.returncode == 1 and r.stdout == "", r
        assert "pktlens: apply: sv7 (netns " in r.stderr and \
            "): not an Ethernet interface (ARPHRD 65534: no link-layer header, as tun and " \
            "wireguard): pktlens analyses Ethernet frames only" in r.stderr, r.stderr
    assert set(listed(a)) == {"sv0"}


def test_apply_redirect_rule_missing_in_one_namespace_names_it(svc):
    """A --redirect rule is looked up in each namespace it runs in: where its target is
    missing in one covered namespace only, the error names FILE:LINE:COL and the interface
    and namespace where it does not hold (the target exists in the other), exit 2, nothing
    attached anywhere; with the target in both, both are attached."""
    a, b = svc.netns(), svc.netns()
    svc.veth(a, "sv0", "pv0")
    svc.veth(a, "out0", "po0")
    svc.veth(b, "sv1", "pv1")
    conf = svc.config(f'name: redir\ninterfaces:\n  - match: "sv*"\n    netns: "{glob_covered()}"\n'
                      '    rules:\n      - "--proto udp --dport 9 --redirect out0"\n')
    for dry in (["--dry-run"], []):
        r = pktlens("apply", conf, *dry, check=False)
        assert r.returncode == 2 and r.stdout == "", r
        assert r.stderr == f"pktlens: apply: {conf}:6:43: --redirect 'out0': no such interface " \
                           f"(sv1 in netns {ns_ino(b)} ({b}))\n", r.stderr
    assert not attached(a, "sv0") and not attached(b, "sv1")
    svc.veth(b, "out0", "po1")
    assert pktlens_json("apply", conf)["ok"]
    assert attached(a, "sv0") and attached(b, "sv1")


@pytest.mark.variant
def test_apply_rule_of_a_direction_without_a_hook_is_an_error_of_the_plan(svc):
    """An --out rule on an entry with tc: in (or an ingress rule, of a rules-file too, where
    the interface gets no ingress hook) is refused as `policy add` refuses it: FILE:LINE:COL
    of the rule, exit 2, by --dry-run as by apply, and nothing attached, not even the
    interfaces of the other entry that the run would have attached first."""
    a = svc.netns()
    svc.veth(a, "sv0", "pv0")
    svc.veth(a, "sv1.x-y", "pv1")
    with open(os.path.join(svc.tmp, "in.rules"), "w") as f:
        f.write("# ingress\n--src 2001:db8::/32 --drop\n")
    head = f'interfaces:\n  - match: sv0\n    netns: "{glob_covered()}"\n    tc: in,out\n' \
           '    rules: ["--out --proto udp --drop"]\n  - match: "sv1*"\n' f'    netns: "{glob_covered()}"\n'
    cases = [("    tc: in\n    rules:\n      - '--proto udp --dport 53 --pass'\n      - '--out --proto udp --drop'\n",
              "{conf}:11:10: an egress (--out) rule, but sv1.x-y gets no egress hook (tc: out or in,out)"),
             ("    tc: out\n    rules-file: in.rules\n",
              "{tmp}/in.rules:2:1: an ingress rule, but sv1.x-y gets no ingress hook")]
    for n, (tail, msg) in enumerate(cases):
        conf = svc.config(head + tail, f"dir{n}.conf")
        for dry in (["--dry-run"], []):
            r = pktlens("apply", conf, *dry, check=False)
            assert r.returncode == 2 and r.stdout == "", r
            assert r.stderr.startswith("pktlens: apply: " + msg.format(conf=conf, tmp=svc.tmp)), r.stderr
            assert r.stderr.count("\n") == 1, r.stderr
        assert not attached(a, "sv0") and not attached(a, "sv1.x-y")
    r = pktlens("apply", svc.config(head + "    tc: in,out\n    rules-file: in.rules\n", "ok.conf"),
                "--dry-run", check=False)
    assert r.returncode == 0 and "plan: 2 to add" in r.stdout, r


@pytest.mark.variant
def test_apply_entry_names_a_namespace_by_any_of_its_names(svc):
    """A namespace with two names in /run/netns (a bind mount, as `ip netns attach` makes):
    an entry that names it by its second name covers it, even where another entry covers it
    by the first (the name shown)."""
    a = svc.netns()
    alias = unique("plr")
    Path(f"/run/netns/{alias}").touch()
    svc.namespaces.append(alias)    # `ip netns del` unmounts and removes it
    sh("mount", "--bind", f"/run/netns/{a}", f"/run/netns/{alias}")
    svc.veth(a, "sv0", "pv0")
    svc.veth(a, "sv1", "pv1")
    conf = svc.config(f'interfaces:\n  - match: sv0\n    netns: "{glob_covered()}"\n'
                      f'  - match: sv1\n    netns: "{alias}"\n    tc: in\n')
    doc = pktlens_json("apply", conf, "--dry-run")
    assert [(s["action"], s["ifname"], s["netns"], s["to"]["tc"]) for s in doc["steps"]] == \
        [("add", "sv0", ns_ino(a), "in,out"), ("add", "sv1", ns_ino(a), "in")], doc


def test_entry_matches_an_interface_by_its_alternative_names(svc):
    """`match:` names an interface by an alternative name too (ip link property add ...
    altname, up to 127 bytes), as a name or by a glob, as the command line takes one: apply
    plans it, the daemon attaches it, and follows an altname added or removed later (link
    notifications). Before, only the kernel name was matched and a literal longer than
    15 bytes was refused."""
    a = svc.netns()
    longname = f"uplink-to-the-core-router-of-rack-{os.getpid()}-" + "x" * 60
    svc.veth(a, "sv0", "pv0")
    svc.veth(a, "sv1", "pv1", up=True)     # the kernel tells of an altname of an interface up
    svc.veth(a, "sv2", "pv2")
    sh("ip", "-n", a, "link", "property", "add", "dev", "sv0", "altname", longname)
    conf = svc.config(f'interfaces:\n  - match: ["{longname}", "grp-*"]\n    netns: "{glob_covered()}"\n'
                      f'    tc: in\n')
    doc = pktlens_json("apply", conf, "--dry-run")
    assert [(s["action"], s["ifname"]) for s in doc["steps"]] == [("add", "sv0")], doc
    d = Daemon(svc, conf)
    d.wait_notify()
    assert attached(a, "sv0") and not attached(a, "sv1") and not attached(a, "sv2")
    sh("ip", "-n", a, "link", "property", "add", "dev", "sv1", "altname", "grp-db")
    wait_for(lambda: attached(a, "sv1"), what="sv1 attached once its altname matches")
    assert listed(a)["sv1"]["managed_by"] is not None
    sh("ip", "-n", a, "link", "property", "del", "dev", "sv1", "altname", "grp-db")
    wait_for(lambda: not attached(a, "sv1"), what="sv1 detached once no altname matches")
    time.sleep(0.3)
    assert attached(a, "sv0") and not attached(a, "sv2")


def test_apply_without_cap_sys_admin_says_what_a_namespace_needs(svc):
    """pktlens.service has no CAP_SYS_ADMIN unless a drop-in adds it, and entering a named
    namespace needs it: apply (and the daemon) says so where it cannot enter one; nothing
    changes."""
    a = svc.netns()
    svc.veth(a, "sv0", "pv0")
    conf = svc.config(f'name: nocap\ninterfaces:\n  - match: sv0\n    netns: "{glob_covered()}"\n')
    r = subprocess.run(["setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-sys_admin",
                        PKTLENS, "apply", conf], capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r
    assert f"pktlens: apply: netns {a}: cannot enter it: Operation not permitted (that needs " \
           f"CAP_SYS_ADMIN: pktlens.service has it only with a drop-in)\n" in r.stderr, r.stderr
    assert not attached(a, "sv0")
    # the daemon says it once per namespace, with what it needs, and runs on
    d = subprocess.Popen(["setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-sys_admin",
                          PKTLENS, "daemon", "--config", conf], stderr=subprocess.PIPE, text=True)
    try:
        lines = []
        for line in d.stderr:
            lines.append(line)
            if " ready: " in line:
                break
        d.send_signal(signal.SIGTERM)
        assert d.wait(timeout=30) == 0
    finally:
        if d.poll() is None:
            d.kill()
            d.wait()
    watch = [x for x in lines if "cannot watch" in x]
    assert watch == [f"pktlens: daemon: netns {a}: cannot watch its interfaces: Operation not permitted "
                     f"(entering it needs CAP_SYS_ADMIN: pktlens.service has it only with a drop-in)\n"], lines
    assert not attached(a, "sv0")
    # with pktlens.service's capabilities only (no CAP_SYS_ADMIN), a config of the namespace
    # pktlens runs in needs to enter none: setns(2) even into one's own namespace needs it
    unit_caps = "-all,+bpf,+net_admin,+perfmon"
    here = svc.config('name: nocap\ninterfaces:\n  - match: sv0\n', "here.conf")
    r = subprocess.run(["nsenter", f"--net=/run/netns/{a}", "setpriv", f"--bounding-set={unit_caps}",
                        f"--inh-caps={unit_caps}", f"--ambient-caps={unit_caps}",
                        "--securebits=+noroot,+noroot_locked", PKTLENS, "apply", "-j", here],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stderr == "", r
    assert attached(a, "sv0")
    # -j names the namespace as the text does ("netns INODE (NAME)"), the one it runs in too
    assert [(s["action"], s["netns"], s["netns_name"]) for s in json.loads(r.stdout)["steps"]] == \
        [("add", ns_ino(a), a)], r.stdout
    # the same config by the namespace's name (the glob), run there: the namespace is covered by
    # its name wherever pktlens runs, nothing "no longer covered" to remove
    r = pktlens("apply", "--dry-run", conf, ns=a)
    assert r.stdout == "plan: 0 to add, 0 to change, 0 to remove, 1 unchanged (--dry-run: nothing changed)\n", \
        r.stdout
    assert pktlens("apply", conf, ns=a).stdout == f"nothing to change: 1 attachment as {conf} says\n"
    assert attached(a, "sv0")


def test_apply_killed_leaves_each_attachment_old_or_new(svc):
    """kill -9 at random points of apply: every attachment as the old or the new config says."""
    a = svc.netns()
    names = [f"sv{i}" for i in range(3)]
    for i, n in enumerate(names):
        svc.veth(a, n, f"pv{i}", up=True)
    base = f'name: killtest\ninterfaces:\n  - match: "sv*"\n    netns: "{glob_covered()}"\n'
    old = svc.config(base + '    flows: 1024\n    rules:\n      - "--proto udp --dport 9 --drop"\n', "old.conf")
    new = svc.config(base + '    flows: 2048\n    filter: "udp"\n    rules:\n      - "--proto udp --dport 9 --drop"\n'
                     '      - "--proto tcp --drop"\n    tc: in\n', "new.conf")
    want = {old: (1024, None, ("in", "out"), 1), new: (2048, "udp", ("in",), 2)}
    pktlens("apply", old)
    assert svc.send("pv0", 9, dport=9) == 9
    wait_for(lambda: stats_in(a, "sv0") == 9, what="9 packets")

    def state():
        filters = {i["ifname"]: i["filter"] for i in pktlens_json("stats", ns=a)["interfaces"]}
        rules = {i["interface"]: len(i["rules"]) for i in pktlens_json("policy", "list", ns=a)["interfaces"]}
        return {n: (att["flows_max"], filters[n], tuple(sorted(h["dir"] for h in att["hooks"] if h["hook"] == "tc")),
                    rules[n]) for n, att in listed(a).items()}

    random.seed(os.getpid())
    kills = 0
    for it in range(6):
        src, dst = (old, new) if it % 2 == 0 else (new, old)
        p = subprocess.Popen([PKTLENS, "apply", dst], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(random.uniform(0.0, 0.6))
        if p.poll() is None:
            p.kill()
            kills += 1
        p.wait()
        st = state()
        assert set(st) == set(names), st
        for n, v in st.items():
            assert v in (want[src], want[dst]), (it, n, v)
        # the next apply finishes the job (leftovers of the killed one included)
        pktlens("apply", dst)
        assert set(state().values()) == {want[dst]}
        assert pktlens("apply", dst).stdout.startswith("nothing to change")
        # counters are never reset by apply
        assert stats_in(a, "sv0") == 9
    assert kills >= 2, "apply always finished before the kill: nothing was tested"
    assert not [d for d in os.listdir(Path(PIN_ROOT) / str(ns_ino(a))) if d.startswith("tmp:")]


def test_apply_whose_worker_dies_fails_and_names_the_step(svc):
    """A worker process killed while it adds an interface takes its step with it: apply says
    so and exits 1, never "applied" with an interface left out; the next apply adds it."""
    a = svc.netns()
    names = [f"sv{i}" for i in range(8)]
    for i, n in enumerate(names):
        svc.veth(a, n, f"pv{i}")
    conf = svc.config(f'interfaces:\n  - match: "sv*"\n    netns: "{a}"\n', "workers.conf")
    lost_seen = False
    for attempt in range(4):
        p = subprocess.Popen([PKTLENS, "apply", conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        victim, deadline = None, time.monotonic() + 20
        while victim is None and p.poll() is None and time.monotonic() < deadline:
            kids = [int(c) for t in os.listdir(f"/proc/{p.pid}/task")
                    for c in open(f"/proc/{p.pid}/task/{t}/children").read().split()]
            victim = kids[0] if kids else None
        if victim is not None:
            time.sleep(0.03 * attempt)     # into its first step, or later
            os.kill(victim, signal.SIGKILL)
        out, err = p.communicate(timeout=60)
        lost = [ln for ln in (out + err).splitlines() if "its worker process was killed (Killed)" in ln]
        if p.returncode == 0:
            # the kill came before the worker took a step, or after its last: nothing lost
            assert not lost and sorted(listed(a)) == sorted(names), (out, err)
        else:
            assert p.returncode == 1 and len(lost) == 1 and "applied:" not in out, (out, err)
            assert len(listed(a)) == len(names) - 1, (out, err)
            lost_seen = True
        assert pktlens("apply", conf).returncode == 0
        assert sorted(listed(a)) == sorted(names)
        if lost_seen:
            break
        pktlens("detach", "--all", ns=a)
    if not lost_seen:
        pytest.skip("no kill landed while a worker was adding an interface")


def test_apply_after_the_config_name_changed_manages_what_the_file_managed(svc):
    """A config's `name` edited in place: what the file managed under its old name is its own
    (found by the file the attachments record), counters kept. It was another config's to
    the new name: the interfaces an edit also stopped matching were left counting, managed
    by a name no config had any more, and never detached."""
    a = svc.netns()
    for i in range(3):
        svc.veth(a, f"sv{i}", f"pv{i}", up=True)
    body = f'interfaces:\n  - match: "sv*"\n    netns: "{glob_covered()}"\n    xdp: none\n    tc: in\n'
    conf = svc.config("name: old-name\n" + body)
    pktlens("apply", conf)
    assert svc.send("pv0", 5) == 5
    wait_for(lambda: stats_in(a, "sv0") == 5, what="5 packets on sv0")
    # renamed, and sv2 no longer matched, in one edit: sv2 goes, the others change owner
    svc.config("name: new-name\n" + body.replace('"sv*"', '["sv0", "sv1"]'))
    r = pktlens("apply", conf)
    assert re.search(r"^remove sv2 \(netns .*\): no longer matched by the config; final totals", r.stdout, re.M), r.stdout
    assert re.search(r"^change sv0 \(netns .*\): now managed by this config \(was managed by old-name, "
                     r"this file's previous name\)$", r.stdout, re.M), r.stdout
    assert r.stdout.endswith("applied: 0 added, 2 changed, 1 removed, 0 unchanged\n"), r.stdout
    att = listed(a)
    assert {n: x["managed_by"] for n, x in att.items()} == {"sv0": "new-name", "sv1": "new-name"}
    assert stats_in(a, "sv0") == 5, "the new name reset sv0's counters"
    assert pktlens("apply", conf).stdout.startswith("nothing to change: 2 attachments")
    # an entry removed afterwards: detached
    svc.config("name: new-name\n" + body.replace('"sv*"', '"sv0"'))
    r = pktlens("apply", conf)
    assert re.search(r"^remove sv1 \(netns .*\): no longer matched", r.stdout, re.M), r.stdout
    assert set(listed(a)) == {"sv0"} and stats_in(a, "sv0") == 5


@pytest.mark.variant
def test_daemon_reload_after_the_config_name_changed_manages_what_the_file_managed(svc):
    """The daemon's reload of a file whose `name` was edited: what the file managed under
    the old name is its own (the one the edit stopped matching is detached), as with apply."""
    a = svc.netns()
    for i in range(2):
        svc.veth(a, f"sv{i}", f"pv{i}", up=True)
    body = f'interfaces:\n  - match: "sv*"\n    netns: "{glob_covered()}"\n    xdp: none\n    tc: in\n'
    conf = svc.config("name: old-name\n" + body)
    d = Daemon(svc, conf)
    d.wait_notify()
    svc.config("name: new-name\n" + body.replace('"sv*"', '"sv0"'))
    mark = len(d.lines)
    d.p.send_signal(signal.SIGHUP)
    d.wait_log(r"reloaded .*: 0 added, 1 changed, 1 removed, 0 unchanged", start=mark)
    assert {n: x["managed_by"] for n, x in listed(a).items()} == {"sv0": "new-name"}
    assert d.stop() == 0


def test_a_renamed_config_and_metadata_without_its_file(svc):
    """Attachments of an older pktlens (metadata version 9, no room for the config's file)
    are read as before; a config whose name changed does not know them for its own, says so,
    and --take-over records the new name in their smaller metadata."""
    a = svc.netns()
    svc.veth(a, "sv0", "pv0", up=True)
    body = f'interfaces:\n  - match: "sv0"\n    netns: "{glob_covered()}"\n    xdp: none\n    tc: in\n'
    conf = svc.config("name: old-name\n" + body)
    pktlens("apply", conf)
    meta = pins(a, "sv0") / "meta"
    value = json.loads(sh("bpftool", "-j", "map", "dump", "pinned", str(meta)).stdout)[0]["value"]
    v9 = ["0x09", "0x00", "0x00", "0x00"] + value[4:len(value) - 256]   # without managed_file
    meta.unlink()
    sh("bpftool", "map", "create", str(meta), "type", "array", "key", "4", "value", str(len(v9)),
       "entries", "1", "name", "meta")
    sh("bpftool", "map", "update", "pinned", str(meta), "key", "0", "0", "0", "0", "value", *v9)
    assert listed(a)["sv0"]["managed_by"] == "old-name"
    assert pktlens("apply", conf).stdout.startswith("nothing to change: 1 attachment")
    svc.config("name: new-name\n" + body)
    r = pktlens("apply", conf, check=False)
    assert r.returncode == 1 and "sv0 (netns" in r.stderr and "managed by the config 'old-name', which" in r.stderr, r
    r = pktlens("apply", conf, "--take-over")
    assert "now managed by this config (was managed by old-name)" in r.stdout, r.stdout
    assert listed(a)["sv0"]["managed_by"] == "new-name"
    assert pktlens("apply", conf).stdout.startswith("nothing to change: 1 attachment")


def overlapping_configs(svc, first_extra=""):
    """A namespace with sv0 and sv1 (up); configs 'first' (sv0, and @first_extra in its entry)
    and 'second' (sv*), both matching sv0: (namespace, first's path, second's path)."""
    a = svc.netns()
    for i in range(2):
        svc.veth(a, f"sv{i}", f"pv{i}", up=True)
    entry = f'    netns: "{glob_covered()}"\n    xdp: none\n    tc: in\n'
    first = svc.config(f'name: first\ninterfaces:\n  - match: "sv0"\n{entry}{first_extra}', "first.conf")
    second = svc.config(f'name: second\ninterfaces:\n  - match: "sv*"\n{entry}', "second.conf")
    return a, first, second


def test_apply_leaves_an_interface_another_config_manages_to_it(svc):
    """Two configs that match one interface took it from each other on every apply (and every
    daemon event), each adopting it. The second now names the first and changes nothing,
    exit 1, unless --take-over; the first's attachment and counters stay as they were."""
    a, first, second = overlapping_configs(svc, "    flows: 4096\n")
    pktlens("apply", first)
    assert svc.send("pv0", 5) == 5
    wait_for(lambda: stats_in(a, "sv0") == 5, what="5 packets on sv0")
    for dry in ([], ["--dry-run"]):
        r = pktlens("apply", second, *dry, check=False)
        assert r.returncode == 1, r
        lines = [line for line in r.stderr.splitlines() if "managed by the config" in line]
        assert len(lines) == 1 and re.fullmatch(
            rf"pktlens: apply: sv0 \(netns .*\): managed by the config 'first' \({re.escape(first)}\), which "
            rf"{re.escape(second)}:3:5 matches too: left to it \(pktlens apply --take-over {re.escape(second)} "
            r"takes it over\)", lines[0]), r.stderr
    att = listed(a)
    assert set(att) == {"sv0"} and att["sv0"]["managed_by"] == "first" and att["sv0"]["flows_max"] == 4096
    assert stats_in(a, "sv0") == 5
    assert pktlens("apply", first).stdout.startswith("nothing to change: 1 attachment")
    # taken over on purpose: adopted, counters kept; now the first is the one refused
    done = pktlens_json("apply", second, "--take-over")
    assert sorted((s["action"], s["ifname"]) for s in done["steps"]) == [("add", "sv1"), ("adopt", "sv0")]
    assert [s["managed_by_before"] for s in done["steps"] if s["action"] == "adopt"] == ["first"]
    assert listed(a)["sv0"]["managed_by"] == "second" and stats_in(a, "sv0") == 5
    r = pktlens("apply", first, check=False)
    assert r.returncode == 1 and "sv0 (netns" in r.stderr and "managed by the config 'second'" in r.stderr, r


def test_daemon_leaves_an_interface_another_config_manages_to_it(svc):
    """A daemon whose config overlaps another's: it says so once and leaves the other's
    interface alone, at start and at the interface's events (it adopted it on each)."""
    a, first, second = overlapping_configs(svc)
    pktlens("apply", first)
    d = Daemon(svc, second)
    d.wait_notify()
    d.wait_log(r"sv0 \(netns .*\): managed by the config 'first' .*: left to it")
    d.wait_log(r"ready: .*: 1 added, 0 changed, 0 removed, 0 unchanged")
    mark = len(d.lines)
    sh("ip", "-n", a, "link", "set", "sv0", "down")
    d.wait_log(r"sv0 \(netns .*\): managed by the config 'first'", start=mark)
    assert {n: x["managed_by"] for n, x in listed(a).items()} == {"sv0": "first", "sv1": "second"}
    assert d.stop() == 0


# ---- the daemon ----

def test_daemon_attaches_as_interfaces_and_namespaces_appear(svc):
    a, b = svc.netns(), svc.netns()
    svc.veth(a, "sv0", "pv0", up=True, addr="198.18.7.2")
    svc.veth(a, "other0", "po0", up=True)
    port = free_port()
    conf = svc.config(f"""
interfaces:
  - match: ["sv*", "late*"]
    netns: "{glob_covered()}"
    flows: 1024
export:
  prometheus: {{ listen: "127.0.0.1:{port}" }}
""")
    d = Daemon(svc, conf)
    ready = d.wait_notify(b"READY=1")
    # READY=1 comes once the config is applied: sv0 is attached by then
    assert attached(a, "sv0") and not attached(a, "other0")
    assert any(b"STATUS=running" in n for n in d.notes)
    _, line = d.wait_log(r"ready: ")
    assert "1 added" in line

    # 50 new interfaces, one at a time, in both namespaces: creation to attachment
    lat = []
    for i in range(1, 51):
        ns = (a, b)[i % 2]
        t0 = time.monotonic()
        sh("ip", "-n", ns, "link", "add", f"sv{i}", "type", "veth", "peer", "name", f"pv{i}", "netns", svc.peer)
        wait_for(lambda: attached(ns, f"sv{i}"), timeout=30, step=0.002, what=f"sv{i} attached")
        lat.append(time.monotonic() - t0)
    lat.sort()
    p50, p99 = lat[len(lat) // 2], lat[int(len(lat) * 0.99) - 1]
    print(f"creation to attachment over 50 interfaces: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms, "
          f"max {lat[-1] * 1000:.0f} ms")
    # generous: the target is 200 ms, attaching itself loads and verifies four programs (about
    # 160 ms here), and every pktlens command on the machine takes turns on one change lock. A
    # daemon that misses events fails above; one that polls fails the idle check below.
    assert p50 < 2.0 and p99 < 20.0, lat
    # non-matching interfaces are left alone, in covered namespaces too
    svc.veth(b, "other1", "po1")
    time.sleep(0.3)
    assert not attached(a, "other0") and not attached(b, "other1")
    assert "other" not in d.log()

    # traffic counted exactly: frames sent = tc ingress count = the kernel's rx counter
    rx0 = svc.rx(a, "sv0")["packets"]
    assert svc.send("pv0", 25, dst_mac=svc.mac(a, "sv0"), dst="198.18.7.2") == 25
    wait_for(lambda: stats_in(a, "sv0") >= 25, what="25 packets")
    time.sleep(0.2)
    assert stats_in(a, "sv0") == 25 == svc.rx(a, "sv0")["packets"] - rx0

    # a rename: the pins follow, counters and all; to a name the config does not match: detached
    mark = len(d.lines)
    sh("ip", "-n", a, "link", "set", "sv0", "name", "sv0r")
    wait_for(lambda: attached(a, "sv0r") and not pins(a, "sv0").exists(), what="pins of sv0 at sv0r")
    assert stats_in(a, "sv0r") == 25
    d.wait_log(r"change sv0r \(netns \d+ \(" + a + r"\)\): renamed from sv0", start=mark)
    sh("ip", "-n", a, "link", "set", "sv2", "name", "xx2")
    wait_for(lambda: not pins(a, "sv2").exists() and not pins(a, "xx2").exists(), what="sv2 detached")
    d.wait_log(r"remove sv2 \(netns .*\): renamed to a name the config does not match", start=mark)

    # a deletion: final totals logged; the pins stay until Prometheus has scraped them once
    sh("ip", "-n", a, "link", "del", "sv0r")
    _, line = d.wait_log(r"gone sv0r \(netns .*\): interface gone; final totals: tc in 25 packets", start=mark)
    assert pins(a, "sv0r").exists()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        text = r.read().decode()
    assert re.search(rf'pktlens_packets_total{{netns="{ns_ino(a)}",netns_name="{a}",device="sv0r",'
                     r'direction="in",hook="tc",verdict="pass"} 25\n', text), "the final count was not exported"
    assert re.search(rf'pktlens_attachment_info{{netns="{ns_ino(b)}",netns_name="{b}",device="sv1",'
                     rf'managed_by="{re.escape(conf)}"}} 1\n', text)
    wait_for(lambda: not pins(a, "sv0r").exists(), what="sv0r's pins released after the scrape")

    # a named namespace created after the start is covered, with interfaces made right away
    mark = len(d.lines)
    c = svc.netns()
    svc.veth(c, "late0", "pl0")
    wait_for(lambda: attached(c, "late0"), what="late0 in a new namespace")
    d.wait_log(rf"add late0 \(netns \d+ \({c}\)\)", start=mark)
    assert listed(c)["late0"]["managed_by"] == conf

    # idle: no CPU, no log, and the main loop wakes only for events: those of other pktlens
    # users' namespaces coming and going in /run/netns (which this test counts too)
    time.sleep(0.5)
    with NetnsEvents() as ev:
        ticks, cs = d.cpu_ticks(), d.status("voluntary_ctxt_switches", task=d.p.pid)
        lines = len(d.lines)
        time.sleep(4)
        wakeups = d.status("voluntary_ctxt_switches", task=d.p.pid) - cs
        events = ev.count()
    assert wakeups <= events, f"{wakeups} wakeups of the main loop for {events} events while idle"
    assert d.cpu_ticks() - ticks <= 2 and len(d.lines) == lines, "CPU or log noise while idle"
    print(f"idle 4 s: {d.cpu_ticks() - ticks} CPU ticks, {wakeups} wakeups for {events} /run/netns events")
    print(f"daemon RSS {d.status('VmRSS')} kB, {time.monotonic() - ready:.1f} s after READY")
    assert d.stop() == 0
    d.wait_log(r"stopped: attachments left in place")
    assert attached(b, "sv1") and attached(c, "late0")


def test_daemon_follows_interfaces_that_trade_names(svc):
    """Renames in a cycle (two interfaces trading names, then three in a ring): each
    attachment follows its interface to its new name, counters and all (the pins of one
    name exchanged with the other's); each name's count is its interface's (the kernel's
    rx counter)."""
    a = svc.netns()
    names = ["sv0", "sv1", "sv2"]
    for i, n in enumerate(names):
        svc.veth(a, n, f"pv{i}", up=True)
    conf = svc.config(f'interfaces:\n  - match: "sv*"\n    netns: "{glob_covered()}"\n    tc: in\n')
    d = Daemon(svc, conf)
    d.wait_notify()
    rx0 = {n: svc.rx(a, n)["packets"] for n in names}
    for i, n in enumerate(names):
        assert svc.send(f"pv{i}", 3 + i) == 3 + i
    wait_for(lambda: [stats_in(a, n) for n in names] == [3, 4, 5], what="3, 4, 5 packets")

    def follows():
        for n in names:
            if not attached(a, n) or stats_in(a, n) != svc.rx(a, n)["packets"] - rx0[n]:
                return False
        return True

    for batch in (["sv0 svt", "sv1 sv0", "svt sv1"], ["sv0 svt", "sv2 sv0", "sv1 sv2", "svt sv1"]):
        mark = len(d.lines)
        # rx0 follows each interface (by its index) to its new name
        idx = {l["ifname"]: l["ifindex"] for l in json.loads(sh("ip", "-n", a, "-j", "link", "show").stdout)}
        by_idx = {idx[n]: rx0[n] for n in names}
        path = os.path.join(svc.tmp, "ren.batch")
        with open(path, "w") as f:
            f.write("".join(f"link set {x.split()[0]} name {x.split()[1]}\n" for x in batch))
        sh("ip", "-n", a, "-batch", path)
        idx = {l["ifname"]: l["ifindex"] for l in json.loads(sh("ip", "-n", a, "-j", "link", "show").stdout)}
        rx0 = {n: by_idx[idx[n]] for n in names}
        wait_for(lambda: follows() and {att["ifindex"] for att in listed(a).values()} == {idx[n] for n in names}
                 and all(listed(a)[n]["ifindex"] == idx[n] for n in names), what="the pins at the new names")
        time.sleep(0.3)
        assert "failed" not in "\n".join(line for _, line in d.lines[mark:]), d.log()
    assert d.p.poll() is None
    # traffic after the renames goes on counting under the new names
    for i in range(3):
        svc.send(f"pv{i}", 2)
    wait_for(follows, what="counts after the renames")


def xdp_in(ns, dev):
    """Packets the XDP hook of dev counted."""
    doc = pktlens_json("stats", dev, ns=ns)
    return sum(h["packets"] for h in doc["interfaces"][0]["hooks"] if h["hook"] == "xdp")


def xdp_prog(ns, dev):
    """The id of the XDP program on dev, as the kernel says (None: none)."""
    link = json.loads(sh("ip", "-n", ns, "-j", "-d", "link", "show", "dev", dev).stdout)[0]
    return link.get("xdp", {}).get("prog", {}).get("id")


def test_interface_moved_between_covered_namespaces_is_attached_where_it_went(svc):
    """An XDP-attached interface moved to another covered namespace takes pktlens's XDP
    program along: the attachment it left is removed at once (exporters or not) and the
    interface attached where it went, in whichever order the namespaces are looked at, by
    apply and by the daemon; moved to a namespace the config does not cover, its program
    comes off."""
    a, b = svc.netns(), svc.netns()
    svc.veth(a, "mv0", "pm0", up=True)
    port = free_port()
    conf = svc.config(f'interfaces:\n  - match: "mv*"\n    netns: "{glob_covered()}"\n    xdp: skb\n'
                      f'    tc: none\n')
    pktlens("apply", conf)
    first = xdp_prog(a, "mv0")
    assert first and attached(a, "mv0")
    # apply: moved from a to b, then back (b before a, then a before b, by inode)
    for src, dst in ((a, b), (b, a)):
        sh("ip", "-n", src, "link", "set", "mv0", "netns", dst)
        sh("ip", "-n", dst, "link", "set", "mv0", "up")
        r = pktlens("apply", conf, check=False)
        assert r.returncode == 0, r
        assert attached(dst, "mv0") and not pins(src, "mv0").exists()
        assert xdp_prog(dst, "mv0") not in (None, first)
        first = xdp_prog(dst, "mv0")
    # the daemon, with an exporter (gone interfaces' pins wait for it; a moved one's cannot)
    with open(conf, "a") as f:
        f.write(f'export:\n  prometheus: {{ listen: "127.0.0.1:{port}" }}\n')
    d = Daemon(svc, conf)
    d.wait_notify()
    for src, dst in ((a, b), (b, a), (a, b)):
        prog = xdp_prog(src, "mv0")
        sh("ip", "-n", src, "link", "set", "mv0", "netns", dst)
        sh("ip", "-n", dst, "link", "set", "mv0", "up")
        wait_for(lambda: attached(dst, "mv0") and not pins(src, "mv0").exists() and
                 xdp_prog(dst, "mv0") not in (None, prog), what=f"mv0 attached in {dst}")
        rx0 = svc.rx(dst, "mv0")["packets"]
        assert svc.send("pm0", 6) == 6
        wait_for(lambda: xdp_in(dst, "mv0") == 6, what="6 packets where it went")
        assert svc.rx(dst, "mv0")["packets"] - rx0 == 6
    # to a namespace no entry covers: its XDP program comes off, nothing left behind
    sh("ip", "-n", b, "link", "set", "mv0", "netns", svc.peer)
    wait_for(lambda: not pins(b, "mv0").exists(), what="mv0's pins removed")
    assert xdp_prog(svc.peer, "mv0") is None
    assert "failed" not in d.log() and d.p.poll() is None


def test_daemon_covers_a_namespace_mounted_after_its_name_beside_a_stale_name(svc):
    """`ip netns add` makes the name, then mounts the namespace on it (no inotify event for
    the mount): the daemon looks again for 5 s. A covered name that is never mounted (a
    file left in /run/netns) used those 5 s up once and for all: a namespace added later
    was never covered."""
    stale = f"/run/netns/{unique(COVERED)}"
    open(stale, "w").close()
    try:
        conf = svc.config(f'interfaces:\n  - match: "sv*"\n    netns: "{glob_covered()}"\n    tc: in\n')
        d = Daemon(svc, conf)
        d.wait_notify()
        time.sleep(6)       # the stale name's 5 s of looking again are over
        name = unique(COVERED)
        path = f"/run/netns/{name}"
        open(path, "w").close()
        svc.namespaces.append(name)
        time.sleep(0.5)     # the name, not mounted yet
        sh("unshare", f"--net={path}", "ip", "link", "add", "sv0", "type", "veth", "peer", "name", "pv0")
        # (other namespaces coming and going in /run/netns make any daemon look again: on a
        # busy machine the one before the fix could pass by luck, never the other way round)
        wait_for(lambda: attached(name, "sv0"), timeout=3, what="sv0 in the namespace mounted late")
        assert listed(name)["sv0"]["managed_by"] == conf
    finally:
        os.unlink(stale)


@pytest.mark.scale
def test_daemon_burst_of_200_interfaces(svc):
    a = svc.netns()
    port = free_port()
    conf = svc.config(f'interfaces:\n  - match: "sb*"\n    netns: "{glob_covered()}"\n    flows: 256\n'
                      f'export:\n  prometheus: {{ listen: "127.0.0.1:{port}" }}\n')
    d = Daemon(svc, conf)
    d.wait_notify()
    batch = os.path.join(svc.tmp, "burst.batch")
    with open(batch, "w") as f:
        for i in range(200):
            f.write(f"link add sb{i} type veth peer name pb{i} netns {svc.peer}\n")
    mark = len(d.lines)
    t0 = time.monotonic()
    sh("ip", "-n", a, "-batch", batch)
    want = {f"sb{i}" for i in range(200)}
    base = Path(PIN_ROOT) / str(ns_ino(a))
    wait_for(lambda: base.exists() and want <= set(os.listdir(base)), timeout=300, step=0.05,
             what="200 attachments")
    took = time.monotonic() - t0
    print(f"200 interfaces created at once: all attached in {took:.1f} s")
    time.sleep(0.5)
    adds = [line for _, line in d.lines[mark:] if line.startswith("pktlens: daemon: add sb")]
    names = [re.match(r"pktlens: daemon: add (\S+) ", line)[1] for line in adds]
    assert sorted(names) == sorted(want), "an interface attached twice, or missed"
    assert not [line for _, line in d.lines[mark:] if "failed" in line]
    assert all(listed(a)[n]["managed_by"] == conf for n in want)
    assert took < 240, f"{took:.1f} s for 200 interfaces"
    # scrapes of 200 attachments: the memory they take goes back (it stayed, 12 MB more, when
    # the server threads had malloc arenas of their own)
    time.sleep(1)
    rss = d.status("VmRSS")
    for _ in range(5):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as r:
            assert r.read().count(b"pktlens_attachment_info{") >= 200
    time.sleep(0.5)
    print(f"RSS {rss} kB before 5 scrapes of 200 attachments, {d.status('VmRSS')} kB after, "
          f"peak {d.status('VmHWM')} kB")
    # ASan's allocator keeps what is freed in its quarantine: there is nothing to give back
    if not SAN:
        assert d.status("VmRSS") - rss < 4096


@pytest.mark.variant
def test_daemon_scrapes_naming_drop_reasons_give_their_memory_back(svc):
    """Drop reasons are named from the kernel's BTF (several MB): read once for the names, then
    freed. The daemon kept the whole BTF after its first scrape that named a reason (5.4 MB more
    for good here, so the burst test's memory check failed wherever drop probes ran)."""
    a = svc.netns()
    svc.veth(a, "sv0", "pv0", up=True, addr="198.18.7.2")
    sh("ip", "-n", svc.peer, "addr", "add", "198.18.7.1/24", "dev", "pv0")
    port = free_port()
    conf = svc.config(f'interfaces:\n  - match: sv0\n    netns: "{glob_covered()}"\n    probes: [drops]\n'
                      f'export:\n  prometheus: {{ listen: "127.0.0.1:{port}" }}\n')
    d = Daemon(svc, conf)
    d.wait_notify()
    # no socket on port 9: the kernel drops them, with a reason
    sh("ip", "netns", "exec", svc.peer, PYTHON, "-c", "import socket; s = socket.socket(socket.AF_INET, "
       "socket.SOCK_DGRAM); [s.sendto(b'x', ('198.18.7.2', 9)) for _ in range(3)]")
    ino = ns_ino(a)
    rx = re.compile(rf'pktlens_kernel_drops_total{{netns="{ino}",(?:netns_name="[^"]*",)?device="sv0",'
                    r'reason="([A-Z_]+)"} (\d+)')
    rss = d.status("VmRSS")

    def named():
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as r:
            return sum(int(n) for _, n in rx.findall(r.read().decode()))

    wait_for(lambda: named() >= 3, timeout=10, step=0.05, what="3 drops, their reason named")
    assert named() >= 3 and named() >= 3
    time.sleep(0.3)
    if not SAN:
        assert d.status("VmRSS") - rss < 2048, (rss, d.status("VmRSS"))


def test_daemon_reload(svc):
    """SIGHUP: new rules judged, counters of unchanged rules kept; a broken config changes nothing."""
    a = svc.netns()
    svc.veth(a, "sv0", "pv0", up=True, addr="198.18.7.2")
    conf = svc.config(f"""interfaces:
  - match: "sv*"
    netns: "{glob_covered()}"
    rules:
      - "--proto udp --dport 7 --pass"
      - "--proto udp --dport 8 --drop"
""")
    good = open(conf).read()
    d = Daemon(svc, conf)
    d.wait_notify()
    mac = svc.mac(a, "sv0")
    svc.send("pv0", 6, dst_mac=mac, dport=7, dst="198.18.7.2")
    wait_for(lambda: rules_of(a, "sv0")[0][1] == 6, what="rule 1 hits")
    with open(conf, "w") as f:
        f.write(good.replace('"--proto udp --dport 8 --drop"', '"--proto udp --dport 9 --drop"'))
    mark = len(d.lines)
    d.p.send_signal(signal.SIGHUP)
    d.wait_log(r"reloaded .*: 0 added, 1 changed, 0 removed", start=mark)
    d.wait_notify(b"READY=1")
    assert rules_of(a, "sv0") == [("--id 1 --in --prio 1000 --proto udp --dport 7 --pass", 6),
                                  ("--id 3 --in --prio 1000 --proto udp --dport 9 --drop", 0)]
    # the new rule judges: dropped at tc ingress, so the IP layer never sees them
    ip0 = int(sh("ip", "netns", "exec", a, "nstat", "-az", "IpInReceives").stdout.split()[-2])
    svc.send("pv0", 10, dst_mac=mac, dport=9, dst="198.18.7.2")
    svc.send("pv0", 4, dst_mac=mac, dport=7, dst="198.18.7.2")
    wait_for(lambda: rules_of(a, "sv0")[1][1] == 10, what="rule 3 hits")
    ip1 = int(sh("ip", "netns", "exec", a, "nstat", "-az", "IpInReceives").stdout.split()[-2])
    assert ip1 - ip0 == 4
    assert rules_of(a, "sv0")[0][1] == 10
    # a broken config: FILE:LINE:COL, the state stays as it was, the daemon runs on
    before = (rules_of(a, "sv0"), listed(a))
    with open(conf, "w") as f:
        f.write(good.replace("    rules:", "    rulez:"))
    mark = len(d.lines)
    d.p.send_signal(signal.SIGHUP)
    _, line = d.wait_log(r"reload: ", start=mark)
    assert line.startswith(f"pktlens: daemon: reload: {conf}:4:5: interfaces entry: unknown key 'rulez'"), line
    assert line.endswith("still running the previous config")
    time.sleep(0.2)
    assert (rules_of(a, "sv0"), listed(a)) == before
    assert d.p.poll() is None
    svc.veth(a, "sv1", "pv1")
    wait_for(lambda: attached(a, "sv1"), what="sv1 after a failed reload")
    assert len(rules_of(a, "sv1")) == 2
    # emptied (as a config tool truncates it before writing): not "remove everything"
    counted = rules_of(a, "sv0")
    for text in ("", "# being rewritten\n", "---\n"):
        with open(conf, "w") as f:
            f.write(text)
        mark = len(d.lines)
        d.p.send_signal(signal.SIGHUP)
        _, line = d.wait_log(r"reload: ", start=mark)
        assert line.startswith(f"pktlens: daemon: reload: {conf}: empty: no config in it (to manage "
                               "nothing, write 'interfaces: []')"), line
        assert attached(a, "sv0") and attached(a, "sv1") and rules_of(a, "sv0") == counted
    # nothing managed, said in so many words: both go
    with open(conf, "w") as f:
        f.write("interfaces: []\n")
    mark = len(d.lines)
    d.p.send_signal(signal.SIGHUP)
    d.wait_log(r"reloaded .*: 0 added, 0 changed, 2 removed", start=mark)
    assert not attached(a, "sv0") and not attached(a, "sv1")


@pytest.mark.parametrize("exporter", ["prometheus-busy", "ipfix-broadcast"])
def test_daemon_whose_exporter_cannot_start_changes_nothing(svc, exporter):
    """An exporter that cannot start (a port another socket holds, a collector the kernel
    will not send to) ends the daemon, exit 1, before it attaches, adopts or removes anything
    (before, it attached and adopted first, then exited: under systemd's Restart= it did that
    every few seconds without READY=1). A collector's name that does not resolve yet is no
    such case: see test_daemon_collector_name_that_resolves_later."""
    a = svc.netns()
    svc.veth(a, "sv0", "pv0", up=True)
    svc.veth(a, "sv1", "pv1", up=True)
    pktlens("attach", "sv0", "--xdp", "none", "--tc", "in", ns=a)
    busy = socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    export = {
        "prometheus-busy": f'  prometheus: {{ listen: "127.0.0.1:{busy.getsockname()[1]}" }}\n',
        "ipfix-broadcast": '  ipfix: { collector: "255.255.255.255:4739", interval: 5 }\n',
    }[exporter]
    conf = svc.config(f'name: noexp\ninterfaces:\n  - match: "sv*"\n    netns: "{glob_covered()}"\n'
                      f'    tc: in\non-stop: detach\nexport:\n{export}')
    try:
        d = Daemon(svc, conf)
        rc = d.p.wait(timeout=60)
        d.t.join(timeout=5)
    finally:
        busy.close()
    assert rc == 1, d.log()
    assert re.search(r"(prometheus|ipfix): .*(Address already in use|collector '255.255.255.255:4739': "
                     r"Permission denied)", d.log()), d.log()
    assert "not started: " in d.log() and " add " not in d.log() and " adopt " not in d.log(), d.log()
    assert not any(n == b"READY=1" for m in d.notes for n in m.split(b"\n"))
    att = listed(a)
    assert set(att) == {"sv0"} and att["sv0"]["managed_by"] is None, att
    assert not pins(a, "sv1").exists()


def test_daemon_reload_to_an_address_in_use_keeps_serving(svc):
    """SIGHUP with a Prometheus address another socket holds: the error is logged and the
    server goes on where it was (the running state stays); a later SIGHUP, once the address
    is free, starts it there (before, the exporter was gone until the address changed)."""
    port, busy = free_port(), socket.socket()
    busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    port2 = busy.getsockname()[1]
    conf = svc.config(f'export:\n  prometheus: {{ listen: "127.0.0.1:{port}" }}\n')

    def answers(p):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{p}/metrics", timeout=10) as r:
                return r.status == 200 and b"# TYPE" in r.read()
        except OSError:
            return False

    d = Daemon(svc, conf)
    d.wait_notify()
    assert answers(port)
    with open(conf, "w") as f:
        f.write(f'export:\n  prometheus: {{ listen: "127.0.0.1:{port2}" }}\n')
    mark = len(d.lines)
    d.p.send_signal(signal.SIGHUP)
    d.wait_log(rf"prometheus: cannot listen on 127\.0\.0\.1:{port2}: Address already in use", start=mark)
    d.wait_log(r"reloaded ", start=mark)
    assert answers(port), "the running exporter went with a reload that could not start the new one"
    busy.close()
    mark = len(d.lines)
    d.p.send_signal(signal.SIGHUP)
    d.wait_log(r"reloaded ", start=mark)
    assert answers(port2) and not answers(port)
    assert d.stop() == 0


def timers(pid):
    """(it_value, it_interval) of every timerfd of process pid, as the kernel has them."""
    out = []
    for fd in os.listdir(f"/proc/{pid}/fdinfo"):
        try:
            text = open(f"/proc/{pid}/fdinfo/{fd}").read()
        except OSError:
            continue
        m = re.search(r"it_value: \((\d+), (\d+)\)\nit_interval: \((\d+), (\d+)\)", text)
        if m:
            out.append(((int(m[1]), int(m[2])), (int(m[3]), int(m[4]))))
    return out


def idle_trigger_daemon(svc, prefix):
    """A daemon with one standing trigger on sv0 that never fires, its sampler waiting:
    (daemon, the sampler's pid, the config's path)."""
    a = svc.netns()
    svc.veth(a, "sv0", "pv0", up=True)
    write = os.path.join(svc.tmp, prefix + "-%s.pcap")
    conf = svc.config(f'triggers:\n  - dev: sv0\n    netns: {a}\n    when: "dev pps > 1000000"\n'
                      f'    for: 1\n    write: {write}\n')
    d = Daemon(svc, conf)
    d.wait_notify()
    _, line = d.wait_log(r"\(pktlens sample, pid \d+\)")
    pid = int(re.search(r"pid (\d+)\)", line)[1])
    d.wait_log(r"sample: sv0: waiting for 'dev pps > 1000000'")
    return d, pid, conf


def test_daemon_trigger_on_an_alternative_name(svc):
    """A trigger's dev may be an interface's alternative name, up to 127 bytes, as
    `pktlens sample` (which the daemon runs) takes it (the config refused one longer than
    15 bytes)."""
    a = svc.netns()
    svc.veth(a, "sv0", "pv0", up=True)
    alt = f"capture-point-of-the-test-{os.getpid()}-" + "y" * 40
    sh("ip", "-n", a, "link", "property", "add", "dev", "sv0", "altname", alt)
    write = os.path.join(svc.tmp, "alt-%s.pcap")
    conf = svc.config(f'triggers:\n  - dev: {alt}\n    netns: {a}\n    when: "dev pps > 1000000"\n'
                      f'    for: 1\n    write: {write}\n')
    d = Daemon(svc, conf)
    d.wait_notify()
    d.wait_log(r"sample: sv0: waiting for 'dev pps > 1000000'")
    assert d.stop() == 0


def test_daemon_trigger_samplers_need_no_clock(svc):
    """Idle with standing triggers, the daemon runs no clock (it checked its samplers every
    second): it learns of one that ends from SIGCHLD at once and sets a clock only to start
    it again 5 s later."""
    d, pid, _ = idle_trigger_daemon(svc, "t")
    time.sleep(0.5)
    assert timers(d.p.pid) and all(t == ((0, 0), (0, 0)) for t in timers(d.p.pid)), timers(d.p.pid)
    mark = len(d.lines)
    t0 = time.monotonic()
    os.kill(pid, signal.SIGKILL)
    d.wait_log(rf"pktlens sample \(pid {pid}\) ended \(signal 9\): starting it again in 5 s", start=mark,
               timeout=2)
    assert time.monotonic() - t0 < 0.9, "the sampler's end was seen by a clock, not by SIGCHLD"
    armed = [t for t in timers(d.p.pid) if t[0] != (0, 0)]
    assert len(armed) == 1 and armed[0][1] == (0, 0) and 3 <= armed[0][0][0] <= 5, timers(d.p.pid)
    _, line = d.wait_log(r"\(pktlens sample, pid \d+\)", start=mark, timeout=10)
    assert time.monotonic() - t0 >= 4.5
    pid2 = int(re.search(r"pid (\d+)\)", line)[1])
    os.kill(pid2, 0)
    d.wait_log(r"sample: sv0: waiting for", start=mark)
    assert all(t == ((0, 0), (0, 0)) for t in timers(d.p.pid)), timers(d.p.pid)
    assert d.stop() == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid2, 0)


def running(pid):
    """Whether process pid runs (a zombie no longer does)."""
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_daemon_reload_keeps_a_sampler_whose_trigger_did_not_change(svc):
    """A reload that leaves a trigger as it was leaves its sampler running (a capture in
    progress is not cut short); one that changes the trigger starts it again."""
    d, pid, conf = idle_trigger_daemon(svc, "k")
    with open(conf, "a") as f:
        f.write("# touched\n")
    mark = len(d.lines)
    d.p.send_signal(signal.SIGHUP)
    d.wait_log(r"reloaded ", start=mark)
    assert running(pid) and not re.search(r"\(pktlens sample, pid", "\n".join(l for _, l in d.lines[mark:])), d.log()
    with open(conf) as f:
        text = f.read().replace("for: 1", "for: 2")
    with open(conf, "w") as f:
        f.write(text)
    mark = len(d.lines)
    d.p.send_signal(signal.SIGHUP)
    d.wait_log(r"reloaded ", start=mark)
    _, line = d.wait_log(r"\(pktlens sample, pid \d+\)", start=mark)
    assert int(re.search(r"pid (\d+)\)", line)[1]) != pid
    wait_for(lambda: not running(pid), what="the old sampler gone")
    assert d.stop() == 0


def test_daemon_killed_takes_its_trigger_samplers_along(svc):
    """A daemon killed with -9 leaves no trigger sampler behind (one went on capturing,
    orphaned, beside the one the restarted daemon started): the restart's sampler is the
    only one."""
    d, pid, conf = idle_trigger_daemon(svc, "k")
    d.p.kill()
    d.p.wait()
    try:
        wait_for(lambda: not running(pid), timeout=5, what="the sampler to end with its daemon")
        d2 = Daemon(svc, conf)
        d2.wait_notify()
        _, line = d2.wait_log(r"\(pktlens sample, pid \d+\)")
        pid2 = int(re.search(r"pid (\d+)\)", line)[1])
        d2.wait_log(r"sample: sv0: waiting for")
        assert running(pid2)
        assert d2.stop() == 0
        assert not running(pid2)
    finally:
        if running(pid):
            os.kill(pid, signal.SIGKILL)


def test_second_daemon_of_a_config_is_refused_and_names_match_as_written(svc):
    """Two daemons of one config would attach, export and sample everything twice (and one's
    stop detach what the other manages): the second is refused, exit 1, naming the first's pid,
    until the first is gone, even by kill -9. A match naming an interface whose name holds glob
    characters covers it as written (and, as a glob, what it matches); xdp-priority on an
    interface the entry gives no XDP hook is refused as attach --xdp-priority refuses it."""
    a = svc.netns()
    svc.veth(a, "sv[1]", "pv1")
    svc.veth(a, "sv1", "pv2")
    svc.veth(a, "sw0", "pw0")
    conf = svc.config(f'interfaces:\n  - match: ["sv[1]"]\n    netns: "{a}"\n')
    d = Daemon(svc, conf)
    d.wait_notify()
    assert sorted(listed(a)) == ["sv1", "sv[1]"]
    d2 = Daemon(svc, conf)
    assert d2.p.wait(timeout=20) == 1
    d2.t.join(timeout=5)
    assert re.search(rf"not started: another pktlens daemon \(pid {d.p.pid}\) runs the config "
                     rf"'{re.escape(conf)}'", d2.log()), d2.log()
    assert d.p.poll() is None and sorted(listed(a)) == ["sv1", "sv[1]"]
    d.p.kill()
    d.p.wait()
    d3 = Daemon(svc, conf)
    d3.wait_notify()
    assert d3.stop() == 0
    # xdp: auto is none on a veth: a priority for it is an interface the plan cannot attach
    prio = svc.config(f'interfaces:\n  - match: sw0\n    netns: "{a}"\n    xdp-priority: 7\n', "prio.conf")
    r = pktlens("apply", prio, "--dry-run", check=False)
    assert r.returncode == 1 and re.search(rf"sw0 \(netns \d+ \({a}\)\): {re.escape(prio)}:2:5: "
                                           r"xdp-priority, but no XDP hook", r.stderr), r
    assert "sw0" not in listed(a)
    # with an XDP hook it runs where the kernel lets it, and apply says what attach says
    prio = svc.config(f'interfaces:\n  - match: sw0\n    netns: "{a}"\n    xdp: skb\n    tc: none\n'
                      '    xdp-priority: 7\n', "prio2.conf")
    r = pktlens("apply", prio)
    mech = listed(a)["sw0"]
    refused = [h for h in mech["hooks"] if h["hook"] == "xdp" and h.get("mechanism") == "bpf_link"]
    assert ("note: this kernel refuses libxdp's dispatcher" in r.stdout) == bool(refused), (r.stdout, mech)


def test_daemon_config_symlink_switched_stays_the_same_config(svc):
    """Without a name a config is its absolute path as named: a symlink switched to another
    file (a deployment's new version) is the same config, so a reload removes what the new
    file no longer matches (it was the target's path: the new one adopted the rest and left
    these counting, managed by nobody)."""
    a = svc.netns()
    for i in range(2):
        svc.veth(a, f"sv{i}", f"pv{i}", up=True)
    v1 = svc.config(f'interfaces:\n  - match: "sv*"\n    netns: "{glob_covered()}"\n    tc: in\n', "v1.conf")
    v2 = svc.config(f'interfaces:\n  - match: "sv0"\n    netns: "{glob_covered()}"\n    tc: in\n', "v2.conf")
    link = os.path.join(svc.tmp, "pktlens.conf")
    os.symlink("v1.conf", link)
    d = Daemon(svc, link)
    d.wait_notify()
    assert {n: att["managed_by"] for n, att in listed(a).items()} == {"sv0": link, "sv1": link}
    tcx = json.loads(sh("bpftool", "-j", "link", "show", "pinned", str(pins(a, "sv1") / "tc_in_link")).stdout)["id"]
    os.symlink("v2.conf", link + ".new")
    os.replace(link + ".new", link)
    mark = len(d.lines)
    d.p.send_signal(signal.SIGHUP)
    d.wait_log(r"reloaded .*: 0 added, 0 changed, 1 removed, 1 unchanged", start=mark)
    # the kernel's view: sv1's tcx link is gone (nothing holds it: detached)
    assert sh("bpftool", "link", "show", "id", tcx, check=False).returncode != 0
    assert set(listed(a)) == {"sv0"} and not pins(a, "sv1").exists()
    assert d.stop() == 0


def test_daemon_reload_lets_go_of_a_monitor_with_events_waiting(svc):
    """A SIGHUP that stops covering a namespace, with link notifications of that namespace
    waiting in the same wakeup: the reload closes its monitor, and the events after it in
    that wakeup must not be read from the freed monitor (a heap-use-after-free, which the
    SAN=1 build reports and dies of)."""
    a = svc.netns()
    covers = f'interfaces:\n  - match: "sv*"\n    netns: "{glob_covered()}"\n'
    conf = svc.config(covers)
    d = Daemon(svc, conf)
    d.wait_notify()
    for i in range(3):
        with open(conf, "w") as f:
            f.write(covers.replace(glob_covered(), f"nothing{os.getpid()}"))
        mark = len(d.lines)
        os.kill(d.p.pid, signal.SIGSTOP)
        try:
            d.p.send_signal(signal.SIGHUP)      # the signalfd is ready first, the monitor next
            svc.veth(a, f"sv{i}", f"pv{i}")
        finally:
            os.kill(d.p.pid, signal.SIGCONT)
        d.wait_log(r"reloaded ", start=mark)
        d.wait_notify()     # (read them: a full notify socket would hold the daemon up)
        assert not attached(a, f"sv{i}")
        with open(conf, "w") as f:
            f.write(covers)
        mark = len(d.lines)
        d.p.send_signal(signal.SIGHUP)
        d.wait_log(r"reloaded ", start=mark)
        d.wait_notify()
        wait_for(lambda: attached(a, f"sv{i}"), what=f"sv{i} covered again")
    assert d.p.poll() is None, d.log()
    assert d.stop() == 0


def test_daemon_killed_and_restarted_adopts_with_counters(svc):
    a = svc.netns()
    svc.veth(a, "sv0", "pv0", up=True)
    svc.veth(a, "sv1", "pv1", up=True)
    conf = svc.config(f'interfaces:\n  - match: "sv*"\n    netns: "{glob_covered()}"\n')
    d = Daemon(svc, conf)
    d.wait_notify()
    rx0 = svc.rx(a, "sv0")["packets"]
    svc.send("pv0", 13)
    wait_for(lambda: stats_in(a, "sv0") == 13, what="13 packets")
    d.p.kill()
    d.p.wait()
    # the attachments keep counting without the daemon
    svc.send("pv0", 8)
    wait_for(lambda: stats_in(a, "sv0") == 21, what="21 packets")
    d2 = Daemon(svc, conf)
    d2.wait_notify()
    _, line = d2.wait_log(r"ready: ")
    assert "0 added, 0 changed, 0 removed, 2 unchanged" in line, line
    svc.send("pv0", 5)
    wait_for(lambda: stats_in(a, "sv0") == 26, what="26 packets")
    time.sleep(0.2)
    assert stats_in(a, "sv0") == 13 + 8 + 5 == svc.rx(a, "sv0")["packets"] - rx0
    # on-stop: detach takes what the config manages, nothing else
    pktlens("attach", "lo", ns=a)
    with open(conf, "a") as f:
        f.write("on-stop: detach\n")
    mark = len(d2.lines)
    d2.p.send_signal(signal.SIGHUP)
    d2.wait_log(r"reloaded ", start=mark)
    assert d2.stop() == 0
    d2.wait_log(r"stopped: detached 2 attachments \(on-stop: detach\)")
    assert set(listed(a)) == {"lo"}


def test_systemd_unit_verifies(tmp_path):
    """make install: the unit passes systemd-analyze verify without a warning; the config is never overwritten."""
    prefix = tmp_path / "usr"
    etc = tmp_path / "etc"
    mk = ["make", "-s", "-C", str(ROOT), "install", f"PREFIX={prefix}", f"SYSCONFDIR={etc}", "DESTDIR="]
    sh(*mk)
    unit = prefix / "lib/systemd/system/pktlens.service"
    text = unit.read_text()
    assert f"ExecStart={prefix}/sbin/pktlens daemon --config {etc}/pktlens/pktlens.conf\n" in text
    assert "Type=notify\n" in text and "ExecReload=/bin/kill -HUP $MAINPID\n" in text
    assert "CapabilityBoundingSet=CAP_BPF CAP_NET_ADMIN CAP_PERFMON\n" in text
    assert "ReadWritePaths=/sys/fs/bpf\n" in text and "ProtectSystem=strict\n" in text
    # the policy is in place before networking configures interfaces (as nftables.service does)
    unit_keys = [line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")]
    assert ["Before", "network-pre.target"] in unit_keys and ["Wants", "network-pre.target"] in unit_keys
    assert not any(k == "After" and "network-pre.target" in v.split() for k, v in unit_keys)
    r = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True,
                       env=dict(os.environ, MANPATH=str(prefix / "share/man")))
    assert r.returncode == 0 and r.stderr == "" and r.stdout == "", r
    conf = etc / "pktlens/pktlens.conf"
    assert conf.read_text() == (ROOT / "docs/pktlens.conf").read_text()
    conf.write_text("# mine\n")
    sh(*mk)
    assert conf.read_text() == "# mine\n"


def ipfix_v4_packets(datagrams, src, dport):
    """Sum packetDeltaCount of IPv4 data records (template 256, export/ipfix.c) from src to dport."""
    total = 0
    for msg in datagrams:
        assert int.from_bytes(msg[0:2], "big") == 10 and int.from_bytes(msg[2:4], "big") == len(msg)
        off = 16
        while off + 4 <= len(msg):
            sid, slen = int.from_bytes(msg[off:off + 2], "big"), int.from_bytes(msg[off + 2:off + 4], "big")
            if sid == 256:
                for r in range(off + 4, off + slen - 57, 58):
                    if msg[r:r + 4] == socket.inet_aton(src) and int.from_bytes(msg[r + 10:r + 12], "big") == dport:
                        total += int.from_bytes(msg[r + 23:r + 31], "big")
            off += slen
    return total


def ipfix_collector():
    """A UDP socket on a free loopback port, for the daemon's IPFIX messages."""
    col = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    col.bind(("127.0.0.1", 0))
    col.settimeout(0.2)
    return col


def ipfix_config(col, interval, extra=""):
    """A config covering this run's namespaces' sv* interfaces, exporting IPFIX to col."""
    return (f'interfaces:\n  - match: "sv*"\n    netns: "{glob_covered()}"\n'
            f'export:\n  ipfix: {{ collector: "127.0.0.1:{col.getsockname()[1]}", '
            f'interval: {interval} }}\n' + extra)


def ipfix_received(col, dport, want=None, timeout=5):
    """Packets of the IPFIX records from 198.18.7.1 to dport that reach col: until want of them
    came (or timeout s passed), or, without want, until col is quiet for its timeout."""
    got, deadline = [], time.monotonic() + timeout
    while want is None or (ipfix_v4_packets(got, "198.18.7.1", dport) < want and
                           time.monotonic() < deadline):
        try:
            got.append(col.recv(65536))
        except socket.timeout:
            if want is None:
                break
    return ipfix_v4_packets(got, "198.18.7.1", dport)


def ipfix_daemon_counted(svc, col, ns, dev, peer_dev, n, dport):
    """A daemon exporting IPFIX to col every 60 s, and n packets to dport sent from peer_dev
    counted on ns's dev. Returns (its config's path, the daemon)."""
    conf = svc.config(ipfix_config(col, 60))
    d = Daemon(svc, conf)
    d.wait_notify()
    d.wait_log(r"ipfix: to 127\.0\.0\.1:\d+ every 60 s")
    svc.send(peer_dev, n, dport=dport)
    wait_for(lambda: stats_in(ns, dev) >= n, what=f"{n} packets counted")
    return conf, d


def prometheus_daemon(svc, entry=""):
    """A daemon serving Prometheus on a free port, attached to sv0 (up) in a covered namespace
    of its own (entry: more of its config entry's lines), ready: (namespace, port, daemon)."""
    ns = svc.netns()
    svc.veth(ns, "sv0", "pv0", up=True)
    port = free_port()
    conf = svc.config(f'interfaces:\n  - match: "sv*"\n    netns: "{glob_covered()}"\n{entry}'
                      f'export:\n  prometheus: {{ listen: "127.0.0.1:{port}" }}\n')
    d = Daemon(svc, conf)
    d.wait_notify()
    return ns, port, d


def sample_cfg(ns, dev):
    """(slots, owner) of dev's sample settings as the kernel has them (bpftool reads the pin;
    pktlens list or stats would take out a dead sampler's leftovers themselves)."""
    doc = json.loads(sh("bpftool", "-j", "map", "dump", "pinned", str(pins(ns, dev) / "sample_cfg")).stdout)
    v = doc[0].get("formatted", {}).get("value", doc[0]["value"])
    if isinstance(v, dict):
        return v["slots"], v["owner"]
    b = bytes(int(x, 16) for x in v)
    return int.from_bytes(b[0:4], "little"), int.from_bytes(b[16:20], "little")


def start_sampler(svc, ns, dev):
    """`pktlens sample dev udp -w FILE` in ns, capturing: its Popen."""
    p = subprocess.Popen([PKTLENS, "-n", ns, "sample", dev, "udp", "-w", os.path.join(svc.tmp, f"s{random.random()}.pcap")],
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err, deadline = b"", time.monotonic() + 20
    while b"capturing" not in err:
        assert time.monotonic() < deadline and p.poll() is None, err
        if select.select([p.stderr], [], [], 0.5)[0]:
            err += os.read(p.stderr.fileno(), 4096)
    return p


def test_daemon_takes_out_what_a_killed_sampler_left(svc):
    """A `pktlens sample` killed with -9 leaves its settings, stages and ring in the
    attachment, and the sampled hooks pay for them until stats, list or the next sample took
    them out. The daemon does it for the attachments it manages: at once for a sampler it saw
    running (at a scrape, an IPFIX round, a reconcile: it watches its pidfd), else at the next
    such event (before, never)."""
    ns, port, d = prometheus_daemon(svc)
    scrape = lambda: urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read()  # noqa: E731
    # seen running at a scrape: its end is seen at once
    s = start_sampler(svc, ns, "sv0")
    slots, owner = sample_cfg(ns, "sv0")
    assert slots and owner == s.pid
    scrape()
    time.sleep(0.3)
    mark = len(d.lines)
    s.kill()
    s.wait()
    d.wait_log(rf"sv0 \(netns .*\): pktlens sample \(pid {s.pid}\) is gone: took out", start=mark, timeout=5)
    assert sample_cfg(ns, "sv0") == (0, 0)
    # killed unseen: the next scrape finds it
    s = start_sampler(svc, ns, "sv0")
    s.kill()
    s.wait()
    assert sample_cfg(ns, "sv0")[1] == s.pid
    mark = len(d.lines)
    scrape()
    d.wait_log(rf"sv0 \(netns .*\): pktlens sample \(pid {s.pid}\) is gone: took out", start=mark, timeout=5)
    assert sample_cfg(ns, "sv0") == (0, 0)


@pytest.mark.parametrize("mech", ["clsact", pytest.param("auto", marks=pytest.mark.variant)])
def test_daemon_releases_a_gone_namespace_pins_set_aside_for_its_inode(svc, mech):
    """A covered namespace deleted while exporting: its attachments' pins wait for a scrape.
    A new namespace that gets its inode sets them aside (<inode>:<cookie>) when something is
    attached there; the scrape must still release them (they stayed for good, and every
    full pass logged them as gone again), and them alone: with clsact (no links, as on
    Debian's 6.1) it took the new namespace's attachment of the same name too."""
    x, port, d = prometheus_daemon(svc, f"    tc-mech: {mech}\n")
    ino = ns_ino(x)
    before = set(Path(PIN_ROOT).glob(f"{ino}:*/sv0"))     # other runs' leftovers: not ours
    aside = lambda: set(Path(PIN_ROOT).glob(f"{ino}:*/sv0")) - before  # noqa: E731
    mark = len(d.lines)
    sh("ip", "netns", "del", x)
    svc.namespaces.remove(x)
    d.wait_log(r"gone sv0 \(netns \d+\): network namespace gone; final totals", start=mark)
    d.wait_log(r"network namespaces covered: ", start=mark)
    # The kernel hands the lowest free inode out: ours once its cleanup (a work queue, later
    # than the name's removal) has freed it, unless another namespace took it meanwhile.
    y, deadline = None, time.monotonic() + 20
    while time.monotonic() < deadline:
        y = svc.netns()
        if ns_ino(y) == ino:
            break
        sh("ip", "netns", "del", y)
        svc.namespaces.remove(y)
        y = None
        time.sleep(0.1)
    if y is None:
        # the gone namespace's pins wait for a scrape: give them one, or they outlive the test
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            r.read()
        wait_for(lambda: not (Path(PIN_ROOT) / str(ino) / "sv0").exists() and not aside(),
                 timeout=5, what="the gone namespace's pins released after the scrape")
        pytest.skip("another namespace took the deleted one's inode")
    svc.veth(y, "sv0", "pv1")
    # (the gone namespace's pins are where the new one's go, until set aside: not by path)
    wait_for(lambda: listed(y).get("sv0", {}).get("state") == "attached", what="sv0 in the namespace with the inode")
    try:
        assert aside(), "the gone namespace's pins were not set aside"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
            assert f'netns="{ino}:'.encode() in r.read()
        wait_for(lambda: not aside(), timeout=5, what="the set-aside pins released after the scrape")
    finally:
        for p in aside():
            pktlens("detach", "--netns", p.parent.name, "sv0", check=False)
    assert attached(y, "sv0")
    mark = len(d.lines)
    svc.netns()             # a full pass: nothing of the gone namespace is left to tell
    d.wait_log(r"network namespaces covered: ", start=mark)
    time.sleep(0.5)
    assert not [line for _, line in d.lines[mark:] if "gone" in line], d.log()


def test_daemon_ipfix_in_process_and_gone_pins_wait_for_it(svc):
    a = svc.netns()
    svc.veth(a, "sv0", "pv0", up=True)
    col = ipfix_collector()
    conf = svc.config(ipfix_config(col, 1))
    d = Daemon(svc, conf)
    d.wait_notify()
    d.wait_log(r"ipfix: to 127\.0\.0\.1:\d+ every 1 s")
    svc.send("pv0", 17, dport=4242)
    assert ipfix_received(col, 4242, 17, timeout=10) == 17
    # a gone interface's pins go after an IPFIX round has read them (the Prometheus case, where
    # the test decides when the scrape comes, is in the test above)
    sh("ip", "-n", a, "link", "del", "sv0")
    d.wait_log(r"gone sv0 \(netns .*\): interface gone; final totals: tc in 17 packets")
    wait_for(lambda: not pins(a, "sv0").exists(), timeout=5, what="sv0's pins after an IPFIX round")
    col.close()


def private_hosts(svc, text):
    """A hosts file of the test's own, and the argv that runs a command with it as /etc/hosts
    (and an empty /etc/resolv.conf: no DNS answers) in a mount namespace of its own, where
    mounts of the machine's (/run/netns) still appear. Writing the file changes what the
    command sees."""
    hosts = Path(svc.tmp) / "hosts"
    hosts.write_text(text)
    resolv = Path(svc.tmp) / "resolv.conf"
    resolv.write_text("")
    return hosts, ["unshare", "-m", "--propagation", "slave", "sh", "-ec",
                   'mount --bind "$0" /etc/hosts; mount --bind "$1" /etc/resolv.conf; shift; exec "$@"',
                   str(hosts), str(resolv)]


def test_daemon_collector_name_that_resolves_later(svc):
    """An IPFIX collector named by a host name that does not resolve when the daemon starts
    (at boot the unit runs before the network, so DNS is not up): the daemon starts all the
    same (READY=1, attached, Prometheus served), says so once, asks again each round, and
    exports once the name resolves (before, the daemon ended, exit 1)."""
    a = svc.netns()
    svc.veth(a, "sv0", "pv0", up=True)
    col = ipfix_collector()
    name = f"h5-collector-{os.getpid()}.example"
    hosts, wrap = private_hosts(svc, "127.0.0.1 localhost\n")
    port = free_port()
    conf = svc.config(f'interfaces:\n  - match: "sv*"\n    netns: "{glob_covered()}"\n'
                      f'export:\n  prometheus: {{ listen: "127.0.0.1:{port}" }}\n'
                      f'  ipfix: {{ collector: "{name}:{col.getsockname()[1]}", interval: 1 }}\n')
    d = Daemon(svc, conf, wrap)
    d.wait_notify()
    assert attached(a, "sv0")
    svc.send("pv0", 17, dport=4242)
    wait_for(lambda: stats_in(a, "sv0") >= 17, what="17 packets counted")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        assert b'device="sv0"' in r.read()
    time.sleep(3)           # three rounds without the name
    assert ipfix_received(col, 4242) == 0
    unresolved = [line for _, line in d.lines if re.search(rf"ipfix: {re.escape(name)}:\d+: .*(not known|name resolution|resolve)", line)]
    assert len(unresolved) == 1, d.log()    # said once, not each round
    hosts.write_text(f"127.0.0.1 localhost\n127.0.0.1 {name}\n")
    assert ipfix_received(col, 4242, 17, timeout=10) == 17
    d.wait_log(rf"ipfix: {re.escape(name)}:\d+ answers again")
    assert d.p.poll() is None
    col.close()


def test_daemon_stopping_with_detach_exports_what_was_counted_until_the_hooks_came_off(svc):
    """`on-stop: detach` with IPFIX, a stream arriving as the daemon stops: its last export came
    before the detach, so what the hooks counted in between never reached the collector. Now
    the detach logs the flows it removes for the exporter, and the last export comes after it:
    the collector's packets of the stream equal the final totals the daemon logs."""
    from scapy.all import IP, UDP, Ether, Raw, wrpcap  # noqa: slow to import
    a = svc.netns()
    svc.veth(a, "sv3", "pv3")
    for ns, dev in ((a, "sv3"), (svc.peer, "pv3")):   # nothing but the stream arrives
        sh("ip", "netns", "exec", ns, "sysctl", "-qw", f"net.ipv6.conf.{dev}.disable_ipv6=1")
        sh("ip", "-n", ns, "link", "set", dev, "up")
    col = ipfix_collector()
    conf = svc.config(ipfix_config(col, 60, "on-stop: detach\n"))
    d = Daemon(svc, conf)
    d.wait_notify()
    d.wait_log(r"ipfix: to 127\.0\.0\.1:\d+ every 60 s")
    wait_for(lambda: listed(a).get("sv3", {}).get("state") == "attached", what="sv3 attached")
    path = os.path.join(svc.tmp, "stream.pcap")
    wrpcap(path, [Ether(dst="ff:ff:ff:ff:ff:ff", src="02:00:00:00:00:01") /
                  IP(src="198.18.7.1", dst="198.18.7.2") / UDP(sport=40000 + i % 50, dport=4545) /
                  Raw(b"s" * 32) for i in range(2000)])
    done = threading.Event()

    def stream():
        while not done.is_set():
            subprocess.run(["ip", "netns", "exec", svc.peer, PYTHON, SENDRAW, "pv3", path],
                           capture_output=True)
    t = threading.Thread(target=stream, daemon=True)
    t.start()
    try:
        wait_for(lambda: stats_in(a, "sv3") > 2000, what="the stream counted")
        assert d.stop() == 0, d.log()
    finally:
        done.set()
        t.join(timeout=30)
    _, line = d.wait_log(r"sv3 .*final totals: ")
    m = re.search(r"final totals: tc in (\d+) packets", line)
    assert m, line
    got = ipfix_received(col, 4545)
    col.close()
    assert got == int(m.group(1)), line


def test_daemon_stopping_releases_the_gone_pins_its_last_export_read(svc):
    """`on-stop: keep`, IPFIX every 60 s: an interface deleted before the stop leaves its pins
    for the exporter's next round. The stop's last export reads them; they stayed pinned after
    the daemon had gone (for an export that never came), and now go with it. The collector gets
    the interface's packets."""
    a = svc.netns()
    svc.veth(a, "sv5", "pv5", up=True)
    col = ipfix_collector()
    try:
        _, d = ipfix_daemon_counted(svc, col, a, "sv5", "pv5", 11, 4747)
        sh("ip", "-n", a, "link", "del", "sv5")
        d.wait_log(r"gone sv5 \(netns .*\): interface gone; final totals: tc in 11 packets")
        assert pins(a, "sv5").exists()          # waiting for the next round
        assert d.stop() == 0, d.log()
        assert not pins(a, "sv5").exists(), d.log()
        assert ipfix_received(col, 4747) == 11
    finally:
        col.close()


def test_daemon_reload_to_another_collector_sends_the_old_one_its_last_export(svc):
    """A reload that moves IPFIX to another collector ends the exporter to the first: like
    `export ipfix` ending, it sends its last export first (the first collector never got what
    was counted since its last round; with a 60 s interval, nothing at all). The new collector
    gets every flow's whole count: it has seen none of it."""
    a = svc.netns()
    svc.veth(a, "sv4", "pv4", up=True)
    cols = [ipfix_collector(), ipfix_collector()]
    try:
        conf, d = ipfix_daemon_counted(svc, cols[0], a, "sv4", "pv4", 9, 4646)
        with open(conf, "w") as f:
            f.write(ipfix_config(cols[1], 60))
        mark = len(d.lines)
        d.p.send_signal(signal.SIGHUP)
        d.wait_log(r"reloaded ", start=mark)
        assert ipfix_received(cols[0], 4646, 9) == 9
        assert d.stop() == 0, d.log()
        assert ipfix_received(cols[1], 4646, 9) == 9
    finally:
        for c in cols:
            c.close()


@pytest.mark.parametrize("wait_gone", [False, True], ids=["at-once", "after-gone"])
def test_daemon_ipfix_gets_the_counts_of_an_interface_created_again(svc, wait_gone):
    """An interface deleted and created again under its name before the next IPFIX round (in
    one ip -batch, or after the daemon logged the first one gone): the new attachment needs
    the name, so the old pins go at once; an IPFIX round reads them first, and the collector
    gets their packets (they were lost: the round is a minute away)."""
    a = svc.netns()
    svc.veth(a, "sv1", "pv1", up=True)
    col = ipfix_collector()
    conf = svc.config(ipfix_config(col, 60))
    d = Daemon(svc, conf)
    d.wait_notify()
    d.wait_log(r"ipfix: to 127\.0\.0\.1:\d+ every 60 s")
    old = int(sh("ip", "-n", a, "-j", "link", "show", "sv1").stdout.split('"ifindex":')[1].split(",")[0])
    svc.send("pv1", 23, dport=4343)
    wait_for(lambda: sum(f["packets"] for f in pktlens_json("flows", "sv1", ns=a)["flows"]
                         if f.get("dport") == 4343) == 23, what="23 packets counted")
    mark = len(d.lines)
    if wait_gone:
        sh("ip", "-n", a, "link", "del", "sv1")
        d.wait_log(r"gone sv1 \(netns .*\): interface gone; final totals", start=mark)
        svc.veth(a, "sv1", "pv1", up=True)
    else:
        sh("ip", "-n", a, "-b", "-", input="link del sv1\nlink add sv1 type veth peer name pv1x\n")
        sh("ip", "-n", a, "link", "set", "sv1", "up")
    wait_for(lambda: listed(a).get("sv1", {}).get("state") == "attached" and
             listed(a)["sv1"].get("ifindex") != old, what="sv1 attached again")
    got = ipfix_received(col, 4343, 23)
    col.close()
    assert got == 23, d.log()


def test_apply_reattach_raced_by_a_rename_takes_no_other_interface_pins(svc):
    """An interface renamed, and another one created under its old name, while an apply
    re-attaches the interfaces one by one (a flows change): the step planned for the renamed
    one must not re-attach the new one over the renamed one's pins (its hooks taken off the
    renamed interface, its counters given to another). The step fails naming what happened,
    the renamed interface keeps counting, and the next apply follows it by its index."""
    a = svc.netns()
    n = 16
    for i in range(n):
        svc.veth(a, f"sx{i}", f"px{i}", up=True)
    last = f"sx{n - 1}"
    body = f'name: racetest\ninterfaces:\n  - match: ["sx*", "sy*"]\n    netns: "{glob_covered()}"\n' \
           '    xdp: none\n    tc: in\n    flows: {}\n'
    conf = svc.config(body.format(1024))
    pktlens("apply", conf)
    sent = svc.send(f"px{n - 1}", 20, dst_mac=svc.mac(a, last))
    counted = stats_in(a, last)
    assert counted >= sent
    idx = listed(a)[last]["ifindex"]
    conf = svc.config(body.format(2048))
    p = subprocess.Popen([PKTLENS, "apply", conf], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        # the first re-attach done: the plan is made, the last interface's step is to come
        wait_for(lambda: p.poll() is None and listed(a).get("sx0", {}).get("flows_max") == 2048,
                 timeout=30, step=0.005, what="the first re-attach")
        os.kill(p.pid, signal.SIGSTOP)
        assert listed(a)[last]["flows_max"] == 1024, "the race came too late: a faster machine?"
        sh("ip", "-n", a, "link", "set", last, "name", "sy0")
        svc.veth(a, last, "pxnew", up=True)
    finally:
        os.kill(p.pid, signal.SIGCONT)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 1, (out, err)
    assert f"{last}" in err and "meanwhile" in err, err
    att = listed(a)
    # the renamed interface's attachment is still its own, counting, under its old name
    assert att[last]["ifindex"] == idx, att
    # and the next apply follows it to its new name and attaches the new one afresh
    pktlens("apply", conf)
    att = listed(a)
    assert att["sy0"]["ifindex"] == idx and att["sy0"]["flows_max"] == 2048, att
    assert att[last]["ifindex"] != idx
    assert stats_in(a, "sy0") >= counted
    assert stats_in(a, last) < counted


def test_an_index_that_comes_again_is_not_a_rename(svc):
    """A deleted interface's pins record its index; an interface moved in from another
    namespace keeps its index where it is free there, and `ip link add ... index N` gives
    one: such an interface is not the deleted one renamed. It was planned as one ("renamed
    from"), re-attached with the deleted interface's counters. Now the deleted one's pins
    go (final totals) and the newcomer is attached afresh: by apply, and by the daemon
    whose exporter keeps a deleted interface's pins until it has read them."""
    a, b = svc.netns(), svc.netns()
    svc.veth(a, "ix0", "pi0", up=True)
    svc.veth(b, "ix1", "pi1", up=True)
    conf = svc.config(f'name: indextest\ninterfaces:\n  - match: "ix*"\n    netns: "{glob_covered()}"\n'
                      '    xdp: none\n    tc: in\n')
    pktlens("apply", conf)
    idx = listed(b)["ix1"]["ifindex"]
    assert listed(a)["ix0"]["ifindex"] == idx   # each namespace's first veth
    assert svc.send("pi1", 9, dst_mac=svc.mac(b, "ix1")) == 9
    wait_for(lambda: stats_in(b, "ix1") >= 9, what="ix1 counting")
    # apply: ix1 deleted, ix0 moved into b, where it keeps its index
    sh("ip", "-n", b, "link", "del", "ix1")
    sh("ip", "-n", a, "link", "set", "ix0", "netns", b)
    sh("ip", "-n", b, "link", "set", "ix0", "up")
    assert json.loads(sh("ip", "-n", b, "-j", "link", "show", "ix0").stdout)[0]["ifindex"] == idx
    r = pktlens("-j", "apply", conf, check=False)
    assert r.returncode == 0, r
    steps = {(s["action"], s["ifname"], s["netns"]): s for s in json.loads(r.stdout)["steps"]}
    assert ("remove", "ix1", ns_ino(b)) in steps, steps
    assert ("add", "ix0", ns_ino(b)) in steps, steps
    assert set(listed(b)) == {"ix0"} and stats_in(b, "ix0") == 0
    # the daemon: ix0 deleted (its pins wait for the exporter), ix2 created with its index
    port = free_port()
    with open(conf, "a") as f:
        f.write(f'export:\n  prometheus: {{ listen: "127.0.0.1:{port}" }}\n')
    d = Daemon(svc, conf)
    d.wait_notify()
    assert svc.send("pi0", 7, dst_mac=svc.mac(b, "ix0")) == 7
    wait_for(lambda: stats_in(b, "ix0") >= 7, what="ix0 counting")
    sh("ip", "-n", b, "link", "del", "ix0")
    d.wait_log(r"gone ix0 .*its pins stay")
    sh("ip", "-n", b, "link", "add", "ix2", "index", str(idx), "type", "veth", "peer", "name", "pi2",
       "netns", svc.peer)
    d.wait_log(r"add ix2 ")
    assert "renamed from" not in d.log(), d.log()
    assert stats_in(b, "ix2") == 0
    assert "failed" not in d.log() and d.p.poll() is None


def test_an_entry_that_never_applies_is_said(svc):
    """The first entry that matches decides: a later entry whose every name an earlier entry
    matches first, in every namespace it names, does nothing; its settings were silently
    ignored. apply and the daemon now warn, naming FILE:LINE:COL and the entry that decides
    (the config still applies: first match wins on purpose). Overlapping globs are not
    flagged."""
    a = svc.netns()
    svc.veth(a, "sh0", "ps0")
    body = (f'interfaces:\n  - match: "sh*"\n    netns: "{glob_covered()}"\n    flows: 1024\n'
            f'  - match: [sh0, "sh*"]\n    netns: ["{glob_covered()}"]\n    flows: 2048\n'
            f'  - match: "*"\n    netns: "{glob_covered()}"\n'
            f'  - match: sh0\n    netns: {a}\n    flows: 4096\n')
    conf = svc.config(body)
    r = pktlens("apply", conf)
    warned = re.findall(r"warning: (\S+):(\d+):(\d+): this interfaces entry never applies: the entry "
                        r"at line (\d+) ", r.stderr)
    assert warned == [(conf, "5", "5", "2"), (conf, "10", "5", "2")], r.stderr
    assert listed(a)["sh0"]["flows_max"] == 1024
    d = Daemon(svc, conf)
    d.wait_notify()
    assert len(re.findall(r"warning: .* never applies", d.log())) == 2, d.log()
    conf = svc.config(body.replace('"sh*"\n    netns', '"sh1"\n    netns', 1))
    d.p.send_signal(signal.SIGHUP)
    n = len(d.lines)
    d.wait_log(r"reloaded ")
    # the second entry decides sh0 now: the last one still never applies
    assert re.findall(r"warning: \S+:(\d+):\d+: .* never applies: the entry at line (\d+) ",
                      "\n".join(l for _, l in d.lines[n:])) == [("10", "5")], d.log()
    assert listed(a)["sh0"]["flows_max"] == 2048


def test_apply_attaches_again_a_clsact_hook_taken_off_by_hand(svc):
    """A plan checks that every hook an attachment records runs and attaches again where
    one does not: tcx and XDP by their pinned links, and clsact (no link) by its filter.
    A `tc filter del` of pktlens's clsact filter left list saying "program-gone" (or
    "partial" beside other hooks) while apply said "nothing to change"; now apply attaches it again, counters
    kept, and a second apply changes nothing."""
    a = svc.netns()
    svc.veth(a, "cl0", "pc0", up=True)
    conf = svc.config(f'name: clsacttest\ninterfaces:\n  - match: "cl*"\n    netns: "{glob_covered()}"\n'
                      '    xdp: none\n    tc: in\n    tc-mech: clsact\n')
    pktlens("apply", conf)
    assert svc.send("pc0", 8, dst_mac=svc.mac(a, "cl0")) == 8
    wait_for(lambda: stats_in(a, "cl0") >= 8, what="cl0 counting")
    before = stats_in(a, "cl0")
    sh("ip", "netns", "exec", a, "tc", "filter", "del", "dev", "cl0", "ingress")
    assert listed(a)["cl0"]["state"] == "program-gone"
    r = pktlens("-j", "apply", conf, "--dry-run")
    steps = json.loads(r.stdout)["steps"]
    assert [(s["action"], s["ifname"], s["changes"]) for s in steps] == [("change", "cl0", ["hooks"])], steps
    r = pktlens("apply", conf)
    # the same hooks on both sides of "->" told nothing: it says why it attaches again
    assert "hooks tc/clsact in (not all running: attached again)" in r.stdout, r
    assert listed(a)["cl0"]["state"] == "attached"
    assert "nothing to change" in pktlens("apply", conf).stdout
    assert svc.send("pc0", 5, dst_mac=svc.mac(a, "cl0")) == 5
    wait_for(lambda: stats_in(a, "cl0") >= before + 5, what="counted again, from where it was")


def test_a_name_held_by_a_renamed_interface_attachment_blocks_the_plan(svc):
    """An attachment made by hand on ho0, renamed ho9 since, holds the pins named ho0; a new
    ho0 appears and the config names ho0 (not ho9). attach refuses ho0 (the attachment named
    ho0 follows its interface), so the plan must: --dry-run said "2 to add", exit 0, while
    apply added the other interface and then failed on ho0 (exit 1, half applied), and the
    daemon's ready line counted the failed step as added. Now the plan names why, and
    nothing changes; where the config matches ho9 too, the pins follow it and ho0 is added."""
    a = svc.netns()
    svc.veth(a, "ho0", "ph0")
    svc.veth(a, "ho1", "ph1")
    pktlens("attach", "ho0", "--force", "--xdp", "none", "--tc", "in", ns=a)
    sh("ip", "-n", a, "link", "set", "ho0", "name", "ho9")
    svc.veth(a, "ho0", "ph2")
    body = f'name: heldtest\ninterfaces:\n  - match: [ho0, ho1]\n    netns: "{glob_covered()}"\n    tc: in\n'
    conf = svc.config(body)
    for dry in (["--dry-run"], []):
        r = pktlens("apply", conf, *dry, check=False)
        assert r.returncode == 1, r
        assert "the pins named ho0 are the attachment of ho9, renamed since" in r.stderr, r.stderr
        assert "nothing changed" in r.stderr
        assert set(listed(a)) == {"ho0"} and listed(a)["ho0"]["managed_by"] is None
    d = Daemon(svc, conf)
    d.wait_notify()
    _, line = d.wait_log(r"ready: ")
    assert ": 1 added, 0 changed, 0 removed, 0 unchanged;" in line, d.log()
    assert "the pins named ho0 are the attachment of ho9" in d.log()
    d.stop()
    conf = svc.config(body.replace("[ho0, ho1]", "[ho0, ho1, ho9]"))
    r = pktlens("apply", conf)
    assert "adopt ho9" in r.stdout and "renamed from ho0" in r.stdout, r
    att = listed(a)
    assert set(att) == {"ho0", "ho1", "ho9"} and att["ho9"]["managed_by"] == "heldtest", att


@pytest.mark.variant
def test_a_name_held_by_another_configs_renamed_attachment_is_not_added_over(svc):
    """Another config's attachment on ho0, renamed ho9 since, holds the pins named ho0; a new
    ho0 appears, and this config matches both. ho9 is left to the other config, so its pins
    keep the name: the plan said they would move (as if adopting ho9) and the daemon's add of
    ho0 then failed on them. It is noted instead, nothing failed."""
    a = svc.netns()
    svc.veth(a, "ho0", "ph0")
    entry = f'    netns: "{glob_covered()}"\n    xdp: none\n    tc: in\n'
    pktlens("apply", svc.config(f'name: first\ninterfaces:\n  - match: ho0\n{entry}', "first.conf"))
    sh("ip", "-n", a, "link", "set", "ho0", "name", "ho9")
    svc.veth(a, "ho0", "ph2")
    d = Daemon(svc, svc.config(f'name: second\ninterfaces:\n  - match: "ho*"\n{entry}', "second.conf"))
    d.wait_notify()
    _, line = d.wait_log(r"ready: ")
    assert ": 0 added, 0 changed, 0 removed, 0 unchanged;" in line, d.log()
    assert "ho9 (netns" in d.log() and "managed by the config 'first'" in d.log(), d.log()
    assert "the pins named ho0 are the attachment of ho9" in d.log() and "failed" not in d.log(), d.log()
    assert {n: x["managed_by"] for n, x in listed(a).items()} == {"ho0": "first"}
    assert d.stop() == 0


def test_daemon_counts_a_failed_step_as_failed_not_done(svc):
    """The daemon's ready and reloaded lines counted the steps planned: an add the kernel
    refused when it ran (a bridge has no native XDP) was logged as failed, then counted in
    "1 added". They count what was done now, and how many failed."""
    a = svc.netns()
    sh("ip", "-n", a, "link", "add", "br0", "type", "bridge")
    svc.veth(a, "ok0", "pk0")
    conf = svc.config(f'name: failcount\ninterfaces:\n  - match: br0\n    netns: "{glob_covered()}"\n'
                      f'    xdp: native\n    tc: out\n  - match: ok0\n    netns: "{glob_covered()}"\n'
                      '    xdp: none\n    tc: in\n')
    d = Daemon(svc, conf)
    d.wait_notify()
    _, line = d.wait_log(r"ready: ")
    assert ": 1 added, 0 changed, 0 removed, 0 unchanged, 1 failed (logged above);" in line, d.log()
    assert re.search(r"add br0 .*: failed: ", d.log()), d.log()
    assert set(listed(a)) == {"ok0"}
    mark = len(d.lines)
    d.p.send_signal(signal.SIGHUP)
    _, line = d.wait_log(r"reloaded ", start=mark)
    assert line.endswith(": 0 added, 0 changed, 0 removed, 1 unchanged, 1 failed (logged above)"), d.log()
