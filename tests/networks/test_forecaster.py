"""LinearResidualLSTM: exactly its frozen ridge until trained, the level clipped to the training range, a gate
that drops a correction the validation split does not support, conformal half-widths, ONNX export."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from seqpipe.conformal import conformal_halfwidths
from seqpipe.networks import forecaster
from seqpipe.networks.forecaster import LinearResidualLSTM, apply_ridge, ridge, ridge_in_chunks

FEATURES, WINDOW, TARGETS = 3, 6, [0, 2]


def network(seed: int = 0) -> LinearResidualLSTM:
    torch.manual_seed(seed)
    return LinearResidualLSTM(input_size=FEATURES, window=WINDOW, hidden_size=5, num_layers=1, dropout=0.0,
                              target_index=TARGETS, linear_alpha=1.0, interval_levels=[0.8, 0.95]).eval()


def series(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows of a noisy AR(1) in three features and their next values (targets 0 and 2)."""
    rng = np.random.default_rng(seed)
    values = np.zeros((n + WINDOW, FEATURES))
    for t in range(1, len(values)):
        values[t] = 0.8 * values[t - 1] + rng.normal(size=FEATURES)
    x = np.lib.stride_tricks.sliding_window_view(values, WINDOW, axis=0).transpose(0, 2, 1)[:n]
    return torch.from_numpy(np.ascontiguousarray(x)).float(), torch.from_numpy(values[WINDOW:, TARGETS]).float()


def test_untrained_it_is_the_ridge_on_the_window_changes_and_the_clipped_level() -> None:
    x, y = series(300)
    net = network()
    net.prepare(x, y)
    last = x[:, -1, :].double().numpy()
    design = np.hstack([(x[:, :-1, :].double().numpy() - last[:, None, :]).reshape(len(x), -1), last])
    scaled = (design - design.mean(0)) / design.std(0)
    target = y.double().numpy() - last[:, TARGETS]
    coef = np.linalg.solve(scaled.T @ scaled + np.eye(design.shape[1]), scaled.T @ (target - target.mean(0)))
    expected = last[:, TARGETS] + (scaled @ coef + target.mean(0))
    with torch.no_grad():
        np.testing.assert_allclose(net(x).double().numpy(), expected, atol=1e-5)
        np.testing.assert_allclose(net.linear_forecast(x).numpy(), net(x).numpy())  # the head starts at zero


def test_a_level_beyond_the_training_range_reads_as_the_nearest_one_seen() -> None:
    x, y = series(300)
    net = network()
    net.prepare(x, y)
    far = x[:1].clone() + 100.0              # the same changes, every level far above the training range
    edge = x[:1].clone() - x[:1, -1:, :] + net.high   # ... and the same changes ending at the highest level seen
    with torch.no_grad():
        change = net(far)[0] - far[0, -1, TARGETS]
        np.testing.assert_allclose(change.numpy(), (net(edge)[0] - edge[0, -1, TARGETS]).numpy(), atol=1e-4)


def test_the_gate_keeps_a_correction_that_helps_on_validation_and_drops_noise() -> None:
    x, y = series(600)
    net = network()
    net.prepare(x[:300], y[:300])
    with torch.no_grad():
        net.head[-1].weight.normal_(std=3.0)   # a large random correction: worse than none
    report = net.calibrate(x[300:], y[300:])
    assert report["gate"] == [0.0, 0.0]
    with torch.no_grad():
        np.testing.assert_allclose(net(x).numpy(), net.linear_forecast(x).numpy())

    helped = network()
    helped.prepare(x[:300], y[:300])
    with torch.no_grad():   # targets shifted by what the correction says: it explains the validation residual
        helped.head[-1].bias.copy_(torch.tensor([0.5, -0.5]))
        shifted = y[300:] + torch.tensor([0.5, -0.5])
    report = helped.calibrate(x[300:], shifted)
    assert all(0.9 <= g <= 1.0 for g in report["gate"]), report


def test_calibration_sets_the_split_conformal_halfwidths_of_the_validation_residuals() -> None:
    x, y = series(400)
    net = network()
    net.prepare(x[:200], y[:200])
    report = net.calibrate(x[200:], y[200:])
    with torch.no_grad():
        errors = (y[200:] - net(x[200:])).abs().double().numpy()
    np.testing.assert_allclose(report["halfwidth"], conformal_halfwidths(errors, [0.8, 0.95]))
    assert report["interval_levels"] == pytest.approx([0.8, 0.95])


