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
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from policy_bench import PKTLENS, Lab, frame_bytes, pktlens, softirq_jiffies  # noqa: E402
from sample_bench import wait_stderr  # noqa: E402

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
        cmd = [PKTLENS, "-n", lab.b, "sample", "vb", "-w", path, "-B", "4096", "--in", *args]
        ready = b"capturing"
    else:
        cmd = ["ip", "netns", "exec", lab.b, "tcpdump", "-i", "vb", "-Q", "in", "-w", path,
               "-B", "4096", "-s", "262144", "-n", *args]
        ready = b"listening on"
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = wait_stderr(p, ready)
    (n0, d0), s0 = counts(lab), softirq_jiffies()
    subprocess.run(["timeout", "-s", "KILL", str(seconds), "ip", "netns", "exec", lab.a, "trafgen",
                    "-o", "va", "-i", cfg, "-q", "--cpus", "1"], capture_output=True)
    time.sleep(0.2)
    n1, d1 = counts(lab)
    offered, dropped = n1 - n0, d1 - d0
    p.send_signal(signal.SIGTERM)
    _, status, ru = os.wait4(p.pid, 0)
    soft = softirq_jiffies() - s0
    err += p.stderr.read()
    text = err.decode(errors="replace")
    if tool == "pktlens":
        written = int(re.search(r"(\d+) written", text)[1])
    else:
        written = int(re.search(r"(\d+) packets? captured", text)[1])
    os.unlink(path)
    wanted = {"drop": dropped, "pass": offered - dropped, "all": offered}[want]
    hz = os.sysconf("SC_CLK_TCK")
    cpu = ru.ru_utime + ru.ru_stime
    return dict(offered=offered, wanted=wanted, written=written, missed=wanted - written,
                captured=written / wanted if wanted else 0.0, cpu_s=cpu, softirq_s=soft / hz,
                cpu_ms_per_m=1000.0 * cpu / (offered / 1e6),
                softirq_ms_per_m=1000.0 * soft / hz / (offered / 1e6))


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
    summary = {}
    for name, runs in out.items():
        med = lambda k: statistics.median(r[k] for r in runs)  # noqa: E731
        summary[name] = dict(captured=med("captured"), offered_pps=med("offered") / a.seconds,
                             cpu_ms_per_m=med("cpu_ms_per_m"),
                             softirq_ms_per_m=med("softirq_ms_per_m"), runs=runs)
        s = summary[name]
        print(f"  {name:13} captured {100 * s['captured']:7.3f}% of the wanted at "
              f"{s['offered_pps'] / 1e3:.0f} kpps offered; per million offered: process "
              f"{s['cpu_ms_per_m']:6.1f} ms, softirq {s['softirq_ms_per_m']:6.1f} ms")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
