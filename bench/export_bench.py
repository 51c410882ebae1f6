#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""export_bench: what the exporters cost at scale (issue 8's benchmark).

1. Prometheus: 10 interfaces (veth pairs in a namespace, pktlens on tc in+out of each) whose flow
   tables hold 65,536 active flows in all (tests/fill_flows writes them), `pktlens export
   prometheus` serving them. Scraped --scrapes times one after another: wall-clock latency per
   scrape (p50, p99, max), the exposition's size, and the exporter's CPU time per scrape
   (/proc/PID/stat utime + stime before and after). Side by side in the same run, the same
   scrapes with the flow tables empty, so the flows' share shows as a ratio.
2. IPFIX: one interface whose flow table holds --flows (1,000,000) flows, `pktlens export ipfix
   --duration 1` (one round, at its end) into a UDP sink on loopback: records sent (the last
   message's sequence number plus its records: exact even where the sink's socket dropped
   datagrams), the round's wall-clock and CPU time, records per second of each.

    bench/export_bench.py [--scrapes N] [--flows N] [--rounds N] [--json FILE]

Needs root and the test tools (`make test-build` or `make bench`: .output/tests/fill_flows).
"""
import argparse
import ctypes
import glob
import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from policy_bench import PKTLENS, ROOT, Lab, sh  # noqa: E402

FILL_FLOWS = os.path.join(os.environ.get("PKTLENS_OUT", os.path.join(ROOT, ".output")), "tests", "fill_flows")
HZ = os.sysconf("SC_CLK_TCK")


def in_netns(ns, fn, *args):
    """fn(*args) in a thread of its own that entered network namespace ns (setns(2) moves the
    calling thread alone): the exporters run with -n ns, and their sockets are ns's."""
    res = {}

    def run():
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
        try:
            if libc.setns(fd, 0x40000000):  # CLONE_NEWNET
                raise OSError(ctypes.get_errno(), "setns")
        finally:
            os.close(fd)
        try:
            res["v"] = fn(*args)
        except BaseException as e:  # noqa: BLE001 (handed to the caller)
            res["e"] = e

    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "e" in res:
        raise res["e"]
    return res["v"]


def free_port(kind):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_s(pid):
    """utime + stime of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / HZ


def attachment(ns, ifname):
    for a in json.loads(sh(PKTLENS, "-n", ns, "-j", "list").stdout)["attachments"]:
        if a["this_netns"] and a["ifname"] == ifname:
            return a
    raise RuntimeError(f"{ifname} not attached in {ns}")


def fill(ns, ifname, n):
    a = attachment(ns, ifname)
    out = sh(FILL_FLOWS, os.path.join(a["pins"], "flows"), str(a["ifindex"]), str(n)).stdout
    assert json.loads(out)["inserted"] == n, out


def scrape_series(port, pid, scrapes):
    lat, size = [], 0
    c0 = cpu_s(pid)
    for _ in range(scrapes):
        t0 = time.monotonic()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as r:
            body = r.read()
        lat.append(time.monotonic() - t0)
        size = len(body)
    cpu = (cpu_s(pid) - c0) / scrapes
    lat.sort()
    return {"p50_ms": 1e3 * statistics.median(lat), "p99_ms": 1e3 * lat[min(len(lat) - 1, int(0.99 * len(lat)))],
            "max_ms": 1e3 * lat[-1], "cpu_ms": 1e3 * cpu, "bytes": size}


def prometheus_part(lab, ifaces, flows, scrapes):
    per = flows // ifaces
    for i in range(ifaces):
        sh("ip", "-n", lab.b, "link", "add", f"px{i}", "type", "veth", "peer", "name", f"py{i}")
        for d in (f"px{i}", f"py{i}"):
            sh("ip", "-n", lab.b, "link", "set", d, "up")
        sh(PKTLENS, "-n", lab.b, "attach", f"px{i}", "--xdp", "skb", "--tc", "none", "--flows", str(2 * per))
    port = free_port(socket.SOCK_STREAM)
    exp = subprocess.Popen([PKTLENS, "-n", lab.b, "export", "prometheus", "--listen", f"127.0.0.1:{port}"],
                           stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        res = {"empty": in_netns(lab.b, scrape_series, port, exp.pid, scrapes)}
        for i in range(ifaces):
            fill(lab.b, f"px{i}", per)
        res["full"] = in_netns(lab.b, scrape_series, port, exp.pid, scrapes)
        # and empty again after it, so a drift of the host shows
        for i in range(ifaces):
            sh(PKTLENS, "-n", lab.b, "stats", f"px{i}", "--reset")
        res["empty_after"] = in_netns(lab.b, scrape_series, port, exp.pid, scrapes)
    finally:
        exp.terminate()
        exp.wait(timeout=30)
        for i in range(ifaces):
            sh(PKTLENS, "-n", lab.b, "detach", f"px{i}", check=False)
    res["flows"] = per * ifaces
    res["interfaces"] = ifaces
    return res


class Sink:
    """A UDP socket on loopback that reads IPFIX messages and keeps, per observation domain,
    the highest sequence number seen plus the data records of that message."""

    def __init__(self):
        """Made in the exporter's namespace (in_netns()); reads in a thread of its own."""
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 << 20)
        self.s.bind(("127.0.0.1", 0))
        self.s.settimeout(0.2)
        self.port = self.s.getsockname()[1]
        self.end = {}
        self.datagrams = 0
        self.stop = False
        self.t = threading.Thread(target=self.run, daemon=True)
        self.t.start()

    def run(self):
        while not self.stop:
            try:
                m = self.s.recv(65536)
            except socket.timeout:
                continue
            self.datagrams += 1
            seq, dom = struct.unpack("!II", m[8:16])
            recs, off = 0, 16
            while off + 4 <= len(m):
                sid, slen = struct.unpack("!HH", m[off:off + 4])
                if sid in RECLEN:
                    recs += (slen - 4) // RECLEN[sid]
                elif sid == 260:
                    recs += 1
                off += max(slen, 4)
            if seq + recs > self.end.get(dom, 0):
                self.end[dom] = seq + recs

    def close(self):
        self.stop = True
        self.t.join()
        self.s.close()


