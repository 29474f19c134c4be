"""seqpipe.metrics: which way each metric is better, the headline of an evaluation, MASE and the baseline goal."""

from __future__ import annotations

import json

import numpy as np
import pytest

from seqpipe import baselines, pipelines
from seqpipe.errors import SeqpipeError
from seqpipe.metrics import (baseline_goal, detail_file, direction, headline, headline_line, mase_scale,
                             regression_metrics)
from tests.conftest import REPO

DETAIL = {"test": {"mean": {"rmse": 2.0, "mae": 1.0, "r2": 0.9}, "a": {"rmse": 3.0}},
          "baselines": {"persistence": {"mean": {"rmse": 4.0, "mae": 3.0, "r2": 0.5}},
                        "ridge": {"mean": {"rmse": 2.5, "mae": 1.5, "r2": 0.8}}},
          "goal": {"met": True}, "n_test_windows": 10}


@pytest.mark.parametrize(("key", "expected"), [
    ("rmse", -1), ("mae", -1), ("mase", -1), ("baselines.drift.mase", -1), ("mse", -1), ("mape", -1), ("test.mean.rmse", -1), ("rmse_lead_7", -1),
    ("mse_1hz", -1), ("baselines.ridge.mae", -1),
    ("accuracy", 1), ("macro_f1", 1), ("f1", 1), ("iou", 1), ("r2", 1), ("correlation", 1),
    ("test.precision", 1), ("edge_accuracy_lead_3", None),
    ("mape_coverage", None), ("support", None), ("n_test", None), ("threshold", None)])
def test_direction(key: str, expected: int | None) -> None:
    assert direction(key) == expected


@pytest.mark.parametrize(("key", "expected"), [
    ("edge_accuracy_lead_3", 1), ("baselines.persistence.iiee", -1), ("iiee_lead_1", -1), ("rmse", -1),
    ("mape_coverage", None)])
def test_a_models_own_metrics_take_their_direction_from_it(key: str, expected: int | None) -> None:
    own = {"iiee": -1, "edge_accuracy": 1}   # as a ModelSpec's metric_directions
    assert direction(key, own) == expected


def test_a_headline_metric_of_no_known_direction_is_refused_unless_the_model_gives_one() -> None:
    detail = {"test": {"iiee": 1.0}, "baselines": {"persistence": {"iiee": 2.0}}}
    with pytest.raises(SeqpipeError, match="metric_directions"):
        headline(detail, ("iiee",))
    assert headline(detail, ("iiee",), {"iiee": -1}) == {"test": {"iiee": 1.0},
                                                        "baselines": {"persistence": {"iiee": 2.0}}}


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
        spec = pipelines.get(name)
        assert metrics == headline(detail, spec.stage("evaluate").HEADLINE, spec.metric_directions), name
        assert pipelines.get(name).stage("evaluate").quality_aim(detail), name
        leaves += len(metrics["test"]) + sum(len(b) for b in metrics["baselines"].values())
    assert leaves <= 60  # 51: each model's two or three headline numbers, for it and each baseline


def test_mase_is_mae_over_the_in_sample_seasonal_naive_mae() -> None:
    rng = np.random.default_rng(5)
    season = 4
    train = np.tile([1.0, 5.0, 3.0, 2.0], 25) + rng.normal(scale=0.3, size=100)
    scale = mase_scale(train[season:], baselines.seasonal_naive(train, np.arange(season, 100), season), "train")
    assert scale == pytest.approx(np.mean(np.abs(train[season:] - train[:-season])))
    # the seasonal naive forecast over the training data itself scores MASE 1 exactly
    naive = regression_metrics(train[season:], train[:-season], mase_scale=scale)
    assert naive["mase"] == pytest.approx(1.0)
    halved = regression_metrics(train[season:], train[season:] + 0.5 * (train[:-season] - train[season:]),
                                mase_scale=scale)
    assert halved["mase"] == pytest.approx(0.5) and halved["mae"] == pytest.approx(0.5 * scale)
    assert "mase" not in regression_metrics(train, train + 1)


def test_mase_scale_refuses_a_constant_training_series() -> None:
    with pytest.raises(SeqpipeError, match="^data/y_train.npy: the seasonal naive forecast .* exact"):
        mase_scale(np.ones(10), np.ones(10), "data/y_train.npy")


def test_baseline_goal_needs_every_baseline_beaten_on_rmse_and_mase_below_one() -> None:
    model = {"a": {"rmse": 1.0, "mase": 0.5}, "b": {"rmse": 1.0, "mase": 0.5}, "c": {"rmse": 1.0, "mase": 1.2}}
    base = {"persistence": {"a": {"rmse": 2.0}, "b": {"rmse": 3.0}, "c": {"rmse": 3.0}},
            "ridge": {"a": {"rmse": 1.5}, "b": {"rmse": 0.9}, "c": {"rmse": 3.0}}}
    goal = baseline_goal(model, base)
    assert {t: g["met"] for t, g in goal["per_target"].items()} == {"a": True, "b": False, "c": False}
    assert goal["per_target"]["b"]["best_baseline"] == "ridge" and goal["met"] is False
    assert baseline_goal({"a": model["a"]}, {b: {"a": s["a"]} for b, s in base.items()})["met"] is True
