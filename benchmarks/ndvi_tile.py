"""5. crop_ndvi preprocess on a Sentinel-2 tile-sized stack: input MB/s against a plain rasterio read
of the same bands (the I/O floor), and peak RSS at two raster sizes.

The stack: `seqpipe download crop_ndvi` writes a small synthetic stack (real tags, CRS, nodata, SCL);
each file is then tiled out to `size` x `size` pixels (512-px deflate tiles, like Sentinel-2 COGs).
Both contenders run as child processes, alternating, and read the same files through the page cache.
Usage of the plain read on its own: python -m benchmarks.ndvi_tile read DIR BLOCK
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]  # benchmarks.common imports torch: kept out of the plain-read child

TILE_SIZE = 10980          # a Sentinel-2 L2A tile at 10 m
SOURCE_SIZE = 512          # the synthetic stack that is tiled out
N_DATES = 6                # window 4 -> next step: the fewest dates preprocess accepts with 5-day revisit


def build_stack(work: Path, size: int) -> Path:
    """A project folder whose data/raw/crop_ndvi holds N_DATES dates of size x size B04/B08/SCL GeoTIFFs."""
    from benchmarks.common import sh

    root = work / f"ndvi_{size}"
    root.mkdir(parents=True)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    crop = params["models"]["crop_ndvi"]
    crop["download"]["synthetic"].update(width=SOURCE_SIZE, height=SOURCE_SIZE, n_dates=N_DATES,
                                         missing_acquisitions=0.0)
    crop["preprocess"]["window"] = N_DATES - 2
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    sh(["seqpipe", "download", "crop_ndvi"], root)
    for path in sorted((root / "data/raw/crop_ndvi").glob("*.tif")):
        tile_out(path, size)
    return root


def tile_out(path: Path, size: int, block: int = 512) -> None:
    """Rewrite `path` as size x size pixels by repeating its content; same CRS, origin, tags, nodata."""
    import rasterio

    with rasterio.open(path) as src:
        small, profile, tags = src.read(1), src.profile, src.tags()
    profile.update(width=size, height=size, tiled=True, blockxsize=block, blockysize=block,
                   compress="deflate", predictor=2, zlevel=1)
    reps = -(-size // small.shape[1])
    tmp = path.with_suffix(".tmp.tif")
    with rasterio.open(tmp, "w", **profile) as dst:
        dst.update_tags(**tags)
        for row in range(0, size, block):
            rows = min(block, size - row)
            strip = np.tile(np.roll(small, -(row % small.shape[0]), axis=0)[:rows], (1, reps))[:, :size]
            dst.write(strip, 1, window=rasterio.windows.Window(0, row, size, rows))
    tmp.replace(path)


def plain_read(folder: Path, block: int) -> int:
    """Read band 1 of every GeoTIFF in `folder` window by window, as preprocess does; returns bytes decoded."""
    import rasterio

    from seqpipe.data.rasters import bounded_cache, iter_windows

    total = 0
    with bounded_cache():
        for path in sorted(folder.glob("*.tif")):
            with rasterio.open(path) as ds:
                for win in iter_windows(ds.height, ds.width, block):
                    total += ds.read(1, window=win).nbytes
    return total


def decoded_bytes(folder: Path) -> int:
    import rasterio

    total = 0
    for path in folder.glob("*.tif"):
        with rasterio.open(path) as ds:
            total += ds.width * ds.height * np.dtype(ds.dtypes[0]).itemsize
    return total


def measure(root: Path, block: int, repeats: int) -> dict:
    from benchmarks.common import median, peak_rss_of

    raw = root / "data/raw/crop_ndvi"
    mb = decoded_bytes(raw) / 1e6
    read_cmd = [sys.executable, "-m", "benchmarks.ndvi_tile", "read", str(raw), str(block)]
    plain, ours = [], []
    for _ in range(repeats):  # alternating
        plain.append(peak_rss_of(read_cmd, REPO))
        ours.append(peak_rss_of(["seqpipe", "preprocess", "crop_ndvi"], root))
    plain_s, ours_s = median([s for s, _ in plain]), median([s for s, _ in ours])
    return {"input_mb": mb, "disk_mb": sum(p.stat().st_size for p in raw.glob("*.tif")) / 1e6,
            "plain_read_s": plain_s, "preprocess_s": ours_s, "plain_read_mb_per_s": mb / plain_s,
            "preprocess_mb_per_s": mb / ours_s, "fraction_of_plain": plain_s / ours_s,
            "plain_read_peak_rss_mib": max(r for _, r in plain), "preprocess_peak_rss_mib": max(r for _, r in ours)}


def run(work: Path, sizes: tuple[int, ...] = (TILE_SIZE // 4, TILE_SIZE), repeats: int = 2) -> dict:
    block = yaml.safe_load((REPO / "params.yaml").read_text())["models"]["crop_ndvi"]["preprocess"]["block_size"]
    out = {"dates": N_DATES, "block_size": block}
    for size in sizes:
        print(f"   {size} x {size} px, {N_DATES} dates", flush=True)
        root = build_stack(work, size)
        out[str(size)] = measure(root, block, repeats)
        shutil.rmtree(root)  # several GB at tile size
    return out


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "read":
        print(plain_read(Path(sys.argv[2]), int(sys.argv[3])))
    else:
        sys.exit(__doc__)
