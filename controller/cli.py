"""``autolabel``: review AutoLabelRuns from a terminal, through the Kubernetes API like kubectl.

Reads the kubeconfig as kubectl does (``--kubeconfig``, ``$KUBECONFIG``,
``~/.kube/config``; the context's namespace unless ``-n``). Commands that
change something only edit the run's spec (append ``spec.review`` rules, set
``spec.finalize`` / ``spec.discard``), so every decision is declarative, shows
in ``kubectl get -o yaml``, in Git when the manifest lives there, and in the
API server's audit log; the controller applies it to the dataset.

Installed as ``autolabel`` and as ``kubectl-autolabel`` (so ``kubectl autolabel
status my-run`` works as a kubectl plugin) by ``pip install "autolabel-operator[cli]"``,
which pulls only the Kubernetes client and pydantic. Failures read like kubectl's:
one line naming the API server and the cause (unreachable, credentials refused,
no AutoLabelRun CRD), never a traceback.

Exit codes: 0 done; 1 the API call failed; 2 bad arguments (e.g. a confidence
outside 0..1); 3 no such run; 4 not possible in the run's phase.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from pydantic import ValidationError

from controller.api import GROUP, PLURAL, VERSION, ReviewRule
from controller.cli_tables import phase, rule_text, table, write_status

EXIT_OK, EXIT_API, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_PHASE = 0, 1, 2, 3, 4
RULES_OPEN = {"Pending", "Queued", "Inferring", "Suspended", "Review"}
THROTTLED_ATTEMPTS = 10
REQUEST_TIMEOUT_S = (10, 60)  # (connect, read), as kubectl's default --request-timeout leaves it to TCP


class CliError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class RunsApi:
    """The three calls the CLI makes, on the AutoLabelRun custom resource."""

    def __init__(self, kubeconfig: str | None, context: str | None) -> None:
        from kubernetes import client, config

        configuration = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, context=context, client_configuration=configuration)
        configuration.retries = False  # one attempt, as kubectl; urllib3's retries log a traceback each
        logging.getLogger("urllib3").setLevel(logging.CRITICAL)
        self.server = str(configuration.host)
        self.api = client.CustomObjectsApi(client.ApiClient(configuration))
        try:
            contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)
            chosen = active if context is None else next(c for c in contexts if c["name"] == context)
            self.default_namespace = str((chosen.get("context") or {}).get("namespace") or "default")
        except Exception:
            self.default_namespace = "default"

    def _call(self, function: Callable[..., Any], *args: Any, name: str = "", namespace: str = "") -> Any:
        from kubernetes.client.rest import ApiException
        from urllib3.exceptions import HTTPError

        for attempt in range(1, THROTTLED_ATTEMPTS + 1):
            try:
                return function(GROUP, VERSION, namespace, PLURAL, *args, _request_timeout=REQUEST_TIMEOUT_S)
            except ApiException as error:
                # 429: throttled, or a new CRD's storage still initializing; wait as client-go does.
                if error.status != 429 or attempt == THROTTLED_ATTEMPTS:
                    raise api_error(self.server, error, name, namespace) from None
                retry_after = str((error.headers or {}).get("Retry-After") or "1")
                time.sleep(min(5.0, float(retry_after) if retry_after.isdigit() else 1.0))
            except (HTTPError, OSError) as error:
                raise CliError(
                    EXIT_API, f"cannot reach the Kubernetes API server {self.server}: {network_cause(error)}"
                ) from None
        raise AssertionError("unreachable")

    def get(self, namespace: str, name: str) -> dict[str, Any]:
        run: dict[str, Any] = self._call(
            self.api.get_namespaced_custom_object, name, name=name, namespace=namespace
        )
        return run

    def list(self, namespace: str) -> list[dict[str, Any]]:
        result = self._call(self.api.list_namespaced_custom_object, namespace=namespace)
        return list(result.get("items") or [])

    def patch(self, namespace: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        run: dict[str, Any] = self._call(
            self.api.patch_namespaced_custom_object, name, body, name=name, namespace=namespace
        )
        return run


def network_cause(error: BaseException) -> str:
    """The root of a connection failure in a few words ("connection refused", "timed out", a TLS error)."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        if isinstance(current, OSError) and current.strerror:
            return str(current.strerror).lower()
        reason = getattr(current, "reason", None)
        current = reason if isinstance(reason, BaseException) else (current.__cause__ or current.__context__)
    text = re.sub(r"^.*?Failed to establish a new connection:\s*", "", str(seen[-1]))
    text = re.sub(r"^\[Errno -?\d+\]\s*", "", text)
    return (text or type(seen[-1]).__name__).strip().rstrip(".").lower()


