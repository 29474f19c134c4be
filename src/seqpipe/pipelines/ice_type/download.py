"""ice_type downloads: sea-ice patches (GeoTIFF + labels.csv, see labels.py), synthetic, local or from
URLs."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import numpy as np

from seqpipe.data.rasters import geotiff_writer
from seqpipe.errors import SeqpipeError
from seqpipe.io import atomic_path
from seqpipe.params import Length, Range, check_size, params_section
from seqpipe.pipelines.ice_type.labels import CLASSES, LABELS_FILE, PATCH_DIR, read_labels
from seqpipe.sources.http import HttpParams, download_http
from seqpipe.sources.local import LocalParams, local_source

CRS_EPSG = 3411  # NSIDC Sea Ice Polar Stereographic North

if TYPE_CHECKING:
    from affine import Affine
    from rasterio.crs import CRS


MAX_PATCH_VALUES = 2**29   # n_patches x patch_size^2 x bands: the patches preprocess holds (2 GiB of float32)


@params_section
class IceTypeSyntheticParams:
    n_patches: Annotated[int, Range(30, 10**6)]
    patch_size: Annotated[int, Range(8, 1024)]     # pixels per side (the original used 256)
    bands: Annotated[int, Range(1, 16)]            # the original used RGB (3)
    # open_water, thin_ice, thick_ice (shares, normalised to sum 1)
    class_fractions: Annotated[list[Annotated[float, Range(0, 1e6, low_open=True)]],
                               Length(len(CLASSES), len(CLASSES))]
    pixel_size_m: Annotated[float, Range(0, 10_000, low_open=True)]
    noise_std: Annotated[float, Range(0, 1)]       # per-pixel sensor noise, reflectance units (0..1)

    def __post_init__(self) -> None:
        check_size("n_patches", self.n_patches * self.patch_size**2 * self.bands, MAX_PATCH_VALUES,
                   "the patches' values (n_patches x patch_size^2 x bands)")


@params_section
class IceTypeLocalParams:
    patches: str  # folder of GeoTIFF patches; relative paths are taken from the repository root
    labels: str   # CSV with columns file (relative to `patches`) and label (open_water|thin_ice|thick_ice)


def write_synthetic(p: IceTypeSyntheticParams, seed: int, out_dir: Path) -> dict:
    """n_patches GeoTIFFs (uint8, EPSG:3411, tiled over a polar-stereographic grid) + labels.csv."""
    rng = np.random.default_rng(seed)
    fractions = np.asarray(p.class_fractions) / np.sum(p.class_fractions)
    labels = rng.choice(len(CLASSES), size=p.n_patches, p=fractions)
    (out_dir / PATCH_DIR).mkdir(parents=True, exist_ok=True)
    per_row = int(np.ceil(np.sqrt(p.n_patches)))
    span = p.patch_size * p.pixel_size_m
    files, crs = [], polar_crs()
    for i, label in enumerate(labels):
        name = f"patch_{i:05d}.tif"
        image = synthetic_patch(rng, int(label), p.patch_size, p.bands, p.noise_std)
        origin = (-1_500_000.0 + (i % per_row) * span, 1_500_000.0 - (i // per_row) * span)
        write_patch(out_dir / PATCH_DIR / name, image, north_up(*origin, p.pixel_size_m), crs, atomic=False)
        files.append(name)
    # the bytes pandas' to_csv(index=False) writes, without pandas
    with atomic_path(out_dir / LABELS_FILE) as tmp:
        tmp.write_text("file,label\n" + "".join(f"{name},{CLASSES[k]}\n"
                                                for name, k in zip(files, labels, strict=True)),
                       encoding="utf-8")
    return {"synthetic": True, "generator": "sea_ice_patches", "seed": seed, "crs": f"EPSG:{CRS_EPSG}"}


def synthetic_patch(rng: np.random.Generator, label: int, size: int, bands: int,
                    noise_std: float) -> np.ndarray:
    """(bands, size, size) uint8. Brightness ranges overlap and every class has the same range of
    texture contrast; the texture's shape tells them apart: open water has wind waves (oriented,
    periodic), thin ice is smooth and grey (soft blobs), thick ice is brighter with sharp pressure
    ridges and dark leads (thin lines)."""
    from scipy.ndimage import gaussian_filter

    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    if label == 0:
        level = rng.uniform(0.20, 0.50)
        texture = _wave_field(rng, size)
    elif label == 1:
        level = rng.uniform(0.30, 0.60)
        texture = gaussian_filter(rng.normal(size=(size, size)), sigma=size / 10, mode="wrap")
    else:
        level = rng.uniform(0.38, 0.68)
        texture = 0.4 * gaussian_filter(rng.normal(size=(size, size)), sigma=size / 10, mode="wrap")
        for sign in (1.0, -1.0, 1.0, -1.0)[: rng.integers(2, 5)]:
            angle, offset, width = rng.uniform(0, np.pi), rng.uniform(0, size), rng.uniform(0.6, 1.2)
            distance = xx * np.cos(angle) + yy * np.sin(angle) - offset
            texture += sign * np.exp(-(distance / width) ** 2) * rng.uniform(0.6, 1.2)
    texture = (texture - texture.mean()) / (texture.std() + 1e-9)
    contrast = rng.uniform(0.05, 0.12)
    gains = 1.0 + rng.normal(0.0, 0.04, size=(bands, 1, 1))
    noise = rng.normal(0.0, noise_std * rng.uniform(0.3, 1.7), size=(bands, size, size))
    image = gains * (level + contrast * texture)[None] + noise
    return np.clip(np.round(image * 255), 0, 255).astype(np.uint8)


def _wave_field(rng: np.random.Generator, size: int) -> np.ndarray:
    """White noise band-passed around one random wave vector (wavelength 3.5-7 px): a swell field."""
    freq = np.fft.fftfreq(size)
    fy, fx = np.meshgrid(freq, freq, indexing="ij")
    angle, k = rng.uniform(0, np.pi), 1 / rng.uniform(3.5, 7.0)
    kx, ky = k * np.cos(angle), k * np.sin(angle)
    spectrum = sum(np.exp(-((fx - s * kx) ** 2 + (fy - s * ky) ** 2) / (2 * 0.03**2)) for s in (1, -1))
    return np.real(np.fft.ifft2(np.fft.fft2(rng.normal(size=(size, size))) * spectrum))


def north_up(west: float, north: float, pixel_size: float) -> Affine:
    """The affine transform of a north-up grid with square pixels and its top-left corner at (west, north)."""
    from affine import Affine

    return Affine(pixel_size, 0.0, west, 0.0, -pixel_size, north)


def polar_crs() -> CRS:
    """EPSG:3411, the patches' CRS (built once per download: each lookup queries the PROJ database)."""
    from rasterio.crs import CRS

    return CRS.from_epsg(CRS_EPSG)


