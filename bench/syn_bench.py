#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""syn_bench: a live SYN flood, and what a per-source SYN limit buys the server.

In a veth lab (namespace a: the client 198.18.0.1 and the attacker; namespace b: a TCP server
on 198.18.0.2:80, SYN cookies on as by default), trafgen floods SYNs to port 80 from
SOURCES addresses of 198.19.0.0/24 (random source port and sequence number, so each is a new
connection attempt); the server's SYN-ACKs to them go back to a, which drops them. Meanwhile a
legitimate client in a connects to the server every INTERVAL ms (connect(), then close), and
the run records each connect's time. Modes, alternating in the same rounds:

  idle      no flood, no rule: the client's connect time on a quiet lab
  none      the flood, no rule
  pktlens   the flood; pktlens on vb (XDP, native) with one rule:
            policy add vb --proto tcp 'tcp[tcpflags] & tcp-syn != 0'
                          --limit RATEpps --burst BURST --per src
  pktlens-tc  the same on tc ingress (--xdp none --tc in): where nftables' netdev hook is
  nftables  the flood; the same limit in an nftables netdev ingress chain on vb, a meter per
            source: add @syn { ip saddr limit rate over RATE/second burst BURST packets } drop

Reported per mode (medians over rounds): the client's connect time (median, p99, and connects
that failed within 3 s), the flood packets vb received per second, SYNs dropped by the rule,
and softirq CPU (all CPUs, /proc/stat) as a share of all CPU time and per flood packet received:
receive processing on veth, the TCP handshake and the SYN-ACKs run in softirq. Ratios pktlens /
nftables and each / none. trafgen sends as fast as it can on one CPU; with XDP on vb, veth
pushes back when vb's ring is full (Linux 6.14) and trafgen stops at the first EAGAIN, so it is
started again until the time is up (trafgen_starts in the JSON).

    bench/syn_bench.py [--rounds N] [--seconds S] [--rate PPS] [--burst N] [--sources N]
                       [--interval MS] [--no-syncookies] [--json FILE]

Needs root, trafgen (netsniff-ng) and nft; the rule's rate must stay above the client's
connect rate (1000 / INTERVAL per second), or the client is limited too.
"""
import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKTLENS = os.path.join(ROOT, "pktlens")
PORT = 80


def sh(*args, check=True, **kw):
    return subprocess.run([str(a) for a in args], check=check, capture_output=True, text=True, **kw)


def pktlens(ns, *args, check=True):
    return sh(PKTLENS, "-n", ns, *args, check=check)


class Lab:
    def __init__(self, syncookies=1):
        self.a, self.b = f"plsyn-a{os.getpid()}", f"plsyn-b{os.getpid()}"
        self.tmp = tempfile.mkdtemp(prefix="plsyn-")
        for ns in (self.a, self.b):
            sh("ip", "netns", "add", ns)
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        sh("ip", "-n", self.a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns",
           self.b)
        sh("ip", "-n", self.a, "addr", "add", "198.18.0.1/24", "dev", "va")
        sh("ip", "-n", self.b, "addr", "add", "198.18.0.2/24", "dev", "vb")
        for ns, dev in ((self.a, "va"), (self.b, "vb")):
            sh("ip", "-n", ns, "link", "set", dev, "up")
        sh("ip", "netns", "exec", self.b, "sysctl", "-qw", f"net.ipv4.tcp_syncookies={syncookies}")
        if not syncookies:
            # else the kernel lets a peer it has RTT metrics for past a full SYN queue
            # (tcp_peer_is_proven()): the client must be as new as a flood source
            sh("ip", "netns", "exec", self.b, "sysctl", "-qw", "net.ipv4.tcp_no_metrics_save=1")
        # SYN-ACKs to the flood's sources go back to a (which drops them), not nowhere
        sh("ip", "-n", self.b, "route", "add", "198.19.0.0/24", "via", "198.18.0.1")
        self.mac_a, self.mac_b = self.mac(self.a, "va"), self.mac(self.b, "vb")
        sh("ip", "-n", self.a, "neigh", "replace", "198.18.0.2", "lladdr", self.mac_b, "dev", "va",
           "nud", "permanent")
        sh("ip", "-n", self.b, "neigh", "replace", "198.18.0.1", "lladdr", self.mac_a, "dev", "vb",
           "nud", "permanent")
        self.server = None

    def serve(self):
        """A fresh server, accepting and closing: a new listener, so no mode inherits the
        previous one's SYN queue (half-open connections live for a minute of SYN-ACK
        retransmits)."""
        if self.server:
            self.server.kill()
            self.server.wait()
        self.server = subprocess.Popen(
            ["ip", "netns", "exec", self.b, sys.executable, "-c",
             "import socket\n"
             "s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n"
             f"s.bind(('198.18.0.2', {PORT})); s.listen(4096)\n"
             "while True:\n c, _ = s.accept(); c.close()\n"])
        deadline = time.time() + 10
        while time.time() < deadline and f":{PORT}" not in sh("ip", "netns", "exec", self.b, "ss",
                                                              "-ltn").stdout:
            time.sleep(0.1)

    def mac(self, ns, dev):
        return json.loads(sh("ip", "-n", ns, "-j", "link", "show", dev).stdout)[0]["address"]

    def rx_packets(self):
        return json.loads(sh("ip", "-n", self.b, "-j", "-s", "link", "show", "vb").stdout)[0][
            "stats64"]["rx"]["packets"]

    def close(self):
        if self.server:
            self.server.kill()
            self.server.wait()
        for ns in (self.a, self.b):
            sh(PKTLENS, "-n", ns, "detach", "--all", check=False)
            sh("ip", "netns", "del", ns, check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


def trafgen_cfg(path, lab, sources):
    """One SYN per source address, round robin; random source port, IP id and sequence."""
    mac = lambda m: ", ".join(f"0x{x}" for x in m.split(":"))  # noqa: E731
    with open(path, "w") as f:
        for i in range(sources):
            f.write("{\n"
                    f"  {mac(lab.mac_b)}, {mac(lab.mac_a)}, c16(0x0800),\n"
                    "  0x45, 0x00, c16(40), drnd(2), c16(0x4000), 64, 6, csumip(14, 33),\n"
                    f"  198, 19, 0, {1 + i}, 198, 18, 0, 2,\n"
                    f"  drnd(2), c16({PORT}), drnd(4), c32(0), 0x50, 0x02, c16(64240),\n"
                    "  csumtcp(14, 34), c16(0)\n"
                    "}\n")


def cpu_jiffies():
    """(softirq, all) jiffies of all CPUs so far."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return v[6], sum(v[:8])


