"""Multi-process training (DDP): the torchrun launch, the process group and the per-rank helpers.

`seqpipe train` with `train.nproc_per_node: N > 1`, or on several machines (`Rendezvous`: `--nnodes`
and a c10d rendezvous endpoint), re-runs itself as N torchrun workers per node (`launch`). Each worker
joins the group (`process_group`: gloo on CPU, NCCL on CUDA with one GPU per local rank); the fit loop
then asks `Ranks.current()` for its global rank and uses the few hooks below. Global ranks (RANK,
WORLD_SIZE) decide the data shard and which process writes (rank 0); local ranks (LOCAL_RANK,
LOCAL_WORLD_SIZE) decide the GPU and the share of this machine's threads. With one process nothing
here creates a process group or communicates.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import functools
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data.distributed import DistributedSampler

from seqpipe.errors import SeqpipeError, first_line
from seqpipe.networks import Samples
from seqpipe.numerics import usable_cores

log = logging.getLogger(__name__)

AGENT_PID = "SEQPIPE_TORCHRUN_PID"  # set by `torchrun` below, read by its workers
LAUNCH_ID = "SEQPIPE_LAUNCH_ID"  # set by `launch`: one id per launch, the same in workers torchrun restarts
_PR_SET_PDEATHSIG = 1
TEARDOWN_S = 20  # the longest a stopped or failed worker may take to exit


def rank() -> int:
    """This process's global rank under torchrun (0 otherwise)."""
    return int(os.environ.get("RANK", "0"))