def write_patch(path: Path, image: np.ndarray, transform: Affine, crs: CRS | None = None, *,
                atomic: bool = True) -> None:
    """One (bands, h, w) array as a GeoTIFF in `crs` (default EPSG:3411), written atomically unless
    `atomic=False` (into a download's temp folder, see rasters.geotiff_writer)."""
    profile = {"driver": "GTiff", "height": image.shape[1], "width": image.shape[2], "count": image.shape[0],
               "dtype": image.dtype.name, "crs": polar_crs() if crs is None else crs, "transform": transform}
    with geotiff_writer(path, profile, atomic=atomic) as dst:
        dst.write(image)


def copy_local(p: IceTypeLocalParams, out_dir: Path) -> dict:
    """Copy the labelled patches and the labels CSV into the raw layout (unlabelled files are left out)."""
    patches, labels_path = (local_source(LocalParams(value), f"download.local.{key}")   # links, special files
                            for key, value in (("patches", p.patches), ("labels", p.labels)))
    if not patches.is_dir():
        raise SeqpipeError(f"{patches}: not a folder (download.local.patches)")
    frame = read_labels(labels_path, patches)
    for name in frame["file"]:
        target = out_dir / PATCH_DIR / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(patches / name, target)
    with atomic_path(out_dir / LABELS_FILE) as tmp:
        frame[["file", "label"]].to_csv(tmp, index=False, encoding="utf-8", errors="surrogateescape")
    return {"path": str(patches), "labels": str(labels_path), "synthetic": False}


@params_section
class DownloadParams:
    source: Literal["synthetic", "local", "http"]
    synthetic: IceTypeSyntheticParams
    local: IceTypeLocalParams
    http: HttpParams    # labels.csv and patches/<file>.tif from URLs


# download keys naming the user's files: deps of the download stage
LOCAL_PATHS = ("local.patches", "local.labels")
SOURCES = {"synthetic": lambda p, seed, out: write_synthetic(p.synthetic, seed, out),
           "local": lambda p, seed, out: copy_local(p.local, out),
           "http": lambda p, seed, out: download_http(p.http, out,
                                                      lambda d: read_labels(d / LABELS_FILE, d / PATCH_DIR))}
