"""seqpipe.optim against torch.optim: the same bytes, step for step, on CPU; and no torch._dynamo import."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from torch import nn

from seqpipe import optim


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.LSTM(3, 8, batch_first=True), _Last(), nn.Linear(8, 2), nn.Linear(2, 1))


class _Last(nn.Module):
    def forward(self, out: tuple[torch.Tensor, object]) -> torch.Tensor:
        return out[0][:, -1]


def _train(model: nn.Module, opt, sched, steps: int, per: str, start: int = 0) -> list[float]:
    """`steps` batches; the last Linear gets no gradient on odd steps (torch skips such params)."""
    lrs = []
    for i in range(start, start + steps):
        g = torch.Generator().manual_seed(i)
        x, y = torch.randn(16, 5, 3, generator=g), torch.randn(16, 1, generator=g)
        opt.zero_grad(set_to_none=True)
        head = model[3] if i % 2 == 0 else nn.Identity()
        hidden = model[2](model[1](model[0](x)))
        loss = ((head(hidden) if i % 2 == 0 else hidden[:, :1]) - y).pow(2).mean() * (1 + (i % 7 == 6) * 10)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if per == "batch":
            sched.step()
        elif per == "epoch" and i % 4 == 3:
            sched.step(loss.item()) if isinstance(sched, (torch.optim.lr_scheduler.ReduceLROnPlateau,
                                                          optim.Plateau)) else sched.step()
        lrs.append(opt.param_groups[0]["lr"])
    return lrs


def _pair(kind: str, decoupled: bool, weight_decay: float, steps: int):
    ours_model, ref_model = _model(0), _model(0)
    ours = optim.Adam(ours_model.parameters(), lr=0.02, weight_decay=weight_decay, decoupled=decoupled)
    ref = (torch.optim.AdamW if decoupled else torch.optim.Adam)(ref_model.parameters(), lr=0.02,
                                                                weight_decay=weight_decay)
    if kind == "onecycle":
        return ours_model, ours, optim.OneCycle(ours, 0.02, steps), ref_model, ref, \
            torch.optim.lr_scheduler.OneCycleLR(ref, max_lr=0.02, total_steps=steps), "batch"
    if kind == "cosine":
        return ours_model, ours, optim.Cosine(ours, steps // 4), ref_model, ref, \
            torch.optim.lr_scheduler.CosineAnnealingLR(ref, T_max=steps // 4), "epoch"
    if kind == "plateau":
        return ours_model, ours, optim.Plateau(ours, 0.5, 0), ref_model, ref, \
            torch.optim.lr_scheduler.ReduceLROnPlateau(ref, mode="min", factor=0.5, patience=0), "epoch"
    return ours_model, ours, None, ref_model, ref, None, "none"


@pytest.mark.parametrize("kind", ["onecycle", "cosine", "plateau", "none"])
@pytest.mark.parametrize("decoupled,weight_decay", [(False, 0.0), (False, 1e-3), (True, 1e-2)])
def test_same_bytes_as_torch_optim(kind: str, decoupled: bool, weight_decay: float) -> None:
    steps = 40
    ours_model, ours, ours_sched, ref_model, ref, ref_sched, per = _pair(kind, decoupled, weight_decay, steps)
    assert _train(ours_model, ours, ours_sched, steps, per) == _train(ref_model, ref, ref_sched, steps, per)
    for a, b in zip(ours_model.state_dict().values(), ref_model.state_dict().values()):
        assert torch.equal(a, b)
    if kind == "onecycle":
        assert ours.param_groups[0]["betas"] == ref.param_groups[0]["betas"]


@pytest.mark.parametrize("kind", ["onecycle", "cosine", "plateau"])
def test_state_dict_resume_continues_exactly(kind: str, tmp_path) -> None:
    steps = 24
    whole_model, whole, whole_sched, *_, per = _pair(kind, True, 1e-2, steps)
    _train(whole_model, whole, whole_sched, steps, per)

    first_model, first, first_sched, *_ = _pair(kind, True, 1e-2, steps)
    _train(first_model, first, first_sched, 12, per)
    torch.save({"model": first_model.state_dict(), "opt": first.state_dict(), "sched": first_sched.state_dict()},
               tmp_path / "ckpt.pt")
    saved = torch.load(tmp_path / "ckpt.pt", weights_only=True)
    second_model, second, second_sched, *_ = _pair(kind, True, 1e-2, steps)
    second_model.load_state_dict(saved["model"])
    second.load_state_dict(saved["opt"])
    second_sched.load_state_dict(saved["sched"])
    _train(second_model, second, second_sched, 12, per, start=12)
    for a, b in zip(whole_model.state_dict().values(), second_model.state_dict().values()):
        assert torch.equal(a, b)


def test_one_cycle_refuses_steps_past_its_length() -> None:
    model = _model(0)
    opt = optim.Adam(model.parameters(), lr=0.1)
    sched = optim.OneCycle(opt, 0.1, 3)
    for _ in range(3):
        sched.step()
    with pytest.raises(ValueError, match="past its 3"):
        sched.step()


def test_training_step_does_not_import_dynamo() -> None:
    """The reason this module exists: torch.optim imports torch._dynamo (~1.6 s) on first use."""
    code = ("import sys, torch; from torch import nn; from seqpipe import optim\n"
            "m = nn.LSTM(3, 4); o = optim.Adam(m.parameters(), lr=0.1, decoupled=True)\n"
            "s = optim.OneCycle(o, 0.1, 2); m(torch.randn(5, 2, 3))[0].sum().backward(); o.step(); s.step()\n"
            "assert 'torch._dynamo' not in sys.modules, 'dynamo imported'\n"
            "torch.optim.Adam(m.parameters()); assert 'torch._dynamo' in sys.modules, 'the reference changed'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


@pytest.mark.parametrize("patience", [0, 1, 2])
def test_plateau_matches_torch_on_near_ties(patience: int) -> None:
    """Improvements within the 0.01% relative threshold count as no improvement, as in torch."""
    losses = [1.0, 0.99995, 0.9, 0.9, 0.89999, 0.95, 0.5, 0.49999, 0.5, 0.4, 0.4, 0.4, 0.4, 0.4]
    ours_opt, ref_opt = optim.Adam([nn.Parameter(torch.zeros(1))], lr=0.1), \
        torch.optim.Adam([nn.Parameter(torch.zeros(1))], lr=0.1)
    ours = optim.Plateau(ours_opt, 0.5, patience)
    ref = torch.optim.lr_scheduler.ReduceLROnPlateau(ref_opt, mode="min", factor=0.5, patience=patience)
    for loss in losses:
        ours.step(loss)
        ref.step(loss)
        assert ours_opt.param_groups[0]["lr"] == ref_opt.param_groups[0]["lr"]
    assert ours_opt.param_groups[0]["lr"] < 0.1