def world_size() -> int:
    """The number of processes torchrun started on all nodes together (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def nodes() -> int:
    """The number of nodes (torchrun agents) in the rendezvous (1 when not launched by torchrun)."""
    return int(os.environ.get("GROUP_WORLD_SIZE", "1"))


def launched() -> bool:
    """Whether this process is a torchrun worker."""
    return "RANK" in os.environ


def launch_id() -> str | None:
    """The id of the `seqpipe train` launch this worker belongs to; a worker that torchrun restarts
    after a failure (`--max-restarts`) has the same one. None outside `launch`."""
    return os.environ.get(LAUNCH_ID)


@dataclass(frozen=True)
class Rendezvous:
    """Where the processes of a run meet: on this machine alone (torchrun --standalone), or on `nnodes`
    machines through a c10d rendezvous at `endpoint` (HOST:PORT), which node 0 hosts. Global ranks
    are the rendezvous's to assign (torchrun orders the nodes by host name and process id, not by
    node rank). `max_restarts`: how often torchrun restarts every worker after one fails; the
    restarted workers resume from last.pt."""

    nnodes: int = 1
    node_rank: int = 0
    endpoint: str | None = None
    run_id: str | None = None
    max_restarts: int = 0

    def torchrun_args(self) -> list[str]:
        restarts = [f"--max-restarts={self.max_restarts}"]
        if self.nnodes == 1:
            return ["--standalone", *restarts]
        # is_host: node 0 hosts the rendezvous store, whatever the endpoint's name resolves to
        return [f"--nnodes={self.nnodes}", "--rdzv-backend=c10d", f"--rdzv-endpoint={self.endpoint}",
                f"--rdzv-id={self.run_id}", f"--rdzv-conf=is_host={str(self.node_rank == 0).lower()}",
                *restarts]

    def describe(self, nproc: int) -> str:
        plural = "s" * (self.max_restarts > 1)
        restarts = f", up to {self.max_restarts} restart{plural}" if self.max_restarts else ""
        if self.nnodes == 1:
            return f"{nproc} process{'es' * (nproc > 1)}{restarts}"
        return (f"{nproc} of the {nproc * self.nnodes} processes (node {self.node_rank} of {self.nnodes}, "
                f"rendezvous {self.endpoint}, id {self.run_id}{restarts})")


def check_launch(name: str, nproc: int, device: torch.device) -> None:
    """Refuse, in one line naming the key, an nproc_per_node the device cannot serve."""
    key = f"models.{name}.train.nproc_per_node"
    if device.type == "cpu" and nproc > usable_cores():
        raise SeqpipeError(f"{key} is {nproc} but this machine has {usable_cores()} usable CPU cores; "
                           "each process needs one, so set it to at most that")
    if device.type == "cuda":
        if device.index is not None:
            raise SeqpipeError(f"{key} is {nproc}: each rank takes cuda:LOCAL_RANK, so device must be "
                               f"auto, cpu or cuda, not {device}")
        if nproc > torch.cuda.device_count():
            raise SeqpipeError(f"{key} is {nproc} but only {torch.cuda.device_count()} CUDA devices are "
                               "visible (NCCL needs one per process)")


def launch(args: list[str], nproc: int, rendezvous: Rendezvous = Rendezvous()) -> int:
    """Run `python -m seqpipe.cli ARGS` as `nproc` torchrun workers on this node of `rendezvous`;
    return their exit code.

    torchrun runs in its own session, so a terminal's Ctrl-C reaches only this process, which
    forwards SIGINT/SIGTERM/SIGHUP to torchrun; torchrun passes it on to every worker, which saves the
    checkpoint and exits 128 + signal, as a one-process run does. Each worker takes an equal share of
    num_threads (seqpipe.numerics). torchrun gets SIGTERM if this process dies
    without forwarding anything (kill -9), and stops its workers as for any signal.
    """
    cmd = [sys.executable, "-m", "seqpipe.distributed", *rendezvous.torchrun_args(),
           f"--nproc_per_node={nproc}", "-m", "seqpipe.cli", *args]
    # TORCH_DISABLE_SHARE_RDZV_TCP_STORE: each rendezvous round gets a store of its own (rank 0's worker
    # hosts it), as before torch 2.4. The store the agents share by default outlives a restart with the
    # old round's keys in it, so a restarted worker can read the address of a worker that is gone and
    # fail to connect, leaving the others waiting (pytorch/pytorch#135712; seen here with --max-restarts).
    env = {**os.environ, LAUNCH_ID: uuid.uuid4().hex, "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
    log.info("launching %s: %s", rendezvous.describe(nproc), " ".join(cmd[1:]))
    proc: subprocess.Popen | None = None
    pending: list[int] = []  # a signal that comes before torchrun has started

    def forward(signum: int, frame: object) -> None:
        if proc is None:
            pending.append(signum)
        else:
            proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
                if signal.getsignal(sig) is not signal.SIG_IGN}
    launcher = os.getpid()
    _prctl()  # load libc here, not in the forked child
    try:
        proc = subprocess.Popen(cmd, env=env, start_new_session=True,
                                preexec_fn=lambda: _die_with_parent(launcher, os._exit))
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
    from torch.distributed.elastic.rendezvous.api import RendezvousError
    from torch.distributed.run import parse_args, run

    os.environ[AGENT_PID] = str(os.getpid())
    # a failed worker has said why in its own one line; torchrun's "failed (exitcode: 1)" would follow it
    logging.getLogger("torch.distributed.elastic.multiprocessing.api").setLevel(logging.CRITICAL)
    try:
        run(parse_args(argv))
    except SignalException as exc:
        return 128 + exc.sigval
    except ChildFailedError as exc:
        code = exc.get_first_failure()[1].exitcode
        return code if code > 0 else 128 - code
    except RendezvousError as exc:  # another node never came, or node 0's rendezvous cannot be reached
        reason = first_line(exc.__cause__ if exc.__cause__ is not None else exc)  # the socket's words, if any
        print(f"seqpipe: error: rendezvous: {reason} (node 0 hosts it: start it first, then the others with "
              "the same --nnodes, --rdzv-endpoint and --rdzv-id)", file=sys.stderr)
        return 1
    return 0


def die_with_launcher() -> None:
    """In a torchrun worker: get SIGTERM when torchrun dies, and stop now if it is already gone.
    (torchrun starts each worker in a session of its own, so no process-group kill reaches it.)"""
    agent = os.environ.get(AGENT_PID)
    if agent is not None:
        _die_with_parent(int(agent), sys.exit)


def _die_with_parent(parent: int, exit: Callable[[int], object]) -> None:
    """Ask Linux to send this process SIGTERM when its parent dies; `exit(143)` if `parent` is
    already gone (reparented before the request took effect). Elsewhere than Linux: nothing.
    Safe between fork and exec: libc is loaded beforehand, by `_prctl`."""
    prctl = _prctl()
    if prctl is None:
        return
    prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:
        exit(128 + signal.SIGTERM)


@functools.cache
def _prctl() -> Callable[..., int] | None:
    return ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


@contextmanager
def run_lock(folder: Path, name: str) -> Iterator[None]:
    """Hold an exclusive lock on the folder itself (no lock file) for the duration, or refuse in one
    line when another process holds it: a run in progress, or the survivor of a killed one. The
    kernel drops the lock when its holder exits, however it dies."""
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)  # not inherited by child processes
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _lock_holder(fd)
            raise SeqpipeError(f"{folder}: another `seqpipe train {name}` is still running"
                               f"{f' (pid {holder})' if holder else ''}, or the survivor of a killed "
                               "one; wait for it to end or stop it, then rerun") from None
        yield
    finally:
        os.close(fd)


def _lock_holder(fd: int) -> int | None:
    """The pid holding a flock on what `fd` is open on, from /proc/locks (None if unknown)."""
    st = os.fstat(fd)
    where = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        lines = Path("/proc/locks").read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    for fields in (line.split() for line in lines):
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == where and fields[4].isdigit():
            return int(fields[4])
    return None


@contextmanager
def process_group(name: str, nproc: int, device: torch.device) -> Iterator[torch.device]:
    """Join torchrun's process group for the duration (yielding this rank's device), or do nothing
    (yielding `device`) in a one-process run."""
    world, local = world_size(), int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if local != nproc or world != nproc * nodes():
        raise SeqpipeError(f"models.{name}.train.nproc_per_node is {nproc} but {local} processes were "
                           f"started on this node ({world} on {nodes()} nodes); `seqpipe train` launches "
                           "torchrun itself")
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
    except BaseException as exc:
        # Freeing the DDP module after a stopped or failed step can deadlock in torch (the main
        # thread joins gloo's worker thread while holding the GIL that thread waits for; seen
        # about 1 exit in 8). SIGALRM's default action ends the process whatever it is stuck in:
        # nothing is left to write by then (last.pt is saved before the stop is raised).
        signal.alarm(TEARDOWN_S)
        signum = getattr(exc, "signum", None)   # fit's stop on a signal (fit is above this module)
        if getattr(exc, "relayed", False) and signum is not None:
            _stop_agent(signum)
        if _lost_peer(exc):
            raise PeerLost(f"rank {dist.get_rank()} on {socket.gethostname()}: lost the other ranks "
                           f"({first_line(exc)}): another worker or node has failed; torchrun restarts "
                           "the workers with --max-restarts, or rerun to resume from last.pt") from exc
        raise
    finally:
        dist.destroy_process_group()


def _stop_agent(signum: int) -> None:
    """Pass a stop that another rank was signalled for on to this node's torchrun, before this worker
    exits 128 + signal: torchrun would take that exit for a failure and, under --max-restarts, restart
    the workers, which would then wait at the rendezvous for a node that has stopped. So every node
    stops, as the one signalled does. torchrun passes the signal back to its workers: ignored here,
    this worker is on its way out (last.pt is saved)."""
    agent = os.environ.get(AGENT_PID)
    if agent is None:
        return
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, signal.SIG_IGN)
    with contextlib.suppress(OSError):
        os.kill(int(agent), signum)


class PeerLost(SeqpipeError):
    """A collective failed because another rank has gone (killed, crashed, its node down): said by
    each surviving rank, as it may be rank 0 that has gone."""


def _lost_peer(exc: BaseException) -> bool:
    """Whether `exc` is a failed collective: torch's DistError, or the RuntimeError that gloo and NCCL
    raise inside DDP's gradient all-reduce."""
    text = str(exc)
    return isinstance(exc, dist.DistError) or (
        type(exc) is RuntimeError and ("gloo" in text or "NCCL" in text) and dist.is_initialized())


