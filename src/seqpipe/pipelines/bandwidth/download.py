"""bandwidth downloads: a network-metrics CSV, synthetic (daily/weekly cycles and congestion), local or from
a URL."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import pandas as pd

from seqpipe.io import atomic_path
from seqpipe.params import Range, check_date, check_end, params_section
from seqpipe.pipelines.bandwidth import FILE_NAME
from seqpipe.sources.http import HttpParams, download_http, require
from seqpipe.sources.local import LocalParams, copy_local

COLUMNS = ["timestamp", "throughput_mbps", "rtt_ms", "packet_loss", "jitter_ms", "time_of_day",
           "day_of_week", "congestion_window", "queue_depth", "retransmits"]


@params_section
class BandwidthSyntheticParams:
    n_rows: Annotated[int, Range(100, 10**7)]
    cadence_s: Annotated[int, Range(1, 86_400)]          # seconds between rows, at most a day
    start: str                                            # ISO timestamp of the first row (UTC)
    # mean number of congestion episodes (~45 min) per day
    congestion_per_day: Annotated[float, Range(0, 48)]
    # relative scale of the heavy-tailed measurement noise
    noise_scale: Annotated[float, Range(0, 10)]
    # Student-t degrees of freedom (smaller = heavier tails; > 2: a finite variance)
    noise_dof: Annotated[float, Range(2, 1e6, low_open=True)]

    def __post_init__(self) -> None:
        span = dt.timedelta(seconds=self.n_rows * self.cadence_s)
        check_end("n_rows", check_date("start", self.start, time=True), span, "n_rows x cadence_s")


def write_synthetic(p: BandwidthSyntheticParams, seed: int, out_dir: Path) -> dict:
    rng = np.random.default_rng(seed)
    n = p.n_rows
    seconds = np.arange(n) * p.cadence_s
    stamps = pd.Timestamp(p.start) + pd.to_timedelta(seconds, unit="s")
    hour = stamps.hour.to_numpy() + stamps.minute.to_numpy() / 60 + stamps.second.to_numpy() / 3600
    weekday = stamps.day_of_week.to_numpy()
    daily = 0.5 * (1 - np.cos(2 * np.pi * (hour - 4) / 24))          # quiet at 04:00, busy at 16:00
    weekly = np.where(weekday >= 5, 0.6, 1.0)
    load = 0.2 + 0.45 * daily * weekly + _congestion(rng, n, p) + _ar1(rng, n, 0.995, 0.004)
    load = np.clip(load, 0.0, 1.3)

    def noisy(values: np.ndarray, scale: float) -> np.ndarray:
        return values + scale * p.noise_scale * rng.standard_t(p.noise_dof, size=n)

    over = np.maximum(load - 0.55, 0)
    frame = pd.DataFrame({
        "timestamp": stamps.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "throughput_mbps": np.maximum(noisy(940 * (1 - 0.55 * load), 940), 1.0),
        "rtt_ms": np.maximum(noisy(18 + 70 * load**2, 60), 1.0),
        "packet_loss": np.maximum(noisy(0.5 + 12 * over**1.5, 3), 0.0),
        "jitter_ms": np.maximum(noisy(1.5 + 12 * load, 8), 0.1),
        "time_of_day": hour,
        "day_of_week": weekday,
        "congestion_window": np.maximum(noisy(64 * (1.3 - load), 40), 1.0),
        "queue_depth": np.maximum(noisy(120 * load**2, 80), 0.0),
        "retransmits": rng.poisson(0.5 + 40 * over),
    })
    with atomic_path(out_dir / FILE_NAME) as tmp:
        frame[COLUMNS].to_csv(tmp, index=False, float_format="%.4f", encoding="utf-8")
    return {"synthetic": True, "generator": "network_metrics", "seed": seed}


def _congestion(rng: np.random.Generator, n: int, p: BandwidthSyntheticParams) -> np.ndarray:
    """Episodes with a smooth rise and fall that push every metric together."""
    steps_per_day = 86400 / p.cadence_s
    count = rng.poisson(p.congestion_per_day * n / steps_per_day)
    out = np.zeros(n)
    for start, minutes, height in zip(rng.integers(0, n, count), rng.lognormal(np.log(45), 0.5, count),
                                      rng.uniform(0.15, 0.5, count), strict=True):
        length = max(int(minutes * 60 / p.cadence_s), 3)
        envelope = np.sin(np.linspace(0, np.pi, length)) ** 2 * height
        end = min(start + length, n)
        out[start:end] += envelope[: end - start]
    return out


def _ar1(rng: np.random.Generator, n: int, phi: float, sigma: float) -> np.ndarray:
    shocks = rng.normal(0, sigma, n)
    out = np.empty(n)
    level = 0.0
    for i in range(n):
        level = phi * level + shocks[i]
        out[i] = level
    return out


@params_section
class DownloadParams:
    source: Literal["synthetic", "local", "http"]
    synthetic: BandwidthSyntheticParams
    local: LocalParams  # a CSV; its columns are named in the preprocess section
    http: HttpParams    # that CSV from a URL, landing at bandwidth.csv


LOCAL_PATHS = ("local.path",)   # download keys naming the user's files: deps of the download stage
SOURCES = {"synthetic": lambda p, seed, out: write_synthetic(p.synthetic, seed, out),
           "local": lambda p, seed, out: copy_local(p.local, FILE_NAME, out),
           "http": lambda p, seed, out: download_http(p.http, out, require(FILE_NAME))}
