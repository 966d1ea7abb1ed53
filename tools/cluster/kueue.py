"""The real Kueue controller beside the local control plane.

`start_kueue(cluster)` installs Kueue's own CRDs (shipped in its Go module,
copied beside the binary by ``tools/build-tools.sh``), starts the ``kueue``
binary against the cluster with its webhooks served on 127.0.0.1 (the API
server's serving certificate, which covers 127.0.0.1, and our CA as the
caBundle), and registers the webhooks Kueue needs for batch Jobs and its own
types. The Job webhooks only see Jobs that carry a queue name
(``objectSelector``), so every other Job of the cluster is created as before
and never waits on Kueue.
The queues themselves (ResourceFlavor, ClusterQueue, LocalQueues) are the
user's: ``examples/kueue/queues.yaml`` is what docs/install.md and the tests apply.
"""

from __future__ import annotations

import base64
import contextlib
import shutil
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.cluster.processes import ManagedProcess, free_port

QUEUE_LABEL = "kueue.x-k8s.io/queue-name"
KUEUE_NAMESPACE = "kueue-system"
_WEBHOOK_PATHS = ("-batch-v1-job", "-kueue-x-k8s-io-")
# Kueue reads its metrics-server certificate from this fixed path whenever it does not manage its own
# certificates (it does not here: its webhooks are served on 127.0.0.1 with ours). Metrics are off, but
# the certificate must still load.
METRICS_CERT_DIR = Path("/etc/kueue/metrics/certs")


class KueueError(RuntimeError):
    """Kueue did not come up; the message carries its log."""


@dataclass
class Kueue:
    """A running Kueue controller of one local cluster."""

    process: ManagedProcess
    webhook_port: int
    created: list[Path] = field(default_factory=list)  # host paths it wrote, removed at stop

    def log_tail(self, lines: int = 40) -> str:
        return self.process.log_tail(lines)

    def stop(self) -> None:
        self.process.stop()
        for path in reversed(self.created):  # files first, then the directories made for them
            with contextlib.suppress(OSError):
                path.rmdir() if path.is_dir() else path.unlink()


def kueue_config_dir(bin_dir: Path) -> Path:
    return (bin_dir / "kueue-config").resolve()


def _webhooks(config_dir: Path, port: int, ca_bundle: str) -> list[dict[str, Any]]:
    """Kueue's webhook configurations for Jobs and its own types, pointed at 127.0.0.1:`port`."""
    documents = []
    for document in yaml.safe_load_all((config_dir / "webhooks.yaml").read_text()):
        if not document:
            continue
        kept = []
        for hook in document.get("webhooks") or []:
            path = hook["clientConfig"]["service"]["path"]
            if not any(marker in path for marker in _WEBHOOK_PATHS):
                continue
            hook["clientConfig"] = {"url": f"https://127.0.0.1:{port}{path}", "caBundle": ca_bundle}
            if "-batch-v1-job" in path:
                hook["objectSelector"] = {"matchExpressions": [{"key": QUEUE_LABEL, "operator": "Exists"}]}
            hook["timeoutSeconds"] = 10
            kept.append(hook)
        kind = document["kind"]
        name = "kueue-mutating-webhooks" if kind.startswith("Mutating") else "kueue-validating-webhooks"
        documents.append({**document, "metadata": {"name": name}, "webhooks": kept})
    return documents


def _configuration(state: Path, port: int) -> Path:
    cert_dir = state / "webhook-certs"
    path = state / "kueue-config.yaml"
    document = {
        "apiVersion": "config.kueue.x-k8s.io/v1beta2",
        "kind": "Configuration",
        "namespace": KUEUE_NAMESPACE,
        "health": {"healthProbeBindAddress": f"127.0.0.1:{free_port()}"},
        "metrics": {"bindAddress": "0"},
        "webhook": {"port": port, "host": "127.0.0.1", "certDir": str(cert_dir)},
        "leaderElection": {"leaderElect": False},
        "internalCertManagement": {"enable": False},
        "manageJobsWithoutQueueName": False,
        "integrations": {"frameworks": ["batch/job"]},
        "clientConnection": {"qps": 50, "burst": 100},
    }
    path.write_text(yaml.safe_dump(document))
    return path


