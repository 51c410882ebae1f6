#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""service_bench: `pktlens daemon` and `pktlens apply` (service mode).

- first packet: with the daemon running, a veth is created in a covered namespace while a
  sender in the peer namespace (ready before, waiting for its end to appear) sends a UDP
  frame every 0.5 ms, each with its own source port. The first frame the attachment counted
  (the lowest port `flows` shows) was sent at a known time: creation to first counted packet.
  Also creation to attachment (the pins in place). p50/p99 over --count interfaces.
- burst: --burst interfaces created at once (one `ip -batch`): time until all are attached.
- the daemon's RSS and CPU while idle (--idle seconds), and RSS around scrapes of an
  attachment with --rules rules (a large exposition).
- apply: a fresh `pktlens apply` for 1 and for --many interfaces, and the second apply (no
  change).

Every attachment uses --flows flows (the default 65536 preallocates ~13 MB per attachment on
2 CPUs). The change lock is shared with every pktlens on the host: other users of pktlens
show up as waits (the daemon logs them); run it on a quiet host.

    bench/service_bench.py [--count N] [--burst N] [--many N] [--flows N] [--json FILE]
"""
import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKTLENS = os.environ.get("PKTLENS_BIN", os.path.join(ROOT, "pktlens"))
PIN_ROOT = "/sys/fs/bpf/pktlens"

SENDER = r'''
import fcntl, os, socket, struct, sys, time
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 1
def frame(port):
    payload = b"x" * 18
    udp = struct.pack("!HHHH", port, 9, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0,
                     bytes([198, 18, 9, 1]), bytes([198, 18, 9, 2]))
    s = 0
    for i in range(0, 20, 2):
        s += (ip[i] << 8) | ip[i + 1]
    s = (s & 0xffff) + (s >> 16)
    ip = ip[:10] + struct.pack("!H", ~s & 0xffff) + ip[12:]
    return b"\xff" * 6 + b"\x02\x00\x00\x00\x00\x01" + b"\x08\x00" + ip + udp
ctl = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for line in sys.stdin:
    dev, n, gap, stop = line.split()
    n, gap = int(n), float(gap)
    while True:
        try:
            socket.if_nametoindex(dev)
            break
        except OSError:
            time.sleep(0.0002)
    ifr = struct.pack("16sH", dev.encode(), 0)
    flags = struct.unpack("16sH", fcntl.ioctl(ctl, SIOCGIFFLAGS, ifr))[1]
    fcntl.ioctl(ctl, SIOCSIFFLAGS, struct.pack("16sH", dev.encode(), flags | IFF_UP))
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    s.bind((dev, 0))
    times = []
    t = time.monotonic()
    for i in range(n):
        if i % 64 == 0 and os.path.exists(stop):
            break
        try:
            s.send(frame(10000 + i))
        except OSError:
            pass
        times.append(time.monotonic())
        t += gap
        d = t - time.monotonic()
        if d > 0:
            time.sleep(d)
    s.close()
    print(" ".join(f"{x:.6f}" for x in times), flush=True)
'''


def sh(*args, check=True, **kw):
    return subprocess.run([str(a) for a in args], check=check, capture_output=True, text=True, **kw)


def pktlens(*args, ns=None):
    return sh(PKTLENS, *(["-n", ns] if ns else []), *args)


def pct(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


class Bench:
    def __init__(self, flows):
        self.tag = f"plz{os.getpid()}x"
        self.flows = flows
        self.ns = []
        self.tmp = tempfile.mkdtemp(prefix="pktlens-svcbench-")
        self.peer = self.netns("plzp")
        self.a = self.netns(self.tag + "a")
        self.daemon = None

    def netns(self, name):
        sh("ip", "netns", "add", name)
        self.ns.append(name)
        sh("ip", "netns", "exec", name, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
           "net.ipv6.conf.default.disable_ipv6=1")
        return name

    def ino(self, ns):
        return os.stat(f"/run/netns/{ns}").st_ino

    def attached(self, ns, dev):
        return os.path.exists(f"{PIN_ROOT}/{self.ino(ns)}/{dev}/meta")

    def config(self, match, extra=""):
        path = os.path.join(self.tmp, f"c{random_name()}.conf")
        with open(path, "w") as f:
            f.write(f'name: bench\ninterfaces:\n  - match: "{match}"\n    netns: "{self.tag}*"\n'
                    f"    flows: {self.flows}\n{extra}")
        return path

    def start(self, conf):
        port = free_port()
        with open(conf, "a") as f:
            f.write(f'export:\n  prometheus: {{ listen: "127.0.0.1:{port}" }}\n')
        self.port = port
        self.log = open(os.path.join(self.tmp, "daemon.log"), "w+")
        self.daemon = subprocess.Popen([PKTLENS, "daemon", "--config", conf], stderr=self.log)
        deadline = time.monotonic() + 120
        while "ready:" not in open(self.log.name).read():
            assert time.monotonic() < deadline and self.daemon.poll() is None, open(self.log.name).read()
            time.sleep(0.05)

    def stop(self):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            self.daemon.wait(timeout=60)

    def proc(self, key):
        for line in open(f"/proc/{self.daemon.pid}/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1])

    def cpu(self):
        f = open(f"/proc/{self.daemon.pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")

    def close(self):
        self.stop()
        for ns in reversed(self.ns):
            subprocess.run([PKTLENS, "-n", ns, "detach", "--all"], capture_output=True)
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(self.tmp, ignore_errors=True)


_n = iter(range(1 << 30))


def random_name():
    return next(_n)


def free_port():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def first_packet(b, count):
    """Creation to attachment and to first counted packet, per interface."""
    sender = subprocess.Popen(["ip", "netns", "exec", b.peer, sys.executable, "-c", SENDER],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    attach, first = [], []
    try:
        for i in range(count):
            dev, peer = f"fp{i}", f"fq{i}"
            stop = os.path.join(b.tmp, f"stop{i}")
            # frames every 0.5 ms for up to 30 s, until told to stop
            sender.stdin.write(f"{peer} 60000 0.0005 {stop}\n")
            sender.stdin.flush()
            time.sleep(0.05)
            t0 = time.monotonic()
            sh("ip", "-n", b.a, "-batch", "-", input=f"link add {dev} type veth peer name {peer} netns {b.peer}\n"
               f"link set {dev} up\n")
            while not b.attached(b.a, dev):
                time.sleep(0.0005)
            attach.append(time.monotonic() - t0)
            time.sleep(0.05)
            open(stop, "w").close()
            times = [float(x) for x in sender.stdout.readline().split()]
            doc = json.loads(pktlens("-j", "flows", dev, ns=b.a).stdout)
            ports = [f["sport"] for f in doc["flows"] if f.get("dport") == 9]
            if ports and min(ports) - 10000 < len(times):
                first.append(times[min(ports) - 10000] - t0)
            sh("ip", "-n", b.a, "link", "del", dev)
    finally:
        sender.stdin.close()
        sender.wait(timeout=10)
    return attach, first


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--burst", type=int, default=200)
    ap.add_argument("--many", type=int, default=100)
    ap.add_argument("--flows", type=int, default=4096)
    ap.add_argument("--rules", type=int, default=50000)
    ap.add_argument("--idle", type=float, default=10)
    ap.add_argument("--json")
    args = ap.parse_args()
    if os.geteuid():
        sys.exit("service_bench: needs root")
    res = {"flows": args.flows}
    b = Bench(args.flows)
    try:
        # apply: 1 and --many interfaces, fresh and again
        for i in range(args.many):
            sh("ip", "-n", b.a, "link", "add", f"ap{i}", "type", "veth", "peer", "name", f"aq{i}",
               "netns", b.peer)
        for n, match in ((1, "ap0"), (args.many, "ap*")):
            conf = b.config(match)
            t0 = time.monotonic()
            out = pktlens("apply", conf).stdout
            fresh = time.monotonic() - t0
            t0 = time.monotonic()
            again = pktlens("apply", conf).stdout
            res[f"apply_{n}"] = {"seconds": round(fresh, 3), "again_seconds": round(time.monotonic() - t0, 3)}
            assert out.count("\nadd ") + out.startswith("add ") == n and again.startswith("nothing to change")
            print(f"apply, {n} interface{'s' if n > 1 else ''}: {fresh:.2f} s; again (no change): "
                  f"{res[f'apply_{n}']['again_seconds']:.2f} s")
            pktlens("apply", b.config("none-at-all"))  # detaches what the config had
        for i in range(args.many):
            sh("ip", "-n", b.a, "link", "del", f"ap{i}")

        # the daemon: first packets, burst, idle, scrapes
        rules = os.path.join(b.tmp, "big.rules")
        with open(rules, "w") as f:
            for i in range(args.rules):
                f.write(f"--src 2001:db8:{i >> 16:x}:{i & 0xffff:x}::/64 --drop\n")
        conf = b.config("f[pq]*", f'  - match: "big0"\n    netns: "{b.tag}*"\n    flows: {args.flows}\n'
                                  f"    rules-file: {rules}\n" + f'  - match: "sb*"\n    netns: "{b.tag}*"\n'
                                  f"    flows: {args.flows}\n")
        b.start(conf)
        res["peak_kb_at_start"] = b.proc("VmHWM")
        attach, first = first_packet(b, args.count)
        res["creation_to_attachment_ms"] = {"p50": round(pct(attach, 0.5) * 1000), "p99": round(pct(attach, 0.99) * 1000)}
        res["creation_to_first_counted_packet_ms"] = {"p50": round(pct(first, 0.5) * 1000),
                                                      "p99": round(pct(first, 0.99) * 1000), "n": len(first)}
        res["peak_kb_after_first_packets"] = b.proc("VmHWM")
        print(f"creation to attachment ({args.count} veths): p50 {pct(attach, 0.5) * 1000:.0f} ms, "
              f"p99 {pct(attach, 0.99) * 1000:.0f} ms")
        print(f"creation to first counted packet: p50 {pct(first, 0.5) * 1000:.0f} ms, "
              f"p99 {pct(first, 0.99) * 1000:.0f} ms ({len(first)} of {args.count})")
        waits = [float(x) for x in re.findall(r"after ([\d.]+) s waiting for the change lock", open(b.log.name).read())]
        res["lock_waits"] = len(waits)
        if waits:
            print(f"  ({len(waits)} passes waited for the change lock held by other pktlens commands, "
                  f"up to {max(waits):.2f} s)")

        batch = "".join(f"link add sb{i} type veth peer name sc{i} netns {b.peer}\n" for i in range(args.burst))
        t0 = time.monotonic()
        sh("ip", "-n", b.a, "-batch", "-", input=batch)
        base = f"{PIN_ROOT}/{b.ino(b.a)}"
        want = {f"sb{i}" for i in range(args.burst)}
        while not (os.path.isdir(base) and want <= set(os.listdir(base))):
            time.sleep(0.05)
        res["burst_seconds"] = round(time.monotonic() - t0, 2)
        res["peak_kb_after_burst"] = b.proc("VmHWM")
        print(f"burst: {args.burst} interfaces created at once, all attached in {res['burst_seconds']:.1f} s "
              f"(daemon peak RSS so far {b.proc('VmHWM')} kB)")

        time.sleep(1)
        rss0, cpu0 = b.proc("VmRSS"), b.cpu()
        time.sleep(args.idle)
        res["idle"] = {"rss_kb": b.proc("VmRSS"), "cpu_seconds": round(b.cpu() - cpu0, 3),
                       "seconds": args.idle, "attachments": args.burst}
        print(f"idle {args.idle:.0f} s with {args.burst} attachments: RSS {b.proc('VmRSS')} kB, "
              f"CPU {b.cpu() - cpu0:.3f} s")

        sh("ip", "-n", b.a, "link", "add", "big0", "type", "veth", "peer", "name", "bq0", "netns", b.peer)
        while not b.attached(b.a, "big0"):
            time.sleep(0.05)
        time.sleep(1)
        before = b.proc("VmRSS")
        sizes = []
        for _ in range(5):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{b.port}/metrics", timeout=60) as r:
                    sizes.append(len(r.read()))
            except OSError as e:
                sys.exit(f"scrape failed: {e}; daemon {'running' if b.daemon.poll() is None else b.daemon.returncode}:\n"
                         + open(b.log.name).read()[-2000:])
        time.sleep(1)
        res["scrape"] = {"rules": args.rules, "bytes": max(sizes), "rss_before_kb": before,
                         "rss_after_kb": b.proc("VmRSS"), "peak_kb": b.proc("VmHWM")}
        print(f"5 scrapes of {max(sizes) / 1e6:.1f} MB ({args.rules} rules): RSS {before} kB before, "
              f"{b.proc('VmRSS')} kB after, peak {b.proc('VmHWM')} kB")
        b.stop()
    finally:
        b.close()
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
