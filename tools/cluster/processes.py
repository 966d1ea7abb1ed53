"""Starting, tracking and stopping the local processes the harness owns.

Every process runs in its own session (so its whole process group can be
signalled), logs to a file, is recorded in a PID file, and is asked to die
with its parent through PR_SET_PDEATHSIG, so a SIGKILLed test session leaves
no control plane behind.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Runs in the child between fork and exec."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ManagedProcess:
    """One started process: its name, Popen handle, log file and PID file."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    pid_path: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace_seconds: float = 10.0) -> None:
        """SIGTERM to the process group, SIGKILL after the grace period."""
        stop_process_group(self.popen.pid, grace_seconds)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(timeout=1)
        self.pid_path.unlink(missing_ok=True)


def stop_process_group(pid: int, grace_seconds: float = 10.0) -> None:
    """Terminates the process group led by `pid`, waiting up to the grace period.

    The wait is on the leader's exit itself; members that outlive it are looked at twice a second.
    """
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_seconds
    wait_for_exit(pid, grace_seconds)
    while True:
        # Reap it if it is our own child, or killpg keeps seeing the zombie.
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            return
        if time.monotonic() >= deadline:
            break
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def wait_for_exit(pid: int, timeout: float) -> bool:
    """Blocks until process `pid` has exited (a pidfd turns readable), at most `timeout` seconds.

    True when it has exited (or is gone); the process is not reaped.
    """
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    try:
        readable, _, _ = select.select([pidfd], [], [], max(timeout, 0.0))
        return bool(readable)
    finally:
        os.close(pidfd)


@dataclass
class ProcessGroup:
    """The processes of one harness instance, stopped in reverse start order."""

    state_dir: Path
    processes: list[ManagedProcess] = field(default_factory=list)

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def pid_dir(self) -> Path:
        return self.state_dir / "pids"

    def start(
        self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None
    ) -> ManagedProcess:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        log_path = self.log_dir / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                list(argv),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
                preexec_fn=die_with_parent,
            )
        pid_path = self.pid_dir / f"{name}.pid"
        pid_path.write_text(str(popen.pid))
        process = ManagedProcess(name, popen, log_path, pid_path)
        self.processes.append(process)
        return process

    def stop_all(self) -> None:
        for process in reversed(self.processes):
            process.stop()
        self.processes.clear()
        kill_recorded_pids(self.pid_dir)


def kill_recorded_pids(pid_dir: Path) -> list[str]:
    """Stops every process recorded in `pid_dir` (leftovers of a crashed harness)."""
    stopped: list[str] = []
    if not pid_dir.is_dir():
        return stopped
    for pid_path in sorted(pid_dir.glob("*.pid")):
        with contextlib.suppress(ValueError, OSError):
            stop_process_group(int(pid_path.read_text().strip()), grace_seconds=5)
            stopped.append(pid_path.stem)
        pid_path.unlink(missing_ok=True)
    return stopped