def _serving(port: int, ca_file: Path) -> bool:
    context = ssl.create_default_context(cafile=str(ca_file))
    try:
        with (
            socket.create_connection(("127.0.0.1", port), timeout=2) as sock,
            context.wrap_socket(sock, server_hostname="127.0.0.1"),
        ):
            return True
    except OSError:
        return False


def _metrics_certificate(serving_cert: Path, serving_key: Path) -> list[Path]:
    """Writes the certificate Kueue insists on; returns what it created (none if it was there)."""
    if (METRICS_CERT_DIR / "tls.crt").exists() and (METRICS_CERT_DIR / "tls.key").exists():
        return []
    missing = [d for d in (*reversed(METRICS_CERT_DIR.parents[:-1]), METRICS_CERT_DIR) if not d.exists()]
    try:
        METRICS_CERT_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copy(serving_cert, METRICS_CERT_DIR / "tls.crt")
        shutil.copy(serving_key, METRICS_CERT_DIR / "tls.key")
        return [*missing, METRICS_CERT_DIR / "tls.crt", METRICS_CERT_DIR / "tls.key"]
    except OSError as error:
        raise KueueError(
            f"Kueue needs a certificate at {METRICS_CERT_DIR} (it reads that path when it does not "
            f"manage its own certificates) and it cannot be written: {error}; run as root or create it"
        ) from None


def start_kueue(cluster: Any, timeout: float = 120) -> Kueue:
    """Installs Kueue's CRDs and webhooks into `cluster` (a LocalCluster) and starts the controller."""
    config_dir = kueue_config_dir(cluster.bin_dir)
    state = cluster.state_dir / "kueue"
    shutil.rmtree(state, ignore_errors=True)
    (state / "webhook-certs").mkdir(parents=True)
    pki = cluster.pki
    shutil.copy(pki.serving_cert, state / "webhook-certs" / "tls.crt")
    shutil.copy(pki.serving_key, state / "webhook-certs" / "tls.key")
    created = _metrics_certificate(pki.serving_cert, pki.serving_key)

    crds = sorted((config_dir / "crd").glob("*.yaml"))
    cluster.kubectl("apply", "--server-side", *(arg for crd in crds for arg in ("-f", str(crd))), timeout=180)
    names = [f"crd/{yaml.safe_load(crd.read_text())['metadata']['name']}" for crd in crds]
    for _ in range(60):  # a CRD just created may not have its conditions yet: wait refuses it
        if (
            cluster.kubectl(
                "wait", "--for=condition=Established", *names, "--timeout=60s", check=False
            ).returncode
            == 0
        ):
            break
        time.sleep(1)
    namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": KUEUE_NAMESPACE}}
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump(namespace))

    port = free_port()
    process = cluster.processes.start(
        "kueue",
        [
            str(cluster.bin_dir / "kueue"),
            f"--config={_configuration(state, port)}",
            f"--kubeconfig={cluster.kubeconfig}",
            f"--visibility-server-port={free_port()}",
            "--feature-gates=VisibilityOnDemand=false",
        ],
    )
    deadline = time.monotonic() + timeout
    while not _serving(port, pki.ca_cert):
        if not process.alive() or time.monotonic() > deadline:
            with contextlib.suppress(Exception):
                process.stop()
            raise KueueError(f"Kueue's webhooks did not start on 127.0.0.1:{port}:\n{process.log_tail(40)}")
        time.sleep(0.5)
    ca_bundle = base64.b64encode(pki.ca_cert.read_bytes()).decode()
    cluster.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(_webhooks(config_dir, port, ca_bundle)))
    return Kueue(process, port, created)
