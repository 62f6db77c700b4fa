"""The Numenta Anomaly Benchmark: its corpus and its scorer, written from NAB's documentation
and its code (numenta/NAB `nab/sweeper.py`, `nab/runner.py`), for bench/anomaly_nab.py and
bench/forecast_hf.py.

How NAB scores a detector that gives every row an anomaly score in [0, 1]:

- The first 15% of each file, at most 750 rows, is probationary: not scored (a window lying
  wholly in it is left out, as NAB's sweeper leaves out the windows no scorable row names).
- At a threshold T a row is a detection when its score is >= T.
- Inside a labelled window only the earliest detection counts, worth
  tpWeight * S(p) / S(-1) where p = -(right - i + 1) / width is its position (-1 at the
  window's first row) and S(x) = 2 / (1 + exp(5x)) - 1 (x > 3 gives -1). A window without a
  detection costs fnWeight.
- A detection outside every window costs fpWeight * S(d), d its distance past the end of the
  preceding window over that window's width minus one (-1, the full cost, when no window
  precedes it): a detection just after a window costs little, one far from any costs fpWeight.
- One threshold for the whole corpus, the one that maximises the summed raw score; the
  normalised score is 100 * (raw - null) / (perfect - null), null = -fnWeight per window
  (never firing), perfect = tpWeight per window.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

NAB = Path(__file__).resolve().parents[2] / "shared" / "data" / "nab"
DEFAULT_NAB = Path("/work/shared/data/nab")
PROBATION_SHARE = 0.15
PROBATION_CAP = 0.15 * 5000


def nab_folder() -> Path:
    """The NAB copy: ../shared/data/nab beside the project, else /work/shared/data/nab."""
    return NAB if (NAB / "labels").is_dir() else DEFAULT_NAB


@dataclass(frozen=True)
class Profile:
    name: str
    tp: float
    fp: float
    fn: float


@dataclass
class DataFile:
    """One NAB series: its name (category/file.csv), rows and labelled windows (row spans)."""

    name: str
    timestamps: pd.DatetimeIndex
    values: np.ndarray
    windows: list[tuple[int, int]]  # first and last row of each window, inclusive

    @property
    def category(self) -> str:
        return self.name.split("/")[0]

    @property
    def probation(self) -> int:
        """Rows before this index are probationary (not scored)."""
        return math.ceil(min(math.floor(PROBATION_SHARE * len(self.values)), PROBATION_CAP))


def profiles(folder: Path | None = None) -> list[Profile]:
    """NAB's application profiles (config/profiles.json): standard, low FP, low FN."""
    raw = json.loads(((folder or nab_folder()) / "profiles.json").read_text())
    return [Profile(name, c["tpWeight"], c["fpWeight"], c["fnWeight"])
            for name, c in ((n, p["CostMatrix"]) for n, p in raw.items())]


def corpus(folder: Path | None = None) -> list[DataFile]:
    """Every labelled file of the corpus, in name order."""
    folder = folder or nab_folder()
    windows = json.loads((folder / "labels" / "combined_windows.json").read_text())
    files = []
    for name in sorted(windows):
        frame = pd.read_csv(folder / "data" / name)
        stamps = pd.DatetimeIndex(pd.to_datetime(frame["timestamp"]))
        spans = []
        for start, end in windows[name]:
            first = stamps.get_loc(pd.Timestamp(start))
            last = stamps.get_loc(pd.Timestamp(end))
            spans.append((int(first), int(last)))
        files.append(DataFile(name, stamps, frame["value"].to_numpy(float), spans))
    return files


def null_scores(files: list[DataFile]) -> list[np.ndarray]:
    """The null detector: never fires (NAB's 0)."""
    return [np.zeros(len(f.values)) for f in files]


def perfect_scores(files: list[DataFile]) -> list[np.ndarray]:
    """The perfect detector: fires on the first row of every window and nowhere else (100)."""
    found = []
    for data in files:
        scores = np.zeros(len(data.values))
        scores[[first for first, _ in data.windows]] = 1.0
        found.append(scores)
    return found


def scaled_sigmoid(position: np.ndarray) -> np.ndarray:
    """NAB's S(x) = 2 * sigmoid(-5x) - 1, and -1 beyond three widths past a window."""
    position = np.asarray(position, float)
    return np.where(position > 3.0, -1.0, 2.0 / (1.0 + np.exp(5.0 * position)) - 1.0)


@dataclass
class _Rows:
    """Each scorable row of one file: what a detection there is worth under a profile's
    weights of 1, and its window (-1 outside every window)."""

    tp_value: np.ndarray  # S(p) / S(-1) inside a window, 0 outside
    fp_value: np.ndarray  # S(d) outside (negative), 0 inside
    window: np.ndarray  # window number within the file, -1 outside


def _rows(data: DataFile) -> _Rows:
    n = len(data.values)
    tp_value, fp_value = np.zeros(n), np.full(n, -1.0)
    window = np.full(n, -1)
    index = np.arange(n)
    top = float(scaled_sigmoid(np.array(-1.0)))
    previous: tuple[int, int] | None = None
    bounds = [*data.windows, (n, n)]
    for number, (first, last) in enumerate(bounds):
        gap = slice(previous[1] + 1 if previous else 0, first)
        if previous is not None:
            width = previous[1] - previous[0] + 1
            fp_value[gap] = scaled_sigmoid(np.abs(previous[1] - index[gap]) / (width - 1))
        if number == len(data.windows):
            break
        width = last - first + 1
        inside = slice(first, last + 1)
        tp_value[inside] = scaled_sigmoid(-(last - index[inside] + 1) / width) / top
        fp_value[inside] = 0.0
        window[inside] = number
        previous = (first, last)
    keep = index >= data.probation
    return _Rows(tp_value[keep], fp_value[keep], window[keep])


