"""Calibrated auto-approval: the statistics behind ``spec.review.autoApprove``, pure and dataset-free.

People review a **verification sample** (`verification_sample`: a stratified random
sample of the run's labels, by class and confidence band, in random order). From
their decisions, `calibrate_class` finds for each class the lowest confidence
threshold ``t`` at which the one-sided exact (Clopper-Pearson) lower bound of the
precision of the class's labels with ``confidence >= t``, at ``confidence_level``,
meets ``target``. Labels at or above ``t`` may then be approved without a person.

Why the guarantee holds although many thresholds are looked at: the candidate
thresholds are tested in a fixed order (from the highest confidence down, an order
fixed by the confidences alone, before any decision is looked at) and the search
stops at the first threshold that fails. This is fixed-sequence testing: the chance
that *any* accepted threshold has a true precision below the target is at most
``1 - confidence_level``, with no multiplicity correction. Testing starts where the
sample above the threshold is large enough that one wrong label among them could
still pass (`first_test_size`, fixed by the target and level alone), so a single
early error or a tiny count at the very top does not end the search.

The promise is about the labels the sample represents (the class's labels at or
above the threshold) and holds only if the sample is reviewed honestly; it says
nothing about classes whose sample is too small (those stay with people).
"""

from __future__ import annotations

import math
import random
from collections import defaultdict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from scipy.stats import beta

LabelId = TypeVar("LabelId", bound=Hashable)


@dataclass(frozen=True)
class Interval:
    """An exact binomial confidence interval for a proportion."""

    low: float
    high: float


def clopper_pearson(successes: int, trials: int, confidence_level: float) -> Interval:
    """Two-sided Clopper-Pearson interval of `successes` out of `trials` at `confidence_level`."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials > 0, got {successes}/{trials}")
    alpha = 1.0 - confidence_level
    low = 0.0 if successes == 0 else float(beta.ppf(alpha / 2, successes, trials - successes + 1))
    high = 1.0 if successes == trials else float(beta.ppf(1 - alpha / 2, successes + 1, trials - successes))
    return Interval(low, high)


def lower_bound(successes: int, trials: int, confidence_level: float) -> float:
    """One-sided Clopper-Pearson lower bound: precision >= this with probability `confidence_level`."""
    if trials <= 0 or not 0 <= successes <= trials:
        raise ValueError(f"need 0 <= successes <= trials and trials > 0, got {successes}/{trials}")
    if successes == 0:
        return 0.0
    return float(beta.ppf(1.0 - confidence_level, successes, trials - successes + 1))


def min_sample_for(target: float, confidence_level: float) -> int:
    """The fewest reviews that can certify `target` at all: n all correct gives (1 - level) ** (1 / n)."""
    if target <= 0:
        return 1
    return max(1, math.ceil(math.log(1.0 - confidence_level) / math.log(target)))


def first_test_size(target: float, confidence_level: float) -> int:
    """Sampled labels above the first threshold tested: the fewest where one error can still pass."""
    trials = max(2, min_sample_for(target, confidence_level))
    while lower_bound(trials - 1, trials, confidence_level) < target:
        trials += 1
    return trials


@dataclass(frozen=True)
class Reviewed:
    """One label of the verification sample with a person's decision (correct = approved)."""

    confidence: float
    correct: bool


@dataclass(frozen=True)
class ClassCalibration:
    """What the sample proves for one class.

    `threshold` is None when nothing could be certified; then `needed` says how many
    more sampled labels must be reviewed before a threshold can be tried (None when
    the precision seen so far is below the target, so more reviews alone cannot help).
    `precision`, `lower` (the one-sided bound that was tested against the target) and
    `interval` (two-sided, for display) describe the sampled labels at or above
    `threshold` (or all reviewed labels of the class when there is no threshold).
    """

    label: str
    reviewed: int
    correct: int
    threshold: float | None
    precision: float | None
    lower: float | None
    interval: Interval | None
    needed: int | None


