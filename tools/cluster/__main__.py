"""`python -m tools.cluster up|down|serve`: the control plane as a long-lived background service.

`up` starts a supervisor process (`serve`) in its own session and waits until
the cluster is ready; the kubeconfig lands at `<state>/kubeconfig` and kubectl
and helm at `<state>/bin/`. `down` stops the supervisor, which stops every
component, then kills whatever PID files still name.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tools.cluster.harness import LocalCluster
from tools.cluster.processes import kill_recorded_pids, stop_process_group

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STATE_DIR = REPO_ROOT / ".cluster"


def serve(state_dir: Path, real_node: bool = False) -> int:
    """Runs the cluster in this process until SIGTERM/SIGINT."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    cluster = LocalCluster(state_dir, real_node=real_node).start()
    (state_dir / "ready").write_text(cluster.server)
    try:
        while not stopping.wait(1):
            pass
    finally:
        cluster.stop()
        (state_dir / "ready").unlink(missing_ok=True)
    return 0


def up(state_dir: Path, timeout: float, real_node: bool = False) -> int:
    down(state_dir, quiet=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    log = (state_dir / "supervisor.log").open("ab")
    supervisor = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tools.cluster",
            "serve",
            "--state-dir",
            str(state_dir),
            *(["--real-node"] if real_node else []),
        ],
        cwd=REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    (state_dir / "supervisor.pid").write_text(str(supervisor.pid))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (state_dir / "ready").exists():
            print(f"cluster ready: {(state_dir / 'ready').read_text()}")
            print(f"  export KUBECONFIG={state_dir / 'kubeconfig'}")
            print(f"  kubectl and helm: {state_dir / 'bin'}/")
            return 0
        if supervisor.poll() is not None:
            break
        time.sleep(0.5)
    print((state_dir / "supervisor.log").read_text(errors="replace")[-4000:], file=sys.stderr)
    down(state_dir, quiet=True)
    print("cluster failed to start", file=sys.stderr)
    return 1


def down(state_dir: Path, quiet: bool = False) -> int:
    pid_file = state_dir / "supervisor.pid"
    if pid_file.exists():
        with contextlib.suppress(ValueError):
            stop_process_group(int(pid_file.read_text().strip()), grace_seconds=30)
        pid_file.unlink(missing_ok=True)
    leftovers = kill_recorded_pids(state_dir / "pids") + kill_recorded_pids(state_dir / "node" / "pids")
    (state_dir / "ready").unlink(missing_ok=True)
    if not quiet:
        print("cluster stopped" + (f" (killed leftovers: {', '.join(leftovers)})" if leftovers else ""))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.cluster", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "serve"])
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    parser.add_argument("--timeout", type=float, default=300)
    parser.add_argument(
        "--real-node", action="store_true", help="also run one real kubelet node (tools/cluster/realnode.py)"
    )
    args = parser.parse_args()
    state_dir = args.state_dir.resolve()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    if args.command == "serve":
        return serve(state_dir, args.real_node)
    if args.command == "up":
        return up(state_dir, args.timeout, args.real_node)
    return down(state_dir)


if __name__ == "__main__":
    sys.exit(main())