# the client, run in namespace a: connect() every INTERVAL ms for SECONDS; prints
# {"times": [ms, ...], "failed": N}
CLIENT = """
import json, socket, sys, time
seconds, interval = float(sys.argv[1]), float(sys.argv[2]) / 1000
times, failed = [], 0
end = time.monotonic() + seconds
while time.monotonic() < end:
    t0 = time.monotonic()
    s = socket.socket()
    s.settimeout(3)
    try:
        s.connect(("198.18.0.2", %d))
        times.append(1000 * (time.monotonic() - t0))
    except OSError:
        failed += 1
    finally:
        s.close()
    left = interval - (time.monotonic() - t0)
    if left > 0:
        time.sleep(left)
print(json.dumps(dict(times=times, failed=failed)))
""" % PORT


def flood(lab, seconds, cfg):
    """trafgen from a for seconds. With XDP on vb, veth pushes back when vb's ring is full
    (Linux 6.14) and trafgen stops at the first EAGAIN ("Flushing TX_RING failed"): it is
    started again until the time is up. Returns how many times it was started."""
    end, starts = time.monotonic() + seconds, 0
    while end - time.monotonic() > 0.05:
        starts += 1
        subprocess.run(["timeout", "-s", "KILL", f"{end - time.monotonic():.2f}", "ip", "netns",
                        "exec", lab.a, "trafgen", "-o", "va", "-i", cfg, "-q", "--cpus", "1"],
                       capture_output=True)
    return starts


def run_mode(lab, mode, a, cfg):
    """One run of mode; the client's connect times and what the lab counted."""
    lab.serve()
    if mode.startswith("pktlens"):
        xdp = mode == "pktlens"
        pktlens(lab.b, "attach", "vb", "--xdp", "native" if xdp else "none",
                "--tc", "none" if xdp else "in")
        pktlens(lab.b, "policy", "add", "vb", "--proto", "tcp", "tcp[tcpflags] & tcp-syn != 0",
                "--limit", f"{a.rate}pps", "--burst", str(a.burst), "--per", "src")
    elif mode == "nftables":
        sh("ip", "netns", "exec", lab.b, "nft", "-f", "-", input=(
            "table netdev plsyn {\n"
            " set syn { type ipv4_addr; size 65535; flags dynamic,timeout; timeout 10s; }\n"
            " chain in {\n  type filter hook ingress device vb priority 0;\n"
            "  ip protocol tcp tcp flags & (syn | ack) == syn add @syn { ip saddr limit rate over "
            f"{a.rate}/second burst {a.burst} packets }} counter drop\n"
            " }\n}\n"))
    rx0, (s0, t0) = lab.rx_packets(), cpu_jiffies()
    start = time.monotonic()
    c = subprocess.Popen(["ip", "netns", "exec", lab.a, sys.executable, "-c", CLIENT,
                          str(a.seconds), str(a.interval)], stdout=subprocess.PIPE, text=True)
    starts = 0
    if mode != "idle":
        starts = flood(lab, a.seconds, cfg)
    res = json.loads(c.communicate(timeout=a.seconds + 30)[0])
    times, failed = res["times"], res["failed"]
    took = time.monotonic() - start
    s1, t1 = cpu_jiffies()
    rx = lab.rx_packets() - rx0
    dropped = 0
    if mode.startswith("pktlens"):
        rules = json.loads(pktlens(lab.b, "-j", "policy", "list", "vb").stdout)
        dropped = rules["interfaces"][0]["rules"][0]["exceeded_packets"]
        pktlens(lab.b, "detach", "vb")
    elif mode == "nftables":
        doc = json.loads(sh("ip", "netns", "exec", lab.b, "nft", "-j", "list", "table", "netdev",
                            "plsyn").stdout)["nftables"]
        for x in doc:
            for e in x.get("rule", {}).get("expr", []):
                if "counter" in e:
                    dropped = e["counter"]["packets"]
        sh("ip", "netns", "exec", lab.b, "nft", "delete", "table", "netdev", "plsyn")
    times.sort()
    return dict(connects=len(times), failed=failed, trafgen_starts=starts,
                median_ms=statistics.median(times) if times else None,
                p99_ms=times[min(len(times) - 1, int(0.99 * len(times)))] if times else None,
                flood_rx_pps=rx / took, dropped=dropped,
                softirq_ns_per_pkt=1e9 * (s1 - s0) / os.sysconf("SC_CLK_TCK") / rx
                if rx > 1000 else None,
                softirq_pct=100.0 * (s1 - s0) / (t1 - t0) if t1 > t0 else None)


