"""What a model command runs once the CLI has parsed it: the numerics set-up, then the stage.

This and what it imports decide a stage's outputs, so dvc.yaml lists them as deps of every stage. The
CLI around it (argument parsing, help texts, completion, logging set-up, the live-run registry and its
core slots, the torchrun launch) decides nothing in them and is no dep: it hands over only the command,
the model's spec, the parsed params, the resume flags from the stage's own `cmd`, and how many other
trainings run on this machine right now (`others`, which sizes a `num_threads: 0` fair share, as the
machine's core count does: the environment, not code). tests/stages/test_deps.py checks both.

Nothing here imports numpy or torch at module level: they read the kernels and thread counts that
`configure_numerics` sets when they load.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

from seqpipe import layout, numerics
from seqpipe.params import Params
from seqpipe.spec import ModelSpec

DATA_STAGES = ("download", "preprocess")
STAGES = ("download", "preprocess", "train", "evaluate")
# The folders each stage writes into, checked before it starts: a read-only output stops it at once.
OUTPUT_FOLDERS: dict[str, Callable[[str], list[Path]]] = {
    "download": lambda m: [layout.raw_dir(m).parent],
    "preprocess": lambda m: [layout.processed_dir(m).parent],
    "train": lambda m: [layout.model_dir(m)],
    "evaluate": lambda m: [layout.metrics_file(m).parent, layout.eval_plots_dir(m).parent,
                           layout.train_plots_dir(m).parent]}


def configure_numerics(command: str, spec: ModelSpec, params: Params, others: int) -> None:
    """Kernels and thread counts for `command` of `spec`'s model, before numpy and torch load: one thread
    for the data stages, else `train.num_threads` (0: a fair share of the cores beside `others`)."""
    data_stage = command in DATA_STAGES
    threads = 1 if data_stage else numerics.threads_per_process(params.train(spec.name).num_threads, others)
    numerics.configure(params.numerics, threads, others)
    if not data_stage:
        numerics.configure_torch(params.numerics, threads)


def check_output_folders(command: str, spec: ModelSpec) -> None:
    """Each folder `command` writes into is writable (an EnvError naming it, before any work)."""
    from seqpipe.io import check_writable

    for folder in OUTPUT_FOLDERS[command](spec.name):
        check_writable(folder)


def run_stage(command: str, spec: ModelSpec, params: Params, *,
              resume: Literal["auto", "resume", "fresh"] = "auto", validate_only: bool = False) -> None:
    """Run DVC stage `command` (one of STAGES) of `spec`'s model, its output folders checked first (train's
    by the caller, which opens train.log there before it)."""
    if command not in STAGES:
        raise ValueError(f"run_stage: {command!r} is not a stage (one of {STAGES})")
    if command != "train":
        check_output_folders(command, spec)
    if command == "download":
        from seqpipe.stages import download
        download.run(spec, params)
    elif command == "preprocess":
        from seqpipe.stages import preprocess
        preprocess.run(spec, params)
    elif command == "train":
        from seqpipe.stages import train
        train.run(spec, params, resume=resume, validate_only=validate_only)
    else:
        from seqpipe.stages import evaluate
        evaluate.run(spec, params)
