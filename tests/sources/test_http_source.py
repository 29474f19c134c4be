"""Source `http` with real pooch against the real local HTTP server: the happy path through `dvc repro`,
file:// URLs, and every failure (404, 5xx retried, stall, truncated body, checksum mismatch, bad scheme)
as one error line from the CLI with nothing left in data/raw/."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from seqpipe.cli import main
from seqpipe.io import sha256_file
from seqpipe.metrics import detail_file
from seqpipe.pipelines.bandwidth import FILE_NAME
from seqpipe.pipelines.bandwidth.download import BandwidthSyntheticParams, write_synthetic
from tests.conftest import error_lines, run, tiny_overrides, write_params
from tests.servers import FileServer


@pytest.fixture
def served(tmp_path: Path) -> Path:
    """A folder holding a real bandwidth CSV (the synthetic writer's, 400 rows) to serve."""
    root = tmp_path / "served"
    root.mkdir()
    write_synthetic(BandwidthSyntheticParams(n_rows=400, cadence_s=60, start="2025-11-03T00:00:00",
                                             congestion_per_day=6.0, noise_scale=0.01, noise_dof=3.0), 7, root)
    return root


def http_params(files: list[dict], retries: int = 0, timeout_s: float = 5.0) -> dict:
    return {"models.bandwidth.download.source": "http", "models.bandwidth.download.http.files": files,
            "models.bandwidth.download.http.retries": retries, "models.bandwidth.download.http.timeout_s": timeout_s}


def one_file(url: str, sha256: str) -> list[dict]:
    return [{"url": url, "sha256": sha256, "path": FILE_NAME}]


def test_http_source_end_to_end_through_dvc_repro(repo_copy: Path, served: Path) -> None:
    sha = sha256_file(served / FILE_NAME)
    with FileServer(served) as server:
        url = f"{server.url}/{FILE_NAME}"
        write_params(repo_copy / "params.yaml", {**tiny_overrides(), **http_params(one_file(url, sha))})
        run(["dvc", "repro", "evaluate-bandwidth"], repo_copy)
    assert server.paths_requested() == [f"/{FILE_NAME}"]
    raw = repo_copy / "data" / "raw" / "bandwidth"
    manifest = json.loads((raw / "manifest.json").read_text())
    assert manifest["source"] == "http" and manifest["synthetic"] is False
    assert manifest["urls"] == {FILE_NAME: url}
    assert manifest["files"] == {FILE_NAME: sha}
    assert (raw / FILE_NAME).read_bytes() == (served / FILE_NAME).read_bytes()
    stats = json.loads((repo_copy / "data" / "processed" / "bandwidth" / "stats.json").read_text())
    assert stats["provenance"] == {"source": "http", "synthetic": False, "urls": {FILE_NAME: url}}
    metrics = json.loads((repo_copy / "metrics" / "bandwidth.json").read_text())
    assert set(metrics["test"]) == {"rmse", "mae"} and "persistence" in metrics["baselines"]
    detail = json.loads((repo_copy / detail_file("bandwidth")).read_text())
    assert "correlation" in detail["test"]["mean"]
    assert not [p.name for p in raw.parent.iterdir() if p.name.startswith(".bandwidth")]   # no temp folders left


def test_file_urls_are_copied_and_checked_and_manifests_repeat_byte_for_byte(workdir: Path, served: Path) -> None:
    url = (served / FILE_NAME).as_uri()
    sha = sha256_file(served / FILE_NAME)
    write_params(workdir / "params.yaml", {**tiny_overrides(), **http_params(one_file(url, sha))})
    raw = workdir / "data" / "raw" / "bandwidth"
    assert main(["download", "bandwidth"]) == 0
    first = (raw / "manifest.json").read_bytes()
    assert main(["download", "bandwidth"]) == 0
    assert (raw / "manifest.json").read_bytes() == first and b"time" not in first
    assert json.loads(first)["urls"] == {FILE_NAME: url}


def test_5xx_is_retried_with_backoff_and_then_succeeds(workdir: Path, served: Path) -> None:
    with FileServer(served) as server:
        server.fail(FILE_NAME, "500", "500")
        write_params(workdir / "params.yaml", {**tiny_overrides(), **http_params(
            one_file(f"{server.url}/{FILE_NAME}", sha256_file(served / FILE_NAME)), retries=2)})
        assert main(["download", "bandwidth"]) == 0
    assert server.paths_requested() == [f"/{FILE_NAME}"] * 3
    assert (workdir / "data/raw/bandwidth" / FILE_NAME).read_bytes() == (served / FILE_NAME).read_bytes()


def test_404_from_the_real_cli_is_one_line_and_leaves_nothing(workdir: Path, served: Path) -> None:
    with FileServer(served) as server:
        url = f"{server.url}/missing.csv"
        write_params(workdir / "params.yaml", {**tiny_overrides(), **http_params(one_file(url, "0" * 64), retries=2)})
        proc = run(["seqpipe", "download", "bandwidth"], workdir, check=False)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    errors = error_lines(proc.stderr)
    assert errors == [f"seqpipe: error: {url}: HTTP 404 Not Found"]
    assert server.paths_requested() == ["/missing.csv"]     # a 4xx is final: not retried
    assert not (workdir / "data" / "raw").exists() or not any((workdir / "data" / "raw").iterdir())


@pytest.mark.parametrize("case", ["stall", "truncate", "mismatch", "500"])
def test_failures_are_one_line_naming_the_url_and_keep_the_old_raw_folder(
        workdir: Path, served: Path, capsys: pytest.CaptureFixture, case: str) -> None:
    raw = workdir / "data" / "raw" / "bandwidth"
    raw.mkdir(parents=True)
    (raw / "manifest.json").write_text('{"from": "an earlier download"}\n')
    sha = sha256_file(served / FILE_NAME)
    with FileServer(served, stall_s=30) as server:
        url = f"{server.url}/{FILE_NAME}"
        server.fail(FILE_NAME, *[case] * 2)
        wanted = "0" * 64 if case == "mismatch" else sha
        write_params(workdir / "params.yaml", {**tiny_overrides(), **http_params(one_file(url, wanted), retries=1,
                                                                                 timeout_s=1.0)})
        started = time.monotonic()
        code = main(["download", "bandwidth"])
        elapsed = time.monotonic() - started
    err = capsys.readouterr().err
    errors = error_lines(err)
    assert code == 1 and len(errors) == 1 and "Traceback" not in err, err
    expected = {"stall": f"{url}: no answer within timeout_s=1 s (2 attempts)",
                "truncate": f"{url}: the connection broke before the whole body arrived (2 attempts)",
                "mismatch": f"{url}: sha256 mismatch: expected {'0' * 64}, got {sha} "
                            "(2 attempts; the file was deleted)",
                "500": f"{url}: HTTP 500 Internal Server Error (2 attempts)"}[case]
    assert errors[0] == f"seqpipe: error: {expected}"
    assert elapsed < 10
    assert [p.name for p in raw.iterdir()] == ["manifest.json"]
    assert (raw / "manifest.json").read_text() == '{"from": "an earlier download"}\n'
    assert sorted(p.name for p in raw.parent.iterdir()) == ["bandwidth"]   # no temp folder or pooch file left


@pytest.mark.parametrize("files, message", [
    (one_file("ftp://example.org/a.csv", "0" * 64),
     "models.bandwidth.download.http.files[0].url: 'ftp://example.org/a.csv': scheme must be one of http, https, file"),
    (one_file("https://example.org/a.csv", "abc"),
     "models.bandwidth.download.http.files[0].sha256: must be 64 lowercase hex digits, got 'abc'"),
    ([{"url": "https://example.org/a.csv", "sha256": "0" * 64, "path": "../a.csv"}],
     "models.bandwidth.download.http.files[0].path: must be a relative path without '..', got '../a.csv'"),
    ([], "download.http.files: empty; list the files to download (url, sha256, path)"),
])
def test_bad_http_params_name_the_key(workdir: Path, capsys: pytest.CaptureFixture, files: list, message: str) -> None:
    write_params(workdir / "params.yaml", {**tiny_overrides(), **http_params(files)})
    assert main(["download", "bandwidth"]) == 1
    errors = error_lines(capsys.readouterr().err)
    assert len(errors) == 1 and errors[0].endswith(message)
    raw = workdir / "data" / "raw"
    assert not raw.exists() or not any(raw.iterdir())
