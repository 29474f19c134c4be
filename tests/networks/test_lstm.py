"""LSTMRegressor's window normalisations: global, difference (persistence at zero), revin (equivariant)."""

from __future__ import annotations

import warnings

import pytest
import torch

from seqpipe.networks.lstm import NORMALISATIONS, LSTMRegressor
from seqpipe.params import ParamsError, load_params
from seqpipe.pipelines.crop_ndvi import SPEC as CROP_NDVI
from tests.conftest import write_params

TARGETS = [2, 0]   # output k forecasts input feature TARGETS[k]


def network(normalisation: str, seed: int = 0, **kw) -> LSTMRegressor:
    torch.manual_seed(seed)
    args = {"input_size": 4, "hidden_size": 8, "num_layers": 2, "dropout": 0.0, "output_size": 2,
            "head_hidden": [6], "normalisation": normalisation, "target_index": TARGETS, **kw}
    return LSTMRegressor(**args).eval()


def windows(seed: int = 1) -> torch.Tensor:
    return torch.randn(5, 7, 4, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("normalisation", NORMALISATIONS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_shapes_and_gradients(normalisation: str, bidirectional: bool) -> None:
    net = network(normalisation, bidirectional=bidirectional).train()
    out = net(windows())
    assert out.shape == (5, 2) and torch.isfinite(out).all()
    out.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_global_is_the_plain_network() -> None:
    """Same seed, same weights and output whether or not target_index is given: global adds nothing."""
    plain = network("global", target_index=None)
    named = network("global")
    assert plain.state_dict().keys() == named.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), named.state_dict().values()))
    assert torch.equal(plain(windows()), named(windows()))


def test_difference_with_zero_head_is_persistence_exactly() -> None:
    x = windows()
    net = network("difference")
    assert torch.equal(net(x), x[:, -1, TARGETS])          # as initialised: the final layer is zero
    with torch.no_grad():   # any other weights, head zeroed again: still exactly persistence
        for p in net.parameters():
            p.add_(0.5)
        net.head[-1].weight.zero_()
        net.head[-1].bias.zero_()
    assert torch.equal(net(x), x[:, -1, TARGETS])


def test_difference_reads_the_window_relative_to_its_last_step() -> None:
    net = network("difference")
    with torch.no_grad():
        net.head[-1].weight.normal_()
    x = windows()
    shift = torch.tensor([3.0, -2.0, 10.0, 0.5])
    assert torch.allclose(net(x + shift), net(x) + shift[TARGETS], atol=1e-5)
    assert not torch.allclose(net(x), x[:, -1, TARGETS])


def test_revin_is_equivariant_to_shift_and_scale_of_the_window() -> None:
    net = network("revin")
    with torch.no_grad():   # a learnt affine, not the identity it starts as
        net.affine_weight.copy_(torch.tensor([1.5, 0.7, 2.0, 1.1]))
        net.affine_bias.copy_(torch.tensor([0.3, -0.2, 0.1, 0.0]))
    x = windows()
    out = net(x)
    shift = torch.tensor([100.0, -7.0, 42.0, 3.0])
    assert torch.allclose(net(x + shift), out + shift[TARGETS], atol=1e-3)
    scale = torch.tensor([10.0, 0.5, 3.0, 2.0])
    assert torch.allclose(net(x * scale), out * scale[TARGETS], rtol=1e-3, atol=1e-3)
    # a level far outside anything seen: the output follows it, where the global network saturates
    far = network("global")(x + 50.0)
    assert torch.allclose(net(x + 50.0) - 50.0, out, atol=1e-3) and (far - out).abs().max() < 50.0


def test_revin_inverts_a_constant_window_to_its_level() -> None:
    """A flat window (std 0) normalises to the affine bias; the output is that level plus what the
    network adds in units of eps-sized std: the level itself, to float precision."""
    net = network("revin")
    x = torch.full((3, 7, 4), 5.0)
    assert torch.allclose(net(x), torch.full((3, 2), 5.0), atol=1e-2)


@pytest.mark.parametrize("bad", [
    {"normalisation": "local"},
    {"normalisation": "difference", "target_index": None},
    {"normalisation": "revin", "target_index": [0]},
    {"normalisation": "revin", "target_index": [0, 4]},
    {"normalisation": "difference", "seq2seq": True},
])
def test_constructor_refuses_bad_arguments(bad: dict) -> None:
    with pytest.raises(ValueError, match="normalisation"):
        network(**{"normalisation": "global", **bad})


@pytest.mark.parametrize("spec", [CROP_NDVI], ids=lambda s: s.name)   # bandwidth: networks/forecaster.py
def test_params_refuse_an_unknown_normalisation(tmp_path, spec) -> None:
    write_params(tmp_path / "params.yaml", {f"models.{spec.name}.model.normalisation": "minmax"})
    params = load_params(tmp_path / "params.yaml")
    with pytest.raises(ParamsError) as info:
        params.section(spec.name, "model", spec.model_params)
    assert str(info.value) == (f"{tmp_path / 'params.yaml'}: models.{spec.name}.model.normalisation: must be one "
                               "of global, difference, revin, got 'minmax'")
    write_params(tmp_path / "params.yaml", {f"models.{spec.name}.model.normalisation": "revin"})
    assert load_params(tmp_path / "params.yaml").section(spec.name, "model", spec.model_params).normalisation == "revin"


@pytest.mark.parametrize("normalisation", NORMALISATIONS)
def test_onnx_export_matches_torch_with_a_free_batch_axis(tmp_path, normalisation: str) -> None:
    """What `seqpipe export` does (torch.onnx.export, then onnxruntime), for each normalisation."""
    import onnxruntime as ort

    net = network(normalisation)
    with torch.no_grad():
        net.head[-1].weight.normal_()   # difference starts at zero: give it something to export
    x = windows()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")   # the TorchScript exporter's notices, as in seqpipe.stages.export
        torch.onnx.export(net, (x[:2],), str(tmp_path / "m.onnx"), input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"x": x.numpy()})[0]
    assert got.shape == (5, 2)
    assert torch.allclose(torch.from_numpy(got), net(x), atol=1e-5)
