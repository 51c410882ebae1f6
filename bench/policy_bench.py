#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0
"""policy_bench: what policy rules cost, side by side in one run.

1. BPF_PROG_TEST_RUN (bpftool prog run, repeat R) of the attached pktlens XDP
   entry program, which tail-calls the rule set's program, on a 64-byte IPv4
   UDP frame that no rule matches (so every rule kind is fully evaluated),
   against a bare XDP_PASS program (.output/pass.bpf.o) in the same rounds,
   alternating. Cases: no rules, 1 prefix rule, 100,000 prefix rules (LPM
   trie), 64 and 1,024 port rules and 1,024 mixed protocol/port/range/VLAN
   rules (the list, looked up by field; each also as a ratio to 1 prefix
   rule), 1/16/64 expression rules; and on a
   frame a rule matches, a plain list rule that drops it against --limit rules
   (per rule, per source) that let it through or drop it as excess, those also
   on two CPUs at once (a global bucket's lock contended).
   ns/pkt is the kernel's average `duration` (integer ns); ratio = pktlens /
   floor of the same round; medians over rounds, min..max of the ratio.
   Then drops by a --src, --dst and IPv6 prefix on a frame the rule matches
   (and --src with --flows), each against the minimal LPM dropper
   (bench/dropper.bpf.c: Ethernet, IPv4/IPv6, one trie lookup, one per-CPU
   counter, XDP_DROP) holding the same prefix, and the floor, in the same
   rounds, the order flipped every round.
2. Live, in a veth lab: trafgen floods UDP from 198.18.0.0/24; the receiver
   drops it by source prefix with a pktlens rule on native XDP, on tc
   ingress (tcx), with the minimal dropper above attached as native XDP or
   on tc ingress (clsact: bpftool 7.1 and tc cannot attach by tcx), or with
   an nftables netdev ingress rule, alternating. Reported per method: packets
   per second the receiver got and dropped, and softirq CPU time (all CPUs,
   /proc/stat) per million dropped packets: receive processing on veth runs
   in NET_RX softirq. Then, in passes of their own with the kernel's BPF
   statistics on, the BPF methods' own run time per dropped packet (nftables
   has no such figure).
   On a veth pair native XDP first copies each of trafgen's skbs into an XDP
   buffer (a cost every XDP program pays there and no NIC driver has), so the
   flood runs a second time in a lab where frames reach vb as XDP frames, as
   from a NIC driver's ring: va -> vm1, whose XDP program (bench/forward.bpf.c)
   redirects each frame into vm2 -> vb. The same methods, the same figures;
   the forwarder's softirq time is in every method's figure, its run time in
   none.

    bench/policy_bench.py [--rounds N] [--repeat R] [--seconds S] [--json FILE]
                          [--cases SUBSTRING,...] [--no-live | --live-only]
                          [--lab veth|nic|both]

Needs root, bpftool, and for part 2 nft and trafgen (skipped, and said, when
missing). PKTLENS_BIN=path times another pktlens build (before/after).
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PKTLENS = os.environ.get("PKTLENS_BIN", os.path.join(ROOT, "pktlens"))  # another build: before/after
PASS_OBJ = os.path.join(ROOT, ".output", "pass.bpf.o")
DROPPER_OBJ = os.path.join(ROOT, ".output", "dropper.bpf.o")
FORWARD_OBJ = os.path.join(ROOT, ".output", "forward.bpf.o")


def sh(*args, check=True, **kw):
    return subprocess.run([str(a) for a in args], check=check, capture_output=True, text=True, **kw)


def pktlens(ns, *args):
    return sh(PKTLENS, "-n", ns, *args)


def frame_bytes(src_mac, dst_mac, src="198.18.0.1", dst="198.18.0.2", size=64):
    """A minimal Ethernet/IPv4/UDP frame, padded to size (no scapy: fast start)."""
    import struct
    import ipaddress

    if ":" in src:
        payload = b"\0" * (size - 14 - 40 - 8)
        udp = struct.pack("!HHHH", 1024, 9, 8 + len(payload), 0) + payload
        ip6 = struct.pack("!IHBB16s16s", 6 << 28, len(udp), 17, 64, ipaddress.IPv6Address(src).packed,
                          ipaddress.IPv6Address(dst).packed)
        mac6 = lambda m: bytes(int(x, 16) for x in m.split(":"))  # noqa: E731
        return mac6(dst_mac) + mac6(src_mac) + b"\x86\xdd" + ip6 + udp

    def csum(b):
        s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
        s = (s >> 16) + (s & 0xFFFF)
        return ~(s + (s >> 16)) & 0xFFFF

    payload = b"\0" * (size - 14 - 20 - 8)
    udp = struct.pack("!HHHH", 1024, 9, 8 + len(payload), 0) + payload
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0,
                     bytes(int(x) for x in src.split(".")), bytes(int(x) for x in dst.split(".")))
    ip = ip[:10] + struct.pack("!H", csum(ip)) + ip[12:]
    mac = lambda m: bytes(int(x, 16) for x in m.split(":"))  # noqa: E731
    return mac(dst_mac) + mac(src_mac) + b"\x08\x00" + ip + udp


class Lab:
    def __init__(self, tag="", nic=False):
        """tag: tells apart two labs of one process (bench/policy_ab.py). nic: frames reach vb as
        XDP frames, as from a NIC driver's ring: va -> vm1 (bench/forward.bpf.c redirects each
        frame into vm2, in a namespace between) -> vb; else va and vb are one veth pair."""
        self.a, self.b = f"plbench-a{os.getpid()}{tag}", f"plbench-b{os.getpid()}{tag}"
        self.m = f"plbench-m{os.getpid()}{tag}" if nic else None
        self.fwd = None     # the forwarder's pin dir, once loaded
        self.skip_ids = set()   # programs that are the lab's, not a method's (prog_time)
        self.tmp = tempfile.mkdtemp(prefix="plbench-")
        try:
            self.setup(nic)
        except BaseException:
            self.close()    # what was made so far
            raise

    def setup(self, nic):
        for ns in (self.a, self.b) + ((self.m,) if nic else ()):
            sh("ip", "netns", "add", ns)
            sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1")
        if nic:
            sh("ip", "-n", self.a, "link", "add", "va", "type", "veth", "peer", "name", "vm1", "netns", self.m)
            sh("ip", "-n", self.m, "link", "add", "vm2", "type", "veth", "peer", "name", "vb", "netns", self.b)
        else:
            sh("ip", "-n", self.a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", self.b)
        sh("ip", "-n", self.a, "addr", "add", "198.18.0.254/24", "dev", "va")
        sh("ip", "-n", self.b, "addr", "add", "198.18.1.2/24", "dev", "vb")
        for ns, dev in ((self.a, "va"), (self.b, "vb")) + (((self.m, "vm1"), (self.m, "vm2")) if nic else ()):
            sh("ip", "-n", ns, "link", "set", dev, "up")
        if nic:
            self.forward()

    def forward(self):
        """bench/forward.bpf.o on vm1, handing every frame to vm2. vb gets GRO, so its veth
        runs NAPI (and takes XDP frames) with no XDP program of its own."""
        sh("ip", "netns", "exec", self.b, "ethtool", "-K", "vb", "gro", "on")
        self.fwd = f"/sys/fs/bpf/plbench-fwd-{os.getpid()}-{self.m}"
        sh("bpftool", "prog", "loadall", FORWARD_OBJ, self.fwd, "pinmaps", self.fwd + "-maps")
        idx = json.loads(sh("ip", "-n", self.m, "-j", "link", "show", "vm2").stdout)[0]["ifindex"]
        # in the namespace: a DEVMAP takes the ifindex in the updating process's namespace
        # (nsenter, not ip netns exec: that remounts /sys, and the pins are on bpffs)
        enter = ("nsenter", f"--net=/run/netns/{self.m}")
        sh(*enter, "bpftool", "map", "update", "pinned", self.fwd + "-maps/bench_fwd_tx", "key", "0", "0", "0",
           "0", "value", *[str(b) for b in idx.to_bytes(4, "little")])
        sh(*enter, "ip", "link", "set", "dev", "vm1", "xdpdrv", "pinned", self.fwd + "/bench_forward")
        self.skip_ids.add(json.loads(sh("bpftool", "-j", "prog", "show", "pinned",
                                        self.fwd + "/bench_forward").stdout)["id"])

    def mac(self, ns, dev):
        return json.loads(sh("ip", "-n", ns, "-j", "link", "show", dev).stdout)[0]["address"]

    def close(self):
        for ns in (self.a, self.b) + ((self.m,) if self.m else ()):
            sh(PKTLENS, "-n", ns, "detach", "--all", check=False)
            sh("ip", "netns", "del", ns, check=False)
        if self.fwd:
            sh("rm", "-rf", self.fwd, self.fwd + "-maps", check=False)
        shutil.rmtree(self.tmp, ignore_errors=True)


def prog_run(prog_id, data, repeat):
    out = sh("bpftool", "-j", "prog", "run", "id", prog_id, "data_in", data, "repeat", repeat).stdout
    return json.loads(out)["duration"]


def write_rules(path, lines):
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


CASES = [
    ("no rules", []),
    ("1 prefix rule", ["--src 198.19.0.0/16 --drop"]),
    ("100,000 prefix rules", [f"--src 198.{19 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}/32 --drop"
                              for i in range(100000)]),
    ("64 port rules (list)", [f"--proto udp --dport {2000 + i} --drop" for i in range(64)]),
    ("1024 port rules (list)", [f"--proto udp --dport {2000 + i} --drop" for i in range(1024)]),
    ("1024 port/proto/vlan rules", [(f"--proto {('udp', 'tcp', 'sctp')[i % 3]} --dport {2000 + i}" if i % 4
                                     else f"--vlan {1 + i % 4000} --sport {1000 + i}-{1100 + i}") + " --drop"
                                    for i in range(1024)]),
    ("1 expression rule", ["--drop 'udp dst port 2000'"]),
    ("16 expression rules", [f"--drop 'udp dst port {2000 + i}'" for i in range(16)]),
    ("64 expression rules", [f"--drop 'udp dst port {2000 + i}'" for i in range(64)]),
    # policing: the frame matches (udp dport 9); a plain list rule that drops it, against limits
    # that let it through (1 Gpps: goes on, no rule decides) or drop it as excess (1 pps)
    ("drop rule (list, matches)", ["--proto udp --dport 9 --drop"]),
    ("limit --per rule, within", ["--proto udp --dport 9 --limit 1000000000pps --burst 1000000000"]),
    ("limit --per rule, excess", ["--proto udp --dport 9 --limit 1pps --burst 1"]),
    ("limit --per src, within", ["--proto udp --dport 9 --limit 1000000000pps --burst 1000000000 --per src"]),
    ("limit --per src, excess", ["--proto udp --dport 9 --limit 1pps --burst 1 --per src"]),
]

# Drops by prefix on a frame the rule matches, timed against the minimal dropper
# (bench/dropper.bpf.c) with the same prefix in its trie: (name, rule, field, src, dst, prefix)
DROP_CASES = [
    ("drop --src IPv4 /24", "--src 198.18.0.0/24 --drop", "src", "198.18.0.1", "198.18.1.2", "198.18.0.0/24"),
    ("drop --dst IPv4 /24", "--dst 198.18.1.0/24 --drop", "dst", "198.18.0.1", "198.18.1.2", "198.18.1.0/24"),
    ("drop --src IPv6 /48", "--src 2001:db8:1::/48 --drop", "src", "2001:db8:1::1", "2001:db8:2::2",
     "2001:db8:1::/48"),
    ("drop --src IPv4 --flows", "--src 198.18.0.0/24 --drop --flows", "src", "198.18.0.1", "198.18.1.2",
     "198.18.0.0/24"),
]

# Cases timed again on two CPUs at once (one bpftool pinned to each): a global bucket's lock
# is contended, a plain rule's counters are per CPU.
PARALLEL = ("drop rule (list, matches)", "limit --per rule, within", "limit --per src, within")


def prog_run_parallel(prog_id, data, repeat, cpus=(0, 1)):
    """The mean of the kernel's durations of one run per CPU, all at once."""
    procs = [subprocess.Popen(["taskset", "-c", str(c), "bpftool", "-j", "prog", "run", "id", str(prog_id),
                               "data_in", data, "repeat", str(repeat)], stdout=subprocess.PIPE, text=True)
             for c in cpus]
    return statistics.mean(json.loads(p.communicate()[0])["duration"] for p in procs)