@dataclass(frozen=True)
class Result:
    """A corpus scored at one threshold under one profile."""

    profile: str
    threshold: float
    raw: float
    normalised: float
    detected: int  # windows with a detection
    windows: int
    false_positives: int  # detections outside every window

    def subset(self) -> str:
        return (f"{self.normalised:6.1f}  ({self.detected}/{self.windows} windows, "
                f"{self.false_positives} FP)")


class Scorer:
    """NAB's scoring of a corpus: the scorable rows of every file, then sweeps of thresholds."""

    def __init__(self, files: list[DataFile]) -> None:
        self.files = files
        parts = [_rows(f) for f in files]
        offsets = np.cumsum([0, *(len(f.windows) for f in files)])
        self.tp_value = np.concatenate([p.tp_value for p in parts])
        self.fp_value = np.concatenate([p.fp_value for p in parts])
        self.window = np.concatenate([np.where(p.window >= 0, p.window + o, -1)
                                      for p, o in zip(parts, offsets, strict=False)])
        self.file = np.concatenate([np.full(len(p.window), i) for i, p in enumerate(parts)])
        self.windows = int(offsets[-1])
        # Windows with at least one row after the probation: the ones scored.
        self.scorable = np.zeros(self.windows, bool)
        self.scorable[np.unique(self.window[self.window >= 0])] = True
        self.window_file = np.concatenate([np.full(len(f.windows), i)
                                           for i, f in enumerate(files)]).astype(int)
        self.probations = [f.probation for f in files]

    def _scores(self, scores: list[np.ndarray]) -> np.ndarray:
        if len(scores) != len(self.files):
            raise ValueError(f"{len(scores)} score arrays for {len(self.files)} files")
        kept = []
        for data, values, start in zip(self.files, scores, self.probations, strict=True):
            values = np.asarray(values, float)
            if values.shape != data.values.shape:
                raise ValueError(f"{data.name}: {values.shape[0]} scores for "
                                 f"{data.values.shape[0]} rows")
            if np.any(np.isnan(values)) or np.any((values < 0) | (values > 1)):
                raise ValueError(f"{data.name}: anomaly scores must lie in [0, 1]")
            kept.append(values[start:])
        return np.concatenate(kept)

    def sweep(self, scores: list[np.ndarray], profile: Profile,
              subset: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(thresholds, raw scores): the raw score at every distinct anomaly score, as NAB's
        sweeper computes it, and at 1.1 (nothing detected) first; `subset` (a boolean per
        file) restricts the sum to some files."""
        value = self._scores(scores)
        rows = np.ones(len(value), bool) if subset is None else subset[self.file]
        windows = self.scorable & (True if subset is None else subset[self.window_file])
        order = np.argsort(-value[rows], kind="stable")
        value = value[rows][order]
        window = self.window[rows][order]
        fp_gain = np.where(window < 0, self.fp_value[rows][order] * profile.fp, 0.0)
        # Inside a window the earliest detection counts: each window's running best.
        tp = self.tp_value[rows][order] * profile.tp
        gain = np.zeros(len(value))
        inside = np.flatnonzero(window >= 0)
        best = pd.Series(tp[inside]).groupby(window[inside]).cummax().to_numpy()
        before = pd.Series(best).groupby(window[inside]).shift(1).to_numpy()
        gain[inside] = np.where(np.isnan(before), best + profile.fn, best - before)
        total = -profile.fn * int(windows.sum()) + np.cumsum(fp_gain + gain)
        last_of_tie = np.r_[value[1:] != value[:-1], True]
        return (np.r_[1.1, value[last_of_tie]],
                np.r_[-profile.fn * int(windows.sum()), total[last_of_tie]])

    def best(self, scores: list[np.ndarray], profile: Profile) -> float:
        """The corpus's best threshold under the profile (the highest, when several tie)."""
        thresholds, raw = self.sweep(scores, profile)
        return float(thresholds[int(np.argmax(raw))])

    def score(self, scores: list[np.ndarray], profile: Profile, threshold: float,
              subset: np.ndarray | None = None) -> Result:
        """The corpus (or the files of `subset`) at one threshold, normalised."""
        value = self._scores(scores)
        rows = np.ones(len(value), bool) if subset is None else subset[self.file]
        windows = self.scorable & (True if subset is None else subset[self.window_file])
        fired = rows & (value >= threshold)
        outside = fired & (self.window < 0)
        raw = float(np.sum(self.fp_value[outside]) * profile.fp)
        detected = 0
        for number in np.flatnonzero(windows):
            hits = fired & (self.window == number)
            if hits.any():
                detected += 1
                raw += float(self.tp_value[hits].max()) * profile.tp
            else:
                raw -= profile.fn
        count = int(windows.sum())
        null, perfect = -profile.fn * count, profile.tp * count
        normalised = 100.0 * (raw - null) / (perfect - null) if count else float("nan")
        return Result(profile.name, threshold, raw, normalised, detected, count,
                      int(outside.sum()))
