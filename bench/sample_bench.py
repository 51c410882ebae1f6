#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""sample_bench: `pktlens sample -w` against `tcpdump -w` under a trafgen flood.

trafgen floods 64-byte UDP frames as fast as it can (one CPU, `timeout -s KILL`)
from namespace a over a veth into namespace b, where pktlens is attached
(native XDP) in every run, so the data path is the same. In each round, one
after the other, the frames are captured to a file on tmpfs by
`pktlens sample vb -w` or by `tcpdump -i vb -w` (both with a 4 MiB buffer,
full snaplen). Reported per tool: frames offered (vb's XDP count), frames
written to the file, the share captured, the capturing process' CPU time
(user + system, from wait4) and the softirq time of all CPUs in that
interval (where pktlens copies into its ring and where AF_PACKET copies for
tcpdump), per million frames offered. Medians over rounds.

    bench/sample_bench.py [--rounds N] [--seconds S] [--size BYTES] [--json FILE]
"""
import argparse
import json
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from policy_bench import PKTLENS, Lab, frame_bytes, pktlens, sh, softirq_jiffies  # noqa: E402


def wait_stderr(p, what, timeout=20):
    buf, deadline = b"", time.time() + timeout
    while what not in buf:
        left = deadline - time.time()
        if left <= 0 or p.poll() is not None:
            raise RuntimeError(f"not ready: {buf!r}")
        if select.select([p.stderr], [], [], left)[0]:
            buf += os.read(p.stderr.fileno(), 4096)
    return buf


def xdp_packets(lab):
    doc = json.loads(pktlens(lab.b, "-j", "stats", "vb").stdout)
    return doc["interfaces"][0]["hooks"][0]["packets"]


def capture_cmd(lab, tool, path, opts=(), expr=()):
    """The command line of `tool` (pktlens or tcpdump) capturing vb in namespace b to path,
    4 MiB buffer, full snaplen, and the stderr words that say it is ready."""
    if tool == "pktlens":
        return [PKTLENS, "-n", lab.b, "sample", "vb", "-w", path, "-B", "4096", *opts,
                *expr], b"capturing"
    return ["ip", "netns", "exec", lab.b, "tcpdump", "-i", "vb", "-w", path, "-B", "4096",
            "-s", "262144", "-n", *opts, *expr], b"listening on"


def flood_capture(lab, tool, cmd, ready, cfg, seconds, count):
    """Run the capture cmd over a trafgen flood of cfg for seconds; count() is read before and
    after. Returns dict(before, after, written, lost, cpu_s, softirq_s): the capturing
    process' CPU from wait4 and the softirq time of all CPUs over the flood."""
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    err = wait_stderr(p, ready)
    before, s0 = count(), softirq_jiffies()
    subprocess.run(["timeout", "-s", "KILL", str(seconds), "ip", "netns", "exec", lab.a, "trafgen",
                    "-o", "va", "-i", cfg, "-q", "--cpus", "1"], capture_output=True)
    time.sleep(0.2)
    after = count()
    p.send_signal(signal.SIGTERM)
    _, status, ru = os.wait4(p.pid, 0)
    soft = softirq_jiffies() - s0
    err += p.stderr.read()
    p.returncode = os.waitstatus_to_exitcode(status)
    text = err.decode(errors="replace")
    if tool == "pktlens":
        m = re.search(r"(\d+) matched, (\d+) sampled, (\d+) written, (\d+) lost", text)
        written, lost = int(m[3]), int(m[4])
    else:
        written = int(re.search(r"(\d+) packets? captured", text)[1])
        m = re.search(r"(\d+) packets? dropped by kernel", text)
        lost = int(m[1]) if m else None
    return dict(before=before, after=after, written=written, lost=lost,
                cpu_s=ru.ru_utime + ru.ru_stime, softirq_s=soft / os.sysconf("SC_CLK_TCK"))


def per_million(r, offered, wanted):
    """Add the share captured of wanted and the CPU per million frames offered to r."""
    r.update(offered=offered, captured=r["written"] / wanted if wanted else 0.0,
             cpu_ms_per_m=1000.0 * r["cpu_s"] / (offered / 1e6),
             softirq_ms_per_m=1000.0 * r["softirq_s"] / (offered / 1e6))
    return r


def medians(out, seconds):
    """Per run name: the medians over its rounds, and the rounds."""
    summary = {}
    for name, runs in out.items():
        med = lambda k: statistics.median(r[k] for r in runs)  # noqa: E731
        summary[name] = dict(captured=med("captured"), offered_pps=med("offered") / seconds,
                             cpu_ms_per_m=med("cpu_ms_per_m"),
                             softirq_ms_per_m=med("softirq_ms_per_m"), runs=runs)
    return summary


def one_run(lab, tool, cfg, seconds, path):
    cmd, ready = capture_cmd(lab, tool, path)
    r = flood_capture(lab, tool, cmd, ready, cfg, seconds, lambda: xdp_packets(lab))
    os.unlink(path)
    offered = r["after"] - r["before"]
    return per_million(r, offered, offered)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--json")
    a = ap.parse_args()
    if os.geteuid():
        print("sample_bench: needs root", file=sys.stderr)
        return 1
    if not shutil.which("trafgen") or not shutil.which("tcpdump"):
        print("== sample vs tcpdump: skipped, needs trafgen (netsniff-ng) and tcpdump")
        return 0
    lab = Lab()
    tmp = tempfile.mkdtemp(prefix="plbench-", dir="/dev/shm")
    out = {"pktlens": [], "tcpdump": []}
    try:
        cfg = os.path.join(lab.tmp, "flood.cfg")
        fr = frame_bytes(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"), size=a.size)
        with open(cfg, "w") as f:
            f.write("{ " + ", ".join(f"0x{b:02x}" for b in fr) + " }\n")
        pktlens(lab.b, "attach", "vb", "--xdp", "native", "--tc", "none")
        print(f"== capture to a file under a trafgen flood, {a.size}-byte frames, "
              f"{a.seconds} s x {a.rounds} rounds")
        for _ in range(a.rounds):
            for tool in out:
                r = one_run(lab, tool, cfg, a.seconds, os.path.join(tmp, f"{tool}.pcap"))
                out[tool].append(r)
                print(f"  {tool:8} offered {r['offered']:9d}  written {r['written']:9d} "
                      f"(missed {r['offered'] - r['written']:6d})  process {r['cpu_s']:5.2f} s  "
                      f"softirq {r['softirq_s']:5.2f} s", flush=True)
    finally:
        lab.close()
        shutil.rmtree(tmp, ignore_errors=True)
    summary = medians(out, a.seconds)
    for tool, s in summary.items():
        print(f"  {tool:8} captured {100 * s['captured']:7.3f}% of {s['offered_pps'] / 1e3:.0f} kpps;"
              f" per million offered: process {s['cpu_ms_per_m']:6.1f} ms, softirq "
              f"{s['softirq_ms_per_m']:6.1f} ms")
    p, t = summary["pktlens"], summary["tcpdump"]
    tot = lambda s: s["cpu_ms_per_m"] + s["softirq_ms_per_m"]  # noqa: E731
    print(f"  pktlens/tcpdump: captured share {p['captured'] / t['captured']:.4f}, process CPU "
          f"{p['cpu_ms_per_m'] / t['cpu_ms_per_m']:.2f}, softirq "
          f"{p['softirq_ms_per_m'] / t['softirq_ms_per_m']:.2f}, both {tot(p) / tot(t):.2f}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(summary, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
