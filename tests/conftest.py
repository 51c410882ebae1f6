# SPDX-License-Identifier: GPL-2.0
import contextlib
import json
import os
import re
import subprocess
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from lab import GONE_LOG, NS_PREFIX, PIN_ROOT, PKTLENS, Lab, RouterLab, exporter_running  # noqa: E402

# lab.unique(): NS_PREFIX, a lowercase prefix, the test process's pid, x, a sequence number
_LAB_NS = re.compile(r"^" + re.escape(NS_PREFIX) + r"pl[a-z]*?(\d+)x\d+$")


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "scale: a test whose point is size or endurance (100,000 rules, a million "
        "flows, 200 swaps, 200 interfaces); the sanitized CI pass deselects them (-m 'not scale'), "
        "the code they run is the one smaller tests run there")
    config.addinivalue_line(
        "markers", "variant: a test, or a parametrization, whose user-side code another test "
        "runs already: its subject is the kernel side (in-kernel verdicts, rates), another hook "
        "or attach mode of the same commands, or more rounds of the same loop; the sanitized CI "
        "pass deselects them (-m 'not variant'): ASan and UBSan check user-space memory")
    config.addinivalue_line(
        "markers", "core: a kernel-matrix test (tests/kernels) that CI runs on every kernel: "
        "the harness, the features, every program through the verifier, one attach, rule set, "
        "policer, sample, filter, TCP probe and drop probe each; the others run on 6.1 and 5.10 "
        "(.ci/run: 6.12:core, scripts/test-kernels.sh) and here")


def pytest_sessionstart(session):
    """Remove the namespaces of an earlier test run that was killed (its pid is gone)
    before its fixtures could: runs still alive keep theirs."""
    session.pin_dirs_before = pin_dirs()
    session.kept_before = kept_for_loopback()
    session.gone_log_before = os.path.exists(GONE_LOG)
    if not os.path.isdir("/run/netns"):
        return
    for name in os.listdir("/run/netns"):
        m = _LAB_NS.match(name)
        if m and not os.path.exists(f"/proc/{m.group(1)}"):
            subprocess.run(["ip", "netns", "del", name], check=False)


def pin_dirs():
    """Every attachment's pin directory, as NETNS/IFACE under PIN_ROOT."""
    if not os.path.isdir(PIN_ROOT):
        return set()
    return {f"{ns}/{dev}" for ns in os.listdir(PIN_ROOT)
            if os.path.isdir(os.path.join(PIN_ROOT, ns))
            for dev in os.listdir(os.path.join(PIN_ROOT, ns))}


KEPT = "/run/pktlens"


def kept_for_loopback():
    """What IPFIX exporters to loopback collectors (the tests' nfcapd and sockets) kept for the
    next exporter to the same collector."""
    if not os.path.isdir(KEPT):
        return set()
    return {f for f in os.listdir(KEPT) if f.startswith("ipfix-127.0.0.1-")}


def pytest_sessionfinish(session, exitstatus):
    """What the run left behind: removed, and an error where a test or pktlens should not have."""
    forget_kept(session)
    check_gone_log(session)
    check_pins(session)


def forget_kept(session):
    """The state this run's exporters kept for the next exporter to their (random) loopback
    ports: no later exporter comes, the files would pile up in /run."""
    for f in kept_for_loopback() - getattr(session, "kept_before", kept_for_loopback()):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(os.path.join(KEPT, f))


def check_gone_log(session):
    """The log of removed flows pinned with no exporter left to read it: the last exporter to
    end unpins it, and the next detach after a killed one does; it failing to fails the run."""
    if (getattr(session, "gone_log_before", True) or not os.path.exists(GONE_LOG) or
            exporter_running()):
        return
    os.unlink(GONE_LOG)
    sys.stderr.write(f"\nERROR: the run left {GONE_LOG} pinned with no exporter reading it "
                     "(removed now)\n")
    if session.exitstatus == 0:
        session.exitstatus = 1


def check_pins(session):
    """Pins this run left behind for an interface or namespace that is gone fail the run (a
    test's cleanup missed them: pktlens keeps such pins on purpose, for their counters), and
    go. Attachments that are live (here or in another namespace) may be another run's."""
    before = getattr(session, "pin_dirs_before", None)
    if before is None or not os.path.exists(PKTLENS):
        return
    r = subprocess.run([PKTLENS, "-j", "list"], capture_output=True, text=True)
    if r.returncode != 0:
        return
    left = [a for a in json.loads(r.stdout).get("attachments", [])
            if a.get("state") not in ("attached", "other-netns") and
            "/".join(a["pins"].split("/")[-2:]) not in before]
    if NS_PREFIX:   # a host other runs share: the pins may be theirs, left as they are
        if left:
            sys.stderr.write("\nnote: pins of gone interfaces or namespaces (not removed, "
                             "PKTLENS_NS_PREFIX): " + ", ".join(a["pins"] for a in left) + "\n")
        return
    for a in left:
        subprocess.run([PKTLENS, "detach", "--netns", a["netns_id"], a["ifname"]],
                       capture_output=True)
    if left:
        sys.stderr.write("\nERROR: the run left the pins of gone interfaces or namespaces behind "
                         "(removed now): " + ", ".join(a["pins"] for a in left) + "\n")
        if session.exitstatus == 0:
            session.exitstatus = 1


@pytest.fixture
def lab():
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def lab2():
    """A second, independent lab (same interface names, other namespaces)."""
    lab = Lab()
    try:
        yield lab
    finally:
        lab.close()


@pytest.fixture
def router():
    """sender -> router (pktlens) -> receiver, three namespaces (lab.RouterLab)."""
    lab = RouterLab()
    try:
        yield lab
    finally:
        lab.close()