# data record lengths of export/ipfix.c's templates (REC_V4, REC_V6; the TCP ones are not used here)
RECLEN = {256: 58, 257: 82, 258: 58 + 52, 259: 82 + 52}


def ipfix_part(lab, flows, rounds):
    sh(PKTLENS, "-n", lab.b, "attach", "vb", "--xdp", "skb", "--tc", "none", "--flows", str(flows))
    fill(lab.b, "vb", flows)
    out = []
    try:
        for _ in range(rounds):
            sink = in_netns(lab.b, Sink)
            t0 = time.monotonic()
            r0 = os.times()
            p = subprocess.run([PKTLENS, "-n", lab.b, "export", "ipfix", "--collector",
                                f"127.0.0.1:{sink.port}", "--interval", "3600", "--duration", "1"],
                               capture_output=True, text=True, timeout=600)
            wall = time.monotonic() - t0 - 1.0  # the round is at --duration's end
            r1 = os.times()
            time.sleep(0.5)
            sink.close()
            for f in glob.glob(f"/run/pktlens/ipfix-127.0.0.1-{sink.port}-*"):
                os.unlink(f)  # what it kept: the next round sends it all again
            assert p.returncode == 0, p.stderr
            cpu = (r1.children_user - r0.children_user) + (r1.children_system - r0.children_system)
            sent = sum(sink.end.values())
            out.append({"records": sent, "datagrams_received": sink.datagrams, "wall_s": wall, "cpu_s": cpu,
                        "records_per_s_wall": sent / wall, "records_per_s_cpu": sent / cpu})
    finally:
        sh(PKTLENS, "-n", lab.b, "detach", "vb", check=False)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scrapes", type=int, default=20)
    ap.add_argument("--interfaces", type=int, default=10)
    ap.add_argument("--prom-flows", type=int, default=65536)
    ap.add_argument("--flows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json")
    a = ap.parse_args()
    if not os.access(FILL_FLOWS, os.X_OK):
        sys.exit(f"export_bench: {FILL_FLOWS} is missing: make test-build")
    lab = Lab()
    sh("ip", "-n", lab.b, "link", "set", "lo", "up")  # the exporters' sockets are on its loopback
    try:
        res = {"prometheus": prometheus_part(lab, a.interfaces, a.prom_flows, a.scrapes)}
        pr = res["prometheus"]
        print(f"== Prometheus: {pr['interfaces']} interfaces, {pr['flows']} flows, {a.scrapes} scrapes each")
        print(f"{'tables':<12} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'CPU ms':>8} {'bytes':>10}")
        for k in ("empty", "full", "empty_after"):
            r = pr[k]
            print(f"{k:<12} {r['p50_ms']:8.1f} {r['p99_ms']:8.1f} {r['max_ms']:8.1f} {r['cpu_ms']:8.1f} {r['bytes']:10d}")
        base = (pr["empty"]["p50_ms"] + pr["empty_after"]["p50_ms"]) / 2
        print(f"full/empty p50 latency: {pr['full']['p50_ms'] / base:.2f}x")
        res["ipfix"] = ipfix_part(lab, a.flows, a.rounds)
        print(f"== IPFIX: one round of a {a.flows}-flow table")
        for r in res["ipfix"]:
            print(f"records {r['records']}, {r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} s CPU: "
                  f"{r['records_per_s_wall']:,.0f} records/s ({r['records_per_s_cpu']:,.0f} per CPU second); "
                  f"the sink read {r['datagrams_received']} datagrams")
    finally:
        lab.close()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
