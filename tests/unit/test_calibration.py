"""Calibrated auto-approval statistics (review/calibration.py) against known cases and simulation."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from scipy.stats import binom

from review.calibration import (
    Reviewed,
    calibrate_class,
    clopper_pearson,
    first_test_size,
    lower_bound,
    min_sample_for,
    verification_sample,
)


@pytest.mark.parametrize(
    ("successes", "trials", "level", "low", "high"),
    [
        # Reference values (R: binom.test(k, n)$conf.int).
        (0, 10, 0.95, 0.0, 0.3084971),
        (10, 10, 0.95, 0.6915029, 1.0),
        (5, 10, 0.95, 0.1870860, 0.8129140),
        (95, 100, 0.95, 0.8871651, 0.9835681),
    ],
)
def test_clopper_pearson_matches_reference(successes, trials, level, low, high):
    interval = clopper_pearson(successes, trials, level)
    assert interval.low == pytest.approx(low, abs=1e-6)
    assert interval.high == pytest.approx(high, abs=1e-6)


@pytest.mark.parametrize(("successes", "trials", "level"), [(45, 50, 0.99), (3, 7, 0.9), (970, 1000, 0.95)])
def test_clopper_pearson_is_defined_by_the_binomial_tails(successes, trials, level):
    """The interval's ends are where the binomial tails equal (1 - level) / 2 (its definition)."""
    interval = clopper_pearson(successes, trials, level)
    alpha = (1 - level) / 2
    assert binom.sf(successes - 1, trials, interval.low) == pytest.approx(alpha, rel=1e-6)
    assert binom.cdf(successes, trials, interval.high) == pytest.approx(alpha, rel=1e-6)
    assert binom.sf(successes - 1, trials, lower_bound(successes, trials, level)) == pytest.approx(
        1 - level, rel=1e-6
    )


def test_one_sided_lower_bound_of_a_flawless_record():
    # n of n correct: the one-sided bound solves p**n = alpha.
    assert lower_bound(30, 30, 0.95) == pytest.approx(0.05 ** (1 / 30))
    assert lower_bound(0, 30, 0.95) == 0.0
    assert min_sample_for(0.9, 0.95) == 29  # 0.9**29 < 0.05 <= 0.9**28
    assert lower_bound(29, 29, 0.95) >= 0.9 > lower_bound(28, 28, 0.95)


@pytest.mark.parametrize(("target", "level"), [(0.9, 0.95), (0.98, 0.95), (0.8, 0.99)])
def test_first_test_tolerates_one_error(target, level):
    size = first_test_size(target, level)
    assert lower_bound(size - 1, size, level) >= target > lower_bound(size - 2, size - 1, level)


def test_one_early_error_does_not_end_the_search():
    reviewed = [Reviewed(0.99, True)] * 5 + [Reviewed(0.985, False)] + [Reviewed(0.9, True)] * 80
    result = calibrate_class("cat", reviewed, target=0.9, confidence_level=0.95, min_reviewed=30)
    assert result.threshold == 0.9


@pytest.mark.parametrize(("successes", "trials"), [(-1, 5), (6, 5), (0, 0)])
def test_bounds_refuse_impossible_counts(successes, trials):
    with pytest.raises(ValueError):
        clopper_pearson(successes, trials, 0.95)
    with pytest.raises(ValueError):
        lower_bound(successes, trials, 0.95)


def test_threshold_stops_where_errors_begin():
    # 60 correct labels above 0.7, then errors every other label below it.
    reviewed = [Reviewed(0.99 - i * 0.005, True) for i in range(60)]
    reviewed += [Reviewed(0.69 - i * 0.01, i % 2 == 0) for i in range(40)]
    result = calibrate_class("cat", reviewed, target=0.9, confidence_level=0.95, min_reviewed=20)
    assert result.threshold is not None
    assert result.threshold >= 0.6
    assert result.lower is not None and result.lower >= 0.9
    assert result.interval is not None and result.precision is not None
    assert result.interval.low <= result.lower <= result.precision
    assert result.reviewed == 100 and result.correct == 80
    assert result.needed == 0


