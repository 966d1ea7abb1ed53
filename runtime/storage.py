"""Media in object storage: sample files read from ``s3://`` and ``http(s)://`` URLs, mask objects written.

`ObjectStore` holds one S3 client and one HTTP connection pool per worker, each
sized for ``objectStore.fetchConcurrency`` requests at once (both are safe to
share between threads); the decode stage keeps that many GETs in flight in its
own I/O threads, at most a decode window ahead, so what a worker holds in
fetched bytes stays bounded (and no object over MAX_OBJECT_BYTES is read).

Credentials are never in the configuration: boto3 takes them from the
standard variables (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN)
that the pod spec fills from the run's credentials Secret, or from the pod's
workload identity. Errors name the bucket and key (or the URL without its query,
which may hold a signature), never a credential: a missing object is a failed
sample (`DecodeError`), while access denied, a missing bucket or an unreachable
endpoint would fail every sample alike, so they end the shard (`FatalError`).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import urlsplit

from contract.worker import ObjectStoreConfig
from runtime.errors import DecodeError, FatalError

MAX_OBJECT_BYTES = 64 << 20
"""The largest media object read (an image file that big is not a photo): larger ones fail as too large."""
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}
_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403", "ExpiredToken"}
_DELETE_BATCH = 1000  # the most keys one DeleteObjects request takes


def split_s3_url(url: str) -> tuple[str, str]:
    """(bucket, key) of ``s3://bucket/key``; a URL without a bucket or key is a failed sample."""
    bucket, _, key = url.removeprefix("s3://").partition("/")
    if not bucket or not key:
        raise DecodeError("bad object URL", f"{url}: expected s3://<bucket>/<key>")
    return bucket, key


