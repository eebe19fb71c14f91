"""--strength for the optimization method on meshes (issue 27 item 4) and images: the style statistics blended with the
asset's own (strength s: s x style + (1 - s) x the original renders' object cells); 0 turns the style off."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from conftest import STYLE, checker, cube
from meshstyle.engine.losses import ObjectCells, cell_features
from meshstyle.engine.objective import Objective
from meshstyle.engine.options import EngineOptions
from meshstyle.engine.runplan import make_plan
from meshstyle.mesh.textured import TexturedMesh
from meshstyle.stylize.image import stylize_image
from meshstyle.stylize.mesh import stylize_mesh

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = dict(iterations=10, views=2, resolution=64, depth_levels=1, render_scales=1, vgg_weights="random", seed=0)


def test_strength_zero_turns_the_style_off_and_other_strengths_keep_the_weights():
    base = make_plan(EngineOptions(vgg_weights="random").validated())
    half = make_plan(EngineOptions(vgg_weights="random", strength=0.5).validated())
    assert half.style_weight == base.style_weight > 0               # the targets change, not the weights
    assert make_plan(EngineOptions(vgg_weights="random", strength=0.0).validated()).style_weight == 0.0
    ff = make_plan(EngineOptions(method="feedforward", strength=0.0).validated())
    assert ff.style_weight == base.style_weight                     # the networks' own blend handles it


def test_cell_features_keep_the_counted_cells_only():
    feat = torch.arange(2 * 3 * 2 * 2, dtype=torch.float32).reshape(2, 3, 2, 2)   # (N=2, C=3, 2, 2)
    active = torch.zeros(2, 1, 2, 2, dtype=torch.bool)
    active[0, 0, 0, 1] = active[1, 0, 1, 0] = active[1, 0, 1, 1] = True
    cells = cell_features({"relu1_1": feat}, ObjectCells(active), ["relu1_1"])["relu1_1"]
    assert cells.shape == (1, 3, 1, 3)
    expected = torch.stack([feat[0, :, 0, 1], feat[1, :, 1, 0], feat[1, :, 1, 1]], 1)   # (C, 3)
    assert torch.equal(cells[0, :, 0], expected)
    few = cell_features({"relu1_1": feat}, ObjectCells(active), ["relu1_1"], 2, torch.Generator().manual_seed(0))
    assert few["relu1_1"].shape == (1, 3, 1, 2)


def test_half_strength_targets_are_the_mean_of_the_style_and_own_gram_matrices():
    plan = make_plan(EngineOptions(vgg_weights="random", style_layers={"relu1_1": 1.0}).validated(),
                     use_content=False)
    objective = Objective(plan)
    style = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1))
    own = {"relu1_1": torch.rand(1, 64, 1, 50, generator=torch.Generator().manual_seed(2))}
    objective.set_style([style], [1.0])
    g_style = objective.style.targets[("relu1_1",)][0]
    objective.set_style([style], [1.0], own, strength=0.25)
    g_own = own["relu1_1"][0, :, 0] @ own["relu1_1"][0, :, 0].T / 50        # hand-computed Gram (C, C)
    assert torch.allclose(objective.style.targets[("relu1_1",)][0], 0.25 * g_style + 0.75 * g_own, rtol=1e-4,
                          atol=1e-6)
    objective.set_style([style], [1.0], own, strength=1.0)                  # full strength: the style alone
    assert torch.equal(objective.style.targets[("relu1_1",)][0], g_style)


def test_strength_orders_the_texture_change():
    mesh = TexturedMesh(trimesh.Scene(cube(checker(32, 4) // 2 + 64)))
    before = mesh.texture(mesh.stylizable[0]).astype(float)
    change = {}
    for strength in (0.0, 0.5, 1.0):
        result = stylize_mesh(mesh, STYLE, strength=strength, **FAST)
        change[strength] = np.abs(result.mesh.texture(result.mesh.stylizable[0]).astype(float) - before).mean()
    assert change[0.0] < 0.5 < change[0.5] < change[1.0], change   # 0 keeps the texture (up to rounding)


def test_image_strength_orders_the_change_too():
    photo = torch.rand(3, 48, 48, generator=torch.Generator().manual_seed(3)) * 0.5 + 0.25
    change = {}
    for strength in (0.0, 0.3, 1.0):
        out = stylize_image(photo, STYLE, strength=strength, iterations=15, size=48, vgg_weights="random", seed=0)
        change[strength] = float((out.image - photo).abs().mean())
    assert change[0.0] < 0.01 < change[0.3] < change[1.0], change   # 0 keeps the photo (up to 8-bit rounding)


def test_each_view_starts_at_its_own_target_at_low_strength():
    # at strength s the style target of every level view is s x style + (1 - s) x that view's own statistics,
    # so the first step's style loss scales like s^2; a target pooled over views would leave the views'
    # differences in it at any strength (measured on the cow: 2.07 at s = 0.01 against 13.3 at s = 1)
    mesh = TexturedMesh(trimesh.Scene(cube(checker(32, 4) // 2 + 64)))
    first = {}
    for strength in (0.01, 1.0):
        result = stylize_mesh(mesh, STYLE, strength=strength,  # Gram: mixed per view (nnfm's own set is pooled)
                              **{**FAST, "iterations": 1, "views": 3, "style_loss": "gram"})
        first[strength] = result.history[0]["style"]
    assert first[0.01] < 1e-3 * first[1.0], first
