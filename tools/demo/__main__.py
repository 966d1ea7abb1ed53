"""`python -m tools.demo [--real-node] [--keep] [--no-finalize] [--images N]`: the whole flow, locally.

Starts a mongod, a real Triton server with the project's models, the local
control plane (no container runtime: the controller and the worker pods run as
local processes, see tools/demo/stack.py), builds a FiftyOne dataset from the
real photos shipped in scikit-image, installs the CRD and RBAC with the Helm
chart, applies three AutoLabelRuns (detection, classification with embeddings,
segmentation), shows their progress, applies approval rules once they are in
Review (a `kubectl apply` of the edited manifests, as GitOps would), finalizes
them with the `autolabel` CLI and prints a summary and the FiftyOne App URLs.

With --real-node the runs go to a real kubelet node: the controller runs as
the chart's Deployment and every pod of the runs as a container of the image
built from the Dockerfile, the photos read from a MinIO bucket
(tools/demo/realnode.py); in Review it shows `kubectl get pods -o wide`.

Without --keep every process it started is stopped, and the demo checks that
none survives. With --keep it serves the FiftyOne App and keeps everything
running until Ctrl-C. --no-finalize stops at Review, so the run's saved views
and embeddings plot can be explored (with --keep) before anything is removed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any

from tools.demo import realnode
from tools.demo.runs import DEMO_RUNS, PROGRESS_HEADER, manifest, progress_line, summary, with_rules
from tools.demo.stack import DATABASE_NAME, DemoStack, kill_survivors, survivors
from tools.images import write_images

REPO_ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "labeling"
DATASET = "autolabel-demo"
START = time.monotonic()
FINALIZE_TIMEOUT_S = 300  # finalize of a few dozen labels takes seconds; never hang on it


def say(message: str) -> None:
    print(f"[{time.monotonic() - START:6.1f}s] {message}", flush=True)


def build_dataset(directory: Path, count: int) -> tuple[Any, list[Path]]:
    """A persistent FiftyOne dataset of `count` real photos (skimage.data, varied a little); the photos."""
    import fiftyone as fo

    fo.config.show_progress_bars = False
    paths = write_images(directory, count)
    dataset = fo.Dataset(DATASET, persistent=True, overwrite=True)
    dataset.add_samples([fo.Sample(filepath=str(path)) for path in paths])
    return dataset, paths


def kubectl_json(stack: DemoStack, *args: str) -> Any:
    assert stack.cluster is not None
    return json.loads(stack.cluster.kubectl(*args, "-o", "json").stdout)


def apply(stack: DemoStack, document: dict[str, Any]) -> None:
    assert stack.cluster is not None
    stack.cluster.kubectl("apply", "-f", "-", input=json.dumps(document))


def autolabel(stack: DemoStack, *argv: str) -> str:
    """The `autolabel` CLI with the admin kubeconfig, as a user would run it."""
    assert stack.cluster is not None
    command = [sys.executable, "-m", "controller.cli", "--kubeconfig", str(stack.cluster.kubeconfig)]
    done = subprocess.run(
        [*command, "-n", NAMESPACE, *argv], capture_output=True, text=True, timeout=120, cwd=REPO_ROOT
    )
    if done.returncode != 0:
        raise RuntimeError(f"autolabel {' '.join(argv)} exited {done.returncode}: {done.stderr.strip()}")
    return done.stdout


def watch(
    stack: DemoStack, done: Callable[[dict[str, Any]], bool], timeout_s: float, what: str
) -> list[dict[str, Any]]:
    """Prints a progress line whenever a run's changes; returns the runs once `done` holds for all."""
    say(PROGRESS_HEADER)
    shown: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while True:
        runs = sorted(kubectl_json(stack, "get", "alr", "-n", NAMESPACE)["items"], key=_order)
        if stack.real_node and stack.cluster is not None:  # for the check that no container outlives the demo
            stack.seen_pods |= realnode.pod_uids(stack.cluster)
        for run in runs:
            line = progress_line(run)
            if shown.get(run["metadata"]["name"]) != line:
                shown[run["metadata"]["name"]] = line
                say(line)
        if all(done(run) for run in runs):
            return runs
        if time.monotonic() > deadline:
            say(f"gave up waiting for {what} after {timeout_s:.0f}s; controller log tail:")
            print(stack.controller_log_tail(), flush=True)
            return runs
        time.sleep(2)


def _order(run: dict[str, Any]) -> int:
    return [r.name for r in DEMO_RUNS].index(run["metadata"]["name"])


