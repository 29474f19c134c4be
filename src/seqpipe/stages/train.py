"""The train stage: build the network, run the shared fit loop, write model.pt and model_card.json."""

from __future__ import annotations

import contextlib
import logging
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from seqpipe import checkpoint, distributed, layout, numerics, training_curves
from seqpipe.data.series import auto_batch_size
from seqpipe.errors import SeqpipeError
from seqpipe.fit import ResumeMode, evaluate_loss, fit, select_device
from seqpipe.io import format_bytes, read_json, remove_stale_temps, sha256_file, write_json
from seqpipe.networks import Samples, activation_bytes, build_network, count_parameters, meta_parameter_count
from seqpipe.params import MAX_PARAMETERS, Params, TrainParams, as_dict, fingerprint, replace
from seqpipe.spec import ModelSpec
from seqpipe.stages.splits import load_split_tensors
from seqpipe.tasks import build_task

log = logging.getLogger(__name__)


def code_digests() -> dict[str, str]:
    """sha256 of every seqpipe module loaded in this process: the code a trained model comes from.
    Stage code imports the project at module level only, so by the time training starts this is the
    whole set (the same files dvc.yaml lists as the stage's deps); changed code never resumes."""
    modules = {name: getattr(module, "__file__", None) for name, module in list(sys.modules.items())
               if name == "seqpipe" or name.startswith("seqpipe.")}
    return {name: sha256_file(path) for name, path in sorted(modules.items()) if path}


def training_fingerprint(seed: int, numerics_mode: str, model_params: Any, train: TrainParams, stats: dict,
                         code: dict[str, str], nodes: int = 1) -> str:
    """What a checkpoint must match to be resumed: seed, numerics, model and train params (thread
    count included: it changes the bytes), data and code hashes, and with it the world size: the
    processes per node (a train param) and, on several machines, the number of `nodes`.

    `epochs` is left out (so a run can be extended) unless the schedule depends on it (cosine, onecycle);
    `keep_checkpoints` does not change the result and is left out too.
    """
    kept = {k: v for k, v in as_dict(train).items() if k != "keep_checkpoints"}
    if train.scheduler not in ("cosine", "onecycle"):
        kept.pop("epochs")
    if nodes > 1:  # one node keeps the fingerprint it always had
        kept["nodes"] = nodes
    data = {k: v["sha256"] for k, v in stats["arrays"].items()}
    if stats.get("windows"):   # how the samples are cut from the stored arrays is data too
        data["windows"] = stats["windows"]
    return fingerprint(seed, numerics_mode, model_params, kept, data, code)


