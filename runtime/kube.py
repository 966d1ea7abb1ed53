"""The pods' only channel to the Kubernetes API: step verdicts, the result ConfigMaps, the API client.

A dataset step's verdict is one JSON line on stdout and the key of the run's result
ConfigMap (`publish`); `runtime.reporters` patches the progress ConfigMap with the
client from `core_api`; the review agent watches its requests (`ConfigMapWatch`)
and writes its verdicts (`read_config_map`, `write_key`). The verdict is a contract
model (`contract.verdicts`); the controller reads it with the same model.

The controller starts each dataset step (probe, review, finalize, discard) as a
one-shot Job in the run's namespace and reads the verdict from the key
``$AUTOLABEL_RESULT_KEY`` of ConfigMap ``$AUTOLABEL_RESULT_CONFIG_MAP`` (the run's
namespace). The pod's ServiceAccount needs only ``patch`` on it. Without the
variables (a local run) the verdict goes to stdout only. The review agent also
watches the result ConfigMaps (its requests) and writes its verdicts into them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from contract.env import RESULT_CONFIG_MAP_ENV, RESULT_KEY_ENV
from contract.wire import WireModel
from runtime.redact import scrub

LOG = logging.getLogger(__name__)


def core_api() -> Any:
    """The Kubernetes API with the pod's own credentials (or the kubeconfig, locally)."""
    from kubernetes import client, config

    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]
    return client.CoreV1Api()


def publish(namespace: str, verdict: WireModel) -> None:
    """Prints the verdict, then writes it into the result ConfigMap (retried: the controller waits on it).

    The text is scrubbed of the database's credentials first: pymongo's errors quote parts of
    the URI, and the controller copies a verdict's message into status and Events.
    """
    text = scrub(verdict.to_json())
    print(text, flush=True)
    name, key = os.environ.get(RESULT_CONFIG_MAP_ENV), os.environ.get(RESULT_KEY_ENV)
    if not name or not key:
        return
    api = core_api()
    for attempt in range(5):
        try:
            api.patch_namespaced_config_map(name, namespace, {"data": {key: text}})
            return
        except Exception as error:
            if attempt == 4:
                raise
            LOG.warning("writing the verdict to configmap %s/%s failed: %s", namespace, name, error)
            time.sleep(1 + attempt)


class ConfigMapWatch:
    """The namespace's ConfigMaps matching a label selector, kept current by one list and a watch.

    A daemon thread lists once, then watches from that list's resourceVersion (listing again
    after an expired version or a broken stream); `snapshot()` is what it has seen so far and
    `on_change` is called after every change. An idle namespace costs one open watch.
    """

    def __init__(self, namespace: str, selector: str, on_change: Callable[[], None]) -> None:
        self.namespace, self.selector, self.on_change = namespace, selector, on_change
        self._items: dict[str, tuple[dict[str, str], dict[str, str]]] = {}
        self._lock = threading.Lock()
        self.synced = threading.Event()  # set once the first list is in

    def start(self) -> None:
        threading.Thread(target=self._run, name="configmap-watch", daemon=True).start()

    def snapshot(self) -> list[tuple[str, dict[str, str], dict[str, str]]]:
        """(name, labels, data) of every matching ConfigMap seen."""
        with self._lock:
            return [(name, labels, data) for name, (labels, data) in self._items.items()]

    def _put(self, obj: Any) -> None:
        with self._lock:
            self._items[obj.metadata.name] = (dict(obj.metadata.labels or {}), dict(obj.data or {}))

    def _run(self) -> None:
        from kubernetes import watch
        from kubernetes.client.rest import ApiException

        while True:
            try:
                api = core_api()
                listed = api.list_namespaced_config_map(self.namespace, label_selector=self.selector)
                with self._lock:
                    self._items = {}
                for obj in listed.items:
                    self._put(obj)
                self.synced.set()
                self.on_change()
                version = listed.metadata.resource_version
                while True:  # each stream ends after its timeout; go on from the last version seen
                    stream = watch.Watch().stream(
                        api.list_namespaced_config_map,
                        self.namespace,
                        label_selector=self.selector,
                        resource_version=version,
                        timeout_seconds=300,
                    )
                    for event in stream:
                        obj = event["object"]
                        version = obj.metadata.resource_version
                        if event["type"] == "DELETED":
                            with self._lock:
                                self._items.pop(obj.metadata.name, None)
                        elif event["type"] in ("ADDED", "MODIFIED"):
                            self._put(obj)
                        self.on_change()
            except ApiException as error:
                if error.status != 410:  # 410: the version expired; a fresh list is the cure
                    LOG.warning("watching configmaps of %s failed: %s", self.namespace, error)
                    time.sleep(2)
            except Exception as error:  # the API server went away: list again once it answers
                LOG.warning("watching configmaps of %s failed: %s", self.namespace, error)
                time.sleep(2)


def read_config_map(namespace: str, name: str) -> dict[str, str] | None:
    """A ConfigMap's data, None when it does not exist."""
    from kubernetes.client.rest import ApiException

    try:
        return dict(core_api().read_namespaced_config_map(name, namespace).data or {})
    except ApiException as error:
        if error.status == 404:
            return None
        raise


def write_key(namespace: str, name: str, key: str, text: str) -> None:
    core_api().patch_namespaced_config_map(name, namespace, {"data": {key: text}})