def med(runs, key):
    v = [r[key] for r in runs if r[key] is not None]
    return statistics.median(v) if v else None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=6)
    ap.add_argument("--rate", type=int, default=50, help="SYNs/s per source the rules allow")
    ap.add_argument("--burst", type=int, default=20)
    ap.add_argument("--sources", type=int, default=64, help="flood source addresses")
    ap.add_argument("--interval", type=int, default=50, help="ms between the client's connects")
    ap.add_argument("--no-syncookies", action="store_true",
                    help="the server without SYN cookies (net.ipv4.tcp_syncookies=0)")
    ap.add_argument("--json")
    a = ap.parse_args()
    if os.geteuid():
        sys.exit("syn_bench: needs root")
    for tool in ("trafgen", "nft"):
        if not shutil.which(tool):
            print(f"  skipped: needs {tool} (scripts/deps.sh --bench)")
            return 0
    if 1000 / a.interval >= a.rate:
        sys.exit("syn_bench: --rate must exceed the client's connects per second")
    lab = Lab(syncookies=0 if a.no_syncookies else 1)
    modes = ["idle", "none", "pktlens", "pktlens-tc", "nftables"]
    out = {m: [] for m in modes}
    try:
        cfg = os.path.join(lab.tmp, "syn.cfg")
        trafgen_cfg(cfg, lab, a.sources)
        for _ in range(a.rounds):
            for m in modes:
                out[m].append(run_mode(lab, m, a, cfg))
    finally:
        lab.close()
    summary = {}
    print(f"  {'mode':9} {'connect median':>14} {'p99':>9} {'failed':>7} {'flood rx':>10} "
          f"{'dropped/s':>10} {'softirq':>8} {'per flood pkt':>13}")
    for m, runs in out.items():
        s = dict(median_ms=med(runs, "median_ms"), p99_ms=med(runs, "p99_ms"),
                 failed=sum(r["failed"] for r in runs), connects=sum(r["connects"] for r in runs),
                 flood_rx_pps=med(runs, "flood_rx_pps"),
                 dropped_pps=statistics.median(r["dropped"] / a.seconds for r in runs),
                 softirq_pct=med(runs, "softirq_pct"),
                 softirq_ns_per_pkt=med(runs, "softirq_ns_per_pkt"), runs=runs)
        summary[m] = s
        fmt = lambda v, f: (f % v) if v is not None else "-"  # noqa: E731
        print(f"  {m:9} {fmt(s['median_ms'], '%11.2f ms'):>14} {fmt(s['p99_ms'], '%6.1f ms'):>9} "
              f"{s['failed']:4}/{s['connects'] + s['failed']:<4} "
              f"{s['flood_rx_pps'] / 1e3:6.0f} kpps {s['dropped_pps'] / 1e3:6.0f} k "
              f"{fmt(s['softirq_pct'], '%6.1f %%'):>8} "
              f"{fmt(s['softirq_ns_per_pkt'], '%7.0f ns'):>13}")
    ratios = {}
    for m, base in (("pktlens", "nftables"), ("pktlens-tc", "nftables"), ("pktlens", "none"),
                    ("pktlens-tc", "none"), ("nftables", "none")):
        r = {k: summary[m][k] / summary[base][k] for k in ("median_ms", "p99_ms", "softirq_pct",
                                                          "softirq_ns_per_pkt")
             if summary[m][k] and summary[base][k]}
        ratios[f"{m}/{base}"] = r
        print(f"  {m}/{base}: connect median {r.get('median_ms', 0):.2f}, "
              f"p99 {r.get('p99_ms', 0):.2f}, softirq {r.get('softirq_pct', 0):.2f}, "
              f"softirq per flood packet {r.get('softirq_ns_per_pkt', 0):.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(args=vars(a), summary=summary, ratios=ratios), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
