"""The stage of the controller benchmark: a real control plane whose pods are played by kwok.

- kube-apiserver, etcd, controller-manager and scheduler as in the tests
  (tools/cluster), with an audit log (one line per request, with its user),
  no local pod runner, and roomy kwok nodes;
- a kwok stage completes the worker and dataset-step pods by itself (exit 0
  about a second after they run), so the real Job controller completes the Jobs;
- the chart installed (CRD, ClusterRole, worker ServiceAccount and Role) and the
  real controller (`python -m controller`, cluster-wide) run as a local process
  with its ServiceAccount's token, so its calls are audited under that user;
- `StepPlayer` writes a passing validation verdict for each validation step, as
  the step's pod would (no dataset opened: the benchmark measures the controller);
- `AgentRunner` runs the real review agent (`python -m worker review-agent`) as
  a local process when its Deployment appears, under the worker ServiceAccount's
  token and with the real mongod, as the kubelet would run the pod.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, watch

from contract.verdicts import ProbeVerdict, ValidationReason
from tools.cluster import chart
from tools.cluster.harness import LocalCluster
from tools.cluster.kubeconfig import token_kubeconfig
from tools.cluster.kwoknodes import KWOK_CONFIG, gpu_node_manifest
from tools.cluster.processes import die_with_parent, free_port, stop_process_group

REPO_ROOT = Path(__file__).resolve().parents[1]
WORKER_SA = "autolabel-worker"
COMPONENT = "app.kubernetes.io/component"
BENCH_NODES = 4
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived", "ResponseStarted"],  # one line per request, when it completes
    "rules": [{"level": "Metadata"}],
}


def kwok_bench_config(path: Path) -> Path:
    """The tests' kwok stages plus one that completes worker and step pods after a second."""
    documents = list(yaml.safe_load_all(KWOK_CONFIG.read_text()))
    exit_stage = next(d for d in documents if (d.get("metadata") or {}).get("name") == "pod-exit-succeeded")
    stage = copy.deepcopy(exit_stage)
    stage["metadata"]["name"] = "bench-pod-complete"
    expressions = [e for e in stage["spec"]["selector"]["matchExpressions"] if "exit-code" not in e["key"]]
    expressions.append(
        {"key": f'.metadata.labels["{COMPONENT}"]', "operator": "In", "values": ["worker", "dataset-step"]}
    )
    stage["spec"]["selector"]["matchExpressions"] = expressions
    stage["spec"]["delay"] = {"durationMilliseconds": 1000}
    path.write_text(yaml.safe_dump_all([*documents, stage], sort_keys=False))
    return path


def bench_node(name: str) -> dict[str, Any]:
    manifest = gpu_node_manifest(name, gpus=1000)
    resources = {"cpu": "1000", "memory": "4000Gi", "pods": "2000", "nvidia.com/gpu": "1000"}
    manifest["status"] = {"allocatable": resources, "capacity": resources}
    return manifest


def start_cluster(state_dir: Path) -> LocalCluster:
    state_dir.mkdir(parents=True, exist_ok=True)
    policy = state_dir / "audit-policy.yaml"
    policy.write_text(yaml.safe_dump(AUDIT_POLICY))
    cluster = LocalCluster(
        state_dir,
        pod_runner=False,
        kwok_config=kwok_bench_config(state_dir / "kwok-bench.yaml"),
        audit_policy=policy,
    ).start()
    nodes = [bench_node(f"bench-node-{i}") for i in range(BENCH_NODES)]
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(nodes))
    return cluster


def install_chart(cluster: LocalCluster, namespace: str) -> None:
    cluster.kubectl("create", "namespace", namespace)
    chart.install_chart(cluster, namespace)


def service_account_kubeconfig(cluster: LocalCluster, account: str, namespace: str, path: Path) -> Path:
    token = cluster.kubectl("create", "token", account, "-n", namespace, "--duration=24h").stdout.strip()
    return token_kubeconfig(cluster.kubeconfig, token, path)


def user_of(account: str, namespace: str) -> str:
    return f"system:serviceaccount:{namespace}:{account}"


@dataclass
class Controller:
    """The real controller as a local process (cluster-wide, the chart's RBAC)."""

    kubeconfig: Path
    log_path: Path
    metrics_port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.kubeconfig),
            "PYTHONPATH": str(REPO_ROOT),
            "AUTOLABEL_WORKER_COMMAND": f"{sys.executable} -m worker run",
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "controller",
                    "--liveness-port",
                    str(free_port()),
                    "--metrics-port",
                    str(self.metrics_port),
                ],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )

    def stop(self) -> None:
        if self.process is not None:
            stop_process_group(self.process.pid, grace_seconds=10)
            self.process = None


class StepPlayer:
    """Answers each validation step with a pass, in the key its pod would write (then kwok ends the pod)."""

    def __init__(self, api: Any, namespace: str, samples: int) -> None:
        self.core = client.CoreV1Api(api)
        self.batch = client.BatchV1Api(api)
        self.namespace = namespace
        self.samples = samples
        self.answered: set[str] = set()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="step-player", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(
                    self.batch.list_namespaced_job,
                    self.namespace,
                    label_selector=f"{COMPONENT}=dataset-step",
                    timeout_seconds=60,
                ):
                    if self._stop.is_set():
                        return
                    if event["type"] == "ADDED":
                        self._answer(event["object"])
            except Exception as error:  # a dropped watch: start again
                print(f"step player: {error}", file=sys.stderr)

    def _answer(self, job: Any) -> None:
        step = json.loads(job.metadata.annotations["autolabel.dev/step"])
        if step["kind"] != "validate" or job.metadata.name in self.answered:
            return
        env = {e.name: e.value for e in job.spec.template.spec.containers[0].env if e.value is not None}
        verdict = ProbeVerdict(
            ok=True, reason=ValidationReason.VALIDATION_PASSED, message="bench", total=self.samples
        )
        body = {"data": {step["key"]: verdict.to_json()}}
        self.core.patch_namespaced_config_map(env["AUTOLABEL_RESULT_CONFIG_MAP"], self.namespace, body)
        self.answered.add(job.metadata.name)


@dataclass
class AgentRunner:
    """Runs each review agent Deployment's container as a local process (the kubelet's part)."""

    api: Any
    namespace: str
    kubeconfig: Path
    database_env: dict[str, str]
    log_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def sync(self) -> None:
        apps = client.AppsV1Api(self.api)
        for deployment in apps.list_namespaced_deployment(
            self.namespace, label_selector=f"{COMPONENT}=review-agent"
        ).items:
            name = deployment.metadata.name
            if name in self.processes:
                continue
            container = deployment.spec.template.spec.containers[0]
            env = {
                **{k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")},
                **{e.name: e.value for e in container.env or [] if e.value is not None},
                **self.database_env,
                "POD_NAMESPACE": self.namespace,
                "KUBECONFIG": str(self.kubeconfig),
                "PYTHONPATH": str(REPO_ROOT),
                "OMP_NUM_THREADS": "1",
            }
            with (self.log_dir / f"{name}.log").open("ab") as log:
                self.processes[name] = subprocess.Popen(
                    list(container.command),
                    cwd=REPO_ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    preexec_fn=die_with_parent,
                )

    def pids(self) -> list[int]:
        return [p.pid for p in self.processes.values() if p.poll() is None]

    def stop(self) -> None:
        for process in self.processes.values():
            stop_process_group(process.pid, grace_seconds=5)
        self.processes.clear()


def admin_client(cluster: LocalCluster) -> Any:
    return config.new_client_from_config(config_file=str(cluster.kubeconfig))
