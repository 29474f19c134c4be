"""Checkpoints: atomic save, safe load (weights_only=True), and the model file evaluate/predict use."""

from __future__ import annotations

import hashlib
import io
import re
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seqpipe.errors import EnvError, SeqpipeError, environment_error, first_line
from seqpipe.io import atomic_path, format_bytes, require_file
from seqpipe.networks import build_network

EPOCH_FILE = re.compile(r"epoch_(\d{4})\.pt$")


class CheckpointError(SeqpipeError):
    """A checkpoint that cannot be read or does not belong to this model/params."""


DIGEST = "sha256"


def content_digest(payload: Any) -> str:
    """sha256 over every tensor's bytes and every plain value, in key order. torch.load does not check
    the CRCs of tensor data, so a flipped byte there would otherwise load as silently wrong weights."""
    digest = hashlib.sha256()

    def walk(value: Any, key: str) -> None:
        if isinstance(value, dict):
            for k in sorted(value, key=str):
                if not (key == "" and k == DIGEST):
                    walk(value[k], f"{key}/{k}")
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                walk(item, f"{key}/{i}")
        elif isinstance(value, torch.Tensor):
            data = value.detach().cpu().contiguous().reshape(-1).view(torch.uint8)
            digest.update(f"{key}:{value.dtype}:{tuple(value.shape)}".encode())
            digest.update(data.numpy().tobytes())
        else:
            digest.update(f"{key}={value!r}".encode())

    walk(payload, "")
    return digest.hexdigest()


def save(path: str | Path, payload: dict[str, Any]) -> None:
    """Atomic torch.save, with a content digest that `load` checks. Through a file handle, the zip's
    inner folder is always `archive/`; given a path, torch names it after the (random) temp file, so
    equal payloads would differ in bytes."""
    payload = _canonical(payload)
    # torch's zip writer turns ENOSPC into a RuntimeError; a plain write keeps the errno
    buffer = io.BytesIO()
    torch.save({**payload, DIGEST: content_digest(payload)}, buffer)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        fh.write(buffer.getbuffer())


def _canonical(value: Any) -> Any:
    """`value` with every string interned. Pickle writes an object seen before as a back-reference, so
    the bytes would otherwise depend on which equal strings happen to be one object: a history resumed
    from a checkpoint holds unpickled copies where an uninterrupted run holds the same literals."""
    if isinstance(value, str):
        return sys.intern(value)
    if isinstance(value, dict):
        items = {_canonical(k): _canonical(v) for k, v in value.items()}
        if type(value) is dict:
            return items
        copy: Any = type(value)(items)  # a state_dict's OrderedDict, with the module versions it carries
        if hasattr(value, "_metadata"):
            copy._metadata = value._metadata
        return copy
    if isinstance(value, list):
        return [_canonical(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_canonical(v) for v in value)
    return value


def load(path: str | Path, trust_unverified: bool = False) -> dict[str, Any]:
    """Load tensors and plain data only; a truncated, corrupted or foreign file is a CheckpointError, and
    so is a file without its sha256 digest unless `trust_unverified` (its weights cannot be checked)."""
    path = Path(path)
    _require_zip(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for damaged zips/pickles
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(exc).__name__}: "
                              f"{first_line(exc)})") from None
    if not isinstance(payload, dict) or "state_dict" not in payload or "model" not in payload:
        raise CheckpointError(f"{path}: not a seqpipe checkpoint")
    if DIGEST not in payload and not trust_unverified:
        raise CheckpointError(f"{path}: has no sha256 digest, so its weights cannot be verified (an "
                              "edited file, or one from before digests); retrain it, or pass predict "
                              "--trust-unverified")
    if DIGEST in payload and payload[DIGEST] != content_digest(payload):
        raise CheckpointError(f"{path}: corrupted checkpoint (content does not match its sha256)")
    return payload


def _require_zip(path: Path) -> None:
    """A CheckpointError naming `path` unless it is a regular file holding a zip archive, as torch.save
    writes: missing, a folder, a FIFO, empty, truncated or another kind of file."""
    try:
        with open(require_file(path), "rb") as fh:
            is_zip = zipfile.is_zipfile(fh)
            size = fh.seek(0, io.SEEK_END)
    except EnvError:
        raise
    except SeqpipeError as exc:
        raise CheckpointError(str(exc)) from None
    except OSError as exc:
        raise environment_error(exc, path) or CheckpointError(f"{path}: cannot read "
                                                              f"({first_line(exc)})") from None
    if size == 0:
        raise CheckpointError(f"{path}: unreadable checkpoint (an empty file, 0 bytes)")
    if not is_zip:
        raise CheckpointError(f"{path}: unreadable checkpoint ({format_bytes(size)}, not the zip archive "
                              "torch.save writes: truncated, or another kind of file)")


def load_model(path: str | Path, expected_model: str | None = None,
               trust_unverified: bool = False) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the network a model file describes (class + constructor args) and load its weights."""
    payload = load(path, trust_unverified)
    if expected_model is not None and payload["model"] != expected_model:
        raise CheckpointError(f"{path}: holds model {payload['model']!r}, not {expected_model!r}")
    try:
        network = build_network(payload["network_module"], payload["network"], payload["network_args"])
        network.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: does not fit the current network code "
                              f"({first_line(exc)}); retrain it") from None
    network.eval()
    return network, payload


def prune_epochs(folder: Path, keep: int) -> None:
    """Delete all but the newest `keep` epoch_NNNN.pt snapshots."""
    snapshots = sorted(p for p in folder.glob("epoch_*.pt") if EPOCH_FILE.search(p.name))
    for old in snapshots[:-keep]:
        old.unlink(missing_ok=True)


def prune_runs(root: Path, keep: int, current: Path) -> None:
    """Delete all but the `keep` most recently written run folders under `root` (`current` always
    stays), and any loose file there (the single-folder layout of older versions)."""
    runs = sorted((p for p in root.iterdir() if p.is_dir() and p != current),
                  key=lambda p: p.stat().st_mtime, reverse=True)
    for old in runs[max(keep - 1, 0):]:
        shutil.rmtree(old, ignore_errors=True)
    for loose in (p for p in root.iterdir() if not p.is_dir()):
        loose.unlink(missing_ok=True)
