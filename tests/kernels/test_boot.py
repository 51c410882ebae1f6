# SPDX-License-Identifier: GPL-2.0
"""The VM harness itself (scripts/vmtest.sh, `make test-kernels`): the guest runs the kernel it
was asked for, with what the tests need (bpffs, module loading, netns/veth traffic, the
pktlens of this worktree, bpftool). PKTLENS_KERNEL names the kernel: a label of
scripts/vm-fetch.sh (6.1, 6.12, 5.10) in a VM, `host` on this machine.

Oracles: uname, /proc/self/mountinfo, /sys/module, ping's and the kernel's link counters,
bpftool's own probes.
"""
import json
import os
import platform
import re
import subprocess
from pathlib import Path

import pytest

from lab import PKTLENS, ROOT, Lab, sh

LABEL = os.environ.get("PKTLENS_KERNEL", "host")
IN_VM = LABEL != "host"
in_vm = pytest.mark.skipif(not IN_VM, reason="checks the VM, not this machine")
pytestmark = pytest.mark.core  # the harness itself: on every kernel


def mounts():
    """{mount point: fs type} of this mount namespace."""
    out = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        sep = fields.index("-")
        out[fields[4]] = fields[sep + 1]
    return out


@in_vm
def test_runs_the_kernel_of_its_label():
    cache = Path(os.environ.get("PKTLENS_KERNEL_CACHE", ROOT / ".output" / "kernels"))
    release = platform.release()
    assert release == (cache / LABEL / "release").read_text().strip()
    assert release.startswith(LABEL + "."), f"{release} is not Linux {LABEL}"
    assert (Path("/lib/modules") / release / "modules.dep").is_file()


@in_vm
def test_bpffs_and_the_other_pseudo_filesystems_are_mounted():
    m = mounts()
    expect = {"/sys/fs/bpf": "bpf", "/sys/kernel/tracing": "tracefs",
              "/sys/kernel/debug": "debugfs", "/sys/fs/cgroup": "cgroup2",
              "/proc": "proc", "/sys": "sysfs", "/dev": "devtmpfs",
              "/run": "tmpfs", "/tmp": "tmpfs"}
    assert {k: m.get(k) for k in expect} == expect


@in_vm
def test_modprobe_loads_the_booted_kernels_modules():
    names = ["veth", "sch_ingress", "cls_bpf", "nf_tables"]
    sh("modprobe", "-a", *names)
    for n in names:
        assert Path("/sys/module", n).is_dir(), n
    # the module came from this kernel's package, not the host's
    r = sh("modinfo", "-F", "vermagic", "veth").stdout
    assert r.split()[0] == platform.release()


def test_pktlens_list_parses():
    r = subprocess.run([PKTLENS, "list", "-j"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert isinstance(doc["attachments"], list)


def test_ping_crosses_a_veth_pair_between_namespaces():
    lab = Lab(mtu=1500, addrs=True)
    try:
        before = lab.link_stats(lab.b, "vb")["rx"]["packets"]
        r = sh("ip", "netns", "exec", lab.a, "ping", "-n", "-q", "-c", "3", "-i", "0.2",
               "-W", "5", "198.18.0.2", check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        assert re.search(r"3 packets transmitted, 3 received", r.stdout), r.stdout
        # 3 echo requests, and ARP, arrived at vb by the kernel's own count
        assert lab.link_stats(lab.b, "vb")["rx"]["packets"] - before >= 4
        assert lab.link_stats(lab.a, "va")["rx"]["packets"] >= 3
        # clsact (sch_ingress) and nf_tables, loaded on demand inside the namespace
        sh("ip", "netns", "exec", lab.b, "tc", "qdisc", "add", "dev", "vb", "clsact")
        assert "clsact" in sh("ip", "netns", "exec", lab.b, "tc", "qdisc", "show", "dev", "vb").stdout
        sh("ip", "netns", "exec", lab.b, "nft", "add", "table", "inet", "vmtest")
        assert "table inet vmtest" in sh("ip", "netns", "exec", lab.b, "nft", "list", "tables").stdout
    finally:
        lab.close()


def test_bpftool_feature_probe_runs():
    r = subprocess.run(["bpftool", "-j", "feature", "probe", "kernel"], capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["syscall_config"]["have_bpf_syscall"] is True
    # it read the kernel's config (/boot/config-$(uname -r) in the VM), as libbpf's __kconfig does
    assert doc["system_config"]["CONFIG_BPF_SYSCALL"] == "y"
    progs = doc["program_types"]
    assert progs["have_xdp_prog_type"] and progs["have_sched_cls_prog_type"]
    assert doc["map_types"]["have_percpu_array_map_type"]
