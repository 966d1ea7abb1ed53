"""Small process helpers shared by the service launchers: free ports, readiness polling, stopping by PID."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tools.cluster.processes import free_port, wait_for_exit

__all__ = ["free_port", "log_tail", "serve_until_interrupted", "stop_process", "wait_until"]


def wait_until(
    check: Callable[[], bool],
    *,
    timeout_s: float,
    what: str,
    process: subprocess.Popen[bytes] | None = None,
    log_path: Path | None = None,
) -> None:
    """Poll ``check`` twice a second until it returns True; fail early if ``process`` exits, with its log."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode}{log_tail(log_path)}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(0.5)
    raise TimeoutError(f"{what} not ready after {timeout_s:.0f}s{log_tail(log_path)}")


def log_tail(log_path: Path | None, lines: int = 30) -> str:
    """The last lines of a log file, formatted to append to an error message."""
    if log_path is None or not log_path.exists():
        return ""
    tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    return "\n--- " + str(log_path) + " ---\n" + "\n".join(tail)


def stop_process(process: subprocess.Popen[bytes], *, timeout_s: float = 15.0) -> None:
    """SIGTERM the process by its PID, then SIGKILL it if it has not exited in time."""
    if process.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(process.pid, signal.SIGTERM)
    if not wait_for_exit(process.pid, timeout_s):
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGKILL)
        wait_for_exit(process.pid, timeout_s)
    process.wait(timeout=timeout_s)


def serve_until_interrupted(server: Any) -> None:
    """Keeps a started server (with `.process` and `.stop()`) in the foreground until Ctrl-C or its exit."""
    try:
        while server.process is not None and server.process.poll() is None:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
