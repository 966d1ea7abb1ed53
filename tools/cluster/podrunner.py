"""The local pod runner: what a kubelet would do, for pods on the fake GPU nodes.

kwok fakes nodes but runs nothing. For pods bound to nodes labelled
`autolabel.dev/pod-runner=local` and marked Running by kwok, this runner
starts each container's command and args as a local process (native sidecars
first, in the background), with the pod's environment (values from Secrets,
ConfigMaps and the downward API), and a kubeconfig holding a token of the
pod's own ServiceAccount, so the process has exactly the pod's RBAC rights.
Output goes to one log file per pod. When the main containers end, it sets the
annotation `autolabel.dev/exit-code` (and a termination message taken from the
log tail on failure, like `FallbackToLogsOnError`); kwok's pod-exit stages turn
that into phase Succeeded or Failed, and the real Job controller takes over.
A pod deleted while running has its processes stopped (SIGTERM, then SIGKILL).

Limits: no images (the command must exist on this machine), volumes only as
local directories mounted at their own path, or ConfigMaps (their keys written
as files into the pod's directory, the mount path rewritten in argv and env,
see podspec.py), one process per container, no probes, no restarts inside a
pod (the Job controller makes new pods instead).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tools.cluster.kubeconfig import token_kubeconfig
from tools.cluster.podspec import LocalContainer, PodSpecError, decode_secret_data, local_containers
from tools.cluster.processes import die_with_parent, stop_process_group

RUNNER_NODE_LABEL = "autolabel.dev/pod-runner"
EXIT_CODE_ANNOTATION = "autolabel.dev/exit-code"
MESSAGE_ANNOTATION = "autolabel.dev/termination-message"
_MESSAGE_LIMIT = 2048
log = logging.getLogger("podrunner")


class LocalPodRunner:
    """Watches pods and runs those bound to runner nodes as local processes."""

    def __init__(
        self,
        kubeconfig: Path,
        work_dir: Path,
        base_env: Mapping[str, str],
        pvc_dirs: Mapping[str, str] | None = None,
    ) -> None:
        self.api_client = config.new_client_from_config(config_file=str(kubeconfig))
        self.core = client.CoreV1Api(self.api_client)
        self.kubeconfig = kubeconfig
        self.work_dir = work_dir
        self.base_env = dict(base_env)
        self.pvc_dirs = dict(pvc_dirs or {})
        self._started: set[str] = set()
        self._process_groups: dict[str, list[int]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()

    # -- watching ---------------------------------------------------------------------------
    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                self._watch_once()
            except Exception:  # the watch must survive API hiccups; log and re-list
                if not self._stop.is_set():
                    log.exception("pod watch failed; re-listing")
                self._stop.wait(1)

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            groups = [pid for pids in self._process_groups.values() for pid in pids]
        for pid in groups:
            stop_process_group(pid, grace_seconds=3)

    def _runner_nodes(self) -> set[str]:
        nodes = self.core.list_node(label_selector=f"{RUNNER_NODE_LABEL}=local").items
        return {node.metadata.name for node in nodes}

    def _watch_once(self) -> None:
        listing = self.core.list_pod_for_all_namespaces()
        nodes = self._runner_nodes()
        for pod in listing.items:
            self._on_pod("ADDED", self.api_client.sanitize_for_serialization(pod), nodes)
        stream = watch.Watch().stream(
            self.core.list_pod_for_all_namespaces,
            resource_version=listing.metadata.resource_version,
            timeout_seconds=60,
        )
        for event in stream:
            if self._stop.is_set():
                return
            pod = self.api_client.sanitize_for_serialization(event["object"])
            node = (pod.get("spec") or {}).get("nodeName")
            if node and node not in nodes:  # a node made since the last look, perhaps
                nodes = self._runner_nodes()
            self._on_pod(event["type"], pod, nodes)

    def _on_pod(self, event_type: str, pod: dict[str, Any], nodes: set[str]) -> None:
        metadata, spec = pod.get("metadata") or {}, pod.get("spec") or {}
        uid = metadata.get("uid", "")
        if spec.get("nodeName") not in nodes:
            return
        if event_type == "DELETED" or metadata.get("deletionTimestamp"):
            self._kill(uid)
            return
        annotations = metadata.get("annotations") or {}
        running = (pod.get("status") or {}).get("phase") == "Running"
        with self._lock:
            if not running or uid in self._started or EXIT_CODE_ANNOTATION in annotations:
                return
            self._started.add(uid)
        threading.Thread(
            target=self._execute, args=(pod,), name=f"pod-{metadata['name']}", daemon=True
        ).start()

    # -- executing --------------------------------------------------------------------------
    def _lookup(self, kind: str, namespace: str, name: str) -> Mapping[str, str] | None:
        try:
            if kind == "Secret":
                return decode_secret_data(self.core.read_namespaced_secret(name, namespace).data)
            return dict(self.core.read_namespaced_config_map(name, namespace).data or {})
        except ApiException as error:
            if error.status == 404:
                return None
            raise

    def _service_account_kubeconfig(
        self, pod: Mapping[str, Any], pod_dir: Path, containers: list[LocalContainer]
    ) -> Path | None:
        """A kubeconfig with a token bound to this pod, standing in for the projected SA volume;
        None when no container of the pod gets the token."""
        spec, metadata = pod["spec"], pod["metadata"]
        if not any(container.api_access for container in containers):
            return None
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(
                audiences=[],
                expiration_seconds=3600,
                bound_object_ref=client.V1BoundObjectReference(
                    kind="Pod", name=metadata["name"], uid=metadata["uid"], api_version="v1"
                ),
            )
        )
        token = self.core.create_namespaced_service_account_token(
            spec.get("serviceAccountName") or "default", metadata["namespace"], request
        ).status.token
        return token_kubeconfig(self.kubeconfig, token, pod_dir / "kubeconfig", metadata["namespace"])

    def _execute(self, pod: dict[str, Any]) -> None:
        metadata = pod["metadata"]
        uid, name, namespace = metadata["uid"], metadata["name"], metadata["namespace"]
        pod_dir = self.work_dir / "pods" / f"{namespace}_{name}_{uid[:8]}"
        pod_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.work_dir / "pod-logs" / f"{namespace}_{name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            containers = local_containers(pod, self._lookup, self.pvc_dirs, str(pod_dir / "volumes"))
            for container in containers:
                for path, content in container.files.items():
                    Path(path).parent.mkdir(parents=True, exist_ok=True)
                    Path(path).write_text(content)
            kubeconfig = self._service_account_kubeconfig(pod, pod_dir, containers)
        except (PodSpecError, ApiException) as error:
            log_path.write_text(f"local pod runner: {error}\n")
            self._report_exit(namespace, name, 127, f"local pod runner: {error}")
            return
        extra = {"KUBECONFIG": str(kubeconfig)} if kubeconfig else {}
        exit_code = self._run_containers(uid, containers, extra, log_path)
        if exit_code is None:
            return  # the pod went away while running
        message = "" if exit_code == 0 else _tail(log_path, _MESSAGE_LIMIT)
        self._report_exit(namespace, name, exit_code, message)

    def _spawn(
        self, uid: str, container: LocalContainer, extra_env: Mapping[str, str], log_file: Any
    ) -> subprocess.Popen[bytes]:
        env = {**self.base_env, **(extra_env if container.api_access else {}), **container.env}
        cwd = (
            container.working_dir if container.working_dir and os.path.isdir(container.working_dir) else None
        )
        log_file.write(f"--- container {container.name}: {' '.join(container.argv)}\n".encode())
        log_file.flush()
        popen = subprocess.Popen(
            container.argv,
            env=env,
            cwd=cwd,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        with self._lock:
            self._process_groups.setdefault(uid, []).append(popen.pid)
        return popen

    def _run_containers(
        self, uid: str, containers: list[LocalContainer], extra_env: Mapping[str, str], log_path: Path
    ) -> int | None:
        """Init containers in order (sidecars left running), then the main containers together."""
        sidecars: list[subprocess.Popen[bytes]] = []
        try:
            with log_path.open("ab") as log_file:
                try:
                    for container in (c for c in containers if c.role != "main"):
                        process = self._spawn(uid, container, extra_env, log_file)
                        if container.role == "sidecar":
                            sidecars.append(process)
                            continue
                        code = process.wait()
                        if uid not in self._started:
                            return None
                        if code != 0:
                            return _exit_status(code)
                    mains = [self._spawn(uid, c, extra_env, log_file) for c in containers if c.role == "main"]
                    codes = [process.wait() for process in mains]
                except OSError as error:
                    log_file.write(f"local pod runner: {error}\n".encode())
                    return 127
            if uid not in self._started:
                return None
            return next((_exit_status(code) for code in codes if code != 0), 0)
        finally:
            for sidecar in sidecars:
                stop_process_group(sidecar.pid, grace_seconds=5)
            with self._lock:
                self._process_groups.pop(uid, None)

    def _kill(self, uid: str) -> None:
        with self._lock:
            self._started.discard(uid)
            pids = self._process_groups.pop(uid, [])
        for pid in pids:
            stop_process_group(pid, grace_seconds=5)

    def _report_exit(self, namespace: str, name: str, exit_code: int, message: str) -> None:
        annotations = {EXIT_CODE_ANNOTATION: str(exit_code)}
        if message:
            annotations[MESSAGE_ANNOTATION] = message
        for attempt in range(5):
            try:
                self.core.patch_namespaced_pod(name, namespace, {"metadata": {"annotations": annotations}})
                return
            except ApiException as error:
                if error.status == 404:
                    return
                time.sleep(0.5 * (attempt + 1))
        log.error("could not report exit of pod %s/%s", namespace, name)


def _exit_status(returncode: int) -> int:
    """A process killed by signal N exits 128+N, as container runtimes report it."""
    return 128 - returncode if returncode < 0 else returncode


def _tail(path: Path, limit: int) -> str:
    with contextlib.suppress(OSError):
        data = path.read_bytes()[-limit:].decode(errors="replace")
        return data.strip()
    return ""


def install_signal_handlers(runner: LocalPodRunner) -> None:
    def handle(signum: int, _frame: object) -> None:
        runner.stop()
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
