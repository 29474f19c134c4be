"""The one fit loop for every model.

It knows a network, a task (batch -> loss) and tensors; nothing about any particular model.
Features: Adam/AdamW, plateau/cosine/one-cycle schedules, gradient clipping, early stopping that restores the
best weights, atomic best/last/epoch checkpoints, exact resume (mid-epoch too), SIGINT/SIGTERM ->
checkpoint + non-zero exit, AMP on CUDA, tqdm bars on a terminal and periodic log lines otherwise,
a per-epoch history (train and validation loss, lr) that model.pt keeps and a callback logs live. Under
torchrun the same loop runs on every rank through the hooks of `distributed.Ranks` (DDP module, sharded
sample order, summed losses); rank 0 alone writes.
"""

from __future__ import annotations

import logging
import math
import shutil
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn
from tqdm import tqdm

from seqpipe import checkpoint, optim
from seqpipe.distributed import Ranks, launch_id
from seqpipe.errors import SeqpipeError
from seqpipe.networks import Samples
from seqpipe.params import TrainParams
from seqpipe.tasks import Task, step

log = logging.getLogger(__name__)

ResumeMode = Literal["auto", "resume", "fresh"]
LOG_EVERY_S = 30.0
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)   # each saves last.pt and exits 128 + signal


class TrainingInterrupted(SeqpipeError):
    """Raised after SIGINT/SIGTERM/SIGHUP once the checkpoint is safely on disk (reported by rank 0 alone)."""

    rank0_reports = True

    def __init__(self, message: str, signum: int, relayed: bool = False) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum
        self.signum = signum
        # the signal reached another rank, not this one (see distributed.process_group)
        self.relayed = relayed


@dataclass
class FitResult:
    history: list[dict[str, float]]
    best_epoch: int
    best_val_loss: float
    stopped_early: bool
    resumed_from_epoch: int | None
    seconds: float


@dataclass
class _State:
    """Everything needed to continue exactly where training stopped."""

    epoch: int = 0          # the epoch in progress (0-based)
    step: int = 0           # batches already done within it
    loss_sum: float = 0.0   # sum of per-sample train loss within the epoch so far
    seen: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_val: float = math.inf
    best_epoch: int = -1
    bad_epochs: int = 0
    stopped_early: bool = False


def select_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; an explicit `cuda` without a GPU is an error."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise SeqpipeError(f"device {name!r} requested in params.yaml but CUDA is not available")
    return torch.device(name)


