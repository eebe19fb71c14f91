"""The colour jump where two parts meet (mesh_quality.part_boundary_jump, issue 27's "no seam at part
boundaries beyond the input's"), against hand-computed values on two quads that share an edge."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from conftest import quad
from meshstyle.mesh.textured import TexturedMesh
from meshstyle.stylize.mesh import stylize_mesh
from meshstyle.stylize.mesh_quality import part_boundary_jump
from meshstyle.stylize.seams import SeamTerm


def _two_quads(left: np.ndarray, right: np.ndarray) -> TexturedMesh:
    """Quads 'left' (x in -2..0) and 'right' (x in 0..2) meeting along x = 0, each with its own image."""
    scene = trimesh.Scene()
    for name, image, dx in (("left", left, -1.0), ("right", right, 1.0)):
        scene.add_geometry(quad(1.0, image), geom_name=name, node_name=name,
                           transform=trimesh.transformations.translation_matrix([dx, 0, 0]))
    return TexturedMesh(scene)


def _flat(rgb) -> np.ndarray:
    return np.tile(np.array(rgb, np.uint8), (16, 16, 1))


def test_boundary_jump_of_two_flat_parts_is_their_colour_difference():
    jumps = part_boundary_jump(_two_quads(_flat([200, 50, 50]), _flat([100, 150, 50])))
    assert jumps["boundary"] == pytest.approx((100 + 100 + 0) / 3 / 255, abs=1e-4)
    assert jumps["interior"] == pytest.approx(0.0, abs=1e-6)  # each quad's diagonal: one flat texture


def test_parts_that_continue_each_other_jump_like_ordinary_edges():
    assert part_boundary_jump(_two_quads(_flat([90, 90, 90]), _flat([90, 90, 90])))["boundary"] < 1e-6
    # a horizontal ramp 0..255 over both quads: the left image holds its first half, the right its second;
    # both sides of every edge are sampled 1.5 texels inside their faces, so the ramp's own slope shows as
    # a jump of about 2 ramp steps (2 x 8.2/255) at the boundary and across the quads' diagonals alike
    ramp = np.linspace(0, 255, 32).astype(np.uint8)
    image = np.repeat(np.repeat(ramp[None, :, None], 16, 0), 3, 2)
    smooth = part_boundary_jump(_two_quads(image[:, :16].copy(), image[:, 16:].copy()))
    assert 0.03 < smooth["boundary"] < 0.1 and smooth["ratio"] < 1.5
    # the right half mirrored: 127 meets 255 at the boundary, a seam the measure must show
    broken = part_boundary_jump(_two_quads(image[:, :16].copy(), image[:, 16:][:, ::-1].copy()))
    assert broken["boundary"] > 0.45 and broken["ratio"] > 5 * smooth["ratio"]


def test_parts_apart_have_no_boundary():
    scene = trimesh.Scene()
    scene.add_geometry(quad(1.0, _flat([10, 10, 10])), geom_name="a", node_name="a")
    scene.add_geometry(quad(1.0, _flat([250, 250, 250])), geom_name="b", node_name="b",
                       transform=trimesh.transformations.translation_matrix([5, 0, 0]))
    assert np.isnan(part_boundary_jump(TexturedMesh(scene))["boundary"])


def _flat_tensor(rgb) -> torch.Tensor:
    return torch.tensor(rgb, dtype=torch.float32).view(3, 1, 1).expand(3, 16, 16) / 255


def test_seam_term_is_the_squared_change_of_the_jump_and_its_gradient_closes_it():
    mesh = _two_quads(_flat([200, 50, 50]), _flat([100, 150, 50]))
    starts = [_flat_tensor([200, 50, 50]), _flat_tensor([100, 150, 50])]   # a jump the input has
    term = SeamTerm(mesh, starts)
    assert len(term) > 0 and float(term(starts)) == pytest.approx(0.0, abs=1e-12)   # kept, not penalized
    # both sides turned grey: the jump of (100, -100, 0) / 255 is gone, which is a change of that much
    grey = [_flat_tensor([120, 120, 120])] * 2
    assert float(term(grey)) == pytest.approx((100 ** 2 + 100 ** 2 + 0) / 3 / 255 ** 2, rel=1e-4)
    params = [t.clone().requires_grad_(True) for t in grey]
    optimizer = torch.optim.Adam(params, lr=0.01)
    for _ in range(50):
        optimizer.zero_grad()
        term(params).backward()
        optimizer.step()
    assert float(term(params)) < 0.05 * float(term(grey))
    # only the texels along the shared edge move: the far column of each quad keeps its colour
    assert torch.allclose(params[0][:, :, 0], grey[0][:, :, 0]) and torch.allclose(params[1][:, :, -1],
                                                                                    grey[1][:, :, -1])


def test_seam_weight_lowers_the_jump_where_parts_meet_in_a_run():
    mesh = _two_quads(_flat([200, 60, 60]), _flat([200, 60, 60]))
    style = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    fast = dict(iterations=30, views=2, resolution=64, depth_levels=1, render_scales=1, vgg_weights="random",
                seed=0, elevation=(0.0, 0.0), lr=0.05)
    jump = {w: part_boundary_jump(stylize_mesh(mesh, style, seam_weight=w, **fast).mesh, inset_texels=0.5)["boundary"]
             for w in (0.0, 100.0)}
    assert jump[100.0] < 0.8 * jump[0.0], jump   # measured: 0.022 against 0.035