def _shown(url: str) -> str:
    """The URL as it may be printed: without query and fragment (a presigned URL's signature is there)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class ObjectStore:
    """Reads, writes, lists and deletes objects for one worker process (thread-safe)."""

    def __init__(self, config: ObjectStoreConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._s3: Any = None
        self._http: Any = None

    # -- clients ------------------------------------------------------------------------------
    def s3(self) -> Any:
        with self._lock:
            if self._s3 is None:
                import boto3
                from botocore.config import Config

                self._s3 = boto3.session.Session().client(
                    "s3",
                    endpoint_url=self.config.endpoint,
                    region_name=self.config.region,
                    config=Config(
                        max_pool_connections=self.config.fetch_concurrency,
                        retries={"mode": "standard", "max_attempts": 5},
                        connect_timeout=10,
                        read_timeout=60,
                        s3={"addressing_style": "path" if self.config.path_style else "virtual"},
                    ),
                )
            return self._s3

    def http(self) -> Any:
        with self._lock:
            if self._http is None:
                import urllib3

                self._http = urllib3.PoolManager(
                    maxsize=self.config.fetch_concurrency,
                    timeout=urllib3.Timeout(connect=10, read=60),
                    retries=urllib3.Retry(total=4, backoff_factor=0.5, status_forcelist=(500, 502, 503, 504)),
                )
            return self._http

    # -- reading ------------------------------------------------------------------------------
    def read(self, url: str) -> bytes:
        """The object's bytes; DecodeError for a missing or oversized object, FatalError for the rest."""
        if url.startswith("s3://"):
            return self._read_s3(*split_s3_url(url))
        return self._read_http(url)

    def _read_s3(self, bucket: str, key: str) -> bytes:
        try:
            response = self.s3().get_object(Bucket=bucket, Key=key)
        except Exception as error:
            raise self._s3_error(error, "reading", bucket, key) from error
        body = response["Body"]
        if int(response.get("ContentLength") or 0) > MAX_OBJECT_BYTES:
            body.close()
            raise DecodeError("image too large", f"s3://{bucket}/{key}: over {MAX_OBJECT_BYTES} bytes")
        try:
            data: bytes = body.read()
        except Exception as error:
            raise self._s3_error(error, "reading", bucket, key) from error
        return data

    def _read_http(self, url: str) -> bytes:
        import urllib3

        try:
            response = self.http().request("GET", url, preload_content=False)
        except urllib3.exceptions.HTTPError as error:
            raise FatalError(f"cannot reach {_shown(url)}: {type(error).__name__}") from error
        try:
            if response.status == 404:
                raise DecodeError("object not found", _shown(url))
            if response.status in (401, 403):
                raise FatalError(f"access to {_shown(url)} denied (HTTP {response.status})")
            if response.status != 200:
                raise FatalError(f"reading {_shown(url)} failed with HTTP {response.status}")
            data = response.read(MAX_OBJECT_BYTES + 1)
            if len(data) > MAX_OBJECT_BYTES:
                raise DecodeError("image too large", f"{_shown(url)}: over {MAX_OBJECT_BYTES} bytes")
            return bytes(data)
        finally:
            response.release_conn()

    # -- writing, listing, deleting (masks) ----------------------------------------------------
    def put(self, url: str, data: bytes, content_type: str) -> None:
        """One PUT: the object appears whole or not at all, so it is referenced only once it exists."""
        bucket, key = split_s3_url(url)
        try:
            self.s3().put_object(Bucket=bucket, Key=key, Body=data, ContentType=content_type)
        except Exception as error:
            raise self._s3_error(error, "writing", bucket, key) from error

    def list(self, prefix_url: str) -> Iterator[str]:
        """The URLs of the objects whose keys start with the prefix of ``prefix_url`` (s3 only)."""
        bucket, prefix = split_s3_url(prefix_url)
        try:
            pages = self.s3().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
            for page in pages:
                for item in page.get("Contents") or []:
                    yield f"s3://{bucket}/{item['Key']}"
        except Exception as error:
            raise self._s3_error(error, "listing", bucket, prefix) from error

    def delete(self, urls: Iterable[str]) -> None:
        by_bucket: dict[str, list[str]] = {}
        for url in urls:
            bucket, key = split_s3_url(url)
            by_bucket.setdefault(bucket, []).append(key)
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), _DELETE_BATCH):
                chunk = keys[start : start + _DELETE_BATCH]
                try:
                    answer = self.s3().delete_objects(
                        Bucket=bucket, Delete={"Objects": [{"Key": key} for key in chunk], "Quiet": True}
                    )
                except Exception as error:
                    raise self._s3_error(error, "deleting", bucket, chunk[0]) from error
                failed = answer.get("Errors") or []
                if failed:
                    first = failed[0]
                    raise FatalError(
                        f"deleting s3://{bucket}/{first.get('Key')} failed: {first.get('Code')} "
                        f"({len(failed)} of {len(chunk)} objects not deleted)"
                    )

    # -- errors -------------------------------------------------------------------------------
    def _s3_error(self, error: Exception, doing: str, bucket: str, key: str) -> Exception:
        """The error to raise for a failed S3 call: its code, the bucket and key, never a credential."""
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        where = f"s3://{bucket}/{key}"
        secret = self.config.credentials_secret
        if isinstance(error, NoCredentialsError):
            source = f"Secret {secret!r}" if secret else "the pod's workload identity"
            return FatalError(f"{doing} {where}: no S3 credentials found (from {source})")
        if isinstance(error, ClientError):
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _NOT_FOUND and doing == "reading":
                return DecodeError("object not found", where)
            if code == "NoSuchBucket":
                return FatalError(f"{doing} {where}: bucket {bucket!r} does not exist")
            if code in _DENIED:
                hint = f"the keys in Secret {secret!r}" if secret else "the pod's workload identity"
                return FatalError(
                    f"{doing} {where}: access to bucket {bucket!r} denied ({code}); "
                    f"check {hint} and the bucket's policy"
                )
            return FatalError(f"{doing} {where} failed: {code or type(error).__name__}")
        if isinstance(error, BotoCoreError):
            endpoint = self.config.endpoint or "AWS S3"
            return FatalError(f"{doing} {where} at {endpoint} failed: {type(error).__name__}")
        return error