def _phase(run: dict[str, Any]) -> str:
    return str((run.get("status") or {}).get("phase") or "")


def _rules_applied(run: dict[str, Any]) -> bool:
    review = (run.get("status") or {}).get("review") or {}
    return _phase(run) == "Failed" or review.get("rulesAppliedGeneration") == run["metadata"]["generation"]


def app_url(base: str, view: str | None = None) -> str:
    from fiftyone.core.utils import to_slug

    return f"{base}/datasets/{DATASET}" + (f"?view={to_slug(view)}" if view else "")


def demo(stack: DemoStack, args: argparse.Namespace) -> int:
    node = "a real kubelet node, every pod in a container" if args.real_node else "the local pod runner"
    say(
        f"autolabel-operator demo: real control plane ({node}), real Triton models, real images, "
        "real FiftyOne"
    )
    stack.start(say)
    images = stack.work_dir / "images"
    dataset, paths = build_dataset(images, args.images)
    say(f"FiftyOne dataset '{DATASET}': {len(dataset)} real photos from scikit-image (skimage.data)")
    stack.install_operator(say)
    assert stack.cluster is not None and stack.mongo is not None and stack.triton is not None
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "fiftyone-db", "namespace": NAMESPACE},
        "stringData": {"uri": stack.mongo.uri, "database": DATABASE_NAME},
    }
    apply(stack, secret)
    media = None
    if stack.minio is not None:
        realnode.upload_media(stack.minio, paths)
        apply(stack, realnode.media_secret(NAMESPACE, stack.minio.credentials_env()))
        media = realnode.media_spec(images.resolve(), stack.minio.endpoint, realnode.MEDIA_SECRET)
        say(
            f"the containers cannot see {images}: the photos are in the MinIO bucket "
            f"{realnode.MEDIA_BUCKET}, each run's dataset.media maps the dataset's filepaths to it "
            f"(keys in Secret {realnode.MEDIA_SECRET})"
        )
    documents = {
        run.name: manifest(run, NAMESPACE, DATASET, stack.triton.grpc_url, media) for run in DEMO_RUNS
    }
    for run in DEMO_RUNS:
        apply(stack, documents[run.name])
        say(f"applied AutoLabelRun {run.name}: {run.task} with {run.model['name']} -> '{run.label_field}'")
    runs = watch(stack, lambda r: _phase(r) in {"Review", "Failed"}, args.timeout, "Review")
    review_ready = [r["metadata"]["name"] for r in runs if _phase(r) == "Review"]
    for run in DEMO_RUNS:
        if run.name in review_ready:
            rules = {"approve": run.approve, "reject": run.reject}
            say(f"GitOps: kubectl apply {run.name} with spec.review {json.dumps(rules)}")
            apply(stack, with_rules(documents[run.name], run))
    runs = watch(stack, _rules_applied, args.timeout, "the approval rules")
    reviews = {r["metadata"]["name"]: dict(r["status"].get("review") or {}) for r in runs if "status" in r}
    if args.real_node:
        say("$ kubectl get pods -A -o wide   (where each pod ran)\n" + pods_wide(stack))
    say("$ autolabel list\n" + autolabel(stack, "list"))
    if "imagenet" in review_ready:
        say("$ autolabel status imagenet\n" + autolabel(stack, "status", "imagenet"))
    if args.no_finalize:
        say("--no-finalize: the runs stay in Review")
    else:
        for name in review_ready:
            say(f"$ autolabel finalize {name}\n" + autolabel(stack, "finalize", name).strip())
        runs = watch(stack, lambda r: _phase(r) in {"Finalized", "Failed"}, FINALIZE_TIMEOUT_S, "Finalized")
    print("\n=== Summary " + "=" * 68, flush=True)
    print("\n".join(summary(runs, reviews)), flush=True)
    views = explore_views(dataset, runs, reviews)
    base = f"http://127.0.0.1:{args.app_port}"
    print(f"\nFiftyOne App: {app_url(base)}" + ("" if args.keep else "  (served with --keep)"), flush=True)
    for view in views:
        print(f"  {view:<34} {app_url(base, view)}", flush=True)
    everything_done = all(_phase(r) == ("Review" if args.no_finalize else "Finalized") for r in runs)
    if not everything_done:
        print("Not every run reached " + ("Review" if args.no_finalize else "Finalized"), flush=True)
    say(f"demo flow done in {time.monotonic() - START:.0f}s")
    if args.keep:
        keep_running(stack, base)
    return 0 if everything_done else 1


def pods_wide(stack: DemoStack) -> str:
    assert stack.cluster is not None
    return stack.cluster.kubectl("get", "pods", "-A", "-o", "wide").stdout.rstrip()