def fit(model: nn.Module, task: Task, train: Mapping[str, Samples], val: Mapping[str, Samples],
        tp: TrainParams, *, seed: int, device: torch.device, checkpoint_dir: Path,
        identity: dict[str, Any], resume: ResumeMode = "auto", name: str = "model",
        on_epoch: Callable[[dict[str, float]], None] | None = None,
        augment: Callable[[dict[str, torch.Tensor]], dict[str, torch.Tensor]] | None = None) -> FitResult:
    """Train `model` in place and leave it holding the best weights (lowest validation loss).

    `on_epoch` (rank 0 only) gets every epoch's history record in order, once per call of fit: first
    those of the checkpoint it resumes from, then each new one when its checkpoint is on disk. `augment`
    maps each training batch (never a validation one) before its step, drawing from torch's global RNG,
    which checkpoints save.

    `identity` is stored in every checkpoint (model name, network class and args, params,
    `fingerprint`); a checkpoint resumes only when its fingerprint matches. In a process group
    (see `seqpipe.distributed`) every rank calls this; `model` stays the unwrapped module.
    """
    assert isinstance(tp.batch_size, int), "batch_size auto is resolved before fit (seqpipe.stages.train)"
    started = time.perf_counter()
    checkpoint_dir = Path(checkpoint_dir)
    ranks = Ranks.current(device)
    model.to(device)
    optimizer = _optimizer(model, tp)
    n_train = len(train["x"])
    per_rank = math.ceil(n_train / ranks.world)
    n_batches = math.ceil(per_rank / tp.batch_size)
    scheduler = _scheduler(optimizer, tp, n_batches)
    amp_dtype = _amp_dtype(tp, device)
    scaler = torch.amp.GradScaler("cuda", enabled=amp_dtype == torch.float16)
    torch.manual_seed(seed)
    state = _State()
    launch = launch_id()
    if launch is not None:  # checkpoints say which launch wrote them (not model.pt: its bytes stay the run's)
        identity = {**identity, "launch": launch}
    if ranks.is_main:  # may delete a stale folder; the other ranks then load what it kept
        if resume == "fresh" and launch is not None and _written_by(checkpoint_dir / "last.pt", launch):
            # torchrun restarted the workers of this very launch (--max-restarts): --fresh has been done
            log.info("%s: written by this launch before its workers were restarted; resuming it", name)
            resume = "auto"
        resumed = _restore(checkpoint_dir, identity, resume, model, optimizer, scheduler, scaler, state)
    ranks.barrier()
    if not ranks.is_main:
        resumed = _restore(checkpoint_dir, identity, "auto", model, optimizer, scheduler, scaler, state,
                           owner=False)
    net = ranks.wrap(model)
    on_epoch = on_epoch if ranks.is_main else None
    if on_epoch:
        for record in state.history:
            on_epoch(record)
    if state.stopped_early or state.epoch >= tp.epochs and state.step == 0:
        log.info("%s: checkpoint already complete (%d epochs)", name, state.epoch)
    train = {k: v.to(device) for k, v in train.items()}
    val = ranks.shard({k: v.to(device) for k, v in val.items()})
    if ranks.world > 1:
        log.info("%s: each of %d ranks takes %d of %d samples per epoch (%d batches of %d)", name,
                 ranks.world, per_rank, n_train, n_batches, tp.batch_size)
    interactive = sys.stderr.isatty() and ranks.is_main
    epoch_bar = tqdm(total=tp.epochs, initial=min(state.epoch, tp.epochs), desc=name, unit="epoch",
                     disable=not interactive, dynamic_ncols=True)
    try:
        with _StopOnSignal() as stop:
            while not state.stopped_early and state.epoch < tp.epochs:
                epoch_start = time.perf_counter()
                order = ranks.epoch_order(n_train, seed, state.epoch)
                batch_bar = tqdm(total=n_batches, initial=state.step, leave=False, unit="batch",
                                 desc=f"epoch {state.epoch + 1}", disable=not interactive,
                                 dynamic_ncols=True)
                last_log = time.monotonic()
                net.train()
                while state.step < n_batches:
                    index = order[state.step * tp.batch_size:(state.step + 1) * tp.batch_size]
                    batch = {k: v[index] for k, v in train.items()}
                    if augment is not None:  # training-only augmentation, from the checkpointed RNG
                        batch = augment(batch)
                    loss = _train_step(net, task, batch, optimizer, scaler, tp, amp_dtype, device)
                    if isinstance(scheduler, optim.OneCycle):
                        scheduler.step()  # per batch
                    loss_sum, seen, signum = ranks.totals(loss * len(index), len(index), stop.signum or 0)
                    if not math.isfinite(loss_sum):
                        raise SeqpipeError(f"{name}: train loss is {loss_sum / seen} at epoch "
                                           f"{state.epoch + 1} batch {state.step + 1}; lower "
                                           f"models.{name}.train.lr or check the data")
                    state.loss_sum += loss_sum
                    state.seen += seen
                    state.step += 1
                    batch_bar.update(1)
                    batch_bar.set_postfix(loss=f"{state.loss_sum / state.seen:.4g}", refresh=False)
                    if signum:  # on any rank: all stop after the same batch
                        if ranks.is_main:
                            _save_last(checkpoint_dir, identity, model, optimizer, scheduler, scaler, state)
                        ranks.barrier()
                        raise TrainingInterrupted(
                            f"{name}: {signal.Signals(signum).name} at epoch {state.epoch + 1} batch "
                            f"{state.step}/{n_batches}; checkpoint saved to {checkpoint_dir / 'last.pt'}; "
                            "run again to resume", signum, relayed=stop.signum is None)
                    if not interactive and time.monotonic() - last_log > LOG_EVERY_S:
                        last_log = time.monotonic()
                        log.info("%s: epoch %d batch %d/%d train_loss %.5g", name, state.epoch + 1,
                                 state.step, n_batches, state.loss_sum / state.seen)
                batch_bar.close()
                val_loss = evaluate_loss(model, task, val, tp.batch_size * 4, amp_dtype, device)
                if ranks.world > 1:
                    val_sum, val_count, _ = ranks.totals(val_loss * len(val["x"]), len(val["x"]))
                    val_loss = val_sum / val_count
                _end_epoch(state, val_loss, optimizer, scheduler, tp)
                if ranks.is_main:
                    _save_epoch(checkpoint_dir, identity, model, optimizer, scheduler, scaler, state, tp)
                record = state.history[-1]
                if on_epoch:
                    on_epoch(record)
                epoch_bar.update(1)
                epoch_bar.set_postfix(train=f"{record['train_loss']:.4g}",
                                      val=f"{record['val_loss']:.4g}", refresh=False)
                log.info("%s: epoch %d/%d train_loss %.5g val_loss %.5g lr %.2e %.1fs%s", name,
                         state.epoch, tp.epochs, record["train_loss"], record["val_loss"],
                         record["lr"], time.perf_counter() - epoch_start,
                         "  *best" if state.best_epoch == state.epoch else "")
                if state.stopped_early:
                    log.info("%s: early stop after %d epochs without improvement", name,
                             tp.early_stop_patience)
    finally:
        epoch_bar.close()
    ranks.barrier()  # best.pt is on disk for every rank
    best = checkpoint.load(checkpoint_dir / "best.pt")
    model.load_state_dict(best["state_dict"])
    model.eval()
    log.info("%s: best epoch %d, val_loss %.5g", name, state.best_epoch, state.best_val)
    return FitResult(history=state.history, best_epoch=state.best_epoch, best_val_loss=state.best_val,
                     stopped_early=state.stopped_early, resumed_from_epoch=resumed,
                     seconds=time.perf_counter() - started)


