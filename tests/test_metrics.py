"""seqpipe.metrics: which way each metric is better, and the headline of an evaluation."""

from __future__ import annotations

import json

import pytest

from seqpipe import pipelines
from seqpipe.errors import SeqpipeError
from seqpipe.metrics import detail_file, direction, headline, headline_line
from tests.conftest import REPO

DETAIL = {"test": {"mean": {"rmse": 2.0, "mae": 1.0, "r2": 0.9}, "a": {"rmse": 3.0}},
          "baselines": {"persistence": {"mean": {"rmse": 4.0, "mae": 3.0, "r2": 0.5}},
                        "ridge": {"mean": {"rmse": 2.5, "mae": 1.5, "r2": 0.8}}},
          "goal": {"met": True}, "n_test_windows": 10}


@pytest.mark.parametrize(("key", "expected"), [
    ("rmse", -1), ("mae", -1), ("mse", -1), ("mape", -1), ("test.mean.rmse", -1), ("rmse_lead_7", -1),
    ("mse_1hz", -1), ("baselines.ridge.mae", -1),
    ("accuracy", 1), ("macro_f1", 1), ("f1", 1), ("iou", 1), ("r2", 1), ("correlation", 1),
    ("edge_accuracy_lead_3", 1), ("test.precision", 1),
    ("mape_coverage", None), ("support", None), ("n_test", None), ("threshold", None)])
def test_direction(key: str, expected: int | None) -> None:
    assert direction(key) == expected


def test_headline_keeps_the_same_keys_for_the_model_and_every_baseline() -> None:
    head = headline(DETAIL, ("mean.rmse", "mean.mae"))
    assert head == {"test": {"rmse": 2.0, "mae": 1.0},
                    "baselines": {"persistence": {"rmse": 4.0, "mae": 3.0}, "ridge": {"rmse": 2.5, "mae": 1.5}}}
    assert headline_line(head) == "rmse=2 mae=1 (persistence: rmse=4 mae=3; ridge: rmse=2.5 mae=1.5)"


@pytest.mark.parametrize(("keys", "message"), [
    (("mean.rmse", "a.rmse"), "two keys end in the same name"),
    (("mean.nope",), "HEADLINE key(s) ['mean.nope']: not in seqpipe.metrics.HIGHER_IS_BETTER"),
    (("a.rmse",), "HEADLINE key 'a.rmse': not in the evaluation's baselines.persistence"),
    (("mean",), "HEADLINE key(s) ['mean']"),
    ((), "HEADLINE: names no metric")])
def test_a_bad_headline_is_one_clear_error(keys: tuple[str, ...], message: str) -> None:
    with pytest.raises(SeqpipeError) as err:
        headline(DETAIL, keys)
    assert message in str(err.value) and "\n" not in str(err.value), err.value


def test_committed_metrics_are_the_headline_of_the_committed_detail() -> None:
    """What `dvc repro` committed: metrics/<model>.json is exactly the HEADLINE of the detail file, and
    the six files together stay small enough for `dvc exp show` (a few dozen numbers)."""
    leaves = 0
    for name in pipelines.names():
        metrics = json.loads((REPO / "metrics" / f"{name}.json").read_text())
        detail = json.loads((REPO / detail_file(name)).read_text())
        assert metrics == headline(detail, pipelines.get(name).stage("evaluate").HEADLINE), name
        assert pipelines.get(name).stage("evaluate").quality_aim(detail), name
        leaves += len(metrics["test"]) + sum(len(b) for b in metrics["baselines"].values())
    assert leaves <= 40
