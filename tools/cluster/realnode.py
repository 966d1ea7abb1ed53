"""One real node: the pinned kubelet on Debian's containerd, runc and CNI bridge.

`RealNode` registers `real-node-0` (label `autolabel.dev/node=real`, so pods can
ask for it) with the harness's control plane, beside the kwok nodes (tainted then,
so only pods that tolerate and select them go there), and runs its pods as real
containers: images, cgroup limits, probes, container users, read-only root
filesystems, logs.

Settings this kind of machine needs (see shared/reference/real-kubelet.md): no
CAP_SYS_RESOURCE, so containerd's CRI plugin runs with `restrict_oom_score_adj`
and the kubelet with `oomScoreAdj: 0`; cgroups are hybrid, so runc (crun refuses)
with the cgroupfs driver. Pods sit on the bridge `autolabel0` (10.123.0.1/16, no
NAT); the API server listens on the bridge address, which its certificate covers,
and one DNAT rule does what kube-proxy would do for the `kubernetes` Service
(10.0.0.1:443), so pods use the in-cluster configuration the kubelet gives them.

containerd gets its own root, state, socket and runc root under the state
directory. The kubelet still uses a few fixed host paths (`/var/lib/kubelet`,
`/var/log/containers`, `/run/netns`, `kubepods` cgroups) and ports 10250/10248,
so one real node per machine: a lock file enforces it, and `stop()` removes
the pods, the processes (by PID), the mounts, cgroups, paths and bridge that
`start()` created.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.cluster.kubeconfig import token_kubeconfig
from tools.cluster.nodehost import BRIDGE as BRIDGE
from tools.cluster.nodehost import BRIDGE_IP as BRIDGE_IP
from tools.cluster.nodehost import (
    NAT_CHAIN,
    NETNS_DIR,
    POD_SUBNET,
    HostNetworkError,
    add_bridge,
    iptables,
    kubepods_cgroups,
    mounts_under,
    netns_entries,
    remove_bridge,
    remove_cgroup,
    remove_nat_chain,
)
from tools.cluster.nodeimages import busybox_image, import_image
from tools.cluster.pki import NODE_NAME, ControlPlanePki
from tools.cluster.processes import ProcessGroup

NODE_LABEL, NODE_LABEL_VALUE = "autolabel.dev/node", "real"
LOCK_PATH = Path("/run/autolabel-operator-realnode.lock")
FIXED_HOST_PATHS = tuple(
    Path(p)
    for p in ("/var/lib/kubelet", "/var/log/containers", "/var/log/pods", "/var/lib/cni", "/etc/kubernetes")
)
# Debian package -> a file it installs; tools/node-packages.sh installs the missing ones.
PACKAGES = {
    "containerd": "/usr/bin/containerd",
    "runc": "/usr/sbin/runc",
    "containernetworking-plugins": "/usr/lib/cni/bridge",
    "buildah": "/usr/bin/buildah",
    "mmdebstrap": "/usr/bin/mmdebstrap",
    "busybox-static": "/bin/busybox",
    "iproute2": "/usr/sbin/ip",
    "iptables": "/usr/sbin/iptables",
}
# The `kubernetes` Service (first address of the API server's service range) and its port.
API_SERVICE_IP, API_SERVICE_PORT = "10.0.0.1", 443


class RealNodeError(RuntimeError):
    """The real node could not be set up; the message says why and what to do."""


def missing_packages() -> list[str]:
    return [package for package, path in PACKAGES.items() if not Path(path).exists()]


def real_node_selector() -> dict[str, str]:
    """A nodeSelector for the real node."""
    return {NODE_LABEL: NODE_LABEL_VALUE}


@dataclass
class RealNode:
    """containerd + kubelet as one node; `prepare()` before the API server starts, `start()` after."""

    state_dir: Path
    bin_dir: Path
    pki: ControlPlanePki
    name: str = NODE_NAME
    processes: ProcessGroup = field(init=False)
    _lock: int | None = field(init=False, default=None)
    _preexisting: set[Path] = field(init=False, default_factory=set)

    def __post_init__(self) -> None:
        self.processes = ProcessGroup(self.state_dir)

    @property
    def socket(self) -> Path:
        return self.state_dir / "containerd" / "containerd.sock"

    @property
    def ctr(self) -> list[str]:
        return ["ctr", "--address", str(self.socket)]

    # -- lifecycle --------------------------------------------------------------------------
    def prepare(self) -> None:
        """Takes the machine's real-node lock and creates the pod bridge (the API server binds to it)."""
        missing = missing_packages()
        if missing:
            raise RealNodeError(
                f"the real node needs Debian packages {' '.join(missing)}: run tools/node-packages.sh"
            )
        LOCK_PATH.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise RealNodeError(
                f"another real node runs on this machine (lock {LOCK_PATH}, pid {_read(LOCK_PATH)}); "
                "only one can: stop that cluster first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._lock = fd
        self._preexisting = {
            p for p in (*FIXED_HOST_PATHS, NETNS_DIR, *netns_entries(), *kubepods_cgroups()) if p.exists()
        }
        # A bridge left by a crashed run holds no pods any more (we hold the lock): start clean.
        try:
            add_bridge()
        except HostNetworkError as error:
            raise RealNodeError(str(error)) from None

    def expose_api_server(self, api_port: int) -> None:
        """Pods' traffic to the `kubernetes` Service IP goes to the API server on the bridge address."""
        remove_nat_chain()
        iptables("-N", NAT_CHAIN)
        iptables("-A", "PREROUTING", "-i", BRIDGE, "-j", NAT_CHAIN)
        iptables(
            "-A", NAT_CHAIN, "-d", f"{API_SERVICE_IP}/32", "-p", "tcp", "--dport", str(API_SERVICE_PORT),
            "-j", "DNAT", "--to-destination", f"{BRIDGE_IP}:{api_port}",
        )  # fmt: skip

    def start(self, admin_kubeconfig: Path) -> None:
        """Starts containerd, loads the local images, starts the kubelet (the caller waits for Ready)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        pause = busybox_image()
        containerd = self.processes.start(
            "containerd", ["containerd", "--config", str(self._containerd_config(pause.ref))]
        )
        self._wait("containerd", self._containerd_up, 60, containerd.log_tail)
        import_image(self.ctr, pause)
        kubeconfig = token_kubeconfig(
            admin_kubeconfig, self.pki.node_token, self.state_dir / "kubelet.kubeconfig"
        )
        self.processes.start(
            "kubelet",
            [
                str(self.bin_dir / "kubelet"),
                f"--config={self._kubelet_config()}",
                f"--kubeconfig={kubeconfig}",
                f"--root-dir={self.state_dir / 'kubelet'}",
                f"--cert-dir={self.state_dir / 'kubelet-pki'}",
                f"--hostname-override={self.name}",
                f"--node-ip={BRIDGE_IP}",
                f"--node-labels={NODE_LABEL}={NODE_LABEL_VALUE}",
                "--v=1",
            ],
        )

    def stop(self, kubectl: Callable[..., Any] | None = None) -> None:
        """Removes the node's pods, then everything `prepare()` and `start()` made on the host."""
        if self._lock is None:
            return  # never prepared, or refused the lock: the bridge and paths are another node's
        if kubectl is not None and self._containerd_up():
            with contextlib.suppress(Exception):
                kubectl(
                    "delete",
                    "pods",
                    "--all-namespaces",
                    f"--field-selector=spec.nodeName={self.name}",
                    "--grace-period=1",
                    "--wait=false",
                    check=False,
                    timeout=30,
                )
                self._wait("the node's containers to stop", lambda: not self._tasks(), 30)
        for process in reversed(self.processes.processes):
            if process.name == "kubelet":
                process.stop()
        self._kill_tasks()
        self.processes.stop_all()
        self._kill_shims()
        self._clean_host()
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None

    # -- containerd -------------------------------------------------------------------------
    def _containerd_config(self, sandbox_image: str) -> Path:
        base = self.state_dir / "containerd"
        cni_dir = base / "cni"
        cni_dir.mkdir(parents=True, exist_ok=True)
        (cni_dir / "10-autolabel.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "0.4.0",
                    "name": "autolabel",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": BRIDGE,
                            "isGateway": True,
                            "ipMasq": False,
                            "hairpinMode": True,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [[{"subnet": POD_SUBNET, "gateway": BRIDGE_IP}]],
                                "routes": [{"dst": "0.0.0.0/0"}],
                                "dataDir": str(base / "ipam"),
                            },
                        }
                    ],
                }
            )
        )
        cri = 'plugins."io.containerd.grpc.v1.cri"'
        config = base / "config.toml"
        config.write_text(
            f"""version = 2
root = "{base / "root"}"
state = "{base / "state"}"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "{self.socket}"
[ttrpc]
  address = "{self.socket}.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{base / "opt"}"
[{cri}]
  sandbox_image = "{sandbox_image}"
  restrict_oom_score_adj = true
  disable_apparmor = true
  enable_selinux = false
[{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
[{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[{cri}.containerd.runtimes.runc.options]
  BinaryName = "/usr/sbin/runc"
  Root = "{base / "runc"}"
  SystemdCgroup = false
[{cri}.cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = "{cni_dir}"
"""
        )
        return config

    def _containerd_up(self) -> bool:
        if not self.socket.exists():
            return False
        return subprocess.run([*self.ctr, "version"], capture_output=True, timeout=10).returncode == 0

    def _tasks(self) -> list[str]:
        result = subprocess.run(
            [*self.ctr, "-n", "k8s.io", "tasks", "ls", "-q"], capture_output=True, text=True, timeout=10
        )
        return result.stdout.split() if result.returncode == 0 else []

    def _kill_tasks(self) -> None:
        """Containers the kubelet did not stop (it was killed, or the API server was gone)."""
        if not self._containerd_up():
            return
        for task in self._tasks():
            for args in (("tasks", "kill", "-s", "SIGKILL", task), ("tasks", "delete", "-f", task)):
                subprocess.run([*self.ctr, "-n", "k8s.io", *args], capture_output=True, timeout=30)
        for container in subprocess.run(
            [*self.ctr, "-n", "k8s.io", "containers", "ls", "-q"], capture_output=True, text=True, timeout=10
        ).stdout.split():
            subprocess.run(
                [*self.ctr, "-n", "k8s.io", "containers", "delete", container], capture_output=True
            )

    def _kill_shims(self) -> None:
        """Shims outlive containerd; each records its PID in containerd's state directory."""
        for pid_file in (self.state_dir / "containerd" / "state").glob(
            "io.containerd.runtime.v2.task/*/*/shim.pid"
        ):
            with contextlib.suppress(ValueError, OSError):
                os.kill(int(pid_file.read_text().strip()), signal.SIGKILL)

    # -- kubelet ----------------------------------------------------------------------------
    def _kubelet_config(self) -> Path:
        percent = {"nodefs.available": "1%", "nodefs.inodesFree": "1%", "imagefs.available": "1%"}
        config = {
            "apiVersion": "kubelet.config.k8s.io/v1beta1",
            "kind": "KubeletConfiguration",
            "containerRuntimeEndpoint": f"unix://{self.socket}",
            "cgroupDriver": "cgroupfs",
            "failCgroupV1": False,
            # Only the API server (its kubelet-client certificate, signed by the cluster CA) may call us.
            "authentication": {
                "anonymous": {"enabled": False},
                "webhook": {"enabled": False},
                "x509": {"clientCAFile": str(self.pki.ca_cert)},
            },
            "authorization": {"mode": "AlwaysAllow"},
            "address": BRIDGE_IP,
            "readOnlyPort": 0,
            "healthzBindAddress": "127.0.0.1",
            "failSwapOn": False,
            "oomScoreAdj": 0,
            "makeIPTablesUtilChains": False,
            # A shared disk and memory must not make this node evict the tests' pods or their images.
            "evictionHard": {"memory.available": "100Mi", **percent},
            "imageGCHighThresholdPercent": 100,
            "imageGCLowThresholdPercent": 99,
            "podLogsDir": str(self.state_dir / "pod-logs"),
            "serializeImagePulls": False,
            "shutdownGracePeriod": "0s",
            "nodeStatusUpdateFrequency": "5s",
        }
        path = self.state_dir / "kubelet.yaml"
        path.write_text(yaml.safe_dump(config))
        return path

    # -- host clean-up ----------------------------------------------------------------------
    def _clean_host(self) -> None:
        new_netns = [entry for entry in netns_entries() if entry not in self._preexisting]
        for mount in sorted(mounts_under(self.state_dir, *new_netns), key=len, reverse=True):
            subprocess.run(["umount", "-l", mount], capture_output=True)
        for entry in new_netns:
            entry.unlink(missing_ok=True)
        if NETNS_DIR not in self._preexisting:
            with contextlib.suppress(OSError):
                NETNS_DIR.rmdir()
        for cgroup in kubepods_cgroups():
            if cgroup not in self._preexisting:
                remove_cgroup(cgroup)
        for path in FIXED_HOST_PATHS:
            if path not in self._preexisting:
                shutil.rmtree(path, ignore_errors=True)
        remove_bridge()
        remove_nat_chain()

    def _wait(self, what: str, ready: Callable[[], bool], timeout: float, log_tail: Any = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            time.sleep(0.5)
        raise RealNodeError(
            f"timed out after {timeout:.0f}s waiting for {what}\n{log_tail() if log_tail else ''}"
        )


def _read(path: Path) -> str:
    with contextlib.suppress(OSError):
        return path.read_text().strip()
    return "?"
