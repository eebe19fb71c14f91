"""The optimization loop shared by every command.

:func:`run` optimizes a texture parameterization (a module whose ``forward()`` returns (3, H, W) in
[0, 1] and which has ``project_()`` and ``regularizer()``; see :mod:`meshstyle.core.uv`) against a
loss closure. It knows nothing of images, meshes or VGG. It never prints: every step it hands a
:class:`StepInfo` to a callback, which the CLI turns into a progress bar.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

OPTIMIZERS = ("adam", "lbfgs")


@dataclass
class StepInfo:
    """What happened in one optimization step (passed to callbacks).

    ``losses`` holds each weighted loss term and ``total`` as Python floats; ``elapsed`` is seconds
    since the run started; ``scale`` counts from 0 to ``scales - 1`` in coarse-to-fine runs;
    ``iteration`` counts from 1 to ``iterations`` within a scale.
    """

    scale: int
    scales: int
    iteration: int
    iterations: int
    losses: dict[str, float]
    elapsed: float


@dataclass
class RunResult:
    """Outcome of :func:`run`: the texture (3, H, W) in [0, 1] (the EMA when enabled), the losses of
    every step, the number of steps taken, and whether Ctrl-C stopped the run early."""

    texture: torch.Tensor
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    interrupted: bool = False


def make_optimizer(name: str, params, lr: float | None) -> torch.optim.Optimizer:
    """Adam (default lr 0.02) or L-BFGS (one function evaluation per step, history 50, default lr 1)."""
    if name == "adam":
        return torch.optim.Adam(params, lr=lr or 0.02)
    if name == "lbfgs":
        return torch.optim.LBFGS(params, lr=lr or 1.0, max_iter=1, history_size=50)
    raise ValueError(f"unknown optimizer {name!r}")


def run(param: nn.Module, loss_fn: Callable[[int], dict[str, torch.Tensor]], iterations: int, *,
        optimizer: str = "adam", lr: float | None = None, ema_decay: float | None = None,
        callback: Callable[[StepInfo], None] | None = None, scale: int = 0, scales: int = 1,
        start_iteration: int = 0, optimizer_state: dict | None = None,
        checkpoint: Callable[[int, nn.Module, torch.optim.Optimizer], None] | None = None,
        checkpoint_every: int = 0, start_time: float | None = None) -> RunResult:
    """Minimize ``loss_fn(step)["total"]`` over the parameters of ``param``.

    Args:
        param: the texture parameterization.
        loss_fn: called with the 0-based step index; returns a dict of scalar tensors including
            ``"total"`` (the one that is differentiated).
        iterations: total steps of this scale (a resumed run starts at ``start_iteration``).
        optimizer: ``"adam"`` or ``"lbfgs"``; ``lr`` overrides its default learning rate.
        ema_decay: if set (e.g. 0.9), the returned texture is an exponential moving average of the
            iterates, which removes the last steps' noise.
        callback: receives a :class:`StepInfo` after every step.
        checkpoint: called as ``checkpoint(step, param, optimizer)`` every ``checkpoint_every`` steps.
        optimizer_state: an optimizer ``state_dict`` to resume from.

    Returns:
        :class:`RunResult`. Ctrl-C (KeyboardInterrupt) ends the loop early with ``interrupted=True``
        and the texture so far; it is not re-raised.
    """
    opt = make_optimizer(optimizer, param.parameters(), lr)
    if optimizer_state is not None:
        opt.load_state_dict(optimizer_state)
    start = time.perf_counter() if start_time is None else start_time
    result = RunResult(texture=param().detach().clone())
    ema = result.texture.clone() if ema_decay else None
    step = start_iteration
    try:
        while step < iterations:
            terms: dict[str, torch.Tensor] = {}

            def closure(step=step, terms=terms):
                opt.zero_grad(set_to_none=True)
                out = loss_fn(step)
                out["total"].backward()
                terms.update(out)
                return out["total"]

            opt.step(closure)
            param.project_()
            step += 1
            losses = {k: float(v.detach()) for k, v in terms.items()}
            result.history.append(losses)
            if ema is not None:
                with torch.no_grad():
                    ema.mul_(ema_decay).add_(param().detach(), alpha=1 - ema_decay)
            if callback is not None:
                callback(StepInfo(scale, scales, step, iterations, losses, time.perf_counter() - start))
            if checkpoint is not None and checkpoint_every and step % checkpoint_every == 0 and step < iterations:
                checkpoint(step, param, opt)
    except KeyboardInterrupt:
        result.interrupted = True
    result.steps = step
    with torch.no_grad():
        result.texture = (ema if ema is not None and step > start_iteration else param()).detach().clamp(0, 1).clone()
    return result
