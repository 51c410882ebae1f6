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