def _status_body(error: Any) -> dict[str, Any]:
    """The API server's Status object of a refused call ({} for a plain "404 page not found")."""
    try:
        body = json.loads(getattr(error, "body", None) or "")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def api_error(server: str, error: Any, name: str, namespace: str) -> CliError:
    """A refused API call as one line: kubectl's wording where kubectl has one."""
    status, body = int(error.status or 0), _status_body(error)
    message = str(body.get("message") or error.reason or "")
    if status == 404:
        if name and (body.get("details") or {}).get("name"):
            return CliError(EXIT_NOT_FOUND, f"autolabelrun {name!r} not found in namespace {namespace!r}")
        # No Status naming an object: the API server does not serve the resource at all.
        return CliError(
            EXIT_API,
            f"the server {server} doesn't have a resource type {PLURAL!r} ({GROUP}/{VERSION}): "
            "install the AutoLabelRun CRD (the Helm chart) first",
        )
    if status == 401:
        return CliError(
            EXIT_API, f"the server {server} refused the credentials (401 Unauthorized): check the kubeconfig"
        )
    if status == 403:
        return CliError(EXIT_API, f"the server {server} forbids it (403 Forbidden): {message}")
    if status == 409:
        return CliError(EXIT_API, "the run changed meanwhile; try again")
    return CliError(EXIT_API, f"the server {server} answered {status} {error.reason}: {message}")


def cmd_list(api: RunsApi, namespace: str, _: argparse.Namespace, out: TextIO) -> int:
    rows = [["NAME", "PHASE", "PROGRESS", "LABELS", "APPROVED", "REJECTED", "UNREVIEWED"]]
    for run in sorted(api.list(namespace), key=lambda r: r["metadata"]["name"]):
        status = run.get("status") or {}
        review = status.get("review") or {}
        rows.append(
            [
                run["metadata"]["name"],
                phase(run),
                str((status.get("progress") or {}).get("summary", "-")),
                *(str(review.get(key, "-")) for key in ("total", "approved", "rejected", "unreviewed")),
            ]
        )
    if len(rows) == 1:
        out.write(f"No AutoLabelRuns in namespace {namespace}.\n")
    else:
        table(rows, out)
    return EXIT_OK


def cmd_status(api: RunsApi, namespace: str, args: argparse.Namespace, out: TextIO) -> int:
    write_status(api.get(namespace, args.run), namespace, args.run, out)
    return EXIT_OK


def _require_phase(run: dict[str, Any], allowed: set[str], action: str) -> None:
    current = phase(run)
    if current not in allowed:
        raise CliError(
            EXIT_PHASE,
            f"cannot {action} run {run['metadata']['name']!r} in phase {current}"
            f" (needs {' or '.join(sorted(allowed))})",
        )


def _patch_spec(api: RunsApi, namespace: str, run: dict[str, Any], spec: dict[str, Any]) -> None:
    """Merge patch of the spec, refused (409) if the run changed since it was read."""
    body = {"metadata": {"resourceVersion": run["metadata"]["resourceVersion"]}, "spec": spec}
    api.patch(namespace, run["metadata"]["name"], body)


def _rule_from(args: argparse.Namespace) -> dict[str, Any]:
    document: dict[str, Any] = {}
    if args.classes:
        document["classes"] = sorted(set(args.classes))
    if args.min_confidence is not None:
        document["minConfidence"] = args.min_confidence
    if args.max_confidence is not None:
        document["maxConfidence"] = args.max_confidence
    try:
        return ReviewRule.model_validate(document).dump()
    except ValidationError as error:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in issue['loc']) or 'rule'}: {issue['msg']}" for issue in error.errors()
        )
        raise CliError(EXIT_USAGE, f"invalid rule: {problems}") from error


def cmd_decide(api: RunsApi, namespace: str, args: argparse.Namespace, out: TextIO) -> int:
    kind = "approve" if args.command == "approve" else "reject"
    rule = _rule_from(args)
    run = api.get(namespace, args.run)
    _require_phase(run, RULES_OPEN, kind)
    if (run.get("spec") or {}).get("finalize") or (run.get("spec") or {}).get("discard"):
        raise CliError(EXIT_PHASE, f"run {args.run!r} is already being finalized or discarded")
    rules = list(((run.get("spec") or {}).get("review") or {}).get(kind) or [])
    if rule in rules:
        out.write(f"{args.run}: rule already present: {kind} {rule_text(rule)}\n")
        return EXIT_OK
    _patch_spec(api, namespace, run, {"review": {kind: [*rules, rule]}})
    out.write(f"{args.run}: added rule {kind} {rule_text(rule)}; the controller applies it shortly\n")
    return EXIT_OK


def _without_class(rules: list[dict[str, Any]], name: str, known: list[str]) -> list[dict[str, Any]]:
    kept = []
    for rule in rules:
        classes = rule.get("classes")
        if classes is None:
            if not known:
                raise CliError(
                    EXIT_PHASE,
                    "a rule covers all classes and the run's classes are not known yet; retry later",
                )
            classes = known
        remaining = [c for c in classes if c != name]
        if remaining:
            kept.append({**rule, "classes": remaining})
    return kept