def explore_views(dataset: Any, runs: list[dict[str, Any]], reviews: dict[str, dict[str, Any]]) -> list[str]:
    """The run's saved views while in Review; after finalize, one view per run of the kept labels."""
    from fiftyone import ViewField as F

    dataset.reload()
    names = []
    for run in runs:
        name, field = run["metadata"]["name"], run["spec"]["labelField"]
        if _phase(run) == "Finalized" and dataset.has_sample_field(field):
            view_name = f"{name}-kept"
            dataset.save_view(view_name, dataset.match(F(field).exists()), overwrite=True)
            names.append(view_name)
        else:
            names += [
                v for v in (reviews.get(name) or {}).get("savedViews") or [] if dataset.has_saved_view(v)
            ]
    return names


def keep_running(stack: DemoStack, base: str) -> None:
    assert stack.cluster is not None
    stack.start_app(int(base.rsplit(":", 1)[1]))
    bin_dir = stack.cluster.state_dir / "bin"
    print(
        f"\n--keep: everything stays up; the App is at {base}\n"
        f"  export KUBECONFIG={stack.cluster.kubeconfig}\n"
        f"  {bin_dir}/kubectl get alr -n {NAMESPACE}\n"
        + (
            f"  {bin_dir}/kubectl get pods -A -o wide   # the controller and the runs' pods\n"
            if stack.real_node
            else ""
        )
        + f"  {sys.executable} -m controller.cli -n {NAMESPACE} status imagenet\n"
        f"  FIFTYONE_DATABASE_URI={stack.env['FIFTYONE_DATABASE_URI']} "
        f"FIFTYONE_DATABASE_NAME={DATABASE_NAME} {sys.executable}   # then fo.load_dataset('{DATASET}')\n"
        f"  logs: {stack.work_dir}\n"
        "Press Ctrl-C to stop everything.",
        flush=True,
    )
    while True:
        signal.pause()


def _terminate(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demo", description=__doc__)
    parser.add_argument(
        "--real-node",
        action="store_true",
        help="run the controller and every pod in containers on a real kubelet node (root; see docs/demo.md)",
    )
    parser.add_argument("--keep", action="store_true", help="keep everything running, serve the App")
    parser.add_argument("--no-finalize", action="store_true", help="stop at Review (saved views remain)")
    parser.add_argument("--images", type=int, default=12, help="photos in the dataset (default 12)")
    parser.add_argument("--timeout", type=float, default=900, help="seconds to wait for each phase")
    parser.add_argument("--app-port", type=int, default=5151)
    parser.add_argument("--work-dir", type=Path, default=REPO_ROOT / ".demo")
    args = parser.parse_args(argv)
    if args.real_node and os.geteuid() != 0:
        parser.error(
            "--real-node needs root (the kubelet, containerd and the pod bridge); make demo ARGS=--real-node "
            "installs the Debian packages (tools/node-packages.sh) and builds the kubelet first"
        )
    signal.signal(signal.SIGTERM, _terminate)
    shutil.rmtree(args.work_dir, ignore_errors=True)
    stack = DemoStack(args.work_dir.resolve(), NAMESPACE, uuid.uuid4().hex, real_node=args.real_node)
    code = 1
    try:
        code = demo(stack, args)
    except KeyboardInterrupt:
        print(flush=True)
        say("interrupted")
        code = 0 if args.keep else 130
    except Exception as error:
        say(f"demo failed: {error!r}\nlogs are under {stack.work_dir}")
        code = 1
    finally:
        say("stopping every process the demo started ...")
        if stack.real_node and stack.cluster is not None:
            with contextlib.suppress(Exception):
                stack.seen_pods |= realnode.pod_uids(stack.cluster)
        stack.stop()
        leftovers = kill_survivors(stack.marker)
        for pid, command in leftovers:
            say(f"  had to kill a leftover process {pid}: {command[:120]}")
        containers = realnode.pod_processes(stack.seen_pods)
        remaining = survivors(stack.marker) + containers
        if stack.real_node:
            say(
                f"no process in the cgroup of any of the {len(stack.seen_pods)} pods the demo saw"
                if not containers
                else f"CONTAINER PROCESSES OUTLIVED THE NODE: {containers}"
            )
        say("no process of the demo survives" if not remaining else f"STILL RUNNING: {remaining}")
        if leftovers or remaining:
            code = code or 1
    say(f"total {time.monotonic() - START:.0f}s, exit {code}")
    return code


if __name__ == "__main__":
    sys.exit(main())
