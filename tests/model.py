# SPDX-License-Identifier: GPL-2.0
"""What pktlens should count for a list of frames, written from the spec.

Each case is a scapy frame plus what the parser must conclude about it; the
aggregate (totals, RMON and log2 buckets, protocol mix, flows) is computed
here in Python, independently of the C code.
"""
from collections import Counter
from dataclasses import dataclass, field

RMON = ["64", "65-127", "128-255", "256-511", "512-1023", "1024-1518", "1519-9216", ">9216"]
RMON_MAX = [64, 127, 255, 511, 1023, 1518, 9216]


def rmon_bucket(n):
    for name, hi in zip(RMON, RMON_MAX):
        if n <= hi:
            return name
    return RMON[-1]


def log2_bucket(n):
    return min(max(n, 1).bit_length() - 1, 16)


@dataclass
class Case:
    frame: object
    l3: str                      # ipv4 ipv6 arp other
    l4: str                      # tcp udp icmp icmpv6 sctp other none
    flow: tuple                  # (l3, proto, src, dst, sport, dport, vlan)
    vlans: int = 0
    frag: bool = False
    opts: bool = False
    err: str = ""                # "", "malformed", "truncated", "bad-l4" (a parse error whose
                                 # addresses and ports still count and match)
    flags: str = ""              # TCP flags tcpdump-style, for the flow
    extra: dict = field(default_factory=dict)

    @property
    def wire(self):
        return bytes(self.frame)


def expected_stats(cases):
    lens = [len(c.wire) for c in cases]
    exp = {
        "packets": len(cases),
        "bytes": sum(lens),
        "size_rmon": {k: 0 for k in RMON},
        "size_log2": [0] * 17,
        "l3": Counter(),
        "l4": Counter(),
        "vlan": sum(1 for c in cases if c.vlans >= 1),
        "vlan_double": sum(1 for c in cases if c.vlans >= 2),
        "ip_fragments": sum(1 for c in cases if c.frag),
        "ip_options": sum(1 for c in cases if c.opts),
        "parse_errors": sum(1 for c in cases if c.err in ("malformed", "bad-l4")),
        "truncated": sum(1 for c in cases if c.err == "truncated"),
    }
    for c, n in zip(cases, lens):
        exp["size_rmon"][rmon_bucket(n)] += 1
        exp["size_log2"][log2_bucket(n)] += 1
        exp["l3"][c.l3] += 1
        exp["l4"][c.l4] += 1
    return exp


def expected_flows(cases):
    flows = {}
    for c in cases:
        pk, by, fl = flows.get(c.flow, (0, 0, ""))
        flags = "".join(ch for ch in "FSRP.UEW" if ch in fl or ch in c.flags)
        flows[c.flow] = (pk + 1, by + len(c.wire), flags)
    return flows


def flow_tuple(f):
    """Normalise a flow from `pktlens flows -j` to the tuple used in Case.flow."""
    return (
        f["l3"],
        f.get("proto"),
        f.get("src"),
        f.get("dst"),
        f.get("sport", f.get("icmp_type")),
        f.get("dport", f.get("icmp_code")),
        f["vlan"],
    )


def check_stats(slot, cases, dropped=()):
    """Assert a stats slot (JSON) equals the model, the cases in `dropped` with verdict drop and
    the others pass; returns the expectation."""
    exp = expected_stats(cases)
    assert slot["packets"] == exp["packets"]
    assert slot["bytes"] == exp["bytes"]
    kept = [c for c in cases if not any(c is d for d in dropped)]
    for verdict, part in (("pass", kept), ("drop", dropped)):
        assert slot["verdicts"][verdict] == {"packets": len(part), "bytes": sum(len(c.wire) for c in part)}
    assert slot["size_rmon"] == exp["size_rmon"]
    assert slot["size_log2"] == exp["size_log2"]
    for k, v in slot["l3"].items():
        assert v == exp["l3"][k], f"l3 {k}"
    for k, v in slot["l4"].items():
        assert v == exp["l4"][k], f"l4 {k}"
    for k in ("vlan", "vlan_double", "ip_fragments", "ip_options", "parse_errors", "truncated"):
        assert slot[k] == exp[k], k
    assert slot["flow_lost"] == 0
    return exp


def check_flows(flows, cases):
    exp = expected_flows(cases)
    got = {}
    for f in flows:
        t = flow_tuple(f)
        assert t not in got, f"flow listed twice: {t}"
        got[t] = (f["packets"], f["bytes"], f.get("tcp_flags", ""))
    assert got == exp, (sorted(set(got.items()) ^ set(exp.items()), key=str))
