"""--strength for the optimization method on meshes (issue 27 item 4): the style weight times strength^2."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from conftest import STYLE, checker, cube
from meshstyle.engine.options import EngineOptions
from meshstyle.mesh.textured import TexturedMesh
from meshstyle.stylize.mesh import strengthened, stylize_mesh

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = dict(iterations=10, views=2, resolution=64, depth_levels=1, render_scales=1, vgg_weights="random", seed=0)


def test_strength_scales_the_style_weight_of_the_optimization_only():
    base = EngineOptions(vgg_weights="random").validated()
    assert strengthened(base) is base
    assert strengthened(EngineOptions(vgg_weights="random", strength=0.5).validated()).style_weight == \
        pytest.approx(base.style_weight * 0.25)
    ff = EngineOptions(method="feedforward", strength=0.5).validated()
    assert strengthened(ff) is ff


def test_strength_orders_the_texture_change():
    mesh = TexturedMesh(trimesh.Scene(cube(checker(32, 4) // 2 + 64)))
    before = mesh.texture(mesh.stylizable[0]).astype(float)
    change = {}
    for strength in (0.0, 0.5, 1.0):
        result = stylize_mesh(mesh, STYLE, strength=strength, **FAST)
        change[strength] = np.abs(result.mesh.texture(result.mesh.stylizable[0]).astype(float) - before).mean()
    assert change[0.0] < 0.5 < change[0.5] < change[1.0], change   # 0 keeps the texture (up to rounding)
