"""The evaluate stage: test-split predictions, then the model's own metrics next to its baselines:
the headline in metrics/<model>.json, everything in plots/<model>/eval/metrics_detail.json."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seqpipe import checkpoint, layout, metrics, training_curves
from seqpipe.data.series import load_split
from seqpipe.errors import SeqpipeError
from seqpipe.io import atomic_dir, read_json, write_json
from seqpipe.networks import predict_batches
from seqpipe.params import Params
from seqpipe.spec import ModelSpec
from seqpipe.stages.splits import load_split_tensors

log = logging.getLogger(__name__)


@dataclass
class EvalContext:
    """What a model's `evaluate` function gets: its evaluate params, the preprocessing stats, the
    loaded network, its training fingerprint (for figure titles) and test predictions, a plots folder."""

    name: str
    fingerprint: str
    params: Any               # the model's EvaluateParams
    stats: Any          # the model's stats record (its SPEC's stats_record), checked when preprocess wrote it
    data_dir: Path
    network: nn.Module
    predictions: np.ndarray
    plots_dir: Path
    seed: int

    def windows(self, split: str) -> dict[str, Any]:
        """One split, nothing read until indexed: a windowed folder's keys as Windows cut on demand from its
        memory-mapped stored arrays (read them a chunk at a time: `Windows.chunks`, `map_chunks`), any
        other folder's per-sample arrays memory-mapped read-only (load_split)."""
        return load_split(self.data_dir, split, mmap=True)

    def predict(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        """The network's outputs for inputs `x`, `batch_size` samples at a time (float32)."""
        return predict_batches(self.network, torch.from_numpy(x), batch_size)


def run(spec: ModelSpec, params: Params) -> dict[str, Any]:
    """Write metrics/<name>.json (the headline: the model's HEADLINE keys and the same keys of each
    baseline) and plots/<name>/eval/ with the model's plots and metrics_detail.json (everything the
    model's `evaluate` returned), both atomically, the plots only once the metrics are written; then
    plots/<name>/train/, the training curves DVCLive logged in training. Returns the detail."""
    name, module = spec.name, spec.stage("evaluate")
    keys = getattr(module, "HEADLINE", None)
    if not keys or isinstance(keys, str):
        raise SeqpipeError(f"{module.__name__}: HEADLINE must be a tuple of metric keys, e.g. "
                           "(\"rmse\", \"mae\")")
    evaluate = params.section(name, "evaluate", module.EvaluateParams)
    network, payload = checkpoint.load_model(layout.model_file(name), expected_model=name)
    live = layout.live_dir(name)
    if not (live / "metrics.json").is_file():
        raise SeqpipeError(f"{live}: no training curves (DVCLive's metrics.json); run the train stage: "
                           f"seqpipe train {name}")
    data_dir = layout.processed_dir(name)
    stats = read_json(data_dir / "stats.json")
    x_test = load_split_tensors(data_dir, "test")["x"]   # windows are cut batch by batch
    predictions = predict_batches(network, x_test, evaluate.batch_size)
    with atomic_dir(layout.eval_plots_dir(name)) as plots_tmp:
        ctx = EvalContext(name=name, fingerprint=payload["fingerprint"], params=evaluate, stats=stats,
                          data_dir=data_dir, network=network, predictions=predictions, plots_dir=plots_tmp,
                          seed=params.seed)
        detail = module.evaluate(ctx)
        head = metrics.headline(detail, keys, spec.metric_directions)
        write_json(plots_tmp / metrics.DETAIL_FILE, detail)
        write_json(layout.metrics_file(name), head)  # in the block: if it fails, no new plots either
    training_curves.publish(live, layout.train_plots_dir(name))
    log.info("evaluate %s: %s", name, metrics.headline_line(head))
    return detail
