"""The train stage: build the network, run the shared fit loop, write model.pt and model_card.json."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch

from seqpipe import checkpoint, distributed, layout
from seqpipe.data.series import load_split
from seqpipe.errors import SeqpipeError
from seqpipe.fit import ResumeMode, evaluate_loss, fit, select_device
from seqpipe.io import read_json, remove_stale_temps, sha256_file, write_json
from seqpipe.networks import build_network, count_parameters
from seqpipe.params import Params, TrainParams, as_dict, fingerprint
from seqpipe.spec import ModelSpec
from seqpipe.tasks import build_task

log = logging.getLogger(__name__)


def code_digests() -> dict[str, str]:
    """sha256 of every seqpipe module loaded in this process: the code a trained model comes from.
    Stage code imports the project at module level only, so by the time training starts this is the
    whole set (the same files dvc.yaml lists as the stage's deps); changed code never resumes."""
    modules = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())
               if name == "seqpipe" or name.startswith("seqpipe.")}
    return {name: sha256_file(path) for name, path in sorted(modules.items()) if path}


def training_fingerprint(seed: int, model_params: Any, train: TrainParams, stats: dict,
                         code: dict[str, str]) -> str:
    """What a checkpoint must match to be resumed: seed, model and train params, data and code hashes.

    `epochs` is left out (so a run can be extended) unless a cosine schedule depends on it;
    `keep_checkpoints` and `num_threads` do not change the result and are left out too.
    """
    kept = {k: v for k, v in as_dict(train).items() if k not in ("keep_checkpoints", "num_threads")}
    if train.scheduler != "cosine":
        kept.pop("epochs")
    data = {k: v["sha256"] for k, v in stats["arrays"].items()}
    return fingerprint(seed, model_params, kept, data, code)


def load_split_tensors(data_dir: Path, split: str) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(v) for k, v in load_split(data_dir, split).items()}


def run(spec: ModelSpec, params: Params, resume: ResumeMode = "auto", validate_only: bool = False) -> dict:
    """Train, then write models/<name>/model.pt and model_card.json (rank 0; other ranks return {})."""
    name = spec.name
    model_params = params.section(name, "model", spec.model_params)
    train = params.train(name)
    data_dir = layout.processed_dir(name)
    if not (data_dir / "stats.json").exists():
        raise SeqpipeError(f"{data_dir / 'stats.json'}: missing; run the preprocess stage first")
    stats = read_json(data_dir / "stats.json")
    if train.require_real_data and stats["provenance"].get("synthetic", True):
        raise SeqpipeError(f"{data_dir}: data is synthetic (manifest says synthetic: true) but "
                           f"models.{name}.train.require_real_data is true")
    if train.num_threads:
        torch.set_num_threads(train.num_threads)
    device = select_device(params.device)
    log.info("train %s on %s (torch %s, %d threads)", name, _describe(device), torch.__version__,
             torch.get_num_threads())
    network_class, network_args = spec.network(model_params, stats)
    torch.manual_seed(params.seed)
    model = build_network(spec.network_module, network_class, network_args)
    train_data, val_data = load_split_tensors(data_dir, "train"), load_split_tensors(data_dir, "val")
    task = build_task(spec.task, stats)
    sections = {"model": as_dict(model_params), "train": as_dict(train)}
    identity = {"model": name, "network_module": spec.network_module, "network": network_class,
                "network_args": network_args,
                "fingerprint": training_fingerprint(params.seed, model_params, train, stats, code_digests()),
                "params": sections}
    if validate_only:
        return _validate_only(name, model, task, train_data, val_data, train, device, identity)
    if distributed.rank() == 0:  # a killed save leaves a temp; last.pt itself is whole
        for stale in remove_stale_temps(layout.checkpoint_dir(name)):
            log.info("removed %s, left by an interrupted run", stale)
    with distributed.process_group(name, train.nproc_per_node, device) as device:
        result = fit(model, task, train_data, val_data, train, seed=params.seed, device=device,
                     checkpoint_dir=layout.checkpoint_dir(name), identity=identity, resume=resume,
                     live_dir=layout.train_plots_dir(name), name=name)
    if distributed.rank() != 0:
        return {}
    model_path = layout.model_file(name)
    summary = {"best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
               "epochs_run": len(result.history), "stopped_early": result.stopped_early}
    checkpoint.save(model_path, {**identity, "state_dict": model.cpu().state_dict(), "stats": stats,
                                 "training": summary})
    card = {"model": name, "summary": spec.summary, "network": network_class, "network_args": network_args,
            "parameters": count_parameters(model), "params": sections, "seed": params.seed,
            "data": {"provenance": stats["provenance"], "arrays": stats["arrays"]},
            "training": {**summary, "seconds": round(result.seconds, 1), "device": str(device),
                         "resumed_from_epoch": result.resumed_from_epoch},
            "file": {"path": model_path.as_posix(), "bytes": model_path.stat().st_size},
            "git_commit": _git_commit()}
    write_json(layout.model_dir(name) / "model_card.json", card)
    log.info("train %s: wrote %s (%d parameters, %.1f s)", name, model_path, card["parameters"], result.seconds)
    return card


def _validate_only(name: str, model: torch.nn.Module, task: Any, train_data: dict, val: dict,
                   train: TrainParams, device: torch.device, identity: dict) -> dict:
    """Check params, data and network end to end (one forward/backward); writes nothing."""
    last = layout.checkpoint_dir(name) / "last.pt"
    source = "initial weights"
    if last.exists():
        payload = checkpoint.load(last)
        if payload.get("fingerprint") == identity["fingerprint"]:
            model.load_state_dict(payload["state_dict"])
            source = f"{last} (epoch {payload['epoch']})"
    model.to(device).train()
    batch = {k: v[: train.batch_size].to(device) for k, v in train_data.items()}
    loss = task.loss(model(batch["x"]), batch)
    loss.backward()
    val_loss = evaluate_loss(model, task, val, train.batch_size * 4, None, device)
    report = {"model": name, "train_samples": len(train_data["x"]), "val_samples": len(val["x"]),
              "parameters": count_parameters(model), "weights": source, "val_loss": val_loss}
    log.info("validate-only %s: ok; %s", name, ", ".join(f"{k}={v}" for k, v in report.items()))
    return report


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return "cpu"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             cwd=Path.cwd())
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None

