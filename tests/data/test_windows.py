"""seqpipe.data.windows: a window cut on demand equals the one preprocess materialised before, and
reading a batch reads only that batch from the memory-mapped stored array."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seqpipe.data.series import load_split, save_splits, sliding_windows
from seqpipe.data.windows import Windows, concat, cut, load_windows, map_chunks, stored_arrays
from seqpipe.stages import splits as splits_module
from seqpipe.stages.splits import TensorWindows, load_split_tensors


def _folder(tmp_path: Path) -> tuple[Path, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    series = rng.normal(size=(60, 3, 2)).astype(np.float32)
    starts = np.arange(0, 45, 3)
    cuts = {"x": cut("series", 0, 10, dtype="float16"), "y": cut("series", 10, 5),
            "last": cut("series", 9, None, columns=[1])}
    arrays = save_splits(tmp_path, stored_arrays({"series": series}, {"train": starts}))
    stats = {"windows": cuts, "arrays": arrays}
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    return tmp_path, series, starts


def test_each_window_equals_the_materialised_one(tmp_path: Path) -> None:
    folder, series, starts = _folder(tmp_path)
    split = load_split(folder, "train")
    x = np.stack([series[s:s + 10] for s in starts]).astype(np.float16)
    y = np.stack([series[s + 10:s + 15] for s in starts])
    last = np.stack([series[s + 9][..., [1]] for s in starts])
    for key, expected in (("x", x), ("y", y), ("last", last)):
        w = split[key]
        assert w.shape == expected.shape and w.dtype == expected.dtype and len(w) == len(starts)
        for index in (3, slice(2, 7), np.array([5, 0, 9]), np.arange(len(starts)) % 2 == 0):
            got = w[index]
            assert got.dtype == expected.dtype and got.flags.c_contiguous
            np.testing.assert_array_equal(got, expected[index])
        np.testing.assert_array_equal(w[:, -1, 0], expected[:, -1, 0])
        np.testing.assert_array_equal(w[4, 2], expected[4, 2])
        np.testing.assert_array_equal(w[..., 0], expected[..., 0])   # numpy's meaning of the ellipsis
        np.testing.assert_array_equal(w[2:5, ...], expected[2:5, ...])
        np.testing.assert_array_equal(np.asarray(w), expected)
        np.testing.assert_array_equal(w.subset(slice(1, None, 2))[:], expected[1::2])
        np.testing.assert_array_equal(np.concatenate(list(w.chunks(4))), expected)


def test_windows_match_sliding_windows_over_features() -> None:
    values = np.arange(40 * 4, dtype=np.float32).reshape(40, 4)
    w = Windows(values, np.arange(30), cut("v", 0, 8))
    np.testing.assert_array_equal(w[:], np.ascontiguousarray(sliding_windows(values, 8))[:30])


def test_reading_a_batch_leaves_the_stored_array_memory_mapped(tmp_path: Path) -> None:
    folder, _, _ = _folder(tmp_path)
    w = load_windows(folder, "train", json.loads((folder / "stats.json").read_text())["windows"])["x"]
    assert isinstance(w.source, np.memmap)   # the stored copy is mapped, never loaded
    batch = w[np.array([1, 2])]
    assert not isinstance(batch, np.memmap) and not np.shares_memory(batch, w.source)
    assert batch.nbytes == 2 * 10 * 3 * 2 * 2   # two float16 windows, not the split


def test_a_window_beyond_the_stored_array_is_refused() -> None:
    with pytest.raises(Exception, match="leave the stored array"):
        Windows(np.zeros((20, 2)), np.array([0, 15]), cut("v", 0, 8))


def test_tensor_windows_index_like_a_tensor(tmp_path: Path) -> None:
    folder, series, starts = _folder(tmp_path)
    split = load_split_tensors(folder, "train")
    x = split["x"]
    assert isinstance(x, TensorWindows) and x.dtype == torch.float16 and x.shape[1:] == (10, 3, 2)
    index = torch.tensor([4, 1])
    expected = torch.from_numpy(np.stack([series[s:s + 10] for s in starts[[4, 1]]]).astype(np.float16))
    assert torch.equal(x[index], expected) and torch.equal(x.to("cpu")[index], expected)


def test_a_picked_row_and_a_one_hot_selector_equal_the_materialised_samples(tmp_path: Path) -> None:
    """freq_filter's samples: x = (signal, one-hot of the selected frequency), y = the selected component."""
    rng = np.random.default_rng(1)
    signal, components = rng.normal(size=(6, 8, 1)).astype(np.float32), rng.normal(size=(6, 3, 8, 1))
    rows, selector = np.repeat([4, 1, 5], 3), np.tile(np.arange(3), 3)
    cuts = {"x": cut("signal", index="selector", onehot=3),
            "y": cut("components", dtype="float32", index="selector", pick=True)}
    stats = {"windows": cuts, "arrays": save_splits(tmp_path, stored_arrays(
        {"signal": signal, "components": components}, {"test": rows}, {"selector": {"test": selector}}))}
    (tmp_path / "stats.json").write_text(json.dumps(stats))
    split = load_split(tmp_path, "test")
    hot = np.broadcast_to(np.eye(3, dtype=np.float32)[selector][:, None, :], (9, 8, 3))
    np.testing.assert_array_equal(split["x"][:], np.concatenate([signal[rows], hot], axis=2))
    expected_y = components[rows, selector].astype(np.float32)
    np.testing.assert_array_equal(split["y"][np.array([7, 2])], expected_y[[7, 2]])
    assert split["x"].shape == (9, 8, 4) and split["y"].shape == (9, 8, 1) and split["y"][3].shape == (8, 1)
    np.testing.assert_array_equal(split["selector"], selector)
    np.testing.assert_array_equal(split["x"].subset(slice(2, 5))[:], split["x"][2:5])


