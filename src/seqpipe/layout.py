"""Where each stage reads and writes. dvc.yaml spells the same paths; tests check they agree."""

from __future__ import annotations

from pathlib import Path

MANIFEST = "manifest.json"   # in every raw folder: source, provenance and the sha256 of each file


def raw_dir(name: str) -> Path:
    return Path("data/raw") / name


def processed_dir(name: str) -> Path:
    return Path("data/processed") / name


def model_dir(name: str) -> Path:
    return Path("models") / name


def model_file(name: str) -> Path:
    return model_dir(name) / "model.pt"


def checkpoint_dir(name: str, fingerprint: str) -> Path:
    """One run's checkpoints, by its training fingerprint (params, data, code). Not a DVC output,
    so DVC's run-cache stays on and a killed run resumes from here."""
    return model_dir(name) / "checkpoints" / fingerprint


def live_dir(name: str) -> Path:
    """The training curves DVCLive writes while the model trains (see seqpipe.training_curves)."""
    return model_dir(name) / "live"


def metrics_file(name: str) -> Path:
    return Path("metrics") / f"{name}.json"


def train_plots_dir(name: str) -> Path:
    return Path("plots") / name / "train"


def eval_plots_dir(name: str) -> Path:
    return Path("plots") / name / "eval"