def dropper_load(tmp):
    """bench/dropper.bpf.o pinned under bpffs: {prog name: id}, the pin dir"""
    pin = f"/sys/fs/bpf/plbench-drop-{os.getpid()}"
    sh("bpftool", "prog", "loadall", DROPPER_OBJ, pin, "pinmaps", pin + "-maps")
    ids = {}
    for name in ("bench_drop_src", "bench_drop_dst"):
        ids[name] = json.loads(sh("bpftool", "-j", "prog", "show", "pinned", f"{pin}/{name}").stdout)["id"]
    return ids, pin


def dropper_prefix(pin, field, prefix, add=True):
    import ipaddress

    net = ipaddress.ip_network(prefix)
    key = net.prefixlen.to_bytes(4, "little") + net.network_address.packed
    m = f"{pin}-maps/drop_{field}{4 if net.version == 4 else 6}"
    hexs = [f"{b:02x}" for b in key]
    if add:
        sh("bpftool", "map", "update", "pinned", m, "key", "hex", *hexs, "value", "hex", "01", "00", "00", "00")
    else:
        sh("bpftool", "map", "delete", "pinned", m, "key", "hex", *hexs)


def drop_part(lab, rounds, repeat, prog_id, floor_id):
    """pktlens dropping by prefix against the minimal dropper, same frame, same rounds"""
    out = []
    ids, pin = dropper_load(lab.tmp)
    try:
        for name, rule, field, src, dst, prefix in DROP_CASES:
            if CASE_FILTER and not any(x in name for x in CASE_FILTER):
                continue
            data = os.path.join(lab.tmp, "drop.bin")
            with open(data, "wb") as f:
                f.write(frame_bytes(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"), src=src, dst=dst,
                                    size=64 if ":" not in src else 128))
            path = os.path.join(lab.tmp, "rules")
            write_rules(path, [rule])
            if sh(PKTLENS, "-n", lab.b, "policy", "load", "vb", path, check=False).returncode:
                print(f"  {name:26} skipped: this pktlens refuses the rule")
                continue
            dropper_prefix(pin, field, prefix)
            ref_id = ids["bench_drop_" + field]
            ours, ref, floor, r_ref, r_floor = [], [], [], [], []
            for i in range(rounds):
                order = [(floor_id, floor), (ref_id, ref), (prog_id, ours)]
                for pid, acc in (order if i % 2 == 0 else order[::-1]):
                    acc.append(prog_run(pid, data, repeat))
                r_ref.append(ours[-1] / ref[-1] if ref[-1] else float("nan"))
                r_floor.append(ours[-1] / floor[-1] if floor[-1] else float("nan"))
            dropper_prefix(pin, field, prefix, add=False)
            r = dict(case=name, rule=rule, ns=statistics.median(ours), dropper_ns=statistics.median(ref),
                     floor_ns=statistics.median(floor), ratio_dropper=statistics.median(r_ref),
                     ratio_dropper_min=min(r_ref), ratio_dropper_max=max(r_ref),
                     ratio=statistics.median(r_floor))
            out.append(r)
            print(f"  {name:26} {r['ns']:6.0f} ns  dropper {r['dropper_ns']:4.0f} ns  floor {r['floor_ns']:4.0f} ns"
                  f"  /dropper {r['ratio_dropper']:5.2f} ({r_ref and min(r_ref):.2f}..{max(r_ref):.2f})"
                  f"  /floor {r['ratio']:5.2f}", flush=True)
    finally:
        sh("rm", "-rf", pin, pin + "-maps", check=False)
    return out


