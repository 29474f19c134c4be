"""What every report shows, collected once: DVC's plots and metrics for some revisions, grouped by model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from seqpipe.errors import SeqpipeError
from seqpipe.report.metrics import MetricsTable, collect_metrics, metrics_model
from seqpipe.report.plots import collect_plots, model_of


@dataclass
class Collected:
    """What both writers show, read from DVC once."""

    revisions: list[str]               # as given: none = the workspace; one = it vs the workspace; more
    plots: dict[str, list[dict]]       # DVC's entries per plot id, in dvc.yaml order
    errors: list[dict]                 # DVC's plot errors (a file missing in a revision)
    metrics: MetricsTable
    groups: dict[str, list[str]]       # model -> its plot ids; every model with plots or metrics

    @property
    def columns(self) -> list[str]:
        return self.metrics.columns


def collect(revisions: list[str], image_dir: Path, models: list[str] | None = None) -> Collected:
    """DVC's plots (image plots written into `image_dir`) and metrics of `revisions`; `models`: only
    theirs (a name with neither plots nor metrics is a SeqpipeError)."""
    plots, errors = collect_plots(revisions, image_dir)
    metrics = collect_metrics(revisions)
    in_plots = [Path(p).parts[1] for p in plots if len(Path(p).parts) > 2 and Path(p).parts[0] == "plots"]
    known = list(dict.fromkeys([metrics_model(p) for p in metrics.files] + in_plots))
    groups: dict[str, list[str]] = {}
    for plot_id in plots:
        groups.setdefault(model_of(plot_id, known), []).append(plot_id)
    for model in known:
        groups.setdefault(model, [])
    if models:
        unknown = [m for m in models if m not in groups]
        if unknown:
            raise SeqpipeError(f"--model {', '.join(unknown)}: no plots or metrics for it "
                               f"(known: {', '.join(groups)})")
        groups = {m: groups[m] for m in models}
        kept = {p for ids in groups.values() for p in ids}
        plots = {p: entries for p, entries in plots.items() if p in kept}
        errors = [e for e in errors if not e.get("name") or e.get("name") in kept]
        metrics.files = {p: rows for p, rows in metrics.files.items() if metrics_model(p) in groups}
    return Collected(revisions, plots, errors, metrics, groups)