class RanksDisagree(SeqpipeError):
    """The ranks of one run do not see the same inputs or the same checkpoint folder; every rank
    finds it, rank 0 reports it."""

    rank0_reports = True


def check_same_run(folder: Path, fingerprint: str) -> None:
    """In a process group, before training: every rank computed the same training fingerprint (params,
    data and code alike on every node), and sees the checkpoint folder rank 0 writes (the nodes share
    one file system: a rank that read another node's stale last.pt would silently diverge). Refuses in
    one line naming the first rank and host that differ."""
    if not dist.is_initialized():
        return
    me = (socket.gethostname(), fingerprint)
    table: list[tuple[str, str]] = [("", "")] * dist.get_world_size()
    dist.all_gather_object(table, me)
    for r, (host, theirs) in enumerate(table):
        if theirs != table[0][1]:
            raise RanksDisagree(f"rank {r} on {host} trains another params set, data or code than rank 0 on "
                                f"{table[0][0]} (training fingerprint {theirs} != {table[0][1]}); every node "
                                "needs the same params.yaml, data/processed and seqpipe code")
    probe = [""]
    fd = -1
    if dist.get_rank() == 0:  # a name no earlier run used: a stale copy of the folder cannot pass
        fd, path = tempfile.mkstemp(prefix=".ranks.", suffix=".tmp", dir=folder)
        probe = [Path(path).name]
    try:
        dist.broadcast_object_list(probe, src=0)
        seen = [False] * dist.get_world_size()
        dist.all_gather_object(seen, (folder / probe[0]).is_file())
    finally:
        if fd >= 0:
            os.close(fd)
            (folder / probe[0]).unlink(missing_ok=True)
    blind = [r for r, ok in enumerate(seen) if not ok]
    if blind:
        raise RanksDisagree(f"{folder}: rank {blind[0]} on {table[blind[0]][0]} does not see the checkpoint "
                            f"folder that rank 0 on {table[0][0]} writes; run every node in the same "
                            "folder on a shared file system (docs/scale-out.md#several-machines)")


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
        sampler: DistributedSampler[int] = DistributedSampler(
            range(n),  # type: ignore[arg-type]  # torch annotates Dataset; the sampler only takes its len()
            num_replicas=self.world, rank=self.rank, shuffle=True, seed=seed * 100_003)
        sampler.set_epoch(epoch)
        return torch.tensor(list(sampler), dtype=torch.long, device=self.device)

    def shard(self, data: Mapping[str, Samples]) -> dict[str, Samples]:
        """Every world-th sample, starting at this rank (for validation)."""
        if self.world == 1:
            return dict(data)
        every = slice(self.rank, None, self.world)   # windows cut on demand stay so (their `subset`)
        return {k: v.subset(every) if hasattr(v, "subset") else v[every] for k, v in data.items()}

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
