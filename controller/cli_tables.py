"""What ``autolabel status`` prints: a run's phase, its per-class review table and its calibration table.

Plain functions of the AutoLabelRun object as the API server returns it (camelCase
status), so they are tested without a cluster and shared by the CLI's commands.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TextIO


def table(rows: Sequence[Sequence[str]], out: TextIO) -> None:
    """Left-aligned columns, like kubectl's tables."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        out.write(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() + "\n"
        )


def number(value: Any, digits: int = 3) -> str:
    return "-" if value is None else f"{float(value):.{digits}f}"


def phase(run: dict[str, Any]) -> str:
    return str((run.get("status") or {}).get("phase") or "Pending")


def rule_text(rule: dict[str, Any]) -> str:
    classes = ",".join(rule.get("classes") or []) or "all classes"
    low, high = rule.get("minConfidence"), rule.get("maxConfidence")
    bounds = "" if low is None and high is None else f" {low if low is not None else 0} <= conf < {high or 1}"
    return classes + bounds


def _interval(entry: dict[str, Any]) -> str:
    interval = entry.get("interval")
    if not interval:
        return "-"
    return f"[{number(interval[0])}, {number(interval[1])}]"


def _threshold(entry: dict[str, Any]) -> str:
    if entry.get("threshold") is not None:
        return number(entry["threshold"])
    needed = entry.get("moreReviewsNeeded")
    if needed:
        return f"none ({needed} more reviews)"
    return "none (below target)" if entry.get("reviewed") else "none"


def write_calibration(calibration: dict[str, Any], out: TextIO) -> None:
    """spec.review.autoApprove's outcome: per class what the reviewed verification sample proves."""
    out.write(
        f"\nCalibrated auto-approval: target precision {number(calibration.get('targetPrecision'))} "
        f"at confidence {number(calibration.get('confidenceLevel'), 2)}; verification sample "
        f"{calibration.get('sampleSize', 0)} labels, {calibration.get('reviewed', 0)} reviewed "
        f"(saved view {calibration.get('savedView') or '-'}); "
        f"{calibration.get('autoApproved', 0)} labels auto-approved\n"
    )
    rows = [["CLASS", "SAMPLED", "REVIEWED", "PRECISION", "INTERVAL", "THRESHOLD", "AUTO-APPROVED", "LEFT"]]
    for entry in calibration.get("classes") or []:
        rows.append(
            [
                str(entry["name"]),
                str(entry.get("sampled", 0)),
                str(entry.get("reviewed", 0)),
                number(entry.get("precision")),
                _interval(entry),
                _threshold(entry),
                str(entry.get("autoApproved", 0)),
                str(entry.get("leftForPeople", 0)),
            ]
        )
    table(rows, out)


def _write_review(review: dict[str, Any], out: TextIO) -> None:
    out.write(
        f"Labels:     {review.get('total', 0)} total, {review.get('approved', 0)} approved, "
        f"{review.get('rejected', 0)} rejected, {review.get('unreviewed', 0)} unreviewed\n\n"
    )
    rows = [["CLASS", "COUNT", "MEAN CONF", "APPROVED", "REJECTED"]]
    for entry in review.get("classes") or []:
        rows.append(
            [
                entry["name"],
                str(entry.get("count", 0)),
                number(entry.get("meanConfidence")),
                str(entry.get("approved", 0)),
                str(entry.get("rejected", 0)),
            ]
        )
    table(rows, out)
    if review.get("calibration"):
        write_calibration(review["calibration"], out)
    tags = review.get("problemTags") or {}
    flagged = ", ".join(f"{tag}={count}" for tag, count in tags.items() if count)
    out.write(f"\nProblem tags: {flagged or 'none'}\n")
    quality = review.get("quality") or {}
    for part in ("overall", "approved"):
        metrics = quality.get(part)
        if metrics:
            out.write(
                f"Quality vs {quality.get('groundTruthField')} ({part}): precision "
                f"{number(metrics.get('precision'))}, recall {number(metrics.get('recall'))}"
                + (f", mAP {number(metrics.get('mAP'))}" if metrics.get("mAP") is not None else "")
                + "\n"
            )
    for key in ("brainKey", "savedViews"):
        if review.get(key):
            value = review[key]
            out.write(f"{key}: {', '.join(value) if isinstance(value, list) else value}\n")


def write_status(run: dict[str, Any], namespace: str, name: str, out: TextIO) -> None:
    """``autolabel status``: phase, progress, the review tables, the rules, the finalize outcome."""
    spec, status = run.get("spec") or {}, run.get("status") or {}
    review = status.get("review") or {}
    out.write(f"Run:        {namespace}/{name}\n")
    out.write(f"Phase:      {phase(run)}   {status.get('message') or ''}\n".rstrip() + "\n")
    out.write(f"Dataset:    {spec.get('dataset', {}).get('name')}   labelField: {spec.get('labelField')}")
    out.write(f"   review field: {status.get('reviewField') or '-'}\n")
    out.write(f"Progress:   {(status.get('progress') or {}).get('summary', '-')}\n")
    if review:
        _write_review(review, out)
    rules = spec.get("review") or {}
    for kind in ("approve", "reject"):
        for rule in rules.get(kind) or []:
            out.write(f"Rule {kind}: {rule_text(rule)}\n")
    finalized = status.get("finalized")
    if finalized:
        out.write(
            f"Finalized:  {finalized.get('promoted', 0)} labels kept, "
            f"{finalized.get('discarded', 0)} removed\n"
        )
