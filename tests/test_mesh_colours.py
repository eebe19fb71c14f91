"""Colour preservation on meshes (issue 27 item 3): --preserve-color luminance|histogram for the
optimization and the feed-forward method."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh

from conftest import STYLE, cube
from meshstyle.core.errors import MeshstyleError
from meshstyle.core.imageio import load_image, rgb8_to_tensor
from meshstyle.engine.color import colour_statistics, rgb_to_yiq
from meshstyle.engine.texture import LuminanceChange
from meshstyle.mesh.textured import TexturedMesh
from meshstyle.stylize.mesh import _colour_preserving, _island_texels, _select, stylize_mesh
from meshstyle.stylize.options import ENGINE_DEFAULTS, MeshOptions

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = dict(iterations=20, views=2, resolution=64, depth_levels=1, render_scales=1, vgg_weights="random", seed=0,
            style_loss="gram")  # the colour modes were measured on the Gram loss (issue 27)
#: mid-tone colours, so that luminance can move both ways without clipping a channel
COLOURS = np.array([[[180, 90, 60], [60, 150, 90]], [[70, 90, 180], [150, 150, 150]]], np.uint8)


@pytest.fixture
def coloured_cube():
    texture = np.kron(COLOURS, np.ones((16, 16, 1), np.uint8))
    return TexturedMesh(trimesh.Scene(cube(texture)))


def _yiq(rgb8: np.ndarray) -> torch.Tensor:
    return rgb_to_yiq(rgb8_to_tensor(rgb8).double())


def test_luminance_change_keeps_chroma_and_range():
    start = torch.rand(3, 32, 32) * 0.6 + 0.2
    texture = LuminanceChange(start, levels=3)
    assert torch.equal(texture(), start)
    with torch.no_grad():
        texture.offset.levels[2].add_(torch.randn_like(texture.offset.levels[2]))
    texture.project_()
    out = texture()
    assert -1e-6 <= out.min() and out.max() <= 1 + 1e-6
    assert (out - start).abs().max() > 0.05                         # luminance moved
    iq = rgb_to_yiq(out)[1:] - rgb_to_yiq(start)[1:]
    assert iq.abs().max() < 1e-5                                    # chroma did not


def test_luminance_mode_changes_only_luminance(coloured_cube):
    before = coloured_cube.texture(coloured_cube.stylizable[0])
    result = stylize_mesh(coloured_cube, STYLE, preserve_color="luminance", **FAST)
    after = result.mesh.texture(result.mesh.stylizable[0])
    yiq_before, yiq_after = _yiq(before), _yiq(after)
    assert (yiq_after[0] - yiq_before[0]).abs().mean() > 1 / 255      # the style changed the luminance
    # the chroma (I, Q) stays within 1.5/255, the uint8 rounding of the three channels
    assert (yiq_after[1:] - yiq_before[1:]).abs().max() < 1.5 / 255
    mean_shift = np.abs(after.reshape(-1, 3).astype(float).mean(0) - before.reshape(-1, 3).astype(float).mean(0))
    assert mean_shift.max() < 5, mean_shift                             # issue 27: within 5/255


def test_histogram_mode_gives_the_style_the_assets_colours(coloured_cube):
    options = ENGINE_DEFAULTS["mesh"].validated()
    selection = _select(coloured_cube, [str(STYLE)], MeshOptions(), options)
    recoloured = _colour_preserving(selection, coloured_cube, "histogram", options).groups[0][1][0]
    mean, cov = colour_statistics([recoloured])
    target_mean, target_cov = colour_statistics([_island_texels(coloured_cube)])
    assert torch.allclose(mean, target_mean, atol=0.02) and torch.allclose(cov, target_cov, atol=0.01)
    style_mean, _ = colour_statistics([load_image(STYLE)])
    assert (style_mean - target_mean).abs().max() > 0.05                # the painting's own colours differ
    grey = _colour_preserving(selection, coloured_cube, "luminance", options).groups[0][1][0]
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])
    result = stylize_mesh(coloured_cube, STYLE, preserve_color="histogram", **{**FAST, "iterations": 2})
    assert result.mesh.texture(result.mesh.stylizable[0]).shape == (32, 32, 3)


def test_preserve_color_with_color_match_is_a_one_line_error(coloured_cube):
    with pytest.raises(MeshstyleError, match="use one of them"):
        stylize_mesh(coloured_cube, STYLE, preserve_color="luminance", color_match=True, **FAST)


FEEDFORWARD = dict(method="feedforward", views=4, resolution=64, rounds=1, iterations=15, seed=0)


def _islands(mesh: TexturedMesh) -> torch.Tensor:
    """(3, T) island texels of the mesh's one stylizable part, in [0, 1], float64."""
    return _island_texels(mesh)[..., 0].double()


@pytest.mark.pretrained
def test_feedforward_luminance_keeps_the_assets_chroma(coloured_cube):
    before = _yiq(coloured_cube.texture(coloured_cube.stylizable[0]))
    results = {mode: stylize_mesh(coloured_cube, STYLE, preserve_color=mode, **FEEDFORWARD).mesh
               for mode in ("none", "luminance")}
    plain, kept = (_yiq(results[m].texture(results[m].stylizable[0])) for m in ("none", "luminance"))
    assert (kept[0] - before[0]).abs().mean() > 0.03                    # the style changed the luminance
    assert (plain[1:] - before[1:]).abs().mean() > 0.02                 # the networks' own colours differ
    off = (kept[1:] - before[1:]).abs()
    # I, Q kept up to 8-bit rounding, except where the new luminance pushes a channel out of [0, 1] (clamped)
    assert off.mean() < 1 / 255 and (off > 4 / 255).double().mean() < 0.02
    assert (kept[0] - plain[0]).abs().mean() < 2 / 255                   # the luminance is the fitted one


@pytest.mark.pretrained
def test_feedforward_histogram_with_a_preset_keeps_the_assets_colour_statistics(coloured_cube):
    target = _islands(coloured_cube)
    results = {mode: stylize_mesh(coloured_cube, "preset:3", preserve_color=mode, **FEEDFORWARD).mesh
               for mode in ("none", "histogram")}
    plain, kept = (_islands(results[m]) for m in ("none", "histogram"))
    assert (plain.mean(1) - target.mean(1)).abs().max() > 10 / 255     # the preset's own colours differ
    assert (kept.mean(1) - target.mean(1)).abs().max() < 5 / 255       # mean colour within 5/255
    assert (kept - plain).abs().mean() > 0.02
