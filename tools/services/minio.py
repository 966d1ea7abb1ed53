"""Start and stop a real MinIO server (the S3 API), built from its Go module by tools/build-tools.sh.

One server per test session, on a free 127.0.0.1 port, with its own data
directory and root credentials generated here (never a default password);
`MinioServer.client()` is a boto3 S3 client signed with them, for tests that
create buckets and objects. `credentials_env()` gives the two variables a
credentials Secret of a run holds. The web console is off. Run ``python -m
tools.services.minio`` to serve one until interrupted (it prints the endpoint
and the credentials to use).
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import tempfile
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tools.services.process import free_port, serve_until_interrupted, stop_process, wait_until

REGION = "us-east-1"


def minio_binary() -> Path:
    """The MinIO server built by tools/build-tools.sh (built on first use, cached by version)."""
    from tools.cluster.binaries import tool_bin_dir

    binary = tool_bin_dir() / "minio"
    if not binary.exists():
        raise RuntimeError(f"{binary} missing: tools/build-tools.sh builds it (tools/minio)")
    return binary


@dataclass
class MinioServer:
    """A running MinIO with its endpoint and root credentials."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    access_key: str = field(default_factory=lambda: f"autolabel-{secrets.token_hex(4)}")
    secret_key: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    startup_timeout_s: float = 60.0
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / "minio.log"

    def credentials_env(self) -> dict[str, str]:
        """The root credentials as the standard variables (what a run's credentials Secret holds)."""
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def start(self) -> MinioServer:
        if self.process is not None and self.process.poll() is None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "MINIO_ROOT_USER": self.access_key,
            "MINIO_ROOT_PASSWORD": self.secret_key,
            "MINIO_BROWSER": "off",
            "MINIO_UPDATE": "off",
            "MINIO_REGION": REGION,
        }
        command = [
            str(minio_binary()),
            "server",
            "--quiet",
            "--address",
            f"{self.host}:{self.port}",
            str(self.data_dir),
        ]
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        wait_until(
            self.is_ready,
            timeout_s=self.startup_timeout_s,
            what="minio",
            process=self.process,
            log_path=self.log_path,
        )
        return self

    def is_ready(self) -> bool:
        with urllib.request.urlopen(f"{self.endpoint}/minio/health/ready", timeout=2) as response:
            return bool(response.status == 200)

    def client(self) -> Any:
        """A boto3 S3 client with the root credentials (path-style addressing, as MinIO wants)."""
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            config=Config(s3={"addressing_style": "path"}, retries={"mode": "standard"}),
        )

    def stop(self, *, remove_data: bool = False) -> None:
        if self.process is not None:
            stop_process(self.process)
        if remove_data:
            shutil.rmtree(self.data_dir.parent, ignore_errors=True)


def start_minio(work_dir: Path | None = None, host: str = "127.0.0.1") -> MinioServer:
    """Start a MinIO with a fresh data directory under ``work_dir`` (a temp dir by default) on ``host``."""
    directory = work_dir or Path(tempfile.mkdtemp(prefix="minio-"))
    return MinioServer(data_dir=directory / "data", host=host).start()


def main() -> None:
    argparse.ArgumentParser(prog="python -m tools.services.minio").parse_args()
    server = start_minio()
    print(
        f"minio ready: endpoint={server.endpoint} AWS_ACCESS_KEY_ID={server.access_key} "
        f"AWS_SECRET_ACCESS_KEY={server.secret_key} log={server.log_path}",
        flush=True,
    )
    serve_until_interrupted(server)


if __name__ == "__main__":
    main()
