"""Thin async access to the Kubernetes API calls the controller makes (and nothing else).

The official client is synchronous, so every call runs in a worker thread. The
set of calls here is the controller's RBAC: the chart's ClusterRole grants
exactly these verbs (tests/unit/test_rbac.py compares them). No Secret is ever
read: dataset work runs in pods that get the database URI from the kubelet.
Creates treat 409 Conflict as success (idempotent); any other 4xx but 429 is
the server refusing the child for good (`ChildRefused`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from typing import Any

from kubernetes import client, config
from kubernetes.client.rest import ApiException
from urllib3.exceptions import HTTPError

from contract.wire import COMPONENT_LABEL, RUN_UID_LABEL
from controller import metrics
from controller.api import GROUP, PLURAL, VERSION
from controller.queueing import KUEUE_GROUP, KUEUE_VERSION, WORKLOAD_JOB_UID_LABEL

log = logging.getLogger("autolabel.controller")
STATUS_BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0, 10.0)
CONNECTIONS = 32


class RunGone(Exception):
    """The run no longer exists (404): there is no status to write."""


class ChildRefused(Exception):
    """The API server refused to create a child (4xx other than 409 Conflict and 429 Too Many Requests).

    Retrying cannot help: the object as built is invalid or forbidden. `message` is the server's own.
    """

    def __init__(self, kind: str, name: str, status: int, reason: str, message: str) -> None:
        super().__init__(f"{kind} {name}: {status} {reason}: {message}")
        self.kind, self.name, self.status, self.reason, self.message = kind, name, status, reason, message


def refusal(manifest: Mapping[str, Any], error: ApiException) -> ChildRefused | None:
    """The ChildRefused an ApiException from creating `manifest` means, or None when it may pass later."""
    status = int(error.status or 0)
    if not 400 <= status < 500 or status in (409, 429):
        return None
    try:
        body = json.loads(error.body or "{}")
    except (TypeError, ValueError):
        body = {}
    body = body if isinstance(body, dict) else {}
    return ChildRefused(
        str(manifest.get("kind")),
        str(manifest["metadata"]["name"]),
        status,
        str(body.get("reason") or error.reason or "Refused"),
        str(body.get("message") or error.body or error.reason or "")[:2048],
    )


def load_client() -> Any:
    """In-cluster credentials when running in a pod, else the kubeconfig (KUBECONFIG or ~/.kube/config)."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    configuration = client.Configuration.get_default_copy()
    # As many pooled connections as threads making calls (operator_config.KUBE_THREADS): no new TLS per call.
    configuration.connection_pool_maxsize = CONNECTIONS
    return client.ApiClient(configuration)


