#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""capture_bench: capture under a flood the policy drops, selected in the kernel by
`pktlens sample --verdict`, against pktlens capturing everything and tcpdump with the
equivalent filter, in the same run.

trafgen (one CPU, `timeout -s KILL`) sends 64-byte UDP frames from namespace a over a veth
into b, cycling through 10: 9 to port 9, which a policy rule on tc ingress drops, and 1 to port
53, which passes. pktlens is attached to vb at tc ingress only, so tcpdump (AF_PACKET, which
taps packets before tc ingress) sees every frame too. Each round runs, one after the other:

  drop/verdict   pktlens sample vb --verdict drop -w F     (the kernel keeps the dropped 90%)
  drop/all       pktlens sample vb -w F                    (everything; select afterwards)
  drop/tcpdump   tcpdump -i vb -w F 'udp dst port 9'       (the same 90% by header, cBPF)
  pass/verdict   pktlens sample vb --verdict pass -w F     (the 10% that got through)
  pass/tcpdump   tcpdump -i vb -w F 'udp dst port 53'

Reported per run: frames offered (the tc hook's count), frames wanted (the rule's count for
drop, the rest for pass; everything for drop/all), written, missed (wanted - written), and per
million frames offered the capturing process' CPU (user + system, wait4) and the softirq time
of all CPUs over the flood (where the kernel copies for either tool). Medians over rounds.
Files go to tmpfs.

    bench/capture_bench.py [--rounds N] [--seconds S] [--json FILE]
"""
import argparse
import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from policy_bench import Lab, frame_bytes, pktlens  # noqa: E402
from sample_bench import capture_cmd, flood_capture, medians, per_million  # noqa: E402

RUNS = {
    "drop/verdict": ("pktlens", ["--verdict", "drop"], "drop"),
    "drop/all": ("pktlens", [], "all"),
    "drop/tcpdump": ("tcpdump", ["udp dst port 9"], "drop"),
    "pass/verdict": ("pktlens", ["--verdict", "pass"], "pass"),
    "pass/tcpdump": ("tcpdump", ["udp dst port 53"], "pass"),
}


def counts(lab):
    """(frames tc ingress saw, frames the drop rule matched)."""
    st = json.loads(pktlens(lab.b, "-j", "stats", "vb").stdout)
    seen = st["interfaces"][0]["hooks"][0]["packets"]
    pol = json.loads(pktlens(lab.b, "-j", "policy", "list", "vb").stdout)
    rule = [r for r in pol["interfaces"][0]["rules"] if r["id"] == 9]
    return seen, rule[0]["packets"]


def one_run(lab, name, cfg, seconds, path):
    tool, args, want = RUNS[name]
    if tool == "pktlens":
        cmd, ready = capture_cmd(lab, tool, path, ["--in"], args)
    else:
        cmd, ready = capture_cmd(lab, tool, path, ["-Q", "in"], args)
    r = flood_capture(lab, tool, cmd, ready, cfg, seconds, lambda: counts(lab))
    os.unlink(path)
    (n0, d0), (n1, d1) = r["before"], r["after"]
    offered, dropped = n1 - n0, d1 - d0
    wanted = {"drop": dropped, "pass": offered - dropped, "all": offered}[want]
    r = per_million(r, offered, wanted)
    r.update(wanted=wanted, missed=wanted - r["written"])
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--json")
    a = ap.parse_args()
    if os.geteuid():
        print("capture_bench: needs root", file=sys.stderr)
        return 1
    if not shutil.which("trafgen") or not shutil.which("tcpdump"):
        print("== capture under a dropped flood: skipped, needs trafgen (netsniff-ng) and tcpdump")
        return 0
    lab = Lab()
    tmp = tempfile.mkdtemp(prefix="plbench-", dir="/dev/shm")
    out = {name: [] for name in RUNS}
    try:
        cfg = os.path.join(lab.tmp, "flood.cfg")
        ma, mb = lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")
        with open(cfg, "w") as f:
            for i in range(10):
                fr = bytearray(frame_bytes(ma, mb))
                fr[36:38] = (53 if i == 9 else 9).to_bytes(2, "big")   # UDP dport (csum 0)
                f.write("{ " + ", ".join(f"0x{b:02x}" for b in fr) + " }\n")
        pktlens(lab.b, "attach", "vb", "--xdp", "none", "--tc", "in")
        pktlens(lab.b, "policy", "add", "vb", "--in", "--id", "9", "--proto", "udp", "--dport",
                "9", "--drop")
        print(f"== capture under a flood 90% of which the policy drops (tc ingress), 64-byte "
              f"frames, {a.seconds} s x {a.rounds} rounds")
        for _ in range(a.rounds):
            for name in RUNS:
                r = one_run(lab, name, cfg, a.seconds, os.path.join(tmp, "cap.pcap"))
                out[name].append(r)
                print(f"  {name:13} offered {r['offered']:9d}  wanted {r['wanted']:9d}  written "
                      f"{r['written']:9d} (missed {r['missed']:8d})  process {r['cpu_s']:5.2f} s"
                      f"  softirq {r['softirq_s']:5.2f} s", flush=True)
    finally:
        lab.close()
        shutil.rmtree(tmp, ignore_errors=True)
    summary = medians(out, a.seconds)
    for name, s in summary.items():
        print(f"  {name:13} captured {100 * s['captured']:7.3f}% of the wanted at "
              f"{s['offered_pps'] / 1e3:.0f} kpps offered; per million offered: process "
              f"{s['cpu_ms_per_m']:6.1f} ms, softirq {s['softirq_ms_per_m']:6.1f} ms")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
