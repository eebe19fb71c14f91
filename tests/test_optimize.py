"""The optimization loop: L-BFGS without projection, Adam's schedule, Ctrl-C checkpoints, bit-exact resume."""

import copy
import math

import pytest
import torch

from meshstyle.engine.objective import Objective, total
from meshstyle.engine.optimize import RunSettings, learning_rate, run
from meshstyle.engine.options import EngineOptions
from meshstyle.engine.runplan import make_plan
from meshstyle.engine.texture import PlainTexture, PyramidTexture


def _problem(style_weight: float, size: int = 32):
    gen = torch.Generator().manual_seed(0)
    options = EngineOptions(vgg_weights="random", style_weight=style_weight, style_layers="relu1_1,relu2_1,relu3_1",
                            content_layers="relu2_2", device="cpu")
    objective = Objective(make_plan(options))
    objective.set_style([torch.rand(3, size, size, generator=gen)], [1.0])
    content = torch.rand(1, 3, size, size, generator=gen)
    targets = objective.content_targets(content)

    def loss_fn(step, param):
        return total(objective(param()[None], content_targets=targets))

    return content[0], loss_fn


@pytest.mark.parametrize("line_search", ["none", "strong_wolfe"])
def test_lbfgs_high_style_weight_decreases_monotonically_and_ends_finite(line_search):
    content, loss_fn = _problem(style_weight=100.0)
    param = PlainTexture(content)
    result = run(param, lambda step: loss_fn(step, param), 24, optimizer="lbfgs", line_search=line_search)
    totals = [h["total"] for h in result.history]
    assert all(math.isfinite(t) for t in totals)
    late = totals[len(totals) // 2:]
    assert all(b <= a * (1 + 1e-6) for a, b in zip(late, late[1:])), late
    assert totals[-1] < 0.2 * totals[0]
    assert float(result.texture.min()) >= 0 and float(result.texture.max()) <= 1


def test_lbfgs_is_not_projected_between_steps():
    content, loss_fn = _problem(style_weight=100.0)
    param = PlainTexture(content)
    run(param, lambda step: loss_fn(step, param), 8, optimizer="lbfgs")
    # the iterate may leave [0, 1] (only the returned texture is clamped)
    texels = param.texels.detach()
    assert float(texels.min()) < 0 or float(texels.max()) > 1


@pytest.mark.parametrize("restart", [True, False])
def test_a_failed_strong_wolfe_line_search_restarts_from_the_gradient(restart, monkeypatch):
    """torch's line search returns step 0 when no trial point lowers the loss; without a restart every
    later step retries the same direction (seen as a 59-step stall on the astronaut). Here every
    quasi-Newton direction "fails" and only steepest-descent steps (d = -g) are searched for real."""
    import torch.optim.lbfgs as lbfgs

    from meshstyle.engine import optimize

    real = lbfgs._strong_wolfe

    def quasi_newton_fails(obj_func, x, t, d, f, g, gtd, **kwargs):
        if not torch.allclose(d, -g):
            return f, g, 0, 1
        return real(obj_func, x, t, d, f, g, gtd, **kwargs)

    monkeypatch.setattr(lbfgs, "_strong_wolfe", quasi_newton_fails)
    if not restart:
        monkeypatch.setattr(optimize, "restart_failed_line_search", lambda opt: False)
    scales = torch.linspace(1.0, 4.0, 48)  # a quadratic bowl sum(a_i x_i^2), minimum 0
    param = PlainTexture(torch.ones(3, 4, 4) * 0.5)
    result = run(param, lambda step: {"total": (scales * param.texels.reshape(-1) ** 2).sum()}, 10,
                 optimizer="lbfgs", line_search="strong_wolfe")
    totals = [h["total"] for h in result.history]
    if restart:  # failed steps alternate with (short, first-iteration) gradient steps that lower the loss
        assert all(b < 0.95 * a for a, b in zip(totals[1::2], totals[3::2])) and totals[-1] < 0.65 * totals[0]
    else:  # one gradient step, then stuck on the failed direction
        assert totals[2:] == [totals[1]] * (len(totals) - 2) and totals[1] < totals[0]


def test_lbfgs_forgets_its_history_where_the_objective_changes():
    """A mesh run changes its objective at each render scale. Here a bowl sum(a_i x_i^2) for 4 steps, then
    a 100x steeper one centred at 1: the history learned on the first bowl overshoots on the second
    (the loss rises from 1.2e4 to 3.2e4 and is still 0.09 after 10 steps); forgetting it at the change
    (``restart_steps``) gives a short gradient step, then the new curvature (5e-4 after 10 steps)."""
    scales = torch.linspace(1.0, 4.0, 48)
    finals = {}
    for restart in (True, False):
        param = PlainTexture(torch.full((3, 4, 4), 0.5))

        def loss_fn(step, param=param):
            x = param.texels.reshape(-1)
            return {"total": (scales * x ** 2).sum() if step < 4 else 100 * (scales * (x - 1) ** 2).sum()}

        result = run(param, loss_fn, 14, optimizer="lbfgs", restart_steps=(4,) if restart else ())
        after = [h["total"] for h in result.history[4:]]
        finals[restart] = after[-1]
        if restart:
            assert after[1] < after[0] and after[-1] < 1e-6 * after[0], after
        else:
            assert max(after) > 2 * after[0], after
    assert finals[False] > 10 * finals[True], finals


def test_adam_step_decay_schedule():
    s = RunSettings(optimizer="adam", lr=0.1)
    assert learning_rate(s, 0, 100) == 0.1 and learning_rate(s, 79, 100) == 0.1
    assert learning_rate(s, 80, 100) == pytest.approx(0.01)
    s2 = RunSettings(optimizer="adam", lr_decay=0.5, lr_milestones=(0.5, 0.75))
    assert learning_rate(s2, 99, 100) == pytest.approx(0.02 * 0.25)


@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_ctrl_c_checkpoint_and_resume_equal_an_uninterrupted_run(optimizer):
    content, loss_fn = _problem(style_weight=10.0, size=24)

    def fresh():
        return PyramidTexture(content, levels=2)

    full = fresh()
    run(full, lambda step: loss_fn(step, full), 6, optimizer=optimizer)

    saved = {}
    part = fresh()

    def interrupting(step):
        if step == 3:
            raise KeyboardInterrupt
        return loss_fn(step, part)

    def checkpoint(step, param, opt, averaged):
        saved.update(step=step, textures=copy.deepcopy(param.state_dict()), optimizer=copy.deepcopy(opt.state_dict()))

    stopped = run(part, interrupting, 6, optimizer=optimizer, checkpoint=checkpoint)
    assert stopped.interrupted and stopped.steps == 3 and saved["step"] == 3

    resumed = fresh()
    resumed.load_state_dict(saved["textures"])
    run(resumed, lambda step: loss_fn(step, resumed), 6, optimizer=optimizer, start_iteration=saved["step"],
        optimizer_state=saved["optimizer"])
    for a, b in zip(full.parameters(), resumed.parameters()):
        assert torch.equal(a, b)


def test_ema_result_is_the_average_of_the_iterates():
    content, loss_fn = _problem(style_weight=10.0, size=16)
    param = PlainTexture(content)
    seen = [param.texels.detach().clone()]
    result = run(param, lambda step: loss_fn(step, param), 3, optimizer="adam", ema_decay=0.5,
                 callback=lambda info: seen.append(param.texels.detach().clone()))
    expected = seen[0]
    for x in seen[1:]:
        expected = 0.5 * expected + 0.5 * x
    assert torch.allclose(result.averaged[0], expected) and torch.allclose(result.texture, expected.clamp(0, 1))


@pytest.mark.parametrize("gain", [1.0, 2 ** -0.5])
def test_pyramid_gain_keeps_the_image_and_scales_each_band_gradient(gain):
    init = torch.rand(3, 32, 24, generator=torch.Generator().manual_seed(1))
    param = PyramidTexture(init, levels=3, gain=gain)
    assert torch.allclose(param(), init, atol=1e-6)
    param().sum().backward()
    # d(sum of texels)/d(level k texel) = gain^k x (texels it covers: each bilinear 2x up spreads 4)
    for k, level in enumerate(param.levels):
        assert level.shape[-2:] == (32 >> k, 24 >> k)
        assert torch.allclose(level.grad, torch.full_like(level, (4 * gain) ** k), rtol=1e-5)