def _needed(reviewed: int, precision: float, target: float, confidence_level: float) -> int | None:
    """More reviews at the observed precision before a threshold can be tested and meet the target.

    Never fewer than the first test needs (`first_test_size` labels above the threshold).
    """
    if precision <= target:
        return None
    trials = max(reviewed, first_test_size(target, confidence_level))
    while trials < 1_000_000:
        if lower_bound(math.floor(precision * trials), trials, confidence_level) >= target:
            return max(trials - reviewed, 1)
        trials = max(trials + 1, int(trials * 1.25))
    return None


def calibrate_class(
    label: str,
    reviewed: Sequence[Reviewed],
    target: float,
    confidence_level: float,
    min_reviewed: int,
) -> ClassCalibration:
    """The lowest certified threshold of one class (see the module docstring for the procedure)."""
    total = len(reviewed)
    correct_total = sum(1 for item in reviewed if item.correct)
    overall = correct_total / total if total else None
    overall_lower = lower_bound(correct_total, total, confidence_level) if total else None
    overall_interval = clopper_pearson(correct_total, total, confidence_level) if total else None
    if total < min_reviewed:
        return ClassCalibration(
            label, total, correct_total, None, overall, overall_lower, overall_interval, min_reviewed - total
        )
    ordered = sorted(reviewed, key=lambda item: item.confidence, reverse=True)
    start = first_test_size(target, confidence_level)
    accepted: tuple[float, int, int] | None = None
    correct = 0
    for index, item in enumerate(ordered):
        correct += item.correct
        trials = index + 1
        last_of_tie = trials == total or ordered[index + 1].confidence < item.confidence
        if trials < start or not last_of_tie:
            continue
        if lower_bound(correct, trials, confidence_level) < target:
            break
        accepted = (item.confidence, correct, trials)
    if accepted is None:
        top = ordered[: max(start, 1)]
        top_precision = sum(1 for item in top if item.correct) / len(top)
        return ClassCalibration(
            label,
            total,
            correct_total,
            None,
            overall,
            overall_lower,
            overall_interval,
            _needed(total, top_precision, target, confidence_level),
        )
    threshold, successes, trials = accepted
    return ClassCalibration(
        label,
        total,
        correct_total,
        threshold,
        successes / trials,
        lower_bound(successes, trials, confidence_level),
        clopper_pearson(successes, trials, confidence_level),
        0,
    )


def verification_sample(
    labels: Sequence[tuple[LabelId, str, float]], per_class: int, bands: int, seed: int | str
) -> list[LabelId]:
    """A stratified random sample of up to `per_class` labels of each class, in random order.

    `labels` are (id, class, confidence). Each class is cut into `bands` confidence bands
    of (nearly) equal count and the same number is drawn from each band, so every label of
    a class has (nearly) the same chance of being drawn: the sample stays a random sample of
    the class, while no confidence range is left out. Deterministic for a given `seed`.
    """
    rng = random.Random(str(seed))
    by_class: dict[str, list[tuple[LabelId, float]]] = defaultdict(list)
    for label_id, label, confidence in labels:
        by_class[label].append((label_id, confidence))
    chosen: list[LabelId] = []
    for label in sorted(by_class):
        members = sorted(by_class[label], key=lambda item: (item[1], str(item[0])))
        if len(members) <= per_class:
            chosen.extend(label_id for label_id, _ in members)
            continue
        band_count = max(1, min(bands, per_class))
        edges = [round(i * len(members) / band_count) for i in range(band_count + 1)]
        quotas = [
            round((i + 1) * per_class / band_count) - round(i * per_class / band_count)
            for i in range(band_count)
        ]
        for band, quota in enumerate(quotas):
            band_members = members[edges[band] : edges[band + 1]]
            chosen.extend(label_id for label_id, _ in rng.sample(band_members, min(quota, len(band_members))))
    rng.shuffle(chosen)
    return chosen
