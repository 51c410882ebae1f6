# SPDX-License-Identifier: GPL-2.0
"""`pktlens drops` on each kernel of the matrix: the probe loads (kfree_skb with its reason from
5.17, without it before), and UDP to a port with no socket counts exactly the kernel's UdpNoPorts,
by reason where the kernel has reasons and by location (__udp4_lib_rcv) everywhere."""
import pytest

from lab import pktlens_json
from test_drops import Drops, by_reason, dlab, snmp, udp  # noqa: F401  (dlab: the fixture)


@pytest.mark.core
def test_no_socket_on_this_kernel(dlab):  # noqa: F811
    reasons = pktlens_json("--version")["features"]["drop-reason"]["available"]
    tr = Drops("--by", "location", ns=dlab.b)
    before = snmp(dlab.b, "Udp", "NoPorts")
    sent = dlab.send(udp(dlab, 9, 5001))
    after = snmp(dlab.b, "Udp", "NoPorts")
    doc = tr.stop()[-1]
    assert after - before == sent == 9
    assert doc["reasons"] == reasons
    loc = {d["location"]: d["packets"] for d in doc["drops"] if "location" in d}
    assert loc.get("__udp4_lib_rcv") == sent, loc
    if reasons:
        tr = Drops(ns=dlab.b)
        dlab.send(udp(dlab, 4, 5001))
        assert by_reason(tr.stop()[-1], "NO_SOCKET") == 4


def test_rule_drops_from_the_probes_attach_to_a_stop_at_once(dlab):  # noqa: F811
    """A pktlens rule's drops are counted from the moment the probes are attached (the base of
    the rules' counters is read before they load), and a stop right then ends with the counts:
    both came after the load, seconds in an emulated VM, so the frames sent meanwhile went into
    the base (no pktlens row) or the SIGINT killed the command (no output)."""
    import json

    from lab import pktlens
    pktlens("attach", "vb", "--xdp", "none", "--tc", "in", ns=dlab.b)
    rule = json.loads(pktlens("-j", "policy", "add", "vb", "--in", "--proto", "udp", "--dport",
                              "4449", "--drop", ns=dlab.b).stdout)["id"]
    tr = Drops(ns=dlab.b)
    sent = dlab.send(udp(dlab, 7, 4449))
    doc = tr.stop()[-1]
    assert sent == 7
    assert by_reason(doc, f"pktlens rule {rule}", kind="pktlens") == sent, doc
    tr = Drops(ns=dlab.b)       # stopped at once: the counts (exit 0, a document), not a kill
    assert "drops" in tr.stop()[-1]
