"""The colour jump where two parts meet (mesh_quality.part_boundary_jump, issue 27's "no seam at part
boundaries beyond the input's"), against hand-computed values on two quads that share an edge."""

from __future__ import annotations

import numpy as np
import pytest
import trimesh

from conftest import quad
from meshstyle.mesh.textured import TexturedMesh
from meshstyle.stylize.mesh_quality import part_boundary_jump


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
