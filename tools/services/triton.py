"""Start and stop a real Triton Inference Server (CPU, python backend) from the nvidia-pytriton wheel.

The wheel bundles a ``tritonserver`` binary and the python backend. A standalone
server needs a backend directory laid out as ``python/{libtriton_python.so,
triton_python_backend_utils.py, triton_python_backend_stub}``, with the stub that
matches this interpreter's Python version; this module assembles it in a cache
directory. The stub finds packages through ``python3`` on PATH, so the current
virtualenv's ``bin`` goes first on PATH (see docs in shared/reference/real-components.md).

Run ``python -m tools.services.triton [--model-repository models]`` to serve the
checked-in models until interrupted.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tools.services.process import free_port, serve_until_interrupted, stop_process, wait_until

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_REPOSITORY = REPO_ROOT / "models"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(
            f"package {name!r} is not installed; install nvidia-pytriton (requirements/models.in)"
        )
    return Path(spec.origin).parent


def triton_install_dir() -> Path:
    """The ``tritonserver`` tree bundled in the pytriton package."""
    return _package_dir("pytriton") / "tritonserver"


def assemble_backend_directory(target: Path) -> Path:
    """Lay out ``target/python`` with the python backend and the stub for this Python version."""
    install = triton_install_dir()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = install / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not stub.exists():
        raise RuntimeError(f"no triton_python_backend_stub for Python {version} under {install}")
    python_dir = target / "python"
    python_dir.mkdir(parents=True, exist_ok=True)
    for source in (
        install / "backends" / "python" / "libtriton_python.so",
        install / "backends" / "python" / "triton_python_backend_utils.py",
        stub,
    ):
        destination = python_dir / source.name
        if not destination.exists() or destination.stat().st_size != source.stat().st_size:
            shutil.copy2(source, destination)
    return target


def server_environment() -> dict[str, str]:
    """Env for tritonserver: this venv first on PATH; bundled and libpython libraries on LD_LIBRARY_PATH."""
    env = dict(os.environ)
    venv_bin = str(Path(sys.executable).parent)  # not resolved: the venv's bin, not /usr/bin
    env["PATH"] = venv_bin + os.pathsep + env.get("PATH", "")
    pytriton_libs = _package_dir("pytriton").parent / "nvidia_pytriton.libs"
    libpython_dir = sysconfig.get_config_var("LIBDIR") or "/usr/lib/x86_64-linux-gnu"
    library_path = [str(pytriton_libs), str(libpython_dir)]
    if env.get("LD_LIBRARY_PATH"):
        library_path.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = os.pathsep.join(library_path)
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


@dataclass
class TritonServer:
    """A running tritonserver process with the URLs clients use."""

    model_repository: Path
    work_dir: Path
    http_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    startup_timeout_s: float = 180.0
    host: str = "127.0.0.1"
    # Only these models of the repository (Triton's explicit model control); all of them when empty.
    models: tuple[str, ...] = ()
    process: subprocess.Popen[bytes] | None = None

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.work_dir / "tritonserver.log"

    def command(self) -> list[str]:
        backends = assemble_backend_directory(self.work_dir / "backends")
        return [
            str(triton_install_dir() / "bin" / "tritonserver"),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={backends}",
            f"--http-address={self.host}",
            f"--http-port={self.http_port}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-address={self.host}",
            f"--metrics-port={self.metrics_port}",
            "--allow-metrics=true",
            "--allow-gpu-metrics=false",
            "--exit-timeout-secs=10",
            "--log-verbose=0",
            *(["--model-control-mode=explicit"] if self.models else []),
            *(f"--load-model={name}" for name in self.models),
        ]

    def start(self) -> TritonServer:
        """Start the server and block until it and all its models are ready."""
        if self.process is not None and self.process.poll() is None:
            return self
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                env=server_environment(),
                start_new_session=True,
            )
        wait_until(
            self.is_ready,
            timeout_s=self.startup_timeout_s,
            what="tritonserver",
            process=self.process,
            log_path=self.log_path,
        )
        return self

    def is_ready(self) -> bool:
        url = f"http://{self.http_url}/v2/health/ready"
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)

    def stop(self) -> None:
        """SIGTERM the server (it unloads models and stops their stub processes), SIGKILL if it hangs."""
        if self.process is not None:
            stop_process(self.process, timeout_s=20)

    def restart(self) -> None:
        """Stop and start again on the same ports, as a crashed-and-rescheduled server would."""
        self.stop()
        self.start()


PORT_ATTEMPTS = 3
"""Starts on fresh ports after a port was taken between choosing it and Triton binding it."""


def start_triton(
    model_repository: Path = DEFAULT_MODEL_REPOSITORY,
    work_dir: Path | None = None,
    *,
    host: str = "127.0.0.1",
    models: tuple[str, ...] = (),
) -> TritonServer:
    """Start a server for ``model_repository`` (only ``models`` of it, if given) on ``host``, once ready."""
    directory = work_dir or Path(tempfile.mkdtemp(prefix="triton-"))
    for attempt in range(PORT_ATTEMPTS):
        server = TritonServer(
            model_repository=model_repository.resolve(), work_dir=directory, host=host, models=models
        )
        try:
            return server.start()
        except (RuntimeError, TimeoutError) as error:
            server.stop()
            # free_port() only proposes a port: another process may take it before Triton binds it.
            if "already in use" not in str(error) or attempt == PORT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--model-repository", type=Path, default=DEFAULT_MODEL_REPOSITORY)
    parser.add_argument("--work-dir", type=Path, default=None)
    args = parser.parse_args()
    server = start_triton(args.model_repository, args.work_dir)
    print(
        f"tritonserver ready: grpc={server.grpc_url} http={server.http_url} log={server.log_path}", flush=True
    )
    serve_until_interrupted(server)


if __name__ == "__main__":
    main()
