"""Time-series helpers: sliding windows, chronological splits, train-only scaling, the training-range
check, split I/O."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from seqpipe.data.windows import Windows, load_windows
from seqpipe.errors import SeqpipeError
from seqpipe.io import load_npy, read_json, save_npy, sha256_file
from seqpipe.spec import IODescription, WindowStats

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def sliding_windows(values: np.ndarray, window: int) -> np.ndarray:
    """(time, features) -> (time - window + 1, window, features) as a read-only view."""
    return np.lib.stride_tricks.sliding_window_view(values, window, axis=0).transpose(0, 2, 1)


MIN_WINDOW, MAX_WINDOW = 8, 64   # bounds of an automatic window, in rows
LONG_SEASON_WINDOW = 20          # the automatic window when a season does not fit in MAX_WINDOW rows
MAX_AUTO_BATCH = 128


def detect_cadence(stamps: np.ndarray) -> tuple[float, bool]:
    """(cadence in seconds, business days?) of increasing datetime64 `stamps`: the median step, except
    for a business-day calendar (every row Monday to Friday, steps of 1 day or 3 over a weekend), whose
    cadence is one day with weekends absent, not a gap each week."""
    values = np.asarray(stamps, dtype="datetime64[ns]")
    steps = np.diff(values).astype("timedelta64[s]").astype(np.float64)
    cadence = float(np.median(steps))
    weekday = (values.astype("datetime64[D]").astype(np.int64) + 3) % 7   # 1970-01-01 was a Thursday
    day = 86400.0
    business = bool(len(steps) >= 10 and cadence == day and (weekday < 5).all()
                    and np.isin(steps, (day, 3 * day)).mean() >= 0.95 and (steps == 3 * day).any())
    return cadence, business


MAX_HOLIDAYS = 2   # weekdays absent in a row that a business-day calendar takes as holidays, not as a gap
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def off_cadence(stamps: np.ndarray, cadence_s: float, business_days: bool = False) -> tuple[int, str] | None:
    """(position, what is wrong) of the first row of `stamps` (datetime64, or seconds as numbers) that is not
    one step of the cadence after the row before it; None when every row is.

    One step is 0.5 to 1.5 x `cadence_s` (calendar months and years, a jittery clock): a longer step is a
    gap (rows missing), a shorter one another cadence. On a business-day calendar (datetime64 stamps) a
    row falls on Monday to Friday and comes one business day after the row before, or up to
    1 + MAX_HOLIDAYS when holidays are absent: a weekend is part of the cadence, not a gap."""
    values = np.asarray(stamps)
    dates = values.dtype.kind == "M"
    if dates:
        ns = values.astype("datetime64[ns]").astype(np.int64)
        steps = np.diff(ns).astype(np.float64) / 1e9
    else:
        steps = np.diff(values.astype(np.float64))
    if (steps <= 0).any():
        k = int(np.flatnonzero(steps <= 0)[0])
        return k + 1, ("is not after the previous row "
                       f"({'the same time' if steps[k] == 0 else 'out of time order'})")
    if business_days and dates:
        days = values.astype("datetime64[D]")
        weekday = (days.astype(np.int64) + 3) % 7   # 1970-01-01 was a Thursday
        counted = np.busday_count(days[:-1], days[1:])   # weekdays from the row before up to this one
        first_bad = np.flatnonzero(weekday >= 5).tolist()[:1] + (np.flatnonzero(
            (counted < 1) | (counted > 1 + MAX_HOLIDAYS)) + 1).tolist()[:1]
        if not first_bad:
            return None
        k = min(first_bad)
        if weekday[k] >= 5:
            return k, f"falls on a {WEEKDAYS[weekday[k]]}, outside a business-day calendar"
        if counted[k - 1] < 1:
            return k, f"comes {duration_text(steps[k - 1])} after the previous row, on the same business day"
        return k, (f"comes {int(counted[k - 1])} business days after the previous row "
                   f"({int(counted[k - 1]) - 1} weekdays absent: a gap, more than {MAX_HOLIDAYS} "
                   "holidays in a row)")
    ratio = steps / cadence_s
    bad = np.flatnonzero((ratio < 0.5) | (ratio > 1.5))
    if not len(bad):
        return None
    k = int(bad[0])
    missing = max(int(round(ratio[k])) - 1, 1)
    kind = (f"a gap: about {missing:,} row{'s' * (missing > 1)} missing" if ratio[k] > 1.5
            else "a finer cadence")
    return k + 1, f"comes {duration_text(steps[k])} after the previous row ({kind})"


def duration_text(seconds: float) -> str:
    """90 -> '1.5 min', 86400 -> '1 day', 0.02 -> '0.02 s'."""
    for unit, size in (("day", 86400.0), ("h", 3600.0), ("min", 60.0), ("s", 1.0)):
        if abs(seconds) >= size:
            value = seconds / size
            return f"{value:.4g} {unit}" + ("s" if unit == "day" and value != 1 else "")
    return f"{seconds:.4g} s"


def cadence_text(cadence_s: float, business_days: bool = False) -> str:
    """'business days (Monday to Friday)' or the cadence as a duration ('1 min')."""
    return "business days (Monday to Friday)" if business_days else duration_text(cadence_s)


def auto_window(season: int, rows: int) -> int:
    """One season plus one step, within [MIN_WINDOW, MAX_WINDOW] (LONG_SEASON_WINDOW when the season is
    longer than MAX_WINDOW), and at most a fifth of the rows so that most of the series makes windows."""
    wanted = season + 1 if season + 1 <= MAX_WINDOW else LONG_SEASON_WINDOW
    return int(max(min(max(wanted, MIN_WINDOW), rows // 5), 2))


MAX_AUTO_HOLDOUT = 0.3


def auto_holdout_fraction(season: int, n_windows: int) -> float:
    """The share of windows for each of validation and test: 15%, more where that holds less than one
    season or ten windows, at most MAX_AUTO_HOLDOUT (so ten windows each from 34 windows on)."""
    return float(min(max(0.15, season / max(n_windows, 1), 10 / max(n_windows, 1)), MAX_AUTO_HOLDOUT))


def auto_batch_size(n_train: int) -> int:
    """The largest power of two at most a sixteenth of the training samples, within [8, MAX_AUTO_BATCH]
    and never above the samples there are: at least 16 steps an epoch where the data allows."""
    power = 1 << max(int(n_train // 16).bit_length() - 1, 0)
    return int(max(min(power, MAX_AUTO_BATCH, n_train), min(8, n_train)))


def chronological_split(n: int, val_fraction: float, test_fraction: float) -> dict[str, slice]:
    """Contiguous train / val / test ranges in time order (no shuffling across time)."""
    n_test = int(round(n * test_fraction))
    n_val = int(round(n * val_fraction))
    n_train = n - n_val - n_test
    return {"train": slice(0, n_train), "val": slice(n_train, n_train + n_val),
            "test": slice(n_train + n_val, n)}


class Standardizer:
    """Per-column mean/std fitted on the train split only; stored as plain lists in stats.json."""

    def __init__(self, mean: np.ndarray, std: np.ndarray) -> None:
        self.mean = np.asarray(mean, dtype=np.float64)
        self.std = np.asarray(std, dtype=np.float64)

    @classmethod
    def fit(cls, values: np.ndarray, source: str = "train values",
            columns: list[str] | None = None) -> Standardizer:
        """Mean/std of each column of (rows, columns) `values`; a non-finite one (NaN, or a sum that
        overflows) is refused naming `source`, the column and the row of its largest value."""
        with np.errstate(over="ignore", invalid="ignore"):
            mean, std = values.mean(axis=0), values.std(axis=0)
        bad = ~(np.isfinite(mean) & np.isfinite(std))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            column = values[:, k].astype(np.float64)
            row = int(np.nanargmax(np.abs(column))) if not np.isnan(column).all() else 0
            name = repr(columns[k]) if columns else str(k)
            raise SeqpipeError(f"{source}: column {name}: mean/std are not finite (a NaN, or an overflow in "
                               f"{values.dtype}; largest |value| {column[row]:.3g} at data row {row + 1}); "
                               "rescale or remove it")
        return cls(mean, np.where(std > 0, std, 1.0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.std).astype(np.float32)

    def inverse(self, values: np.ndarray) -> np.ndarray:
        return values * self.std + self.mean

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": self.mean.tolist(), "std": self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> Standardizer:
        return cls(np.array(data["mean"]), np.array(data["std"]))


def training_range(values: np.ndarray, columns: list[str]) -> dict[str, list[float]]:
    """{column: [min, max]} of (rows, ..., columns) training values, NaN ignored (stats.json's
    `train_range`)."""
    flat = np.asarray(values, np.float64).reshape(-1, len(columns))
    return {c: [float(np.nanmin(flat[:, k])), float(np.nanmax(flat[:, k]))] for k, c in enumerate(columns)}


class RangeCheck:
    """Counts, per column, the rows with a value more than `margin` x the training range (max - min)
    below its min or above its max: where a network fed globally standardised values extrapolates.

    `add(split, values)` may be called again for the same split (block by block); `fractions()` gives
    {column: {split: fraction of rows beyond}} with only the nonzero ones, `warn()` logs one line per
    such column and returns the same dict."""

    def __init__(self, columns: list[str], train_range: dict[str, list[float]], margin: float) -> None:
        self.columns = list(columns)   # the order of the values' last axis
        bounds = np.array([train_range[c] for c in self.columns], np.float64).reshape(-1, 2)
        self.low, self.high = bounds[:, 0], bounds[:, 1]
        span = self.high - self.low
        self.span = np.where(span > 0, span, 1.0)
        self.margin = margin
        self.rows: dict[str, int] = {}
        self.beyond: dict[str, np.ndarray] = {}
        self.furthest = np.zeros(len(self.columns))   # in training ranges beyond the nearer bound

    def add(self, split: str, values: np.ndarray) -> None:
        """Count (rows, ..., columns) `values`, last axis in the order of `columns`; a row (e.g. a whole
        window) counts once if any of its values is beyond; NaN never counts."""
        values = np.asarray(values, np.float64)
        self.rows[split] = self.rows.get(split, 0) + len(values)
        self.beyond.setdefault(split, np.zeros(len(self.columns), np.int64))
        if values.size == 0:
            return
        values = values.reshape(len(values), -1, len(self.columns))
        with np.errstate(invalid="ignore"):
            excess = np.fmax(np.fmax(self.low - values, values - self.high), 0.0) / self.span
        excess = np.nan_to_num(excess, nan=0.0).max(axis=1)
        self.beyond[split] += (excess > self.margin).sum(axis=0)
        self.furthest = np.maximum(self.furthest, excess.max(axis=0))

    def fractions(self) -> dict[str, dict[str, float]]:
        """{column: {split: share of its rows beyond the margin}}, only the nonzero ones (6 decimals)."""
        found: dict[str, dict[str, float]] = {}
        for split, counts in self.beyond.items():
            for column, count in zip(self.columns, counts, strict=True):
                if count:
                    found.setdefault(column, {})[split] = round(float(count) / self.rows[split], 6)
        return found

    def warn(self, source: str, consequence: str) -> dict[str, dict[str, float]]:
        """Log `source: column 'x': 12.5% of test rows, ... beyond ...; <consequence>` per column found."""
        found = self.fractions()
        for column, shares in found.items():
            k = self.columns.index(column)
            rows = ", ".join(f"{share:.1%} of {split} rows" for split, share in shares.items())
            log.warning("%s: column %r: %s lie more than %g%% of the training range [%.4g, %.4g] outside it "
                        "(the furthest %.3g ranges beyond); %s", source, column, rows, self.margin * 100,
                        self.low[k], self.high[k], self.furthest[k], consequence)
        return found


def save_splits(out_dir: Path, arrays: dict[str, np.ndarray]) -> dict[str, dict]:
    """Write `<name>.npy` files (e.g. x_train, y_test); returns shape/dtype/sha256 for stats.json."""
    described = {}
    for name, array in sorted(arrays.items()):
        path = out_dir / f"{name}.npy"
        save_npy(path, array)
        described[name] = npy_record(path)
    return described


def npy_record(path: Path) -> dict:
    """shape, dtype and sha256 of a written .npy: its record in stats.json's `arrays` (as save_splits
    gives for the files it writes)."""
    array = load_npy(path, mmap_mode="r")
    return {"shape": list(array.shape), "dtype": str(array.dtype), "sha256": sha256_file(path)}


def load_split(data_dir: Path, split: str, mmap: bool = False) -> dict[str, np.ndarray | Windows]:
    """Every key of one split of a processed folder: {'x': ..., 'y': ...}. A windowed folder (stats.json
    has `windows`) gives Windows cut on demand from its memory-mapped stored arrays; any other gives
    each `<key>_<split>.npy`, keyed without the suffix, loaded (or memory-mapped read-only: `mmap`)."""
    stats = data_dir / "stats.json"
    cuts = read_json(stats).get("windows") if stats.exists() else None
    if cuts:
        return load_windows(data_dir, split, cuts)
    suffix = f"_{split}.npy"
    return {p.name[: -len(suffix)]: load_npy(p, mmap_mode="r" if mmap else None)
            for p in sorted(data_dir.glob(f"*{suffix}"))}


def window_io(stats: WindowStats, target_index: list[int], x: str, y: str,
              units: dict[str, str]) -> IODescription:
    """The IODescription of a next-step forecaster over windows of standardised feature columns (what
    `sliding_windows` and a `Standardizer` fitted on the training rows give), its targets being features
    `target_index` and its input and output shapes `x` and `y`; `units` of the columns where known."""
    features, targets = stats["feature_columns"], stats["target_columns"]
    return IODescription(
        features, targets, stats["window"], {**stats["scaler"], "target_index": target_index},
        x=f"{x} = (batch, window time steps oldest first, features); each feature standardised: "
          "(raw - scaler.mean[i]) / scaler.std[i]",
        y=f"{y} = (batch, targets) one step after the window, standardised: raw = "
          "y[:, k] * scaler.std[target_index[k]] + scaler.mean[target_index[k]]",
        units={c: units[c] for c in dict.fromkeys([*features, *targets]) if c in units})
