"""Keeps the database URI's credentials out of everything a worker or dataset command writes.

The URI comes from the run's database Secret. Libraries echo parts of it in their
errors: pymongo's `InvalidURI('Bad database name "..."')` quotes everything after the
first `/`, so a password holding a `/` is printed half or whole. What a process writes
reaches pod logs, termination messages, the JSON verdicts the controller reads, and from
there status and Events; `install()` scrubs stdout and stderr at the source, and
`scrub()` is there for any other channel (the progress ConfigMap).
"""

from __future__ import annotations

import json
import os
import re
import sys
from functools import lru_cache
from typing import Any, TextIO
from urllib.parse import unquote

from contract.env import DATABASE_URI_ENV

REDACTED = "<redacted>"
# Any MongoDB URI, whoever's: its credentials are never worth printing.
_ANY_URI = re.compile(r"mongodb(\+srv)?://[^\s\"'<>]+")
_BAD_DATABASE_NAME = re.compile(r"(Bad database name )\"[^\"]*\"")
# Pieces of a password shorter than this are too common to redact on their own.
_MIN_PIECE = 4


def _password_span(uri: str) -> tuple[int, int] | None:
    """Where the password is in `uri`: after the first `:` of the user info, up to the last `@`."""
    scheme_end = uri.find("://")
    start = scheme_end + 3 if scheme_end >= 0 else 0
    end = uri.rfind("@")
    colon = uri.find(":", start, end) if end > start else -1
    return (colon + 1, end) if colon >= 0 else None


@lru_cache(maxsize=8)
def _secret_tails(uri: str) -> tuple[str, ...]:
    """The tails of `uri` that begin inside its password: at its start or after a `/`, `:` or `@` in it.

    A parser confused by an unescaped separator echoes text that begins at one of these
    places and runs on for a while (pymongo's database name runs to the next `.`).
    """
    span = _password_span(uri)
    if span is None:
        return ()
    first, end = span
    starts = [first] + [p + 1 for p in range(first, end - 1) if uri[p] in "/:@"]
    return tuple(sorted((uri[p:] for p in starts), key=len, reverse=True))


@lru_cache(maxsize=8)
def _password_pieces(uri: str) -> tuple[str, ...]:
    """The password, raw and percent-decoded, and its pieces between separators long enough to be telling."""
    span = _password_span(uri)
    if span is None:
        return ()
    password = uri[span[0] : span[1]]
    pieces = {password, unquote(password)}
    for secret in list(pieces):
        pieces.update(piece for piece in re.split(r"[/:@]", secret) if len(piece) >= _MIN_PIECE)
    return tuple(sorted((piece for piece in pieces if piece), key=len, reverse=True))


def _redact_echoes(text: str, tail: str) -> str:
    """Redact each place where `text` holds a prefix of `tail` (_MIN_PIECE or longer), as far as it runs."""
    needle = tail[:_MIN_PIECE]
    position = text.find(needle)
    while position >= 0:
        end = position + len(needle)
        while end - position < len(tail) and end < len(text) and text[end] == tail[end - position]:
            end += 1
        text = text[:position] + REDACTED + text[end:]
        position = text.find(needle, position + len(REDACTED))
    return text


def scrub_text(text: str, uri: str) -> str:
    """`text` without any part of `uri`'s password, nor the URI of any MongoDB server."""
    if uri:
        text = text.replace(uri, REDACTED)
        for tail in _secret_tails(uri):
            text = _redact_echoes(text, tail)
        for piece in _password_pieces(uri):
            text = text.replace(piece, REDACTED)
    text = _BAD_DATABASE_NAME.sub(rf'\1"{REDACTED}"', text)
    return _ANY_URI.sub(lambda match: f"mongodb{match.group(1) or ''}://{REDACTED}", text)


def _scrub_json(value: Any, uri: str) -> Any:
    if isinstance(value, str):
        return scrub_text(value, uri)
    if isinstance(value, list):
        return [_scrub_json(item, uri) for item in value]
    if isinstance(value, dict):
        return {key: _scrub_json(item, uri) for key, item in value.items()}
    return value


def scrub(text: str, uri: str | None = None) -> str:
    """`text` without the credentials of `uri` (default: the URI in the environment) or of any MongoDB URI.

    A JSON document (the commands' verdict lines) is scrubbed value by value, so escapes
    cannot hide a secret and the result stays valid JSON.
    """
    if uri is None:
        uri = os.environ.get(DATABASE_URI_ENV, "")
    stripped = text.strip()
    if stripped.startswith("{") and stripped.endswith("}"):
        try:
            document = json.loads(stripped)
        except ValueError:
            pass
        else:
            return text.replace(stripped, json.dumps(_scrub_json(document, uri)))
    return scrub_text(text, uri)


class ScrubbingStream:
    """A text stream that scrubs what is written before passing it on."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(scrub(text))
        return len(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def install() -> None:
    """Scrub everything this process prints or logs to stdout and stderr (tracebacks included)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if not isinstance(stream, ScrubbingStream):
            setattr(sys, name, ScrubbingStream(stream))