@torch.inference_mode()
def evaluate_loss(model: nn.Module, task: Task, data: Mapping[str, Samples], batch_size: int,
                  amp_dtype: torch.dtype | None, device: torch.device) -> float:
    """Mean per-sample loss over `data` in eval mode."""
    model.eval()
    total, count = 0.0, 0
    n = len(data["x"])
    for start in range(0, n, batch_size):
        batch = {k: v[start:start + batch_size] for k, v in data.items()}
        with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
            loss, _ = step(model, task, batch)
        total += float(loss) * len(batch["x"])
        count += len(batch["x"])
    return total / max(count, 1)


def _train_step(model: nn.Module, task: Task, batch: dict[str, torch.Tensor],
                optimizer: optim.Adam, scaler: torch.amp.GradScaler, tp: TrainParams,
                amp_dtype: torch.dtype | None, device: torch.device) -> float:
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None):
        loss, _ = step(model, task, batch)
    scaler.scale(loss).backward()
    if tp.grad_clip > 0:
        scaler.unscale_(optimizer)  # type: ignore[arg-type]  # torch says Optimizer; Adam duck-types it
        nn.utils.clip_grad_norm_(model.parameters(), tp.grad_clip)
    scaler.step(optimizer)  # type: ignore[arg-type]  # torch says Optimizer; Adam duck-types it
    scaler.update()
    return float(loss.detach())


def _end_epoch(state: _State, val_loss: float, optimizer: optim.Adam,
               scheduler: Any, tp: TrainParams) -> None:
    lr = optimizer.param_groups[0]["lr"]
    train_loss = state.loss_sum / max(state.seen, 1)
    state.history.append({"epoch": state.epoch + 1, "train_loss": train_loss, "val_loss": val_loss, "lr": lr})
    if val_loss < state.best_val:
        state.best_val, state.best_epoch, state.bad_epochs = val_loss, state.epoch + 1, 0
    else:
        state.bad_epochs += 1
        state.stopped_early = state.bad_epochs >= tp.early_stop_patience
    if isinstance(scheduler, optim.Plateau):
        scheduler.step(val_loss)
    elif isinstance(scheduler, optim.Cosine):
        scheduler.step()
    state.epoch += 1
    state.step, state.loss_sum, state.seen = 0, 0.0, 0


def _optimizer(model: nn.Module, tp: TrainParams) -> optim.Adam:
    return optim.Adam(model.parameters(), lr=tp.lr, weight_decay=tp.weight_decay,
                      decoupled=tp.optimizer == "adamw")


def _scheduler(optimizer: optim.Adam, tp: TrainParams, n_batches: int) -> Any:
    """Plateau and cosine step once per epoch; one-cycle (Smith & Topin 2019: warm up to `lr` over
    the first 30% of the batches, then cosine down to lr / 10^4) once per batch."""
    if tp.scheduler == "plateau":
        return optim.Plateau(optimizer, factor=tp.scheduler_factor, patience=tp.scheduler_patience)
    if tp.scheduler == "cosine":
        return optim.Cosine(optimizer, epochs=tp.epochs)
    if tp.scheduler == "onecycle":
        return optim.OneCycle(optimizer, max_lr=tp.lr, total_steps=tp.epochs * n_batches)
    return None


