"""The optimization loop shared by every command.

:func:`run` optimizes a texture parameterization (a module whose ``forward()`` returns (3, H, W), which
has ``project_()``; see :mod:`meshstyle.engine.texture`) against a loss closure. It knows nothing of
images, meshes or VGG. It never prints: every step it hands a :class:`StepInfo` to a callback, which
the CLI turns into a progress bar.

Optimizers:

* ``"lbfgs"``: L-BFGS, one iteration per step, history 50. The parameters are optimized
  *unconstrained*: nothing projects them between steps (a clamp after each step breaks the curvature
  pairs L-BFGS collects; neural-style and style-transfer-pytorch never clamp inside it). Only the
  returned texture is clamped to [0, 1]. ``line_search="strong_wolfe"`` adds torch's strong-Wolfe line
  search (several loss evaluations per step).
* ``"adam"``: Adam with a step-decay schedule (StyleMesh, Höllein et al. CVPR 2022, decays its lr
  x0.1): the lr is multiplied by ``lr_decay`` at each fraction in ``lr_milestones`` of the run. Adam
  keeps the parameters in range with ``param.project_()`` after each step (Adam holds no curvature
  information that a projection could break).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import torch
from torch import nn

OPTIMIZERS = ("adam", "lbfgs")
LINE_SEARCHES = ("none", "strong_wolfe")
#: Default learning rates when ``RunSettings.lr`` is None.
DEFAULT_LR = {"adam": 0.02, "lbfgs": 1.0}
#: L-BFGS history size (curvature pairs kept).
LBFGS_HISTORY = 50


@dataclass
class StepInfo:
    """What happened in one optimization step (passed to callbacks).

    ``losses`` holds each weighted loss term and ``total`` as Python floats; ``elapsed`` is seconds
    since the run started; ``scale`` counts from 0 to ``scales - 1`` in coarse-to-fine runs;
    ``iteration`` counts from 1 to ``iterations`` within a scale; ``total_steps`` is the number of steps
    of all scales when scales differ in length (None: ``scales * iterations``); ``stage_starts``: 0-based
    steps of this scale where the cost of a step changes (a mesh run's render scales, coarse and cheap
    first), so a time-left estimate is only taken from the steps of the last stage.
    """

    scale: int
    scales: int
    iteration: int
    iterations: int
    losses: dict[str, float]
    elapsed: float
    total_steps: int | None = None
    stage_starts: tuple[int, ...] = ()


@dataclass
class RunSettings:
    """How :func:`run` optimizes (everything but the parameters, the loss and the step count).

    Attributes:
        optimizer: ``"adam"`` or ``"lbfgs"``; ``lr``: its learning rate (None: :data:`DEFAULT_LR`).
        line_search: ``"none"`` or ``"strong_wolfe"`` (L-BFGS only).
        lr_decay, lr_milestones: Adam's lr is multiplied by ``lr_decay`` once the step passes each
            fraction of ``iterations`` in ``lr_milestones`` (default: x0.1 at 80 %, as StyleMesh's
            step decay); ``lr_decay=1`` keeps it constant.
        ema_decay: if set (e.g. 0.9), :attr:`RunResult.averaged` holds an exponential moving average
            of the parameters and :attr:`RunResult.texture` the texture they give.
        scale, scales: position of this run in a coarse-to-fine sequence (for :class:`StepInfo`);
            total_steps: the steps of the whole sequence when scales differ in length.
        start_iteration, optimizer_state: resume after ``start_iteration`` steps with this optimizer
            ``state_dict``.
        ema_state: resume the moving average from these tensors (one per parameter, as
            :attr:`RunResult.averaged`) instead of starting it at the current parameters.
        checkpoint, checkpoint_every: ``checkpoint(step, param, optimizer, averaged)`` is called every
            ``checkpoint_every`` steps, at the end of the run, and when Ctrl-C stops it; ``averaged``
            is the moving average so far (None without ``ema_decay``).
        start_time: ``time.perf_counter()`` value that ``StepInfo.elapsed`` counts from.
        restart_steps: 0-based steps at which the objective changes (a mesh run's next render scale);
            L-BFGS forgets its curvature history before them, since pairs measured on the previous
            objective describe another function (Adam keeps its moments).
    """

    optimizer: str = "adam"
    lr: float | None = None
    line_search: str = "none"
    lr_decay: float = 0.1
    lr_milestones: tuple[float, ...] = (0.8,)
    ema_decay: float | None = None
    scale: int = 0
    scales: int = 1
    total_steps: int | None = None
    start_iteration: int = 0
    optimizer_state: dict | None = None
    ema_state: list[torch.Tensor] | None = None
    checkpoint: Callable[[int, nn.Module, torch.optim.Optimizer, list[torch.Tensor] | None], None] | None = None
    checkpoint_every: int = 0
    start_time: float | None = None
    restart_steps: tuple[int, ...] = ()


@dataclass
class RunResult:
    """Outcome of :func:`run`: the texture (3, H, W) clamped to [0, 1] (from the averaged parameters when
    EMA is on), the averaged parameters (or None), the losses of every step, the number of steps taken,
    and whether Ctrl-C stopped the run early."""

    texture: torch.Tensor
    history: list[dict[str, float]] = field(default_factory=list)
    steps: int = 0
    interrupted: bool = False
    averaged: list[torch.Tensor] | None = None


def resolve_lr(optimizer: str, lr: float | None) -> float:
    """The learning rate of ``optimizer`` (``"adam"`` or ``"lbfgs"``): ``lr`` when given (``--lr``), else
    :data:`DEFAULT_LR` (auto: 1 for L-BFGS, 0.02 for Adam).

    Raises:
        ValueError: an unknown optimizer with no ``lr``.
    """
    if lr:
        return lr
    if optimizer not in DEFAULT_LR:
        raise ValueError(f"unknown optimizer {optimizer!r}")
    return DEFAULT_LR[optimizer]


def make_optimizer(name: str, params, lr: float | None, line_search: str = "none") -> torch.optim.Optimizer:
    """Adam or L-BFGS (one iteration per step, history 50, optional strong-Wolfe line search); ``lr`` None:
    :func:`resolve_lr`'s default."""
    lr = resolve_lr(name, lr)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    if name == "lbfgs":
        return torch.optim.LBFGS(params, lr=lr, max_iter=1, history_size=LBFGS_HISTORY,
                                 line_search_fn="strong_wolfe" if line_search == "strong_wolfe" else None)
    raise ValueError(f"unknown optimizer {name!r}")


def learning_rate(settings: RunSettings, step: int, iterations: int) -> float:
    """Adam's lr at 0-based ``step``: ``lr * lr_decay ** (number of milestones passed)``."""
    base = resolve_lr(settings.optimizer, settings.lr)
    passed = sum(1 for m in settings.lr_milestones if step >= m * iterations)
    return base * settings.lr_decay ** passed


def load_parameters(param: nn.Module, values: list[torch.Tensor]) -> None:
    """Copy ``values`` (e.g. :attr:`RunResult.averaged`) into the parameters of ``param``."""
    with torch.no_grad():
        for p, v in zip(param.parameters(), values):
            p.copy_(v)


def run(param: nn.Module, loss_fn: Callable[[int], dict[str, torch.Tensor]], iterations: int,
        settings: RunSettings | None = None, callback: Callable[[StepInfo], None] | None = None,
        **overrides) -> RunResult:
    """Minimize ``loss_fn(step)["total"]`` over the parameters of ``param``.

    Args:
        param: the texture parameterization.
        loss_fn: called with the 0-based step index; returns a dict of scalar tensors including
            ``"total"`` (the one that is differentiated).
        iterations: total steps of this scale (a resumed run starts at ``settings.start_iteration``).
        settings: :class:`RunSettings`; keyword ``overrides`` replace its fields (``optimizer="lbfgs"``,
            ``ema_decay=0.9``...; the keyword form of earlier versions keeps working).
        callback: receives a :class:`StepInfo` after every step.

    Returns:
        :class:`RunResult`. Ctrl-C (KeyboardInterrupt) ends the loop early with ``interrupted=True``:
        the parameters are restored to the end of the last completed step, the checkpoint callback is
        called with them and the optimizer, and the exception is not re-raised. Resuming from that
        checkpoint gives the same iterates as an uninterrupted run (bit-exact on CPU; with L-BFGS's
        line search, an interrupt inside the search can leave its history one pair ahead).
    """
    s = replace(settings or RunSettings(), **overrides)
    opt = make_optimizer(s.optimizer, param.parameters(), s.lr, s.line_search)
    if s.optimizer_state is not None:
        opt.load_state_dict(s.optimizer_state)
    start = time.perf_counter() if s.start_time is None else s.start_time
    result = RunResult(texture=param().detach().clone())
    params = list(param.parameters())
    ema = _start_ema(s, params)
    step = s.start_iteration
    try:
        while step < iterations:
            losses = _guarded_step(opt, param, params, loss_fn, step, iterations, s)
            step += 1
            result.history.append(losses)
            if ema is not None:
                with torch.no_grad():
                    for e, p in zip(ema, params):
                        e.mul_(s.ema_decay).add_(p.detach(), alpha=1 - s.ema_decay)
            if callback is not None:
                callback(StepInfo(s.scale, s.scales, step, iterations, losses, time.perf_counter() - start,
                                  s.total_steps, tuple(s.restart_steps)))
            if s.checkpoint is not None and s.checkpoint_every and step % s.checkpoint_every == 0 and step < iterations:
                s.checkpoint(step, param, opt, ema)
        if s.checkpoint is not None and s.checkpoint_every and step > s.start_iteration:
            s.checkpoint(step, param, opt, ema)  # the finished state, so that a longer run can continue it
    except KeyboardInterrupt:
        result.interrupted = True
        if s.checkpoint is not None:
            s.checkpoint(step, param, opt, ema)
    result.steps = step
    result.texture = _final_texture(param, ema if step > s.start_iteration else None)
    result.averaged = ema
    return result


def _start_ema(s: RunSettings, params: list[torch.Tensor]) -> list[torch.Tensor] | None:
    """The running average of the parameters at the start (a resumed one, or the parameters), or None
    without ``ema_decay``."""
    if not s.ema_decay:
        return None
    return [e.detach().clone() for e in s.ema_state] if s.ema_state is not None else \
        [p.detach().clone() for p in params]


def _guarded_step(opt, param: nn.Module, params: list[torch.Tensor], loss_fn, step: int, iterations: int,
                  s: RunSettings) -> dict[str, float]:
    """Step ``step`` (L-BFGS's memory cleared first at ``s.restart_steps``); returns its loss terms as
    floats. Ctrl-C inside it restores the parameters to before the step and re-raises."""
    terms: dict[str, torch.Tensor] = {}
    snapshot = [p.detach().clone() for p in params]
    if s.optimizer == "lbfgs" and step in s.restart_steps:
        opt.state.clear()
    try:
        _one_step(opt, param, loss_fn, step, iterations, s, terms)
    except KeyboardInterrupt:
        load_parameters(param, snapshot)
        raise
    return {k: float(v.detach()) for k, v in terms.items()}


def _one_step(opt, param, loss_fn, step, iterations, s: RunSettings, terms: dict) -> None:
    """One optimizer step at 0-based ``step``; fills ``terms`` with the loss terms of its first evaluation."""
    if s.optimizer == "adam":
        for group in opt.param_groups:
            group["lr"] = learning_rate(s, step, iterations)

    def closure():
        opt.zero_grad(set_to_none=True)
        out = loss_fn(step)
        out["total"].backward()
        if not terms:
            terms.update(out)
        return out["total"]

    opt.step(closure)
    if s.optimizer != "lbfgs":
        param.project_()
    elif s.line_search == "strong_wolfe":
        restart_failed_line_search(opt)


def restart_failed_line_search(opt: torch.optim.LBFGS) -> bool:
    """Forget L-BFGS's curvature history when its strong-Wolfe line search found no lower loss along the
    search direction (step length 0), so the next step starts again from the gradient; returns whether it did.

    torch's ``_strong_wolfe`` returns step 0 when none of its trial points lowers the loss; the
    parameters, gradient and history then stay the same, so every later step retries the same direction
    and fails the same way (seen on the astronaut at 256 px after a 128 px scale: the loss stayed at 0.2645
    for 59 steps, each spending 25 loss evaluations). Restarting is the usual remedy for a failed line
    search (Nocedal & Wright, Numerical Optimization, 2nd ed., sec. 7.2); nothing is clamped or projected.
    """
    state = opt.state.get(opt._params[0], {})
    if state.get("n_iter", 0) > 0 and float(state.get("t", 1.0)) == 0.0:
        opt.state.clear()
        return True
    return False


@torch.no_grad()
def _final_texture(param: nn.Module, averaged: list[torch.Tensor] | None) -> torch.Tensor:
    """``param()`` clamped to [0, 1], evaluated with the averaged parameters when given."""
    if averaged is None:
        return param().detach().clamp(0, 1).clone()
    current = [p.detach().clone() for p in param.parameters()]
    load_parameters(param, averaged)
    texture = param().detach().clamp(0, 1).clone()
    load_parameters(param, current)
    return texture

