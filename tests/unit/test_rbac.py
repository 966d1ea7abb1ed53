"""Every grant of the chart is a call the code makes, and every call the code makes is granted.

The controller's API calls are the methods of `controller.kube.Kube` (the only
controller module besides the user CLI that imports the Kubernetes client);
the pods' calls are the ConfigMap calls of `runtime.kube` (progress,
step verdicts, the review agent's list and watch). Both are read from the source, mapped to (apiGroup,
resource, verb) and compared with the Roles in charts/autolabel-operator/templates.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from tests.layout import POD_PACKAGES

REPO = Path(__file__).resolve().parents[2]
TEMPLATES = REPO / "charts" / "autolabel-operator" / "templates"
Grant = tuple[str, str, str]

_CALL = re.compile(r"\.(read|list|create|patch|delete|replace)_namespaced_(\w+?)(?=[(,])")
_VERB = {
    "read": "get",
    "get": "get",
    "list": "list",
    "create": "create",
    "patch": "patch",
    "delete": "delete",
}
_RESOURCE = {
    "job": ("batch", "jobs"),
    "deployment": ("apps", "deployments"),
    "pod": ("", "pods"),
    "config_map": ("", "configmaps"),
    "event": ("", "events"),
    "custom_object_status": ("autolabel.dev", "autolabelruns/status"),
}
# What kopf itself calls for the controller (it is not in our source).
KOPF_CALLS: set[Grant] = {
    ("autolabel.dev", "autolabelruns", "list"),
    ("autolabel.dev", "autolabelruns", "watch"),
    ("autolabel.dev", "autolabelruns", "patch"),  # its finalizer and progress annotations
    ("", "events", "create"),
    ("events.k8s.io", "events", "create"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    ("", "namespaces", "list"),
    ("", "namespaces", "watch"),
    # The watches of the runs' children (controller/handlers.py: on_child).
    ("batch", "jobs", "list"),
    ("batch", "jobs", "watch"),
    ("", "pods", "list"),
    ("", "pods", "watch"),
    ("", "configmaps", "list"),
    ("", "configmaps", "watch"),
    ("kueue.x-k8s.io", "workloads", "watch"),  # on_workload: Kueue's verdicts on queued runs
}
# Children carry blockOwnerDeletion (OwnerReferencesPermissionEnforcement asks for this).
OWNER_CALLS: set[Grant] = {("autolabel.dev", "autolabelruns/finalizers", "update")}


# Kueue's objects (runs with spec.execution.queueName): `<verb>_namespaced_custom_object`, then
# (or, passed as a function, after it) the group constant, the version and the plural.
_KUEUE_CALL = re.compile(
    r"\.(get|list|patch)_namespaced_custom_object[(,]\s*KUEUE_GROUP,\s*KUEUE_VERSION,\s*\w+,\s*\"(\w+)\""
)


# A watch: the list call handed to `watch.Watch().stream(...)`.
_WATCH = re.compile(r"\.stream\(\s*\w+\.list_namespaced_(\w+?)(?=[(,])")


def calls_in(*paths: Path) -> set[Grant]:
    grants: set[Grant] = set()
    for path in paths:
        text = path.read_text()
        for kind in _WATCH.findall(text):
            grants.add((*_RESOURCE[kind], "watch"))
        for verb, kind in _CALL.findall(text):
            if kind == "custom_object":
                continue  # Kueue's, read below
            group, resource = _RESOURCE[kind]
            grants.add((group, resource, _VERB[verb]))
        for verb, plural in _KUEUE_CALL.findall(text):
            grants.add(("kueue.x-k8s.io", plural, _VERB.get(verb, verb)))
    return grants


def role_grants(template: str, kind: str) -> set[Grant]:
    """The rules of the `kind` objects of a chart template (Helm directives dropped)."""
    text = (TEMPLATES / template).read_text()
    grants: set[Grant] = set()
    for document in text.split("\n---"):
        if f"\nkind: {kind}\n" not in f"\n{document}" or "rules:" not in document:
            continue
        rules_text = document[document.index("rules:") :]
        plain = "\n".join(line for line in rules_text.splitlines() if "{{" not in line)
        for rule in yaml.safe_load(plain)["rules"]:
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    grants.update((group, resource, verb) for verb in rule["verbs"])
    return grants


def test_only_kube_py_calls_the_api_in_the_controller() -> None:
    importers = {
        path.name
        for path in (REPO / "controller").rglob("*.py")
        if re.search(r"^(from|import) kubernetes", path.read_text(), re.MULTILINE)
    }
    assert importers <= {"kube.py", "cli.py"}  # cli.py: the user's own CLI, with the user's kubeconfig


def test_controller_cluster_role_is_exactly_the_calls_it_makes() -> None:
    controller = calls_in(REPO / "controller" / "kube.py")
    assert ("batch", "jobs", "create") in controller  # the parser sees the calls
    assert ("kueue.x-k8s.io", "workloads", "patch") in controller
    granted = role_grants("clusterrole.yaml", "ClusterRole")
    assert granted == controller | KOPF_CALLS | OWNER_CALLS
    assert not {g for g in granted if g[1] == "secrets"}  # never a database Secret


def test_worker_role_is_exactly_the_configmap_calls_of_its_pods() -> None:
    pods = calls_in(*sorted(path for package in POD_PACKAGES for path in (REPO / package).rglob("*.py")))
    assert pods == {("", "configmaps", verb) for verb in ("get", "list", "patch", "watch")}
    assert role_grants("worker-rbac.yaml", "Role") == pods
