"""Multi-process training (DDP): the torchrun launch, the process group and the per-rank helpers.

`seqpipe train` with `train.nproc_per_node: N > 1` re-runs itself as N torchrun workers (`launch`).
Each worker joins the group (`process_group`: gloo on CPU, NCCL on CUDA with one GPU per local
rank); the fit loop then asks `Ranks.current()` for its rank and uses the few hooks below. With one
process nothing here creates a process group or communicates.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data.distributed import DistributedSampler

from seqpipe.errors import SeqpipeError

log = logging.getLogger(__name__)


def rank() -> int:
    """This process's global rank under torchrun (0 otherwise)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """The number of processes torchrun started (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_launch(name: str, nproc: int, device: torch.device) -> None:
    """Refuse, in one line naming the key, an nproc_per_node the device cannot serve."""
    key = f"models.{name}.train.nproc_per_node"
    if device.type == "cuda":
        if device.index is not None:
            raise SeqpipeError(f"{key} is {nproc}: each rank takes cuda:LOCAL_RANK, so device must be "
                               f"auto, cpu or cuda, not {device}")
        if nproc > torch.cuda.device_count():
            raise SeqpipeError(f"{key} is {nproc} but only {torch.cuda.device_count()} CUDA devices are "
                               "visible (NCCL needs one per process)")


def launch(args: list[str], nproc: int) -> int:
    """Run `python -m seqpipe.cli ARGS` as `nproc` torchrun workers; return their exit code.

    torchrun runs in its own session, so a terminal's Ctrl-C reaches only this process, which
    forwards SIGINT/SIGTERM to torchrun; torchrun passes it on to every worker, which saves the
    checkpoint and exits 128 + signal, as a one-process run does. With num_threads 0 each worker
    gets an equal share of the cores (OMP_NUM_THREADS).
    """
    cmd = [sys.executable, "-m", "seqpipe.distributed", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "seqpipe.cli", *args]
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, torch.get_num_threads() // nproc)))
    log.info("launching %d processes: %s", nproc, " ".join(cmd[1:]))
    proc: subprocess.Popen | None = None
    pending: list[int] = []  # a signal that comes before torchrun has started

    def forward(signum: int, frame: object) -> None:
        if proc is None:
            pending.append(signum)
        else:
            proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        proc = subprocess.Popen(cmd, env=env, start_new_session=True)
        for signum in pending:
            proc.send_signal(signum)
        code = proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code if code >= 0 else 128 - code


def torchrun(argv: list[str]) -> int:
    """torchrun (`torch.distributed.run`) with the workers' exit code as its own: the first failed
    worker's code, or 128 + signal when torchrun itself was signalled (no launcher traceback)."""
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    try:
        run(parse_args(argv))
    except SignalException as exc:
        return 128 + exc.sigval
    except ChildFailedError as exc:
        code = exc.get_first_failure()[1].exitcode
        return code if code > 0 else 128 - code
    return 0


@contextmanager
def process_group(name: str, nproc: int, device: torch.device) -> Iterator[torch.device]:
    """Join torchrun's process group for the duration (yielding this rank's device), or do nothing
    (yielding `device`) in a one-process run."""
    world = world_size()
    if world != nproc:
        raise SeqpipeError(f"models.{name}.train.nproc_per_node is {nproc} but {world} processes were "
                           "started; `seqpipe train` launches torchrun itself")
    if world == 1:
        yield device
        return
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    backend = "nccl" if device.type == "cuda" else "gloo"
    dist.init_process_group(backend, device_id=device if device.type == "cuda" else None)
    log.info("DDP: %d processes, backend %s", world, backend)
    try:
        yield device
    finally:
        dist.destroy_process_group()


@dataclass(frozen=True)
class Ranks:
    """This process's place among the training processes, and the hooks the fit loop needs."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @classmethod
    def current(cls, device: torch.device) -> Ranks:
        if not dist.is_initialized():
            return cls(device=device)
        return cls(dist.get_rank(), dist.get_world_size(), device)

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes checkpoints, DVCLive, tqdm bars and log lines."""
        return self.rank == 0

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to train: DDP around `model` (which stays the one to save) when distributed."""
        if self.world == 1:
            return model
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(model, device_ids=ids)

    def epoch_order(self, n: int, seed: int, epoch: int) -> torch.Tensor:
        """This rank's sample indices for one epoch: a shuffle that depends only on (seed, epoch),
        split across ranks by DistributedSampler (padded so every rank has as many batches)."""
        sampler = DistributedSampler(range(n), num_replicas=self.world, rank=self.rank, shuffle=True,
                                     seed=seed * 100_003)
        sampler.set_epoch(epoch)
        return torch.tensor(list(sampler), dtype=torch.long, device=self.device)

    def shard(self, data: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Every world-th sample, starting at this rank (for validation)."""
        if self.world == 1:
            return data
        return {k: v[self.rank::self.world] for k, v in data.items()}

    def totals(self, loss_sum: float, count: int, signum: int = 0) -> tuple[float, int, int]:
        """(sum of loss_sum, sum of count, highest signal number) over all ranks."""
        if self.world == 1:
            return loss_sum, count, signum
        mine = torch.tensor([loss_sum, count, signum], dtype=torch.float64, device=self.device)
        gathered = [torch.empty_like(mine) for _ in range(self.world)]
        dist.all_gather(gathered, mine)
        table = torch.stack(gathered).cpu()
        return float(table[:, 0].sum()), int(table[:, 1].sum()), int(table[:, 2].max())

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier(device_ids=[self.device.index] if self.device.type == "cuda" else None)


if __name__ == "__main__":
    sys.exit(torchrun(sys.argv[1:]))
