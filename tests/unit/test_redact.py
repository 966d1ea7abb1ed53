"""Database credentials never leave a worker process: pymongo's own error texts, scrubbed."""

from __future__ import annotations

import io
import json
from typing import Any

import pymongo
import pytest

from runtime.redact import REDACTED, ScrubbingStream, scrub

# Passwords of distinctive characters, so any 3 characters of them found in a text are a leak.
URIS = [
    "mongodb://autolabel:Xq7/Zr9Wk2@localhost:27017/fiftyone",
    "mongodb://autolabel:Xq7/Zr9@Wk2@127.0.0.1:27017/fiftyone",
    "mongodb://autolabel:Q/W/E7@db.example.com:27017/fiftyone?authSource=admin",
    "mongodb://autolabel:Jq/K@z/V8x@mongo-0.mongo.svc.cluster.local/fiftyone",
    "mongodb://auto/label:Hv5Tp9Lm@localhost/fiftyone",
    "mongodb://autolabel:Pw8:Yt4/Gk6@localhost:27017/x",
    "mongodb+srv://autolabel:Nb3/Vc5Kx@cluster0.example.net/fiftyone",
    'mongodb://autolabel:Fq"3/Dk\\9é@localhost/fiftyone',
]


def password(uri: str) -> str:
    userinfo = uri.split("://", 1)[1].rsplit("@", 1)[0]
    return userinfo.split(":", 1)[1]


def leaks(text: str, uri: str) -> list[str]:
    secret = password(uri)
    grams = {secret[i : i + 3] for i in range(len(secret) - 2)}
    return sorted(gram for gram in grams if gram in text)


def pymongo_error(uri: str) -> str:
    try:
        pymongo.MongoClient(uri, connect=False, serverSelectionTimeoutMS=1)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return f"connected to {uri}"


@pytest.mark.parametrize("uri", URIS)
def test_pymongo_errors_are_scrubbed(uri: str) -> None:
    message = pymongo_error(uri)
    scrubbed = scrub(f"cannot reach the FiftyOne database: {message}", uri)
    assert not leaks(scrubbed, uri), (message, scrubbed)


def test_the_known_leak_is_real() -> None:
    """The shape the issue names: pymongo quotes the URI after the password's `/`."""
    uri = URIS[0]
    message = pymongo_error(uri)
    assert "Zr9Wk2" in message and leaks(message, uri)
    assert scrub(message, uri) == f'InvalidURI: Bad database name "{REDACTED}"'


@pytest.mark.parametrize("uri", URIS)
def test_json_verdicts_stay_json_and_lose_the_secret(uri: str) -> None:
    line = json.dumps({"ok": False, "reason": "DatabaseUnreachable", "message": pymongo_error(uri)})
    scrubbed = scrub(line + "\n", uri)
    assert scrubbed.endswith("\n")
    document = json.loads(scrubbed)
    assert document["reason"] == "DatabaseUnreachable"
    assert not leaks(scrubbed, uri) and not leaks(document["message"], uri)


def test_any_mongodb_uri_is_redacted_and_plain_text_kept() -> None:
    text = "tried mongodb://other:Tz4Ww9@h:1/db and mongodb+srv://u:p@x.example.net then stopped"
    assert scrub(text, "") == (f"tried mongodb://{REDACTED} and mongodb+srv://{REDACTED} then stopped")
    plain = "progress shard=0 state=Running processed=3/10 autolabel"
    assert scrub(plain, URIS[0]) == plain


def test_the_stream_scrubs_what_is_written() -> None:
    sink = io.StringIO()
    stream = ScrubbingStream(sink)
    uri = URIS[1]
    stream.write(f"fatal: {pymongo_error(uri)}\n")
    stream.writelines(["a ", f"{uri}\n"])
    assert not leaks(sink.getvalue(), uri)
    assert sink.getvalue().startswith("fatal: ")


@pytest.mark.parametrize("uri", URIS)
def test_a_published_verdict_reaches_the_config_map_scrubbed(
    uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from contract.env import DATABASE_URI_ENV, RESULT_CONFIG_MAP_ENV, RESULT_KEY_ENV
    from contract.verdicts import ProbeVerdict, ValidationReason
    from runtime import kube

    written: dict[str, str] = {}

    class Api:
        def patch_namespaced_config_map(self, name: str, namespace: str, body: dict[str, Any]) -> None:
            written.update(body["data"])

    monkeypatch.setenv(DATABASE_URI_ENV, uri)
    monkeypatch.setenv(RESULT_CONFIG_MAP_ENV, "alr-r-result")
    monkeypatch.setenv(RESULT_KEY_ENV, "probe-g1")
    monkeypatch.setattr(kube, "core_api", Api)
    message = f"the database is unreachable: {pymongo_error(uri)} ({uri})"
    assert leaks(message, uri)
    kube.publish("ns", ProbeVerdict(ok=False, reason=ValidationReason.DATABASE_UNREACHABLE, message=message))
    verdict = ProbeVerdict.model_validate_json(written["probe-g1"])
    assert verdict.reason == ValidationReason.DATABASE_UNREACHABLE
    assert not leaks(written["probe-g1"], uri)
