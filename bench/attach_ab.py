#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""attach_ab: how long `pktlens attach` takes, two builds side by side.

Each round attaches DEV (a veth in a namespace of its own) with each build in
turn, the order alternating, and detaches it again; reported per build: the
median, minimum and maximum wall time of the attach over the rounds.

    bench/attach_ab.py A_PKTLENS B_PKTLENS [--rounds 12] [--opts 'ATTACH-OPTIONS']
                       [--then 'COMMAND']

The attach options default to '--xdp none --tc in,out' (what attach picks on a
veth). With --then, what is timed is COMMAND (pktlens arguments, e.g. 'policy
load vb rules.txt' or 'filter set vb "udp port 9"', split as a shell would),
run right after each attach. Needs root.
"""
import argparse
import os
import shlex
import statistics
import subprocess
import time


def sh(*args):
    return subprocess.run(args, check=True, capture_output=True, text=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=12)
    ap.add_argument("--opts", default="--xdp none --tc in,out")
    ap.add_argument("--then", help="time this pktlens command after the attach instead")
    args = ap.parse_args()
    args.opts = args.opts.split()
    then = shlex.split(args.then) if args.then else None
    what = args.then if then else "attach " + " ".join(args.opts)
    builds = [args.a, args.b]
    ns = f"plab{os.getpid()}"
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "-n", ns, "link", "add", "va", "type", "veth", "peer", "name", "vb")
        sh("ip", "-n", ns, "link", "set", "vb", "up")
        took = {b: [] for b in builds}
        for r in range(args.rounds):
            for b in builds if r % 2 == 0 else builds[::-1]:
                t0 = time.perf_counter()
                sh(b, "-n", ns, "attach", "vb", *args.opts)
                if then:
                    t0 = time.perf_counter()
                    sh(b, "-n", ns, *then)
                took[b].append(time.perf_counter() - t0)
                sh(b, "-n", ns, "detach", "vb")
        for name, b in zip("AB", builds):
            v = sorted(took[b])
            print(f"{name} {b}: {what}: median {statistics.median(v) * 1e3:.0f} ms, "
                  f"min {v[0] * 1e3:.0f}, max {v[-1] * 1e3:.0f} ({args.rounds} rounds)")
        print(f"B / A (medians): {statistics.median(took[args.b]) / statistics.median(took[args.a]):.2f}")
    finally:
        subprocess.run(["ip", "netns", "del", ns])


if __name__ == "__main__":
    main()