def run(spec: ModelSpec, params: Params, resume: ResumeMode = "auto", validate_only: bool = False) -> dict:
    """Train, then write models/<name>/model.pt and model_card.json (rank 0; other ranks return {}).
    Everything is checked before anything is written; rank 0 holds the checkpoint folder's lock from
    then to the end."""
    distributed.die_with_launcher()
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
    device = select_device(params.device)
    network_class, network_args = spec.network(model_params, stats)
    train_data, val_data = load_split_tensors(data_dir, "train"), load_split_tensors(data_dir, "val")
    # the global world size (all nodes) shards the data; --validate-only runs on this node alone
    world = distributed.world_size() if distributed.launched() else train.nproc_per_node
    if train.batch_size == "auto":
        train = replace(train, batch_size=auto_batch_size(-(-len(train_data["x"]) // world)))
        log.info("models.%s.train.batch_size auto: %d (from %d training samples)", name, train.batch_size,
                 len(train_data["x"]))
    check_fits(name, spec.network_module, network_class, network_args, train_data["x"], train, device, world)
    log.info("train %s on %s (torch %s, %s)", name, _describe(device), torch.__version__,
             numerics.describe(params.numerics, torch.get_num_threads()))
    torch.manual_seed(params.seed)
    model = build_network(spec.network_module, network_class, network_args)
    prepare = getattr(model, "prepare", None)
    if prepare is not None:  # a part fitted in closed form on the training split before training
        prepare(train_data["x"], train_data["y"])
    task = build_task(spec.task, stats)
    augment = spec.stage("train").augmentation(stats) if spec.has_stage("train") else None
    sections = {"model": as_dict(model_params), "train": as_dict(train)}
    identity: dict[str, Any] = {
        "model": name, "network_module": spec.network_module, "network": network_class,
        "network_args": network_args,
        "fingerprint": training_fingerprint(params.seed, params.numerics, model_params, train, stats,
                                           code_digests(), distributed.nodes()),
        "params": sections}
    if validate_only:
        return _validate_only(name, model, task, train_data, val_data, train, device, identity)
    folder = layout.checkpoint_dir(name, identity["fingerprint"])
    with distributed.run_lock(folder.parent, name) if distributed.rank() == 0 else contextlib.nullcontext():
        if distributed.rank() == 0:  # a killed save leaves a temp; last.pt itself is whole
            folder.mkdir(exist_ok=True)
            for stale in remove_stale_temps(folder):
                log.info("removed %s, left by an interrupted run", stale)
            checkpoint.prune_runs(folder.parent, keep=KEEP_RUNS, current=folder)
        with distributed.process_group(name, train.nproc_per_node, device) as device:
            distributed.check_same_run(folder, identity["fingerprint"])
            curves = training_curves.LiveCurves(layout.live_dir(name)) if distributed.rank() == 0 else None
            result = fit(model, task, train_data, val_data, train, seed=params.seed, device=device,
                         checkpoint_dir=folder, identity=identity, resume=resume, name=name,
                         on_epoch=curves.log if curves else None, augment=augment)
            if curves:
                curves.end()
        if distributed.rank() != 0:
            return {}
        return _save(spec, model, identity, stats, params.seed, result, device, val_data, folder)


KEEP_RUNS = 3  # checkpoint folders (one per fingerprint) kept per model, the newest first


def _save(spec: ModelSpec, model: torch.nn.Module, identity: dict, stats: dict, seed: int, result: Any,
          device: torch.device, val_data: Mapping[str, Samples], checkpoint_dir: Path) -> dict:
    """Calibrate the trained network on the validation split where it has a `calibrate` step (best.pt gets
    the calibrated state too, so that it stays model.pt's weights), then write model.pt and
    model_card.json; return the card."""
    name = spec.name
    model_path = layout.model_file(name)
    summary = {"best_epoch": result.best_epoch, "best_val_loss": result.best_val_loss,
               "epochs_run": len(result.history), "stopped_early": result.stopped_early}
    if distributed.nodes() > 1:  # nproc_per_node (in the params) x nodes is the world size that trained it
        summary["nodes"] = distributed.nodes()
    model.cpu()
    calibrate = getattr(model, "calibrate", None)
    if calibrate is not None:
        summary["calibration"] = calibrate(val_data["x"], val_data["y"])
        log.info("train %s: calibrated on %d validation windows: %s", name, len(val_data["x"]),
                 _describe_calibration(summary["calibration"]))
        best = checkpoint.load(checkpoint_dir / "best.pt")
        checkpoint.save(checkpoint_dir / "best.pt", {**best, "state_dict": model.state_dict()})
    checkpoint.save(model_path, {**identity, "state_dict": model.state_dict(), "stats": stats,
                                 "training": summary, "history": result.history})
    card = {"model": name, "summary": spec.summary, "network": identity["network"],
            "network_args": identity["network_args"], "parameters": count_parameters(model),
            "params": identity["params"], "seed": seed, "fingerprint": identity["fingerprint"],
            "data": {"provenance": stats["provenance"], "arrays": stats["arrays"]},
            "training": summary,
            "file": {"path": model_path.as_posix(), "bytes": model_path.stat().st_size,
                     "sha256": sha256_file(model_path)}}
    write_json(layout.model_dir(name) / "model_card.json", card)  # the same inputs give the same bytes
    resumed = "" if result.resumed_from_epoch is None else f", resumed from epoch {result.resumed_from_epoch}"
    log.info("train %s: wrote %s (%d parameters, %.1f s on %s%s, code at %s)", name, model_path,
             card["parameters"], result.seconds, device, resumed, _git_commit() or "an unknown commit")
    return card


def _describe_calibration(calibration: dict) -> str:
    gate = ", ".join(f"{g:.2f}" for g in calibration.get("gate", []))
    return f"network correction weight per target {gate}" if gate else "done"


class TrainRefused(SeqpipeError):
    """A train param the data or the machine cannot serve; every rank finds it, rank 0 reports it."""

    rank0_reports = True


BYTES_PER_PARAMETER = 16  # fp32 weights, gradients and Adam's two moments


def check_fits(name: str, network_module: str, network_class: str, network_args: dict, x: Samples,
               train: TrainParams, device: torch.device, world: int) -> None:
    """Refuse, before anything is allocated or written, a batch larger than a process's share of the
    train split (`world` processes on all nodes) and a network over the parameter or memory budget
    (`nproc_per_node` copies on a CPU: this machine's processes share its memory)."""
    assert isinstance(train.batch_size, int), "batch_size auto is resolved first (run)"
    nproc = train.nproc_per_node
    per_rank = -(-len(x) // world)
    share = f" ({per_rank} per process)" if world > 1 else ""
    if train.batch_size > per_rank:
        raise TrainRefused(f"models.{name}.train.batch_size is {train.batch_size} but the train split has "
                           f"{len(x)} samples{share}; set it to at most {per_rank}")
    cores = numerics.usable_cores()
    if train.num_threads > cores:  # refusing would make the bytes depend on the machine; it only runs slower
        log.warning("models.%s.train.num_threads is %d but this machine has %d usable CPU cores: the "
                    "result is the same, the run slower", name, train.num_threads, cores)
    parameters = meta_parameter_count(network_module, network_class, network_args)
    if parameters > MAX_PARAMETERS:
        raise TrainRefused(f"models.{name}.model: {network_class} would have {parameters:,} parameters, over "
                           f"the budget of {MAX_PARAMETERS:,}; make the network smaller")
    copies = nproc if device.type == "cpu" else 1  # CPU ranks share the machine's memory
    available = _available_memory(device)
    weights_fit = available is None or parameters * BYTES_PER_PARAMETER * copies <= available
    activations = activation_bytes(network_module, network_class, network_args, x, train.batch_size) \
        if weights_fit else 0  # measured on a real copy only when its weights fit
    need = (parameters * BYTES_PER_PARAMETER + activations) * copies
    if available is not None and need > available:
        each = f", x {nproc} processes" if copies > 1 else ""
        raise TrainRefused(f"models.{name}.model: training {network_class} needs about {format_bytes(need)} "
                           f"({parameters:,} parameters x {BYTES_PER_PARAMETER} bytes + "
                           f"{format_bytes(activations)} of activations per batch of "
                           f"{train.batch_size}{each}) but {format_bytes(available)} is "
                           f"available on {device.type}; make the network or batch_size smaller")


def _available_memory(device: torch.device) -> int | None:
    """Free bytes for training on `device`: the GPU's free memory, or on CPU what Linux reports as
    available, lowered to the cgroup's limit (a container) when that is tighter. None if unknown."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        meminfo = dict(line.split(":", 1)
                       for line in Path("/proc/meminfo").read_text(encoding="utf-8").splitlines())
        available = int(meminfo["MemAvailable"].split()[0]) * 1024
    except (OSError, KeyError, ValueError):
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text(encoding="utf-8").strip()
        current = int(Path("/sys/fs/cgroup/memory.current").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return available
    return min(available, int(limit) - current) if limit.isdigit() else available



def _validate_only(name: str, model: torch.nn.Module, task: Any, train_data: dict, val: dict,
                   train: TrainParams, device: torch.device, identity: dict) -> dict:
    """Check params, data and network end to end (one forward/backward); writes nothing."""
    assert isinstance(train.batch_size, int), "batch_size auto is resolved first (run)"
    last = layout.checkpoint_dir(name, identity["fingerprint"]) / "last.pt"
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
              "parameters": count_parameters(model), "checkpoints": last.parent.as_posix(), "weights": source,
              "val_loss": val_loss}
    log.info("validate-only %s: ok; %s", name, ", ".join(f"{k}={v}" for k, v in report.items()))
    return report


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return "cpu"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10,
                             encoding="utf-8", errors="replace",
                             cwd=Path.cwd())
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None

