"""The panel's Home: one card per run of the dataset, read from the run record (`runtime.run_record`)."""

from __future__ import annotations

from typing import Any

from runtime import run_record


def record(ctx: Any, uid: str | None) -> dict[str, Any] | None:
    if uid is None or ctx.dataset is None:
        return None
    return run_record.records(ctx.dataset.name).get(uid)


def progress(record: dict[str, Any]) -> str:
    shards = (record.get("progress") or {}).values()
    processed = sum(int(s.get("processed") or 0) for s in shards)
    total = sum(int(s.get("total") or 0) for s in shards)
    return f"{processed}/{total or int(record.get('target') or 0)}"  # validated, no shard reported yet


def phase(record: dict[str, Any]) -> str:
    phase = str(record.get("phase") or run_record.GENERATING)
    if phase == run_record.IN_REVIEW and record.get("finalizeRequest"):
        return "Finalizing (requested in the App)"
    if phase == run_record.GENERATING:
        return f"Generating {progress(record)}"
    return phase


def card(record: dict[str, Any]) -> str:
    counts = record.get("counts") or {}
    classes = ", ".join(record.get("classes") or []) or "all of the model's"
    lines = [
        f"**{record.get('name')}** ({record.get('namespace')}) · {phase(record)}",
        f"{record.get('task')} with `{record.get('model')}` · classes: {classes} · "
        f"labels: {counts.get('total', '-')} ({counts.get('approved', 0)} approved) · "
        f"field `{record.get('labelField')}`",
    ]
    failure = record.get("failure")
    if failure and record.get("phase") == run_record.FAILED:
        lines.append(f"{failure.get('reason')}: {failure.get('message')}")
    finalized = record.get("finalized")
    if finalized:
        lines.append(f"kept {finalized.get('promoted')} labels, removed {finalized.get('discarded')}")
    return "  \n".join(lines)
