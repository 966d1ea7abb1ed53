"""(f) The same JPEGs read from object storage: a real MinIO on 127.0.0.1, the worker reading ``s3://``.

`BucketMedia.start` starts MinIO (tools/services/minio.py), uploads the bench
images once into a bucket, and gives what turns a worker run of (b) into one
reading every image from the bucket: a path rewrite from the local image
directory to ``s3://<bucket>/`` plus the endpoint, and the credentials as the
environment a pod gets from its Secret. The dataset is the very same one, so
the row beside the local-file figure is the cost of a GET per image (on
loopback: the server's own cost, without network latency).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tools.services.minio import MinioServer, start_minio

BUCKET = "bench-media"


@dataclass(frozen=True)
class BucketMedia:
    server: MinioServer
    local_dir: Path

    def config(self) -> dict[str, Any]:
        """Worker config keys that send every read of ``local_dir`` to the bucket."""
        return {
            "mediaPathRewrite": [{"from": f"{self.local_dir}/", "to": f"s3://{BUCKET}/"}],
            "objectStore": {"endpoint": self.server.endpoint},
        }

    def environment(self) -> dict[str, str]:
        return self.server.credentials_env()


@contextmanager
def bucket_media(paths: list[Path], work: Path) -> Iterator[BucketMedia]:
    """MinIO serving ``paths`` (all in one directory) from BUCKET, stopped afterwards."""
    server = start_minio(work / "minio")
    try:
        client = server.client()
        client.create_bucket(Bucket=BUCKET)
        for path in paths:
            client.upload_file(str(path), BUCKET, path.name)
        print(f"minio {server.endpoint}: {len(paths)} images in s3://{BUCKET}/", flush=True)
        yield BucketMedia(server, paths[0].parent)
    finally:
        server.stop(remove_data=True)
