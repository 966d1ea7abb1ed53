"""The demo's processes: mongod, Triton, the local control plane, the controller and the FiftyOne App.

By default (no container runtime needed) the operator runs the way the
integration tests run it: the Helm chart installs the CRD, RBAC and worker
ServiceAccount with zero controller replicas, and the controller
(`python -m controller`) runs as a local process whose kubeconfig holds a
token of the chart's controller ServiceAccount (held to the chart's RBAC).
Worker pods are run by the local pod runner as local processes. With
`real_node=True` (`--real-node`) the pods go to a real kubelet node instead and
the controller and every pod run in containers (tools/demo/realnode.py).

Every process the demo starts, directly or not, inherits the environment
variable `AUTOLABEL_DEMO_ID`; `survivors` finds any that outlive `stop()`
through /proc, so the demo can prove (and enforce) that it leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tools.cluster.binaries import tool_bin_dir
from tools.cluster.chart import (
    CHART,
    CONTROLLER_SA,
    SYSTEM_NAMESPACE,
    install_chart,
    install_chart_with_image,
)
from tools.cluster.harness import LocalCluster
from tools.cluster.kubeconfig import token_kubeconfig
from tools.cluster.nodeimages import LocalImage, import_image
from tools.cluster.processes import ManagedProcess, free_port
from tools.cluster.projectimage import project_image
from tools.cluster.realnode import BRIDGE_IP
from tools.demo import realnode
from tools.services.minio import MinioServer, start_minio
from tools.services.mongo import MongoServer, disconnect_fiftyone, start_mongo
from tools.services.triton import (
    DEFAULT_MODEL_REPOSITORY,
    TritonServer,
    server_environment,
    start_triton,
    triton_install_dir,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
MARKER_ENV = "AUTOLABEL_DEMO_ID"
DATABASE_NAME = "autolabel-demo"
Say = Callable[[str], None]


@dataclass
class DemoStack:
    """Everything the demo started; `stop()` stops it in reverse order."""

    work_dir: Path
    namespace: str
    marker: str
    mongo: MongoServer | None = None
    triton: TritonServer | None = None
    cluster: LocalCluster | None = None
    controller: ManagedProcess | None = None
    app: ManagedProcess | None = None
    env: dict[str, str] = field(default_factory=dict)
    real_node: bool = False
    minio: MinioServer | None = None
    image: LocalImage | None = None
    image_seconds: float = 0.0
    seen_pods: set[str] = field(default_factory=set)  # UIDs of the real node's pods, as the demo saw them

    # -- start ------------------------------------------------------------------------------
    def start(self, say: Say) -> None:
        """mongod and Triton (in the background) while the control plane comes up."""
        os.environ[MARKER_ENV] = self.marker
        self.work_dir.mkdir(parents=True, exist_ok=True)
        if self.real_node:
            self._start_real_node(say)
            return
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=1) as pool:
            triton = pool.submit(start_triton, DEFAULT_MODEL_REPOSITORY, self.work_dir / "triton")
            try:
                self.mongo = start_mongo(self.work_dir / "mongo")
                say(f"mongod ready at {self.mongo.uri} ({time.monotonic() - started:.0f}s)")
                self.env = {**os.environ, **self.mongo.fiftyone_environment(DATABASE_NAME)}
                os.environ.update(self.env)
                self.cluster = LocalCluster(
                    self.work_dir / "cluster", bin_dir=tool_bin_dir(), runner_env=self._runner_env()
                ).start()
                say(
                    f"control plane ready at {self.cluster.server}: etcd, kube-apiserver, "
                    "controller-manager, scheduler, kwok with 2 fake GPU nodes "
                    f"({time.monotonic() - started:.0f}s)"
                )
            finally:
                self.triton = triton.result()
        say(
            f"tritonserver ready at {self.triton.grpc_url} (gRPC) serving models/: face_detector, "
            f"efficientnet_lite0, selfie_segmentation, ... ({time.monotonic() - started:.0f}s)"
        )

    def _start_real_node(self, say: Say) -> None:
        """The real node's cluster (its lock first), then the image (cached) and services on its bridge."""
        started = time.monotonic()
        self.cluster = LocalCluster(self.work_dir / "cluster", bin_dir=tool_bin_dir(), real_node=True).start()
        say(
            f"control plane ready at {self.cluster.server}: etcd, kube-apiserver, controller-manager, "
            "scheduler and one real node, real-node-0 (the pinned kubelet, containerd, runc, CNI bridge), "
            f"where the runs' pods go (the kwok nodes are tainted) ({time.monotonic() - started:.0f}s)"
        )
        with ThreadPoolExecutor(max_workers=3) as pool:
            image = pool.submit(_timed_project_image)
            triton = pool.submit(
                start_triton, DEFAULT_MODEL_REPOSITORY, self.work_dir / "triton", host=BRIDGE_IP
            )
            minio = pool.submit(start_minio, self.work_dir / "minio", host=BRIDGE_IP)
            try:
                self.mongo = start_mongo(self.work_dir / "mongo", replica_set=True, host=BRIDGE_IP)
            finally:  # each kept as soon as it runs, so stop() stops it whatever failed
                for future, keep in ((triton, "triton"), (minio, "minio")):
                    with contextlib.suppress(Exception):
                        setattr(self, keep, future.result())
            self.triton, self.minio = triton.result(), minio.result()
            self.image, self.image_seconds = image.result()
        say(
            f"on the pod bridge {BRIDGE_IP}: mongod (replica set) {self.mongo.uri}, "
            f"MinIO {self.minio.endpoint}, "
            f"tritonserver {self.triton.grpc_url} (gRPC) serving models/ ({time.monotonic() - started:.0f}s)"
        )
        self.env = {**os.environ, **self.mongo.fiftyone_environment(DATABASE_NAME)}
        os.environ.update(self.env)
        assert self.cluster.node is not None
        imported = time.monotonic()
        import_image(self.cluster.node.ctr, self.image)
        say(
            f"image {self.image.ref} from the Dockerfile in {self.image_seconds:.0f}s (cached by its inputs; "
            "a code change rebuilds it in minutes), imported into the node's containerd in "
            f"{time.monotonic() - imported:.0f}s"
        )

    def _runner_env(self) -> dict[str, str]:
        """The "node" environment of the pods the local pod runner starts (as tests/fixtures/cluster.py)."""
        triton_env = server_environment()
        return {
            "PYTHONPATH": str(REPO_ROOT),
            "FIFTYONE_DATABASE_VALIDATION": "false",
            "FIFTYONE_DO_NOT_TRACK": "true",
            "OMP_NUM_THREADS": "1",
            "LD_LIBRARY_PATH": triton_env["LD_LIBRARY_PATH"],
            "PATH": os.pathsep.join([str(triton_install_dir() / "bin"), triton_env["PATH"]]),
            MARKER_ENV: self.marker,
        }

    def install_operator(self, say: Say) -> None:
        """The chart (CRD, RBAC, worker ServiceAccount) with zero replicas, then the controller locally."""
        cluster = self._cluster()
        if self.real_node:
            assert self.image is not None
            install_chart_with_image(cluster, self.image.ref, self.namespace)
            say(
                f"helm chart {CHART.relative_to(REPO_ROOT)} installed in {SYSTEM_NAMESPACE} with that image: "
                "the controller is the chart's Deployment, in a container on real-node-0; "
                f"{SYSTEM_NAMESPACE} "
                f"and {self.namespace} enforce the restricted Pod Security level"
            )
            return
        cluster.kubectl("create", "namespace", self.namespace)
        install_chart(cluster, self.namespace)
        cluster.kubectl(
            "wait", "--for=create", "serviceaccount/default", "-n", self.namespace, "--timeout=60s"
        )
        say(
            f"helm chart {CHART.relative_to(REPO_ROOT)} installed in {SYSTEM_NAMESPACE}: CRD autolabelruns, "
            f"ClusterRole, worker ServiceAccount and Role in {self.namespace}; replicaCount=0"
        )
        kubeconfig = self._controller_kubeconfig(self.work_dir / "controller.kubeconfig")
        env = {
            **self.env,
            "KUBECONFIG": str(kubeconfig),
            "PYTHONPATH": str(REPO_ROOT),
            "AUTOLABEL_RECONCILE_INTERVAL": "2",
            "AUTOLABEL_WORKER_COMMAND": f"{sys.executable} -m worker run",
        }
        argv = [sys.executable, "-m", "controller", "--namespace", self.namespace]
        argv += ["--liveness-port", str(free_port()), "--metrics-port", str(free_port())]
        self.controller = cluster.processes.start("autolabel-controller", argv, env=env, cwd=REPO_ROOT)
        say(
            "without --real-node the controller runs as a local process (python -m controller) "
            f"with the chart's controller ServiceAccount token ({CONTROLLER_SA}), so it has exactly the "
            "chart's RBAC; worker pods run as local processes through the local pod runner"
        )

    def _controller_kubeconfig(self, path: Path) -> Path:
        cluster = self._cluster()
        token = cluster.kubectl(
            "create", "token", CONTROLLER_SA, "-n", SYSTEM_NAMESPACE, "--duration=24h"
        ).stdout.strip()
        return token_kubeconfig(cluster.kubeconfig, token, path)

    def start_app(self, port: int) -> str:
        """The FiftyOne App server on 127.0.0.1:`port`; returns its URL."""
        argv = [sys.executable, "-m", "fiftyone.server.main", "--address", "127.0.0.1", "--port", str(port)]
        # The Auto-Label panel (plugins/autolabel), with the admin kubeconfig and Triton's model list.
        env = {
            **self.env,
            "FIFTYONE_PLUGINS_DIR": str(REPO_ROOT / "plugins"),
            "PYTHONPATH": str(REPO_ROOT),  # the panel imports the project's packages
            "KUBECONFIG": str(self._cluster().kubeconfig),
        }
        if self.triton is not None:
            env["AUTOLABEL_TRITON_HTTP_URL"] = str(self.triton.http_url)
            env["AUTOLABEL_TRITON_ADDRESS"] = str(self.triton.grpc_url).removeprefix("grpc://")
        self.app = self._cluster().processes.start("fiftyone-app", argv, env=env, cwd=REPO_ROOT)
        return f"http://127.0.0.1:{port}"

    def _cluster(self) -> LocalCluster:
        if self.cluster is None:
            raise RuntimeError("the control plane is not running")
        return self.cluster

    def controller_log_tail(self, lines: int = 40) -> str:
        if self.real_node and self.cluster is not None:
            return realnode.controller_log_tail(self.cluster, lines)
        return self.controller.log_tail(lines) if self.controller is not None else ""

    # -- stop -------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stops every process in reverse start order; each step runs even if one before failed."""
        steps: list[Callable[[], None]] = [disconnect_fiftyone]
        if self.cluster is not None:
            steps.append(self.cluster.stop)  # App, controller, pod runner's pods, kwok, ..., etcd
        if self.triton is not None:
            steps.append(self.triton.stop)
        if self.minio is not None:
            steps.append(self.minio.stop)
        if self.mongo is not None:
            steps.append(self.mongo.stop)
        for step in steps:
            with contextlib.suppress(Exception):
                step()
        self.cluster = self.triton = self.mongo = self.minio = None
        self.controller = self.app = None


def _timed_project_image() -> tuple[LocalImage, float]:
    started = time.monotonic()
    return project_image(), time.monotonic() - started


def survivors(marker: str) -> list[tuple[int, str]]:
    """Processes (other than this one) whose environment carries the demo's marker: (pid, command line)."""
    needle = f"{MARKER_ENV}={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if cmdline:  # zombies have an empty command line and are gone once reaped
            found.append((int(entry.name), cmdline.strip()))
    return found


def kill_survivors(marker: str, grace_s: float = 5.0) -> list[tuple[int, str]]:
    """SIGTERM, then SIGKILL, each survivor by its pid; returns those that were found."""
    found = survivors(marker)
    for pid, _ in found:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while survivors(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid, _ in survivors(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return found
