#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""policy_ab: two pktlens builds side by side, interleaved call by call, with the
minimal LPM dropper (bench/dropper.bpf.c) and the bare XDP_PASS floor.

For a busy, shared host: each build gets its own veth lab and attachment, and
every round times (BPF_PROG_TEST_RUN, repeat R) the floor, the dropper, build A
and build B back to back, the order rotating. Reported per case and program:
the minimum and the median ns over the rounds, and the ratios of the minima
(other load only ever adds time, so the minimum is the least disturbed
figure) and the medians of the per-round ratios.

    bench/policy_ab.py A_PKTLENS B_PKTLENS [--rounds 21] [--repeat 300000] [--cases SUBSTRING,...]

Cases: drops by --src, --dst and an IPv6 prefix on a frame the rule matches
(against the dropper holding the same prefix); one list rule that matches
(--proto udp --dport 9 --drop); 1, 16 and 64 expression rules, 1 and 1,024
port rules on a frame none matches (against the floor). Needs root, bpftool.
"""
import argparse
import os
import statistics
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import policy_bench as pb  # noqa: E402

# (name, rules, src, dst, dropper field and prefix or None)
CASES = [
    ("drop --src IPv4 /24", ["--src 198.18.0.0/24 --drop"], "198.18.0.1", "198.18.1.2", ("src", "198.18.0.0/24")),
    ("drop --dst IPv4 /24", ["--dst 198.18.1.0/24 --drop"], "198.18.0.1", "198.18.1.2", ("dst", "198.18.1.0/24")),
    ("drop --src IPv6 /48", ["--src 2001:db8:1::/48 --drop"], "2001:db8:1::1", "2001:db8:2::2",
     ("src", "2001:db8:1::/48")),
    ("1 list rule, matches", ["--proto udp --dport 9 --drop"], "198.18.0.1", "198.18.1.2", None),
    ("1 prefix rule", ["--src 198.19.0.0/16 --drop"], "198.18.0.1", "198.18.1.2", None),
    ("1024 port rules", [f"--proto udp --dport {2000 + i} --drop" for i in range(1024)],
     "198.18.0.1", "198.18.1.2", None),
    ("1 expression rule", ["--drop 'udp dst port 2000'"], "198.18.0.1", "198.18.1.2", None),
    ("16 expression rules", [f"--drop 'udp dst port {2000 + i}'" for i in range(16)],
     "198.18.0.1", "198.18.1.2", None),
    ("64 expression rules", [f"--drop 'udp dst port {2000 + i}'" for i in range(64)],
     "198.18.0.1", "198.18.1.2", None),
]


def attach(lab, binary):
    pb.sh(binary, "-n", lab.b, "attach", "vb", "--xdp", "native", "--tc", "none")
    doc = pb.json.loads(pb.sh(binary, "-n", lab.b, "-j", "list").stdout)
    att = next(a for a in doc["attachments"] if a["ifname"] == "vb" and a["this_netns"])
    return next(h["prog_id"] for h in att["hooks"] if h["hook"] == "xdp")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("a")
    ap.add_argument("b")
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--repeat", type=int, default=300000)
    ap.add_argument("--cases")
    args = ap.parse_args()
    with open("/proc/sys/kernel/bpf_stats_enabled") as f:
        if f.read().strip() != "0":
            print("policy_ab: warning: kernel.bpf_stats_enabled is on: every program runs slower",
                  file=sys.stderr)
    cases = [c for c in CASES if not args.cases or any(x in c[0] for x in args.cases.split(","))]
    labs = [pb.Lab("x"), pb.Lab("y")]
    floor_pin = f"/sys/fs/bpf/plab-pass-{os.getpid()}"
    pin = None
    try:
        ids = [attach(lab, binary) for lab, binary in zip(labs, (args.a, args.b))]
        pb.sh("bpftool", "prog", "load", pb.PASS_OBJ, floor_pin, "type", "xdp")
        floor_id = pb.json.loads(pb.sh("bpftool", "-j", "prog", "show", "pinned", floor_pin).stdout)["id"]
        drop_ids, pin = pb.dropper_load(labs[0].tmp)
        print(f"A = {args.a}\nB = {args.b}\n{args.rounds} rounds, repeat {args.repeat}; ns: min / median")
        for name, rules, src, dst, drop in cases:
            data = os.path.join(labs[0].tmp, "frame.bin")
            with open(data, "wb") as f:
                f.write(pb.frame_bytes(labs[0].mac(labs[0].a, "va"), labs[0].mac(labs[0].b, "vb"), src=src,
                                       dst=dst, size=64 if ":" not in src else 128))
            for lab, binary in zip(labs, (args.a, args.b)):
                path = os.path.join(lab.tmp, "rules")
                pb.write_rules(path, rules)
                pb.sh(binary, "-n", lab.b, "policy", "load", "vb", path)
            progs = [("floor", floor_id), ("A", ids[0]), ("B", ids[1])]
            if drop:
                pb.dropper_prefix(pin, drop[0], drop[1])
                progs.append(("dropper", drop_ids["bench_drop_" + drop[0]]))
            ref = "dropper" if drop else "floor"
            t = {k: [] for k, _ in progs}
            for i in range(args.rounds):
                order = progs[i % len(progs):] + progs[:i % len(progs)]
                for k, pid in order:
                    t[k].append(pb.prog_run(pid, data, args.repeat))
            if drop:
                pb.dropper_prefix(pin, drop[0], drop[1], add=False)
            mn = {k: min(v) for k, v in t.items()}
            md = {k: statistics.median(v) for k, v in t.items()}

            def rmed(x, y):
                return statistics.median(a / b for a, b in zip(t[x], t[y]) if b)
            print(f"  {name:22} " + "  ".join(f"{k} {mn[k]:.0f}/{md[k]:.0f}" for k, _ in progs) +
                  f"  | A/{ref} {mn['A'] / mn[ref]:.2f} (med {rmed('A', ref):.2f})"
                  f"  B/{ref} {mn['B'] / mn[ref]:.2f} (med {rmed('B', ref):.2f})"
                  f"  B/A {mn['B'] / mn['A']:.2f} (med {rmed('B', 'A'):.2f})", flush=True)
    finally:
        if pin:
            pb.sh("rm", "-rf", pin, pin + "-maps", check=False)
        pb.sh("rm", "-f", floor_pin, check=False)
        for lab, binary in zip(labs, (args.a, args.b)):
            pb.sh(binary, "-n", lab.b, "detach", "--all", check=False)
            lab.close()


if __name__ == "__main__":
    main()
