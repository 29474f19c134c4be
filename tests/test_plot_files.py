"""The plot files are written without pandas (its import costs each evaluate stage seconds), byte for
byte as pandas writes them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seqpipe import plotting


def test_write_csv_writes_what_pandas_writes(tmp_path: Path) -> None:
    columns = {"f": np.array([1.5, np.nan, -0.0, 1e-9, 123456789.0, np.inf]), "i": np.arange(6),
               "s": ["x", "y,z", 'q"t', "", "a\nb", "ok"], "b": np.array([True, False] * 3),
               "f32": np.linspace(0, 1, 6, dtype=np.float32), "py": [0.1, 0.2, 1 / 3, 2.0, 7, 1e6]}
    for name, cols in {"mixed": columns, "one": {"v": np.array([np.nan, 1.0, np.nan])}}.items():
        pd.DataFrame(cols).to_csv(tmp_path / f"{name}_pandas.csv", index=False, float_format="%.6g")
        plotting.write_csv(tmp_path / f"{name}.csv", cols)
        assert (tmp_path / f"{name}.csv").read_bytes() == (tmp_path / f"{name}_pandas.csv").read_bytes(), name
    with pytest.raises(ValueError, match="same length"):
        plotting.write_csv(tmp_path / "bad.csv", {"a": [1, 2], "b": [1]})


def test_confusion_table_counts_as_crosstab() -> None:
    rng = np.random.default_rng(0)
    classes = ["open", "thin", "thick"]
    actual, predicted = np.array(classes)[rng.integers(0, 3, 500)], np.array(classes[:2])[rng.integers(0, 2, 500)]
    counts = pd.crosstab(pd.Categorical(actual, categories=classes), pd.Categorical(predicted, categories=classes),
                         dropna=False).to_numpy()
    totals = counts.sum(axis=1, keepdims=True)
    rates = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    table = plotting.confusion_table(actual, predicted, classes)
    assert table["count"] == [int(c) for c in counts.ravel()]
    assert table["rate"] == [float(r) for r in rates.ravel()]
    assert plotting.confusion_table(["a"] * 3, ["a"] * 3, ["a", "b"])["rate"] == [1.0, 0.0, 0.0, 0.0]