CASE_FILTER = []


def test_run_part(lab, rounds, repeat):
    pktlens(lab.b, "attach", "vb", "--xdp", "native", "--tc", "none")
    doc = json.loads(pktlens(lab.b, "-j", "list").stdout)
    att = next(a for a in doc["attachments"] if a["ifname"] == "vb" and a["this_netns"])
    prog_id = next(h["prog_id"] for h in att["hooks"] if h["hook"] == "xdp")
    pin = f"/sys/fs/bpf/plbench-pass-{os.getpid()}"
    sh("bpftool", "prog", "load", PASS_OBJ, pin, "type", "xdp")
    try:
        floor_id = json.loads(sh("bpftool", "-j", "prog", "show", "pinned", pin).stdout)["id"]
        data = os.path.join(lab.tmp, "frame.bin")
        with open(data, "wb") as f:
            f.write(frame_bytes(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb")))
        results = []
        for name, lines in CASES:
            path = os.path.join(lab.tmp, "rules")
            write_rules(path, lines)
            if lines:
                pktlens(lab.b, "policy", "load", "vb", path)
            else:
                pktlens(lab.b, "policy", "flush", "vb")
            ours, floor, ratio = [], [], []
            for _ in range(rounds):
                f = prog_run(floor_id, data, repeat)
                o = prog_run(prog_id, data, repeat)
                floor.append(f)
                ours.append(o)
                ratio.append(o / f if f else float("nan"))
            r = dict(case=name, rules=len(lines), ns=statistics.median(ours),
                     floor_ns=statistics.median(floor), ratio=statistics.median(ratio),
                     ratio_min=min(ratio), ratio_max=max(ratio))
            par = ""
            if name in PARALLEL and os.cpu_count() >= 2:
                r["ns_2cpus"] = statistics.median(prog_run_parallel(prog_id, data, repeat)
                                                  for _ in range(rounds))
                par = f"  2 CPUs at once {r['ns_2cpus']:5.0f} ns"
            results.append(r)
            print(f"  {name:26} {r['ns']:6.0f} ns  floor {r['floor_ns']:4.0f} ns  ratio {r['ratio']:5.2f}"
                  f"  ({r['ratio_min']:.2f}..{r['ratio_max']:.2f}){par}", flush=True)
        one = next((r for r in results if r["case"] == "1 prefix rule"), None)
        if one:
            for r in results:
                if "port" in r["case"]:
                    r["ratio_1prefix"] = r["ns"] / one["ns"] if one["ns"] else float("nan")
                    print(f"  {r['case']} / 1 prefix rule: {r['ratio_1prefix']:.2f}")
        print("== drop by prefix: pktlens against the minimal LPM dropper (bench/dropper.bpf.c)")
        results += drop_part(lab, rounds, repeat, prog_id, floor_id)
        return results
    finally:
        os.unlink(pin)
        pktlens(lab.b, "detach", "vb")


def softirq_jiffies():
    with open("/proc/stat") as f:
        return int(f.readline().split()[7])


def flood(lab, seconds, cfg):
    """trafgen from a for `seconds`; returns softirq jiffies used meanwhile."""
    s0 = softirq_jiffies()
    subprocess.run(["timeout", "-s", "KILL", str(seconds), "ip", "netns", "exec", lab.a, "trafgen",
                    "-o", "va", "-i", cfg, "-q", "--cpus", "1"], capture_output=True)
    return softirq_jiffies() - s0


def live_tools():
    """Are the live flood's tools there? Says so when not."""
    if shutil.which("trafgen") and shutil.which("nft"):
        return True
    print("  skipped: needs trafgen (netsniff-ng) and nft (nftables)")
    return False


def live_part(lab, rounds, seconds):
    if not live_tools():
        return None
    hz = os.sysconf("SC_CLK_TCK")
    cfg = os.path.join(lab.tmp, "flood.cfg")
    fr = frame_bytes(lab.mac(lab.a, "va"), lab.mac(lab.b, "vb"))
    with open(cfg, "w") as f:
        f.write("{ " + ", ".join(f"0x{b:02x}" for b in fr) + " }\n")
    out = {"pktlens-xdp": [], "pktlens-tc": [], "dropper-xdp": [], "dropper-tc": [], "nftables": []}
    _, pin = dropper_load(lab.tmp)
    try:
        return live_rounds(lab, rounds, seconds, cfg, hz, out, pin)
    finally:
        sh("rm", "-rf", pin, pin + "-maps", check=False)


def dropper_count(pin):
    """packets the dropper counted, all CPUs"""
    doc = json.loads(sh("bpftool", "-j", "map", "dump", "pinned", f"{pin}-maps/drop_cnt").stdout)
    return sum(v["value"]["pkts"] for v in doc[0]["formatted"]["values"])


def method_on(lab, method, pin):
    """Put `method`'s drop of 198.18.0.0/24 in place on vb; returns the dropper's count before."""
    if method.startswith("dropper"):
        dropper_prefix(pin, "src", "198.18.0.0/24")
        base = dropper_count(pin)
        # nsenter, not ip -n: that remounts /sys, and the pin is on bpffs
        if method == "dropper-xdp":
            sh("nsenter", f"--net=/run/netns/{lab.b}", "ip", "link", "set", "dev", "vb", "xdpdrv",
               "pinned", f"{pin}/bench_drop_src")
        else:   # clsact: this bpftool and tc cannot attach by tcx
            sh("tc", "-n", lab.b, "qdisc", "add", "dev", "vb", "clsact")
            sh("nsenter", f"--net=/run/netns/{lab.b}", "tc", "filter", "add", "dev", "vb", "ingress",
               "bpf", "direct-action", "object-pinned", f"{pin}/bench_drop_src_tc")
        return base
    if method.startswith("pktlens"):
        xdp = method == "pktlens-xdp"
        pktlens(lab.b, "attach", "vb", "--xdp", "native" if xdp else "none", "--tc", "none" if xdp else "in")
        pktlens(lab.b, "policy", "add", "vb", "--src", "198.18.0.0/24", "--drop")
        return 0
    sh("ip", "netns", "exec", lab.b, "nft", "-f", "-", input=(
        "table netdev plbench {\n chain in {\n  type filter hook ingress device vb priority 0;\n"
        "  ip saddr 198.18.0.0/24 counter drop\n }\n}\n"))
    return 0


def method_off(lab, method, pin, base):
    """Take `method` away again; returns the packets it dropped."""
    if method.startswith("dropper"):
        dropped = dropper_count(pin) - base
        if method == "dropper-xdp":
            sh("ip", "-n", lab.b, "link", "set", "dev", "vb", "xdpdrv", "off")
        else:
            sh("tc", "-n", lab.b, "qdisc", "del", "dev", "vb", "clsact")
        dropper_prefix(pin, "src", "198.18.0.0/24", add=False)
    elif method.startswith("pktlens"):
        doc = json.loads(pktlens(lab.b, "-j", "stats", "vb").stdout)
        dropped = doc["interfaces"][0]["hooks"][0]["verdicts"]["drop"]["packets"]
        pktlens(lab.b, "detach", "vb")
    else:
        rules = json.loads(sh("ip", "netns", "exec", lab.b, "nft", "-j", "list", "table", "netdev",
                              "plbench").stdout)["nftables"]
        dropped = next(x["rule"]["expr"][1]["counter"]["packets"] for x in rules if "rule" in x)
        sh("ip", "netns", "exec", lab.b, "nft", "delete", "table", "netdev", "plbench")
    return dropped


def live_rounds(lab, rounds, seconds, cfg, hz, out, pin):
    for _ in range(rounds):
        for method in out:
            rx0 = json.loads(sh("ip", "-n", lab.b, "-j", "-s", "link", "show", "vb").stdout)[0]["stats64"]["rx"]
            base = method_on(lab, method, pin)
            t0 = time.monotonic()
            soft = flood(lab, seconds, cfg)
            took = time.monotonic() - t0
            dropped = method_off(lab, method, pin, base)
            rx1 = json.loads(sh("ip", "-n", lab.b, "-j", "-s", "link", "show", "vb").stdout)[0]["stats64"]["rx"]
            got = rx1["packets"] - rx0["packets"]
            out[method].append(dict(seconds=took, dropped=dropped, rx_link=got,
                                    dropped_pps=dropped / took,
                                    softirq_ms_per_mpkt=1000.0 * soft / hz / (dropped / 1e6) if dropped else None))
    summary = {}
    for method, runs in out.items():
        pps = statistics.median(r["dropped_pps"] for r in runs)
        cpu = statistics.median(r["softirq_ms_per_mpkt"] for r in runs if r["softirq_ms_per_mpkt"])
        summary[method] = dict(dropped_pps=pps, softirq_ms_per_mpkt=cpu, runs=runs)
        print(f"  {method:12} dropped {pps / 1e3:6.0f} kpps   softirq {cpu:7.1f} ms per million dropped")
    nft = summary["nftables"]
    for method in ("pktlens-xdp", "pktlens-tc", "dropper-xdp", "dropper-tc"):
        m = summary[method]
        m["ratio_softirq"] = m["softirq_ms_per_mpkt"] / nft["softirq_ms_per_mpkt"]
        m["ratio_pps"] = m["dropped_pps"] / nft["dropped_pps"]
        print(f"  {method}/nftables: softirq per packet {m['ratio_softirq']:.2f}, "
              f"drop rate {m['ratio_pps']:.2f}")
    prog_time(lab, rounds, seconds, cfg, pin, summary)
    return summary


def prog_runs():
    """{prog id: (run_time_ns, run_cnt)} of every program, from the kernel's BPF statistics"""
    return {p["id"]: (p["run_time_ns"], p["run_cnt"])
            for p in json.loads(sh("bpftool", "-j", "prog", "show").stdout) if "run_cnt" in p}


def prog_time(lab, rounds, seconds, cfg, pin, summary):
    """The BPF methods' own run time per dropped packet under the same flood, in passes of their
    own with kernel.bpf_stats_enabled (its two clock reads per run are in the figure, the same
    for every method; the kernel's path around the program is not). A tail-called program's
    time counts in the entry program's."""
    methods = [m for m in summary if m != "nftables"]
    runs = {m: [] for m in methods}
    old = sh("sysctl", "-n", "kernel.bpf_stats_enabled").stdout.strip()
    sh("sysctl", "-qw", "kernel.bpf_stats_enabled=1")
    try:
        for _ in range(rounds):
            for method in methods:
                base = method_on(lab, method, pin)
                r0 = prog_runs()
                flood(lab, seconds, cfg)
                r1 = prog_runs()
                dropped = method_off(lab, method, pin, base)
                ns = sum(t - r0.get(i, (0, 0))[0] for i, (t, c) in r1.items()
                         if c - r0.get(i, (0, 0))[1] > 1000 and i not in lab.skip_ids)
                if dropped:
                    runs[method].append(ns / dropped)
    finally:
        sh("sysctl", "-qw", f"kernel.bpf_stats_enabled={old or 0}")
    for method in methods:
        if runs[method]:
            summary[method]["prog_ns_per_pkt"] = statistics.median(runs[method])
            print(f"  {method:12} program {summary[method]['prog_ns_per_pkt']:6.1f} ns per dropped packet "
                  f"({min(runs[method]):.1f}..{max(runs[method]):.1f}, bpf_stats)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--repeat", type=int, default=1000000)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--json")
    ap.add_argument("--cases", help="only the cases whose name contains one of these (comma-separated)")
    ap.add_argument("--no-live", action="store_true", help="BPF_PROG_TEST_RUN part only")
    ap.add_argument("--live-only", action="store_true", help="the trafgen flood only")
    ap.add_argument("--lab", choices=("veth", "nic", "both"), default="both",
                    help="the flood's path: one veth pair, frames as from a NIC driver, or both in turn")
    a = ap.parse_args()
    if a.cases:
        CASE_FILTER[:] = a.cases.split(",")
        CASES[:] = [c for c in CASES if any(x in c[0] for x in a.cases.split(","))]
    if os.geteuid():
        print("policy_bench: needs root", file=sys.stderr)
        return 1
    # SIGTERM/SIGHUP (kill, timeout) unwind like Ctrl-C: the finally blocks remove the
    # namespaces, the nftables table and the dropper's pins in /sys/fs/bpf
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.default_int_handler)
    lab = Lab()
    try:
        print(f"== policy rules, BPF_PROG_TEST_RUN, repeat {a.repeat}, {a.rounds} rounds (ns/pkt, ratio to XDP_PASS)")
        tr = None if a.live_only else test_run_part(lab, a.rounds, a.repeat)
        live = None
        if not a.no_live and a.lab != "nic":
            print(f"== policy drop by source prefix under trafgen flood, {a.seconds} s x {a.rounds} rounds")
            live = live_part(lab, a.rounds, a.seconds)
    finally:
        lab.close()
    live_nic = None
    if not a.no_live and a.lab != "veth":
        print(f"== the same flood reaching vb as XDP frames, as from a NIC driver (bench/forward.bpf.c), "
              f"{a.seconds} s x {a.rounds} rounds")
        if live_tools():    # before the lab: it needs the forwarder, not these
            lab = Lab(nic=True)
            try:
                live_nic = live_part(lab, a.rounds, a.seconds)
            finally:
                lab.close()
    if a.json:
        with open(a.json, "w") as f:
            json.dump(dict(test_run=tr, live=live, live_nic=live_nic), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