class Kube:
    """The controller's API calls, each awaited off the event loop."""

    def __init__(self, api_client: Any) -> None:
        self.api = api_client
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.apps = client.AppsV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)

    @staticmethod
    def _json(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """The server's JSON as plain dicts: the client's model classes cost far more CPU to build."""
        response = call(*args, _preload_content=False, **kwargs)
        result: dict[str, Any] = json.loads(response.data)
        return result

    async def read_job(self, namespace: str, name: str) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            try:
                return self._json(self.batch.read_namespaced_job, name, namespace)
            except ApiException as error:
                if error.status == 404:
                    return None
                raise

        return await asyncio.to_thread(read)

    async def list_run_pods(
        self, namespace: str, run_uid: str, component: str = "worker"
    ) -> list[dict[str, Any]]:
        """The run's pods of one component (the worker shards unless told)."""

        def read() -> list[dict[str, Any]]:
            selector = f"{RUN_UID_LABEL}={run_uid},{COMPONENT_LABEL}={component}"
            return list(
                self._json(self.core.list_namespaced_pod, namespace, label_selector=selector)["items"]
            )

        return await asyncio.to_thread(read)

    async def list_job_pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            pods = self._json(self.core.list_namespaced_pod, namespace, label_selector=f"job-name={job}")
            return list(pods["items"])

        return await asyncio.to_thread(read)

    async def list_run_jobs(self, namespace: str, run_uid: str, component: str) -> list[dict[str, Any]]:
        def read() -> list[dict[str, Any]]:
            selector = f"{RUN_UID_LABEL}={run_uid},{COMPONENT_LABEL}={component}"
            return list(
                self._json(self.batch.list_namespaced_job, namespace, label_selector=selector)["items"]
            )

        return await asyncio.to_thread(read)

    async def read_config_map(self, namespace: str, name: str) -> dict[str, Any] | None:
        def read() -> dict[str, Any] | None:
            try:
                return self._json(self.core.read_namespaced_config_map, name, namespace)
            except ApiException as error:
                if error.status == 404:
                    return None
                raise

        return await asyncio.to_thread(read)

    async def patch_config_map(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        """Merge-patches a ConfigMap (a key set to None is removed); absent is fine."""

        def update() -> None:
            try:
                self.core.patch_namespaced_config_map(name, namespace, dict(patch))
            except ApiException as error:
                if error.status != 404:
                    raise

        await asyncio.to_thread(update)

    async def list_events(self, namespace: str, kind: str, name: str) -> list[dict[str, Any]]:
        """The Events about one object (the Job's FailedCreate says why its pods do not exist)."""

        def read() -> list[dict[str, Any]]:
            selector = f"involvedObject.kind={kind},involvedObject.name={name}"
            return list(
                self._json(self.core.list_namespaced_event, namespace, field_selector=selector)["items"]
            )

        return await asyncio.to_thread(read)

    async def read_config_map_data(self, namespace: str, name: str) -> dict[str, str] | None:
        def read() -> dict[str, str] | None:
            try:
                config_map = self._json(self.core.read_namespaced_config_map, name, namespace)
                return dict(config_map.get("data") or {})
            except ApiException as error:
                if error.status == 404:
                    return None
                raise

        return await asyncio.to_thread(read)

    async def create(self, manifest: Mapping[str, Any]) -> bool:
        """Creates a Job, Deployment or ConfigMap; False when it already existed."""
        namespace = manifest["metadata"]["namespace"]

        def create() -> bool:
            try:
                if manifest["kind"] == "Job":
                    self.batch.create_namespaced_job(namespace, dict(manifest))
                elif manifest["kind"] == "Deployment":
                    self.apps.create_namespaced_deployment(namespace, dict(manifest))
                else:
                    self.core.create_namespaced_config_map(namespace, dict(manifest))
            except ApiException as error:
                if error.status == 409:
                    return False
                refused = refusal(manifest, error)
                if refused is not None:
                    raise refused from error
                raise
            return True

        return await asyncio.to_thread(create)

    async def delete_job(self, namespace: str, name: str) -> None:
        """Deletes the Job and, through the garbage collector, its pods; absent is fine."""

        def delete() -> None:
            try:
                self.batch.delete_namespaced_job(name, namespace, propagation_policy="Background")
            except ApiException as error:
                if error.status != 404:
                    raise

        await asyncio.to_thread(delete)

    async def patch_run_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Merge-patches an AutoLabelRun's status subresource."""
        await asyncio.to_thread(
            self.custom.patch_namespaced_custom_object_status,
            GROUP,
            VERSION,
            namespace,
            PLURAL,
            name,
            {"status": dict(status)},
        )

    async def write_run_status(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        """Sends the status patch until the server holds it; RunGone on 404, ApiException on 422.

        A refused write (409 or 5xx from the server or a proxy, a dropped connection) is sent
        again with a growing back-off. The caller holds the run's lock, so no later write of
        the same run can overtake it. (tenacity is not in the lock file; adding it would
        rebuild the shared virtualenv, and the loop is this small.)
        """
        attempt = 0
        while True:
            try:
                await self.patch_run_status(namespace, name, status)
                return
            except ApiException as error:
                if error.status == 404:
                    raise RunGone(f"{namespace}/{name}") from error
                if error.status == 422:
                    raise
                failure = f"{error.status} {error.reason}"
            except (OSError, HTTPError) as error:  # the connection failed: the write may not have landed
                failure = f"{type(error).__name__}: {error}"
            metrics.STATUS_WRITE_RETRIES.inc()
            delay = STATUS_BACKOFF_SECONDS[min(attempt, len(STATUS_BACKOFF_SECONDS) - 1)]
            log.warning(
                "status of run %s/%s not written (%s); again in %.1fs", namespace, name, failure, delay
            )
            attempt += 1
            await asyncio.sleep(delay)

    async def patch_job(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        await asyncio.to_thread(self.batch.patch_namespaced_job, name, namespace, dict(patch))

    async def patch_deployment(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        """Strategic-merge-patches a Deployment (the client's default for an object body)."""
        await asyncio.to_thread(self.apps.patch_namespaced_deployment, name, namespace, dict(patch))

    # -- Kueue (runs with spec.execution.queueName) -------------------------------------------------

    async def local_queue_exists(self, namespace: str, name: str) -> tuple[bool, bool]:
        """(the LocalQueue exists, Kueue's API is installed at all)."""

        def read() -> tuple[bool, bool]:
            try:
                self.custom.get_namespaced_custom_object(
                    KUEUE_GROUP, KUEUE_VERSION, namespace, "localqueues", name
                )
                return True, True
            except ApiException as error:
                if error.status != 404:
                    raise
                return False, _names_a_missing_object(error)

        return await asyncio.to_thread(read)

    async def read_job_workload(self, namespace: str, job_uid: str) -> dict[str, Any] | None:
        """Kueue's Workload of a Job (labelled with the Job's uid), if Kueue made one."""

        def read() -> dict[str, Any] | None:
            try:
                found = self.custom.list_namespaced_custom_object(
                    KUEUE_GROUP,
                    KUEUE_VERSION,
                    namespace,
                    "workloads",
                    label_selector=f"{WORKLOAD_JOB_UID_LABEL}={job_uid}",
                )
            except ApiException as error:
                if error.status == 404:
                    return None
                raise
            items = found.get("items") or []
            items.sort(key=lambda workload: workload["metadata"].get("creationTimestamp") or "")
            return dict(items[-1]) if items else None

        return await asyncio.to_thread(read)

    async def patch_workload(self, namespace: str, name: str, patch: Mapping[str, Any]) -> None:
        await asyncio.to_thread(
            self.custom.patch_namespaced_custom_object,
            KUEUE_GROUP,
            KUEUE_VERSION,
            namespace,
            "workloads",
            name,
            dict(patch),
        )


def _names_a_missing_object(error: ApiException) -> bool:
    """A 404 about the object (the API exists) rather than about the resource type (no such API)."""
    try:
        details = json.loads(error.body or "{}").get("details") or {}
    except ValueError:
        return False
    return bool(details.get("name"))