def cmd_undo(api: RunsApi, namespace: str, args: argparse.Namespace, out: TextIO) -> int:
    run = api.get(namespace, args.run)
    _require_phase(run, RULES_OPEN, "undo decisions of")
    if (run.get("spec") or {}).get("finalize"):
        raise CliError(EXIT_PHASE, f"run {args.run!r} is already being finalized; finalize cannot be undone")
    review = (run.get("spec") or {}).get("review") or {}
    known = [c["name"] for c in ((run.get("status") or {}).get("review") or {}).get("classes") or []]
    changed: dict[str, list[dict[str, Any]]] = {}
    for kind in ("approve", "reject"):
        rules = list(review.get(kind) or [])
        kept = [] if args.class_name is None else _without_class(rules, args.class_name, known)
        if kept != rules:
            changed[kind] = kept
    if not changed:
        out.write(f"{args.run}: no rules to undo\n")
        return EXIT_OK
    _patch_spec(api, namespace, run, {"review": changed})
    scope = f"class {args.class_name!r}" if args.class_name else "all classes"
    out.write(f"{args.run}: removed the approve/reject rules of {scope}\n")
    return EXIT_OK


def cmd_lifecycle(api: RunsApi, namespace: str, args: argparse.Namespace, out: TextIO) -> int:
    run = api.get(namespace, args.run)
    field = args.command
    if (run.get("spec") or {}).get(field):
        out.write(f"{args.run}: {field} already requested (phase {phase(run)})\n")
        return EXIT_OK
    allowed = {"Review"} if field == "finalize" else {"Review", "Failed"}
    _require_phase(run, allowed, field)
    _patch_spec(api, namespace, run, {field: True})
    out.write(f"{args.run}: {field} requested; `autolabel status {args.run}` shows the outcome\n")
    return EXIT_OK


def _confidence(text: str) -> float:
    try:
        value = float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from error
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is outside 0..1")
    return value


def program_name() -> str:
    """``kubectl autolabel`` when run as the kubectl plugin ``kubectl-autolabel``, else ``autolabel``."""
    invoked = os.path.basename(sys.argv[0] if sys.argv else "")
    return "kubectl autolabel" if invoked.startswith("kubectl-") else "autolabel"


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog=program_name(), description="Review and finalize AutoLabelRuns.")
    main.add_argument("-n", "--namespace", default=None, help="namespace (default: the context's)")
    main.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG)")
    main.add_argument("--context", default=None, help="kubeconfig context")
    commands = main.add_subparsers(dest="command", required=True)
    commands.add_parser("list", help="runs of the namespace with their review numbers")
    commands.add_parser("status", help="a run's per-class review table").add_argument("run")
    for kind in ("approve", "reject"):
        sub = commands.add_parser(kind, help=f"{kind} labels matching class/confidence (adds a spec rule)")
        sub.add_argument("run")
        sub.add_argument("--class", dest="classes", action="append", help="a class (repeatable)")
        sub.add_argument("--min-confidence", type=_confidence, default=None, help="lowest confidence")
        sub.add_argument("--max-confidence", type=_confidence, default=None, help="confidence below this")
    undo = commands.add_parser("undo", help="remove approve/reject rules (of one class)")
    undo.add_argument("run")
    undo.add_argument("--class", dest="class_name", default=None)
    commands.add_parser("finalize", help="keep approved labels, remove the rest (irreversible)").add_argument(
        "run"
    )
    commands.add_parser("discard", help="remove all predictions of the run (irreversible)").add_argument(
        "run"
    )
    return main


HANDLERS: dict[str, Callable[[RunsApi, str, argparse.Namespace, TextIO], int]] = {
    "list": cmd_list,
    "status": cmd_status,
    "approve": cmd_decide,
    "reject": cmd_decide,
    "undo": cmd_undo,
    "finalize": cmd_lifecycle,
    "discard": cmd_lifecycle,
}


def main(argv: Sequence[str] | None = None, api: RunsApi | None = None, out: TextIO | None = None) -> int:
    try:
        args = parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or bad arguments (argparse prints why)
        return int(exit_.code or 0)
    out = out or sys.stdout
    try:
        if api is None:
            try:
                api = RunsApi(args.kubeconfig, args.context)
            except Exception as error:
                raise CliError(EXIT_API, f"cannot load the kubeconfig: {error}") from None
        namespace = args.namespace or api.default_namespace
        return HANDLERS[args.command](api, namespace, args, out)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.code
    except Exception as error:  # an answer nobody foresaw (a proxy's HTML, a broken credential plugin)
        first_line = (str(error).strip().splitlines() or [""])[0][:300]
        print(f"error: {type(error).__name__}: {first_line}", file=sys.stderr)
        return EXIT_API


if __name__ == "__main__":
    sys.exit(main())
