"""The host side of the real node: its pod bridge, its NAT rule, and what the kubelet leaves on the host.

tools/cluster/realnode.py creates and removes these; here are the commands (`ip`,
`iptables`) and the look-ups (network namespaces, kubepods cgroups, mounts) it
uses, apart from the node's lifecycle.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

BRIDGE, BRIDGE_IP, POD_SUBNET = "autolabel0", "10.123.0.1", "10.123.0.0/16"
NAT_CHAIN = "AUTOLABEL-SERVICES"
NETNS_DIR = Path("/run/netns")
CGROUP_ROOT = Path("/sys/fs/cgroup")


class HostNetworkError(RuntimeError):
    """The pod bridge cannot be set up on this host; the message says why and what to do."""


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def add_bridge() -> None:
    """The pod bridge with the gateway address (one left by a crashed run is replaced)."""
    ip("link", "del", BRIDGE, check=False)
    refuse_a_taken_subnet()
    ip("link", "add", "name", BRIDGE, "type", "bridge")
    ip("addr", "add", f"{BRIDGE_IP}/16", "dev", BRIDGE)
    ip("link", "set", BRIDGE, "up")


def remove_bridge() -> None:
    ip("link", "del", BRIDGE, check=False)


def refuse_a_taken_subnet() -> None:
    """Another interface routing the pod subnet would take the replies to the pods (seen: podman's bridge)."""
    routes = ip("-o", "route", "show", "to", "match", BRIDGE_IP).stdout.splitlines()
    taken = [route for route in routes if not route.startswith("default") and f"dev {BRIDGE} " not in route]
    if taken:
        raise HostNetworkError(
            f"the real node's pod subnet {POD_SUBNET} is already routed elsewhere ({taken[0].strip()}); "
            "remove that interface or route first"
        )


def iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-t", "nat", *args], capture_output=True, text=True, check=check)


def remove_nat_chain() -> None:
    iptables("-D", "PREROUTING", "-i", BRIDGE, "-j", NAT_CHAIN, check=False)
    iptables("-F", NAT_CHAIN, check=False)
    iptables("-X", NAT_CHAIN, check=False)


def netns_entries() -> list[Path]:
    return sorted(NETNS_DIR.glob("cni-*")) if NETNS_DIR.is_dir() else []


def kubepods_cgroups() -> list[Path]:
    return sorted(CGROUP_ROOT.glob("*/kubepods*"))


def remove_cgroup(cgroup: Path) -> None:
    """rmdir bottom-up: a cgroup directory goes only once its children and processes are gone."""
    for directory, _subdirs, _files in os.walk(cgroup, topdown=False):
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def mounts_under(*roots: Path) -> list[str]:
    prefixes = [str(root) for root in roots]
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if any(point == p or point.startswith(p.rstrip("/") + "/") for p in prefixes):
            mounts.append(point)
    return mounts
