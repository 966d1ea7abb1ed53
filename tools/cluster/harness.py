"""The local Kubernetes control plane: etcd, kube-apiserver, controller-manager, scheduler, kwok.

`LocalCluster.start()` brings everything up on free 127.0.0.1 ports with RBAC
and ServiceAccount tokens on, writes an admin kubeconfig, creates the fake GPU
nodes (tools/cluster/kwoknodes.py) and starts the local pod runner in a thread; with `real_node=True` it also
runs one real kubelet node (tools/cluster/realnode.py). `stop()` tears every
process down by PID. Used by the pytest fixtures, `make cluster-up` and the
demo. The binaries come from `tools/build-tools.sh` (tools/cluster/binaries.py).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.cluster.binaries import run_tool, tool_bin_dir
from tools.cluster.kwoknodes import GPU_NODE_NAMES, KWOK_CONFIG, gpu_node_manifest, ready_gpu_nodes
from tools.cluster.pki import ControlPlanePki, create_pki
from tools.cluster.podrunner import RUNNER_NODE_LABEL, LocalPodRunner
from tools.cluster.processes import ProcessGroup, free_port
from tools.cluster.realnode import BRIDGE_IP, RealNode

CONTROLLERS = ",".join(
    [
        "job-controller",
        "garbage-collector-controller",
        "serviceaccount-token-controller",
        "serviceaccount-controller",
        "namespace-controller",
        "ttl-after-finished-controller",
        "deployment-controller",
        "replicaset-controller",
        "root-ca-certificate-publisher-controller",
    ]
)
"""The controllers kube-controller-manager runs; no other (node lifecycle among them) runs."""


class ClusterError(RuntimeError):
    """A component failed to start; the message carries the tail of its log."""


@dataclass
class LocalCluster:
    """A running control plane; create with `LocalCluster(state_dir).start()`."""

    state_dir: Path
    bin_dir: Path = field(default_factory=tool_bin_dir)
    runner_env: Mapping[str, str] = field(default_factory=dict)
    pvc_dirs: Mapping[str, str] = field(default_factory=dict)
    # The controller benchmark: pods completed by kwok stages alone, requests audited per user.
    pod_runner: bool = True
    kwok_config: Path = KWOK_CONFIG
    audit_policy: Path | None = None
    # One real node (kubelet + containerd, tools/cluster/realnode.py) beside the kwok nodes, which are
    # then tainted (KWOK_TAINT): a pod runs in a container unless it tolerates and selects them. The
    # API server then listens on the pod bridge's address, so pods reach it from their own IPs.
    real_node: bool = False
    node: RealNode | None = field(init=False, default=None)
    processes: ProcessGroup = field(init=False)
    pki: ControlPlanePki = field(init=False)
    api_port: int = field(init=False, default=0)
    runner: LocalPodRunner | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.processes = ProcessGroup(self.state_dir)

    @property
    def kubeconfig(self) -> Path:
        return self.state_dir / "kubeconfig"

    @property
    def api_host(self) -> str:
        return BRIDGE_IP if self.real_node else "127.0.0.1"

    @property
    def server(self) -> str:
        return f"https://{self.api_host}:{self.api_port}"

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> LocalCluster:
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        if self.state_dir.exists():
            for stale in ("etcd", "pki", "pods", "node"):
                shutil.rmtree(self.state_dir / stale, ignore_errors=True)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.pki = create_pki(self.state_dir / "pki", extra_ips=[BRIDGE_IP] if self.real_node else [])
        if self.real_node:
            self.node = RealNode(self.state_dir / "node", self.bin_dir, self.pki)
            self.node.prepare()
        etcd_url = self._start_etcd()  # the API server waits for etcd itself: its readyz covers it
        self._start_apiserver(etcd_url)
        self._write_kubeconfig()
        self._start_controller_manager()
        self._start_scheduler()
        self._start_kwok()
        self._create_gpu_nodes()
        if self.pod_runner:
            self._start_pod_runner()
        self._wait_for("default ServiceAccount", self._default_service_account_exists, 60)
        self._wait_for("GPU nodes Ready", self._gpu_nodes_ready, 60)
        if self.node is not None:
            self.node.expose_api_server(self.api_port)
            self.node.start(self.kubeconfig)
            kubelet = self.node.processes.processes[-1]
            self._wait_for("the real node Ready", self._real_node_ready, 120, kubelet.log_tail)
        self._link_bin_dir()

    def stop(self) -> None:
        if self.node is not None:
            self.node.stop(self.kubectl if self.processes.processes else None)
            self.node = None
        if self.runner is not None:
            self.runner.stop()
            self.runner = None
        self.processes.stop_all()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    # -- components -------------------------------------------------------------------------
    def _start_etcd(self) -> str:
        client_port, peer_port = free_port(), free_port()
        client_url, peer_url = f"http://127.0.0.1:{client_port}", f"http://127.0.0.1:{peer_port}"
        self.processes.start(
            "etcd",
            [
                str(self.bin_dir / "etcd"),
                "--data-dir",
                str(self.state_dir / "etcd"),
                "--listen-client-urls",
                client_url,
                "--advertise-client-urls",
                client_url,
                "--listen-peer-urls",
                peer_url,
                "--initial-advertise-peer-urls",
                peer_url,
                "--initial-cluster",
                f"default={peer_url}",
                "--unsafe-no-fsync",
                "--quota-backend-bytes",
                str(2 * 1024**3),
                "--log-level",
                "warn",
            ],
        )
        return client_url

    def _start_apiserver(self, etcd_url: str) -> None:
        self.api_port = free_port()
        pki = self.pki
        process = self.processes.start(
            "kube-apiserver",
            [
                str(self.bin_dir / "kube-apiserver"),
                "--etcd-servers",
                etcd_url,
                "--bind-address",
                self.api_host,
                "--advertise-address",
                self.api_host,
                "--secure-port",
                str(self.api_port),
                "--cert-dir",
                str(self.state_dir / "pki"),
                "--tls-cert-file",
                str(pki.serving_cert),
                "--tls-private-key-file",
                str(pki.serving_key),
                "--client-ca-file",
                str(pki.ca_cert),
                "--token-auth-file",
                str(pki.token_file),
                "--authorization-mode",
                "Node,RBAC" if self.real_node else "RBAC",
                "--kubelet-client-certificate",
                str(pki.kubelet_client_cert),
                "--kubelet-client-key",
                str(pki.kubelet_client_key),
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                "--service-cluster-ip-range",
                "10.0.0.0/24",
                "--service-account-issuer",
                "https://kubernetes.default.svc.cluster.local",
                "--service-account-key-file",
                str(pki.service_account_pub),
                "--service-account-signing-key-file",
                str(pki.service_account_key),
                "--allow-privileged=true",
                # No node-lifecycle controller runs, so nothing would lift the not-ready taint.
                "--disable-admission-plugins",
                "DefaultStorageClass,TaintNodesByCondition",
                "--requestheader-client-ca-file",
                str(pki.ca_cert),
                "--endpoint-reconciler-type",
                "none",
                "--profiling=false",
                *self._audit_flags(),
            ],
        )
        self._wait_for("kube-apiserver", lambda: self._api_get("/readyz") is not None, 90, process.log_tail)

    @property
    def audit_log(self) -> Path:
        return self.state_dir / "audit.log"

    def _audit_flags(self) -> list[str]:
        if self.audit_policy is None:
            return []
        return [f"--audit-policy-file={self.audit_policy}", f"--audit-log-path={self.audit_log}"]

    def _write_kubeconfig(self) -> None:
        document = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "autolabel-local",
            "clusters": [
                {
                    "name": "autolabel-local",
                    "cluster": {"server": self.server, "certificate-authority": str(self.pki.ca_cert)},
                }
            ],
            "users": [{"name": "admin", "user": {"token": self.pki.admin_token}}],
            "contexts": [
                {
                    "name": "autolabel-local",
                    "context": {"cluster": "autolabel-local", "user": "admin", "namespace": "default"},
                }
            ],
        }
        self.kubeconfig.write_text(yaml.safe_dump(document))
        self.kubeconfig.chmod(0o600)

    def _component_flags(self, name: str) -> list[str]:
        """Flags kube-controller-manager and kube-scheduler share: admin kubeconfig, loopback serving."""
        kubeconfig = str(self.kubeconfig)
        return [
            str(self.bin_dir / name),
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={free_port()}",
            f"--cert-dir={self.state_dir / 'pki' / name}",
            "--leader-elect=false",
        ]

    def _start_controller_manager(self) -> None:
        self.processes.start(
            "kube-controller-manager",
            [
                *self._component_flags("kube-controller-manager"),
                f"--controllers={CONTROLLERS}",
                f"--service-account-private-key-file={self.pki.service_account_key}",
                f"--root-ca-file={self.pki.ca_cert}",
                "--use-service-account-credentials=false",
                "--concurrent-job-syncs=5",
                "--concurrent-gc-syncs=5",
            ],
        )

    def _start_scheduler(self) -> None:
        self.processes.start("kube-scheduler", self._component_flags("kube-scheduler"))

    def _start_kwok(self) -> None:
        self.processes.start(
            "kwok",
            [
                str(self.bin_dir / "kwok"),
                "--kubeconfig",
                str(self.kubeconfig),
                "--config",
                str(self.kwok_config),
                "--manage-all-nodes=false",
                "--manage-nodes-with-annotation-selector",
                "kwok.x-k8s.io/node=fake",
                "--node-ip",
                "10.0.1.1",
                "--cidr",
                "10.244.0.0/16",
                "--server-address",
                f"127.0.0.1:{free_port()}",
            ],
        )

    def _create_gpu_nodes(self) -> None:
        manifests = [gpu_node_manifest(name, tainted=self.real_node) for name in GPU_NODE_NAMES]
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(manifests))

    def _start_pod_runner(self) -> None:
        env = {
            k: v
            for k, v in os.environ.items()
            if k in ("PATH", "HOME", "LANG", "LC_ALL", "LD_LIBRARY_PATH", "PYTHONPATH", "TMPDIR")
        }
        env.update(self.runner_env)
        self.runner = LocalPodRunner(self.kubeconfig, self.state_dir, env, self.pvc_dirs)
        threading.Thread(target=self.runner.run_forever, name="pod-runner", daemon=True).start()

    def _link_bin_dir(self) -> None:
        link = self.state_dir / "bin"
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(self.bin_dir)

    # -- helpers ----------------------------------------------------------------------------
    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return run_tool(
            [str(self.bin_dir / "kubectl"), "--kubeconfig", str(self.kubeconfig), *args],
            input,
            check,
            timeout,
        )

    def helm(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        return run_tool(
            [str(self.bin_dir / "helm"), "--kubeconfig", str(self.kubeconfig), *args], input, check, timeout
        )

    def _api_get(self, path: str) -> Any:
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        request = urllib.request.Request(
            f"{self.server}{path}", headers={"Authorization": f"Bearer {self.pki.admin_token}"}
        )
        try:
            with urllib.request.urlopen(request, context=context, timeout=5) as response:
                body = response.read()
        except (urllib.error.URLError, OSError):
            return None
        with contextlib.suppress(ValueError):
            return json.loads(body)
        return body.decode()

    def _default_service_account_exists(self) -> bool:
        return self._api_get("/api/v1/namespaces/default/serviceaccounts/default") is not None

    def _gpu_nodes_ready(self) -> bool:
        nodes = self._api_get(f"/api/v1/nodes?labelSelector={RUNNER_NODE_LABEL}%3Dlocal")
        return isinstance(nodes, dict) and ready_gpu_nodes(nodes) == len(GPU_NODE_NAMES)

    def _real_node_ready(self) -> bool:
        assert self.node is not None
        node = self._api_get(f"/api/v1/nodes/{self.node.name}")
        conditions = node.get("status", {}).get("conditions", []) if isinstance(node, dict) else []
        return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

    def _wait_for(self, what: str, ready: Any, timeout: float, log_tail: Any = None) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready():
                return
            running = self.processes.processes + (self.node.processes.processes if self.node else [])
            dead = [p for p in running if not p.alive()]
            if dead:
                raise ClusterError(f"{dead[0].name} exited while waiting for {what}:\n{dead[0].log_tail()}")
            time.sleep(0.5)
        tail = log_tail() if log_tail else ""
        raise ClusterError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")
