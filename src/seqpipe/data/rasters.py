"""Generic rasterio helpers: safe opening, grid checks, block windows, the file's own nodata, a memory
budget for whole reads, NDVI, deterministic GeoTIFF writes.

Every read error names the file; nothing here holds more than one window of a raster in memory, and a
reader that reads a raster whole checks its size against WHOLE_READ_BUDGET first (`require_whole_read`).
rasterio is imported on use, inside the functions that need it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seqpipe.errors import SeqpipeError, first_line
from seqpipe.io import atomic_path, format_bytes, require_file

if TYPE_CHECKING:
    from rasterio.windows import Window

WHOLE_READ_BUDGET = 1 << 30   # bytes one whole-raster read may take (a header can claim any size)


@dataclass(frozen=True)
class Grid:
    """CRS, affine transform and shape: what two rasters must share to be stacked pixel by pixel."""

    crs: Any
    transform: Any
    width: int
    height: int

    @classmethod
    def of(cls, ds: Any) -> Grid:
        return cls(ds.crs, ds.transform, ds.width, ds.height)

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    def describe(self) -> str:
        t = self.transform
        return (f"{crs_name(self.crs)} {self.width}x{self.height} origin ({t.c:g}, {t.f:g}) "
                f"pixel ({t.a:g}, {t.e:g})")

    def difference(self, other: Grid) -> str | None:
        """A short phrase naming what differs from `other`, or None when the grids match."""
        if self.crs != other.crs:
            return f"CRS {crs_name(self.crs)} != {crs_name(other.crs)}"
        if self.shape != other.shape:
            return f"shape {self.height}x{self.width} != {other.height}x{other.width}"
        if not self.transform.almost_equals(other.transform, precision=1e-6):
            return f"transform {tuple(self.transform)[:6]} != {tuple(other.transform)[:6]}"
        return None

    def matches(self, other: Grid) -> bool:
        return self.difference(other) is None


def crs_name(crs: Any) -> str:
    """A CRS as short text (EPSG:N where it has one); "no CRS" for a raster without georeferencing."""
    if not crs:
        return "no CRS"
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.to_string()


def require_georeferenced(path: str | Path, ds: Any, dtypes: tuple[str, ...]) -> None:
    """A raster to stack pixel by pixel needs a CRS and one of `dtypes` (e.g. Sentinel-2 DN are uint16)."""
    if not ds.crs:
        raise SeqpipeError(f"{path}: no CRS; a georeferenced GeoTIFF is needed to align it with the others")
    if ds.dtypes[0] not in dtypes:
        raise SeqpipeError(f"{path}: data type {ds.dtypes[0]}, expected {' or '.join(dtypes)}")


@contextlib.contextmanager
def open_raster(path: str | Path) -> Iterator[Any]:
    """rasterio.open with any failure (missing, not a GeoTIFF, truncated header) as one SeqpipeError line."""
    import rasterio
    from rasterio.errors import RasterioError

    try:
        ds = rasterio.open(require_file(path))
    except RasterioError as exc:
        raise SeqpipeError(f"{path}: cannot open as a raster ({first_line(exc)})") from None
    try:
        yield ds
    finally:
        ds.close()


def require_in_budget(path: str | Path, nbytes: int, what: str, hint: str = "crop or tile the file",
                      budget: int = WHOLE_READ_BUDGET) -> None:
    """Refuse, naming `path`, `what` when it would take `nbytes` of memory, over `budget`."""
    if nbytes > budget:
        raise SeqpipeError(f"{path}: {what} is {format_bytes(nbytes)}, over the memory budget of "
                           f"{format_bytes(budget)}; {hint}")


def require_whole_read(path: str | Path, ds: Any, bands: int | None = None) -> None:
    """Before `ds.read()` of `bands` whole bands (default: all): their size in memory, from the header
    alone, must fit WHOLE_READ_BUDGET, so a small file claiming a huge raster is refused, not read."""
    count = ds.count if bands is None else bands
    nbytes = ds.width * ds.height * count * max(np.dtype(t).itemsize for t in ds.dtypes)
    require_in_budget(path, nbytes, f"{ds.width}x{ds.height} pixels x {count} band(s) of {ds.dtypes[0]} "
                      "to read whole")


def nodata_mask(ds: Any, band: int, data: np.ndarray, path: str | Path,
                window: Window | None = None) -> np.ndarray:
    """True where the file's own metadata marks `data` (band `band`, read from `window`) as no data:
    its nodata value (NaN included) or its mask or alpha band; all False when it declares none."""
    from rasterio.enums import MaskFlags
    from rasterio.errors import RasterioError

    flags = ds.mask_flag_enums[band - 1]
    if MaskFlags.all_valid in flags:
        return np.zeros(data.shape, bool)
    if MaskFlags.nodata in flags:
        nodata = ds.nodatavals[band - 1]
        if data.dtype.kind == "f":   # compared in the band's own precision, as GDAL does
            return np.isnan(data) if np.isnan(nodata) else data == data.dtype.type(nodata)
        return data == nodata        # by value: a nodata outside the integer type's range matches nothing
    try:
        return ds.read_masks(band, window=window) == 0
    except RasterioError as exc:
        raise SeqpipeError(f"{path}: reading the mask of band {band} failed ({first_line(exc)})") from None


def many_files() -> Any:
    """rasterio.Env for a pass over a folder of many rasters: GDAL lists no folder on each open (by
    default it does, to find sidecar files: O(files) per open); it probes sidecar names one by one."""
    import rasterio

    return rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="TRUE")


def bounded_cache(megabytes: int = 64) -> Any:
    """rasterio.Env capping GDAL's block cache (default 5% of RAM), so memory does not grow with the
    raster."""
    import rasterio

    return rasterio.Env(GDAL_CACHEMAX=megabytes)


def aligned(ds: Any, grid: Grid) -> Any:
    """`ds` as is when it is on `grid`, else a nearest-neighbour WarpedVRT onto `grid` (same windows
    apply)."""
    from rasterio.enums import Resampling
    from rasterio.vrt import WarpedVRT

    if Grid.of(ds).matches(grid):
        return ds
    return WarpedVRT(ds, crs=grid.crs, transform=grid.transform, width=grid.width, height=grid.height,
                     resampling=Resampling.nearest, nodata=ds.nodata)


def require_same_grid(reference: Path, ref_grid: Grid, path: Path, grid: Grid) -> None:
    """A one-line error naming both files when `grid` differs from the reference grid."""
    if not grid.matches(ref_grid):
        raise SeqpipeError(f"{path}: grid {grid.describe()} differs from {reference}: {ref_grid.describe()}")


def read_window(ds: Any, band: int, window: Window, path: str | Path) -> np.ndarray:
    """One band of one window; a damaged file (e.g. truncated data) raises naming `path`."""
    from rasterio.errors import RasterioError

    try:
        return ds.read(band, window=window)
    except RasterioError as exc:
        raise SeqpipeError(f"{path}: read failed in band {band} window {_describe(window)} "
                           f"({first_line(exc)})") from None


def iter_windows(height: int, width: int, size: int) -> Iterator[Window]:
    """Square `size` x `size` windows (smaller at the right/bottom edges), row-major."""
    from rasterio.windows import Window

    for row in range(0, height, size):
        for col in range(0, width, size):
            yield Window(col, row, min(size, width - col), min(size, height - row))


def tile_aligned(size: int, ds: Any) -> int:
    """`size` rounded up to a multiple of `ds`'s internal tile, so a pass over many files decodes each
    tile once (windows smaller than a tile re-decode it once the block cache has moved on)."""
    block_h, block_w = ds.block_shapes[0]
    if block_h != block_w or block_w >= ds.width:  # striped or odd layouts: keep the requested size
        return size
    return -(-size // block_w) * block_w


def ndvi(nir: np.ndarray, red: np.ndarray) -> np.ndarray:
    """(NIR - red) / (NIR + red) as float32; NaN where the sum is not positive."""
    nir = nir.astype(np.float32)
    red = red.astype(np.float32)
    total = nir + red
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (nir - red) / total
    return np.where(total > 0, out, np.float32(np.nan)).astype(np.float32)


def geotiff_profile(grid: Grid, dtype: str, nodata: float | int | None, block: int = 256) -> dict[str, Any]:
    """A single-band, deflate-compressed GeoTIFF profile (tiled when the raster is at least one block)."""
    profile: dict[str, Any] = {"driver": "GTiff", "count": 1, "dtype": dtype, "nodata": nodata,
                               "crs": grid.crs, "transform": grid.transform, "width": grid.width,
                               "height": grid.height, "compress": "deflate"}
    if grid.width >= block and grid.height >= block:
        profile.update(tiled=True, blockxsize=block, blockysize=block)
    return profile


@contextlib.contextmanager
def geotiff_writer(path: str | Path, profile: dict[str, Any], tags: dict[str, str] | None = None, *,
                   atomic: bool = True) -> Iterator[Any]:
    """An open dataset writing to a temp file that replaces `path` only when the block exits cleanly.

    `atomic=False` writes `path` itself: for a folder that is itself a temp folder swapped in whole
    (a download), where a temp file per raster only costs time."""
    import rasterio

    with (atomic_path(path) if atomic else contextlib.nullcontext(Path(path))) as target, \
            rasterio.open(target, "w", **profile) as dst:
        if tags:
            dst.update_tags(**tags)
        yield dst


def write_geotiff(path: str | Path, array: np.ndarray, profile: dict[str, Any],
                  tags: dict[str, str] | None = None, *, atomic: bool = True) -> None:
    """Write one 2-D band (atomically unless `atomic=False`, see geotiff_writer); no timestamps are
    stored, so equal input gives equal bytes."""
    with geotiff_writer(path, profile, tags, atomic=atomic) as dst:
        dst.write(array, 1)


def _describe(window: Window) -> str:
    return f"(row {int(window.row_off)}, col {int(window.col_off)}, {int(window.height)}x{int(window.width)})"