def test_ridge_matches_the_closed_form_on_standardised_columns() -> None:
    rng = np.random.default_rng(1)
    design = rng.normal(size=(50, 4)) * [1.0, 100.0, 0.01, 5.0]
    target = rng.normal(size=(50, 2))
    fit = ridge(torch.from_numpy(design), torch.from_numpy(target), 2.0)
    scaled = (design - design.mean(0)) / design.std(0)
    coef = np.linalg.solve(scaled.T @ scaled + 2.0 * np.eye(4), scaled.T @ (target - target.mean(0)))
    np.testing.assert_allclose(apply_ridge(torch.from_numpy(design), fit).numpy(), scaled @ coef + target.mean(0),
                               atol=1e-10)


def test_ridge_in_chunks_is_the_ridge_of_the_stacked_rows() -> None:
    rng = np.random.default_rng(2)
    design = torch.from_numpy(rng.normal(size=(103, 4)) * [1.0, 100.0, 0.01, 5.0])
    design[:, 2] = 3.0   # a constant column keeps std 1 in both
    target = torch.from_numpy(rng.normal(size=(103, 2)))
    pieces = lambda: ((design[s:s + 10], target[s:s + 10]) for s in range(0, 103, 10))  # noqa: E731
    for whole, chunked in zip(ridge(design, target, 2.0), ridge_in_chunks(pieces, 2.0)):
        torch.testing.assert_close(chunked, whole, rtol=1e-9, atol=1e-9)


def test_prepare_over_more_windows_than_one_chunk_fits_the_same_linear_part(monkeypatch) -> None:
    x, y = series(300)
    whole = network()
    whole.prepare(x, y)
    monkeypatch.setattr(forecaster, "PREPARE_CHUNK", 64)
    chunked = network()
    chunked.prepare(x, y)
    fitted = [(*net.linear_fit, net.low, net.high) for net in (whole, chunked)]
    for a, b in zip(*fitted):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-6)


def test_calibrating_in_chunks_sets_the_same_gate_and_intervals(monkeypatch) -> None:
    x, y = series(300)
    results = []
    for chunk in (forecaster.FORWARD_CHUNK, 70):
        monkeypatch.setattr(forecaster, "FORWARD_CHUNK", chunk)
        net = network()
        net.prepare(x[:200], y[:200])
        with torch.no_grad():
            net.head[-1].weight.normal_(std=0.1)
        results.append(net.calibrate(x[200:], y[200:]))
    assert results[0]["calibration_windows"] == results[1]["calibration_windows"] == 100
    for key in ("gate", "halfwidth"):
        np.testing.assert_allclose(results[1][key], results[0][key], rtol=1e-6)


def test_onnx_export_matches_torch_with_a_free_batch_axis(tmp_path) -> None:
    import onnxruntime as ort

    x, y = series(100)
    net = network()
    net.prepare(x, y)
    with torch.no_grad():
        net.head[-1].weight.normal_()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (x[:2],), str(tmp_path / "m.onnx"), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False)
    got = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]).run(
        None, {"x": x[:7].numpy()})[0]
    with torch.no_grad():
        np.testing.assert_allclose(got, net(x[:7]).numpy(), atol=1e-5)


def test_a_refit_from_moments_read_in_chunks_is_the_refit_from_whole_arrays() -> None:
    from seqpipe.baselines import expanding_moments

    x, y = series(400)
    net = network()
    net.prepare(x[:200], y[:200])
    xs, ys = x.numpy(), y.numpy()
    ends = [150, 333]
    chunks = (net.linear_rows(xs[s:s + 50], ys[s:s + 50]) for s in range(0, 400, 50))
    moments = expanding_moments(chunks, ends)
    for end, m in zip(ends, moments, strict=True):
        whole = net.refit_linear_forecast(xs[:end], ys[:end], xs[350:])
        np.testing.assert_allclose(net.refit_linear_forecast_from(m.n, m.centred(), xs[350:]), whole, rtol=1e-9, atol=1e-9)
        assert not np.allclose(whole, net.linear_forecast(xs[350:]).numpy(), atol=1e-4)   # refit, not the fit
