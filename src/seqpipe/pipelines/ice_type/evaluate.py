"""ice_type evaluation: accuracy, macro F1, per-class precision/recall vs majority-class and logistic."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import numpy as np

from seqpipe import baselines, plotting
from seqpipe.metrics import classification_metrics
from seqpipe.params import BatchSize, Range, params_section

if TYPE_CHECKING:  # not at run time: it imports torch, which check-params (EvaluateParams) does not need
    from seqpipe.stages.evaluate import EvalContext


# metrics/ice_type.json: accuracy and macro F1 over the three classes (each baseline the same);
# everything else goes to plots/ice_type/eval/metrics_detail.json
HEADLINE = ("accuracy", "macro_f1")

@params_section
class EvaluateParams:
    batch_size: BatchSize
    # inverse L2 strength of the band-statistics logistic regression
    logistic_c: Annotated[float, Range(0, 1e6, low_open=True)]
    logistic_max_iter: Annotated[int, Range(10, 100_000)]


def evaluate(ctx: EvalContext) -> dict:
    p: EvaluateParams = ctx.params
    classes = ctx.stats["classes"]
    # per-sample patches, not windows: each split memory-mapped; the logistic baseline reads the train
    # and test patches whole (their band statistics)
    test, train = ctx.windows("test"), ctx.windows("train")
    actual = test["y"]
    candidates = {"model": ctx.predictions.argmax(axis=1),
                  "majority": baselines.majority_class(train["y"], len(actual)),
                  "logistic": baselines.logistic(train["x"], train["y"], test["x"], p.logistic_c,
                                                 p.logistic_max_iter)}
    scores = {name: classification_metrics(actual, pred, classes) for name, pred in candidates.items()}
    names = np.asarray(classes)
    # one row per test patch: the input of DVC's `confusion` template
    plotting.write_csv(ctx.plots_dir / "confusion.csv",
                       {"actual": names[actual], "predicted": names[candidates["model"]]})
    plotting.write_csv(ctx.plots_dir / "confusion_logistic.csv",
                       {"actual": names[actual], "predicted": names[candidates["logistic"]]})
    return {"test": scores.pop("model"), "baselines": scores, "n_test": len(actual)}


def quality_aim(m: dict) -> bool:
    """The quality this model must reach on its default params (checked by the slow tests and `make bench`);
    `m` is the whole evaluation, as in plots/<model>/eval/metrics_detail.json."""
    test, baselines = m["test"], m["baselines"].values()
    return (test["accuracy"] >= 0.9 and test["macro_f1"] >= 0.9
            and all(test["macro_f1"] >= b["macro_f1"] + 0.15 for b in baselines))
