"""Adam/AdamW and the three learning-rate schedules, with torch.optim's exact arithmetic.

Why not torch.optim: its first optimizer call imports torch._dynamo (1.6 s on 2 cores), once in every
training process; a training stage of the default pipeline runs 5-30 s. These classes repeat the
arithmetic of torch 2.13's single-tensor Adam (what torch.optim runs on CPU), OneCycleLR,
CosineAnnealingLR and ReduceLROnPlateau step for step, so a CPU training gives the same bytes as with
torch.optim (tests/test_optim.py holds them to that). They duck-type what torch.amp.GradScaler uses:
`param_groups` and `step()`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import torch


class Adam:
    """Adam (Kingma & Ba 2015); `decoupled=True` is AdamW (Loshchilov & Hutter 2019). One param group."""

    def __init__(self, params: Iterable[torch.nn.Parameter], lr: float, weight_decay: float = 0.0,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 decoupled: bool = False) -> None:
        self.param_groups: list[dict[str, Any]] = [{"params": list(params), "lr": lr, "betas": betas,
                                                    "eps": eps, "weight_decay": weight_decay}]
        self.decoupled = decoupled
        self.state: dict[torch.nn.Parameter, dict[str, Any]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.param_groups[0]["params"]:
            if p.grad is not None:
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        group = self.param_groups[0]
        lr, (beta1, beta2), eps, weight_decay = (group["lr"], group["betas"], group["eps"],
                                                 group["weight_decay"])
        for param in group["params"]:
            if param.grad is None:
                continue
            state = self.state.get(param)
            if state is None:
                state = self.state[param] = {"step": 0, "exp_avg": torch.zeros_like(param),
                                             "exp_avg_sq": torch.zeros_like(param)}
            state["step"] += 1
            grad = param.grad
            if weight_decay != 0:
                if self.decoupled:
                    param.mul_(1 - lr * weight_decay)
                else:
                    grad = grad.add(param, alpha=weight_decay)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            exp_avg.lerp_(grad, 1 - beta1)
            exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            # torch keeps the step count as a float32 tensor and reads it back as a float
            step = float(state["step"])
            step_size = lr / (1 - beta1 ** step)
            denom = (exp_avg_sq.sqrt() / (1 - beta2 ** step) ** 0.5).add_(eps)
            param.addcdiv_(exp_avg, denom, value=-step_size)

    def state_dict(self) -> dict[str, Any]:
        params = self.param_groups[0]["params"]
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        return {"group": group, "state": {i: self.state[p] for i, p in enumerate(params) if p in self.state}}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        params = self.param_groups[0]["params"]
        self.param_groups[0].update(saved["group"])
        self.state = {params[i]: {"step": s["step"], "exp_avg": s["exp_avg"].to(params[i].device),
                                  "exp_avg_sq": s["exp_avg_sq"].to(params[i].device)}
                      for i, s in saved["state"].items()}


class OneCycle:
    """Smith & Topin's one-cycle policy as torch's OneCycleLR with its defaults: the lr rises from
    max_lr / 25 to max_lr over the first 30% of `total_steps` and anneals (cosine) to max_lr / 25e4,
    while beta1 moves 0.95 -> 0.85 -> 0.95. Step it once per batch."""

    def __init__(self, optimizer: Adam, max_lr: float, total_steps: int, pct_start: float = 0.3) -> None:
        self.optimizer, self.total_steps = optimizer, total_steps
        self.initial_lr = max_lr / 25.0
        self.lrs = (self.initial_lr, max_lr, self.initial_lr / 1e4)
        self.momenta = (0.95, 0.85, 0.95)
        self.phase_end = (float(pct_start * total_steps) - 1, total_steps - 1)
        self.last_step = -1
        self.step()

    def step(self) -> None:
        self.last_step += 1
        if self.last_step > self.total_steps:
            raise ValueError(f"one-cycle schedule stepped {self.last_step} times, past its "
                             f"{self.total_steps}")
        start, phase = (0.0, 0) if self.last_step <= self.phase_end[0] else (self.phase_end[0], 1)
        pct = (self.last_step - start) / (self.phase_end[phase] - start)
        group = self.optimizer.param_groups[0]
        group["lr"] = _cos(self.lrs[phase], self.lrs[phase + 1], pct)
        group["betas"] = (_cos(self.momenta[phase], self.momenta[phase + 1], pct), group["betas"][1])

    def state_dict(self) -> dict[str, Any]:
        return {"last_step": self.last_step}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.last_step = saved["last_step"]


class Cosine:
    """Cosine annealing from the optimizer's lr to 0 over `epochs` (torch's CosineAnnealingLR, its
    recursive form). Step it once per epoch."""

    def __init__(self, optimizer: Adam, epochs: int) -> None:
        self.optimizer, self.epochs, self.last_epoch = optimizer, epochs, 0

    def step(self) -> None:
        self.last_epoch += 1
        e, t = self.last_epoch, self.epochs
        group = self.optimizer.param_groups[0]
        group["lr"] = (1 + math.cos(math.pi * e / t)) / (1 + math.cos(math.pi * (e - 1) / t)) * group["lr"]

    def state_dict(self) -> dict[str, Any]:
        return {"last_epoch": self.last_epoch}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.last_epoch = saved["last_epoch"]


class Plateau:
    """Multiply the lr by `factor` when the validation loss has not improved by 0.01% (relative) for
    more than `patience` epochs (torch's ReduceLROnPlateau, mode "min"). Step it once per epoch."""

    def __init__(self, optimizer: Adam, factor: float, patience: int) -> None:
        self.optimizer, self.factor, self.patience = optimizer, factor, patience
        self.best, self.bad_epochs = math.inf, 0

    def step(self, val_loss: float) -> None:
        if val_loss < self.best * (1.0 - 1e-4):
            self.best, self.bad_epochs = val_loss, 0
        else:
            self.bad_epochs += 1
        if self.bad_epochs > self.patience:
            group = self.optimizer.param_groups[0]
            old = float(group["lr"])
            new = max(old * self.factor, 0.0)
            if old - new > 1e-8:
                group["lr"] = new
            self.bad_epochs = 0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, saved: dict[str, Any]) -> None:
        self.best, self.bad_epochs = saved["best"], saved["bad_epochs"]


def _cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)
