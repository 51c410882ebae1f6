#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""drops_bench: what the kfree_skb drop probe (`pktlens drops`) costs, side by side in one run.

1. Drop flood: trafgen sends 64-byte UDP frames from namespace a to a closed port of namespace
   b's address; b drops every one (NO_SOCKET, in the kernel's UDP receive path). Rounds
   alternate without and with `pktlens drops --netns b` running. Reported per mode: packets
   per second b received (ip -s link: all of them are dropped) and softirq CPU time (all CPUs,
   /proc/stat) per million dropped packets; the ratio with/without; and the probe's own count
   against the link's, which must agree.
2. iperf3 (TCP, a -> b) without and with `pktlens drops` running, alternating: the throughput
   ratio (target >= 0.97).

    bench/drops_bench.py [--rounds N] [--seconds S] [--json FILE]

Needs root, trafgen (netsniff-ng) and iperf3 (each part skipped, and said, when missing).
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from policy_bench import PKTLENS, Lab, flood, frame_bytes, sh  # noqa: E402


class Probe:
    """`pktlens -j drops --netns NS` for the length of a `with` block."""

    def __init__(self, ns):
        self.ns = ns

    def __enter__(self):
        self.p = subprocess.Popen([PKTLENS, "-j", "drops", "--netns", self.ns],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.5)
        if self.p.poll() is not None:
            raise RuntimeError(self.p.stderr.read())
        return self

    def __exit__(self, *exc):
        self.p.send_signal(signal.SIGINT)
        out, _ = self.p.communicate(timeout=30)
        self.doc = json.loads(out.splitlines()[-1])


def rx_packets(lab):
    return json.loads(sh("ip", "-n", lab.b, "-j", "-s", "link", "show", "vb").stdout)[0]["stats64"]["rx"]["packets"]


def flood_part(lab, rounds, seconds):
    if not shutil.which("trafgen"):
        print("  skipped: needs trafgen (netsniff-ng)")
        return None
    hz = os.sysconf("SC_CLK_TCK")
    cfg = os.path.join(lab.tmp, "drops.cfg")
    fr = frame_bytes(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"), src="198.18.1.1", dst="198.18.1.2")
    with open(cfg, "w") as f:
        f.write("{ " + ", ".join(f"0x{b:02x}" for b in fr) + " }\n")
    out = {"without": [], "with": []}
    for _ in range(rounds):
        for mode in out:
            rx0 = rx_packets(lab)
            t0 = time.monotonic()
            if mode == "with":
                with Probe(lab.b) as pr:
                    t0 = time.monotonic()
                    soft = flood(lab, seconds, cfg)
                    took = time.monotonic() - t0
                    time.sleep(0.3)
                counted = pr.doc["packets"]
            else:
                soft = flood(lab, seconds, cfg)
                took = time.monotonic() - t0
                counted = None
            got = rx_packets(lab) - rx0
            out[mode].append(dict(seconds=took, rx=got, pps=got / took, probe_counted=counted,
                                  softirq_ms_per_mpkt=1000.0 * soft / hz / (got / 1e6) if got else None))
    summary = {}
    for mode, runs in out.items():
        summary[mode] = dict(pps=statistics.median(r["pps"] for r in runs),
                             softirq_ms_per_mpkt=statistics.median(r["softirq_ms_per_mpkt"] for r in runs),
                             runs=runs)
        print(f"  {mode:8} probe: dropped {summary[mode]['pps'] / 1e3:6.0f} kpps   softirq "
              f"{summary[mode]['softirq_ms_per_mpkt']:7.1f} ms per million dropped")
    w, wo = summary["with"], summary["without"]
    summary["ratio_pps"] = w["pps"] / wo["pps"]
    summary["ratio_softirq"] = w["softirq_ms_per_mpkt"] / wo["softirq_ms_per_mpkt"]
    summary["probe_ns_per_drop"] = (w["softirq_ms_per_mpkt"] - wo["softirq_ms_per_mpkt"])  # ms/Mpkt = ns/pkt
    summary["counts_agree"] = all(r["probe_counted"] >= r["rx"] for r in w["runs"])
    print(f"  with/without: drop rate {summary['ratio_pps']:.3f}, softirq per drop "
          f"{summary['ratio_softirq']:.3f} ({summary['probe_ns_per_drop']:+.0f} ns per drop); "
          f"probe counted every dropped packet: {summary['counts_agree']}")
    return summary


def iperf_part(lab, rounds, seconds):
    if not shutil.which("iperf3"):
        print("  skipped: needs iperf3")
        return None
    sh("ip", "-n", lab.a, "addr", "add", "198.18.2.1/24", "dev", "va")
    sh("ip", "-n", lab.b, "addr", "add", "198.18.2.2/24", "dev", "vb")
    srv = subprocess.Popen(["ip", "netns", "exec", lab.b, "iperf3", "-s", "-B", "198.18.2.2"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    out = {"without": [], "with": []}
    try:
        for _ in range(rounds):
            for mode in out:
                def run():
                    r = sh("timeout", "-s", "KILL", seconds + 10, "ip", "netns", "exec", lab.a,
                           "iperf3", "-J", "-c", "198.18.2.2", "-t", seconds)
                    return json.loads(r.stdout)["end"]["sum_received"]["bits_per_second"]
                if mode == "with":
                    with Probe(lab.b):
                        out[mode].append(run())
                else:
                    out[mode].append(run())
    finally:
        srv.kill()
        srv.wait()
    w, wo = statistics.median(out["with"]), statistics.median(out["without"])
    print(f"  without {wo / 1e9:6.2f} Gbit/s   with {w / 1e9:6.2f} Gbit/s   ratio {w / wo:.3f} "
          f"(target >= 0.97)")
    return dict(without_bps=wo, with_bps=w, ratio=w / wo, runs=out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    if os.geteuid():
        print("drops_bench: needs root", file=sys.stderr)
        return 1
    lab = Lab()
    try:
        sh("ip", "-n", lab.b, "addr", "add", "198.18.1.2/24", "dev", "vb", check=False)
        print(f"== kfree_skb probe under a UDP drop flood (NO_SOCKET), {a.seconds} s x {a.rounds} rounds")
        fl = flood_part(lab, a.rounds, a.seconds)
        print(f"== iperf3 with and without pktlens drops, {a.seconds} s x {a.rounds} rounds")
        ip = iperf_part(lab, a.rounds, a.seconds)
    finally:
        lab.close()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(flood=fl, iperf=ip), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
