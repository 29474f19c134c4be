"""Sources for ice_forecast: G02135 daily concentration GeoTIFFs, synthetic, local, from URLs or from
NSIDC."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from seqpipe.data import seaice
from seqpipe.params import params_section
from seqpipe.sources.http import HttpParams, download_http
from seqpipe.sources.local import LocalParams, copy_local, local_source
from seqpipe.sources.nsidc import NsidcParams, download_series
from seqpipe.sources.nsidc_synthetic import SeaIceSyntheticParams, write_series


@params_section
class DownloadParams:
    source: Literal["synthetic", "local", "http", "nsidc"]
    synthetic: SeaIceSyntheticParams
    local: LocalParams   # a folder of N_YYYYMMDD_concentration_v3.0.tif files
    http: HttpParams
    nsidc: NsidcParams


def copy_local_series(p: LocalParams, out_dir: Path) -> dict:
    """Copy a folder of G02135 files, checking every file's grid first (errors name the user's files)."""
    seaice.read_series(local_source(p))
    return copy_local(p, None, out_dir)


LOCAL_PATHS = ("local.path",)   # download keys naming the user's files: deps of the download stage
SOURCES = {"synthetic": lambda p, seed, out: write_series(p.synthetic, seed, out),
           "local": lambda p, seed, out: copy_local_series(p.local, out),
           "http": lambda p, seed, out: download_http(p.http, out, seaice.read_series),
           "nsidc": lambda p, seed, out: download_series(p.nsidc, out)}
