"""bench/nab.py scores as NAB does: hand-computed files, the sweep agreeing with scoring at a
threshold, and on the corpus 0 for the null detector and 100 for the perfect one."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import nab  # noqa: E402

STANDARD = nab.Profile("standard", tp=1.0, fp=0.11, fn=1.0)


def sigmoid(x: float) -> float:
    """NAB's scaled sigmoid, written out: 2 / (1 + e^(5x)) - 1."""
    return 2.0 / (1.0 + math.exp(5.0 * x)) - 1.0


def one_file(n: int = 1000, windows: tuple[tuple[int, int], ...] = ((500, 599),)
             ) -> nab.DataFile:
    stamps = pd.date_range("2025-01-01", periods=n, freq="5min")
    return nab.DataFile("test/one.csv", stamps, np.zeros(n), list(windows))


def fires(n: int, *rows: int) -> list[np.ndarray]:
    scores = np.zeros(n)
    scores[list(rows)] = 1.0
    return [scores]


def test_a_window_counts_its_earliest_detection_weighted_by_how_early() -> None:
    data = one_file()
    scorer = nab.Scorer([data])
    assert data.probation == 150  # 15% of 1,000 rows
    top = sigmoid(-1.0)
    at_start = scorer.score(fires(1000, 500), STANDARD, 0.5)
    assert at_start.raw == pytest.approx(1.0) and at_start.normalised == pytest.approx(100)
    # Row 550 of a 100-row window ending at 599: position -(599 - 550 + 1) / 100 = -0.5.
    middle = scorer.score(fires(1000, 550, 560, 598), STANDARD, 0.5)
    assert middle.raw == pytest.approx(sigmoid(-0.5) / top)
    assert middle.false_positives == 0 and middle.detected == 1


def test_false_positives_cost_less_just_after_a_window() -> None:
    scorer = nab.Scorer([one_file()])
    # Before any window: the full fpWeight; 30 rows after the window (width 100): S(30 / 99).
    before = scorer.score(fires(1000, 300), STANDARD, 0.5)
    assert before.raw == pytest.approx(-1.0 - 0.11)
    after = scorer.score(fires(1000, 629), STANDARD, 0.5)
    assert after.raw == pytest.approx(-1.0 + 0.11 * sigmoid(30 / 99))
    far = scorer.score(fires(1000, 999), STANDARD, 0.5)  # 400 rows on: beyond 3 widths
    assert far.raw == pytest.approx(-1.0 - 0.11)
    probation = scorer.score(fires(1000, 100), STANDARD, 0.5)  # not scored
    assert probation.raw == -1.0 and probation.false_positives == 0


def test_the_sweep_gives_the_score_of_every_threshold() -> None:
    rng = np.random.default_rng(1)
    files = [one_file(1000, ((400, 449), (700, 799))), one_file(800, ((300, 379),))]
    scorer = nab.Scorer(files)
    scores = [np.round(rng.random(len(f.values)) ** 8, 3) for f in files]
    for profile in (STANDARD, nab.Profile("low_fn", 1.0, 0.11, 2.0)):
        thresholds, raw = scorer.sweep(scores, profile)
        assert thresholds[0] == 1.1 and raw[0] == -profile.fn * 3
        for threshold, total in zip(thresholds[1::7], raw[1::7], strict=True):
            assert scorer.score(scores, profile, threshold).raw == pytest.approx(total)
        best = scorer.best(scores, profile)
        assert scorer.score(scores, profile, best).raw == pytest.approx(raw.max())


@pytest.mark.skipif(not (nab.nab_folder() / "labels").is_dir(),
                    reason=f"the NAB copy is not at {nab.nab_folder()}")
def test_the_corpus_scores_0_for_the_null_detector_and_100_for_the_perfect_one() -> None:
    files = nab.corpus()
    assert len(files) == 58 and sum(len(f.values) for f in files) == 365_558
    scorer = nab.Scorer(files)
    assert scorer.windows == 116
    null, perfect = nab.null_scores(files), nab.perfect_scores(files)
    assert all(p[first] == 1 and p.sum() == len(f.windows)
               for p, f in zip(perfect, files, strict=True) for first, _ in f.windows)
    for profile in nab.profiles():
        assert scorer.score(null, profile, scorer.best(null, profile)).normalised == 0.0
        assert scorer.score(perfect, profile, scorer.best(perfect, profile)
                            ).normalised == pytest.approx(100.0)
    with pytest.raises(ValueError, match="must lie in"):
        scorer.score([s * 2 for s in perfect], nab.profiles()[0], 0.5)


def test_a_window_inside_the_probation_is_not_scored() -> None:
    # NAB names no scorable row after such a window, so it is neither missed nor found.
    data = one_file(windows=((20, 59), (500, 599)))
    scorer = nab.Scorer([data])
    never = scorer.score([np.zeros(1000)], STANDARD, 0.5)
    assert never.windows == 1 and never.raw == -1.0
    assert scorer.score(fires(1000, 500), STANDARD, 0.5).normalised == pytest.approx(100)
    thresholds, raw = scorer.sweep(fires(1000, 500), STANDARD)
    assert raw[0] == -1.0 and raw.max() == pytest.approx(1.0)