def test_a_class_with_too_few_reviews_says_how_many_more():
    reviewed = [Reviewed(0.9, True)] * 5
    result = calibrate_class("dog", reviewed, target=0.95, confidence_level=0.95, min_reviewed=30)
    assert result.threshold is None and result.needed == 25


def test_a_class_below_target_cannot_be_certified_by_more_reviews():
    reviewed = [Reviewed(0.9 - i * 0.001, i % 3 != 0) for i in range(90)]  # 2/3 correct
    result = calibrate_class("wolf", reviewed, target=0.9, confidence_level=0.95, min_reviewed=30)
    assert result.threshold is None
    assert result.needed is None
    assert result.precision == pytest.approx(60 / 90)


def test_a_good_class_short_of_reviews_gets_a_count():
    reviewed = [Reviewed(0.99 - i * 0.01, True) for i in range(20)]
    result = calibrate_class("cat", reviewed, target=0.95, confidence_level=0.95, min_reviewed=10)
    assert result.threshold is None  # 20 flawless reviews certify at most 0.05**(1/20) = 0.861
    assert result.needed is not None and result.needed >= min_sample_for(0.95, 0.95) - 20


def test_flawless_reviews_short_of_the_first_test_are_told_the_first_test_size():
    reviewed = [Reviewed(0.99 - i * 0.001, True) for i in range(40)]  # lower bound 0.928 already
    result = calibrate_class("zero", reviewed, target=0.9, confidence_level=0.95, min_reviewed=20)
    assert result.threshold is None  # the first threshold tested needs 46 labels above it
    assert first_test_size(0.9, 0.95) == 46 and result.needed == 46 - 40


def test_verification_sample_is_stratified_deterministic_and_shuffled():
    labels = [(f"{c}-{i}", c, i / 1000) for c in ("cat", "dog") for i in range(1000)]
    labels += [(f"fox-{i}", "fox", 0.5) for i in range(7)]
    sample = verification_sample(labels, per_class=50, bands=5, seed="uid-1")
    assert sample == verification_sample(labels, per_class=50, bands=5, seed="uid-1")
    assert sample != verification_sample(labels, per_class=50, bands=5, seed="uid-2")
    counts = Counter(label_id.split("-")[0] for label_id in sample)
    assert counts == {"cat": 50, "dog": 50, "fox": 7}
    assert len(set(sample)) == len(sample)
    cat_bands = Counter(
        int(label_id.split("-")[1]) // 200 for label_id in sample if label_id.startswith("cat")
    )
    assert cat_bands == {0: 10, 1: 10, 2: 10, 3: 10, 4: 10}
    assert sample[:10] != sorted(sample[:10])  # random order, not grouped by class


def test_guarantee_holds_in_repeated_draws():
    """Simulated classes whose precision falls with confidence: accepted thresholds keep the promise."""
    target, level, misses, draws = 0.9, 0.9, 0, 300
    rng = random.Random(7)
    population = []
    for i in range(3000):
        confidence = rng.random()
        population.append((i, confidence, rng.random() < 0.6 + 0.4 * confidence))
    for draw in range(draws):
        sample = verification_sample(
            [(i, "c", confidence) for i, confidence, _ in population], per_class=200, bands=5, seed=draw
        )
        truth = {i: (confidence, correct) for i, confidence, correct in population}
        reviewed = [Reviewed(truth[i][0], truth[i][1]) for i in sample]
        result = calibrate_class("c", reviewed, target, level, min_reviewed=30)
        if result.threshold is None:
            continue
        kept = [correct for _, confidence, correct in population if confidence >= result.threshold]
        if sum(kept) / len(kept) < target:
            misses += 1
    assert misses / draws <= 1 - level