def _amp_dtype(tp: TrainParams, device: torch.device) -> torch.dtype | None:
    """Mixed precision only on CUDA: bf16 where supported, else fp16 with a GradScaler."""
    if not tp.amp or device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _payload(identity: dict[str, Any], model: nn.Module, optimizer: optim.Adam,
             scheduler: Any, scaler: torch.amp.GradScaler, state: _State) -> dict[str, Any]:
    return {**identity, "state_dict": model.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict() if scheduler is not None else None,
            "scaler": scaler.state_dict(), "rng": torch.get_rng_state(), **vars(state)}


def _save_last(folder: Path, identity: dict[str, Any], model: nn.Module, optimizer: Any,
               scheduler: Any, scaler: Any, state: _State) -> None:
    checkpoint.save(folder / "last.pt", _payload(identity, model, optimizer, scheduler, scaler, state))


def _save_epoch(folder: Path, identity: dict[str, Any], model: nn.Module, optimizer: Any,
                scheduler: Any, scaler: Any, state: _State, tp: TrainParams) -> None:
    """After each epoch: epoch_NNNN.pt (newest N kept), last.pt, and best.pt when it improved."""
    payload = _payload(identity, model, optimizer, scheduler, scaler, state)
    snapshot = folder / f"epoch_{state.epoch:04d}.pt"
    checkpoint.save(snapshot, payload)
    if state.best_epoch == state.epoch:
        checkpoint.save(folder / "best.pt", payload)
    checkpoint.save(folder / "last.pt", payload)
    checkpoint.prune_epochs(folder, tp.keep_checkpoints)


def _restore(folder: Path, identity: dict[str, Any], mode: ResumeMode, model: nn.Module,
             optimizer: Any, scheduler: Any, scaler: Any, state: _State, owner: bool = True) -> int | None:
    """Load last.pt into the live objects when it matches; returns the epoch resumed from.
    Only the `owner` (rank 0) deletes a folder it will not resume."""
    last = folder / "last.pt"
    if mode == "fresh" or (mode == "auto" and not last.exists()):
        if owner:
            _clear(folder)
        return None
    if mode == "resume" and not last.exists():
        raise checkpoint.CheckpointError(f"{last}: not found; nothing to resume (drop --resume)")
    try:
        payload = checkpoint.load(last)
    except checkpoint.CheckpointError as exc:
        raise checkpoint.CheckpointError(f"{exc}; use --fresh to start over") from None
    if payload.get("model") != identity["model"]:
        raise checkpoint.CheckpointError(
            f"{last}: belongs to model {payload.get('model')!r}, not {identity['model']!r}; use --fresh")
    if payload.get("fingerprint") != identity["fingerprint"]:
        if mode == "resume":
            raise checkpoint.CheckpointError(
                f"{last}: was written with other params or data (fingerprint {payload.get('fingerprint')} "
                f"!= {identity['fingerprint']}); use --fresh to start over")
        log.info("%s: checkpoint is from other params or data; starting fresh", last)
        return _restore(folder, identity, "fresh", model, optimizer, scheduler, scaler, state)
    model.load_state_dict(payload["state_dict"])
    try:
        optimizer.load_state_dict(payload["optimizer"])
        if scheduler is not None and payload["scheduler"] is not None:
            scheduler.load_state_dict(payload["scheduler"])
    except (KeyError, TypeError, AttributeError):
        raise checkpoint.CheckpointError(f"{last}: its optimizer or schedule state has another layout "
                                         "(torch.optim's, from a seqpipe before seqpipe.optim); use --fresh "
                                         "to start over") from None
    scaler.load_state_dict(payload["scaler"])
    torch.set_rng_state(payload["rng"])
    for key in vars(state):
        setattr(state, key, payload[key])
    log.info("resuming from %s at epoch %d batch %d", last, state.epoch + 1, state.step)
    return state.epoch


def _written_by(last: Path, launch: str) -> bool:
    """Whether `last` is a whole checkpoint that the launch `launch` wrote."""
    if not last.exists():
        return False
    try:
        return checkpoint.load(last).get("launch") == launch
    except checkpoint.CheckpointError:
        return False


def _clear(folder: Path) -> None:
    """Empty the checkpoint folder for a fresh start; the folder itself stays (its owner holds a lock on
    it)."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.iterdir():
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


class _StopOnSignal:
    """Turn SIGINT/SIGTERM/SIGHUP into a flag the loop checks after each batch (main thread only); a
    signal already ignored (nohup's SIGHUP) stays ignored."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopOnSignal:
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                if signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signum is not None:  # a second signal: stop now
            raise KeyboardInterrupt
        self.signum = signum

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