def test_concat_joins_the_splits_of_one_stored_array_without_reading_them(tmp_path: Path) -> None:
    folder, series, _ = _folder(tmp_path)
    arrays = json.loads((folder / "stats.json").read_text())
    np.save(folder / "starts_val.npy", np.arange(30, 46, 3))
    splits = [load_windows(folder, s, arrays["windows"]) for s in ("train", "val")]   # memory-mapped twice
    joined = concat([s["x"] for s in splits])
    assert len(joined) == 15 + 6 and isinstance(joined.source, np.memmap)
    assert np.array_equal(joined[:], np.concatenate([s["x"][:] for s in splits]))
    with pytest.raises(ValueError, match="cut differently"):
        concat([splits[0]["x"], splits[1]["y"]])


def test_map_chunks_is_the_function_of_the_whole_split() -> None:
    values = np.arange(200, dtype=np.float32).reshape(50, 4)
    w = Windows(values, np.arange(40), cut("v", 0, 6))
    assert np.array_equal(map_chunks(w, lambda c: c[:, -1, 1:3], 7), w[:][:, -1, 1:3])


def test_a_splits_other_per_sample_arrays_come_with_its_windows(tmp_path: Path) -> None:
    folder, series, starts = _folder(tmp_path)
    pixels = np.arange(len(starts) * 3, dtype=np.int32).reshape(-1, 3)   # e.g. crop_ndvi's meta_test
    np.save(folder / "meta_train.npy", pixels)
    split = load_split(folder, "train")
    assert set(split) == {"x", "y", "last", "meta"}
    np.testing.assert_array_equal(split["meta"], pixels)
    assert split["meta"].dtype == np.int32


def _rss_file_mib() -> float:
    """This process's resident pages of mapped files (MiB, /proc/self/status)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["RssFile"].split()[0]) / 1024


@pytest.mark.parametrize(("windowed", "width", "shuffled"), [(False, 1024, False), (True, 1024, False),
                                                            (True, 16, True)])
def test_an_epoch_over_a_memory_mapped_split_holds_a_bounded_part_of_its_file(
        tmp_path: Path, windowed: bool, width: int, shuffled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = np.random.default_rng(0).normal(size=((32 << 20) // (4 * width), width)).astype(np.float32)  # 32 MiB
    np.save(tmp_path / "rows.npy", rows)
    order = np.random.default_rng(1).permutation(len(rows)) if shuffled else np.arange(len(rows))

    def epoch(budget: int) -> float:
        """The most of the file resident during one pass in batches of 64 rows (in `order`: 64-byte rows
        scattered over the file map 64 KiB around each), with this budget (MiB)."""
        monkeypatch.setattr(splits_module, "RELEASE_BYTES", budget << 20)
        stored = np.load(tmp_path / "rows.npy", mmap_mode="r")
        data = TensorWindows(Windows(stored, np.arange(len(rows)), cut("rows")) if windowed else stored)
        start, most = _rss_file_mib(), 0.0
        for k in range(0, len(rows), 64):
            picked = order[k:k + 64]
            np.testing.assert_array_equal(data[torch.from_numpy(picked)].numpy(), rows[picked])
            most = max(most, _rss_file_mib() - start)
        return most

    assert epoch(1 << 20) > 24    # never dropped: the whole file ends up resident
    assert epoch(4) < 10          # dropped every 4 MiB read
