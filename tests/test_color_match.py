"""ARF's colour step (--color-match): the content recoloured to the style's colour mean and covariance."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from conftest import quad
from meshstyle.cli import build_parser
from meshstyle.core.errors import MeshstyleError
from meshstyle.core.imageio import rgb8_to_tensor
from meshstyle.engine.color import colour_statistics, match_colors_to_style, partial_colour_map
from meshstyle.engine.options import EngineOptions
from meshstyle.mesh.padding import island_mask
from meshstyle.mesh.textured import TexturedMesh
from meshstyle.stylize.image import stylize_image
from meshstyle.stylize.mesh import colour_matched, stylize_mesh
from meshstyle.stylize.options import ENGINE_DEFAULTS, color_match_on


def _mid_range(seed: int, mix: list[list[float]], offset: list[float], size: int = 32) -> torch.Tensor:
    """(3, size, size) colours a linear map of uniform noise, well inside [0, 1] (no clamping)."""
    noise = torch.rand(3, size * size, generator=torch.Generator().manual_seed(seed)) - 0.5
    return (torch.tensor(mix) @ noise + torch.tensor(offset)[:, None]).reshape(3, size, size)


def test_content_takes_the_style_mean_and_covariance():
    content = _mid_range(0, [[0.3, 0.0, 0.0], [0.1, 0.2, 0.0], [0.0, 0.0, 0.1]], [0.5, 0.4, 0.6])
    style_a = _mid_range(1, [[0.1, 0.05, 0.0], [0.0, 0.3, 0.0], [0.05, 0.0, 0.2]], [0.3, 0.6, 0.4])
    style_b = _mid_range(2, [[0.2, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]], [0.6, 0.5, 0.5], size=16)
    out = match_colors_to_style(content, [style_a, style_b], [0.75, 0.25])
    mean, cov = colour_statistics([out])
    want_mean, want_cov = colour_statistics([style_a, style_b], [0.75, 0.25])
    assert out.min() > 0 and out.max() < 1                        # nothing clamped: the statistics are exact
    assert torch.allclose(mean, want_mean, atol=1e-4)
    assert torch.allclose(cov, want_cov, atol=1e-4)
    # the pooled statistics weigh each style by its blend weight, not by its pixel count
    by_hand = 0.75 * style_a.reshape(3, -1).double().mean(1) + 0.25 * style_b.reshape(3, -1).double().mean(1)
    assert torch.allclose(want_mean[:, 0], by_hand, atol=1e-9)


def test_mesh_island_texels_take_the_style_colours_and_the_gutter_does_not_count():
    texture = np.zeros((32, 32, 3), np.uint8)
    texture[...] = (200, 60, 40)
    texture[:, :16] = (180, 80, 60)                                     # two colours inside the island
    part = quad(texture=texture)
    part.visual.uv = np.array([[0.05, 0.05], [0.95, 0.05], [0.95, 0.95], [0.05, 0.95]])
    mesh = TexturedMesh(part)
    name = mesh.stylizable[0]
    islands = island_mask(mesh.corner_uv(name), (32, 32))
    mesh.set_texture(name, np.where(islands[..., None], texture, np.uint8(255)), pad=False)  # white gutter
    style = _mid_range(3, [[0.1, 0.0, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]], [0.2, 0.5, 0.7])
    out = rgb8_to_tensor(colour_matched(mesh, [style], [1.0]).texture(name))
    inside = out[:, torch.from_numpy(islands)]
    assert torch.allclose(inside.double().mean(1), style.reshape(3, -1).double().mean(1), atol=2 / 255)
    assert torch.equal(rgb8_to_tensor(mesh.texture(name))[:, ~torch.from_numpy(islands)],
                       torch.ones(3, int((~islands).sum())))             # the input mesh is not modified


def test_color_match_conflicts_are_one_line_errors(content_path, style_path, spot_path):
    with pytest.raises(MeshstyleError, match="use one of them"):
        stylize_image(content_path, style_path, size=32, iterations=1, color_match=True, preserve_color="luminance",
                      vgg_weights="random")
    with pytest.raises(MeshstyleError, match="optimization method"):
        stylize_mesh(spot_path, style_path, method="feedforward", color_match=True)


def test_partial_colour_map_goes_that_part_of_the_way():
    content = _mid_range(4, [[0.2, 0.0, 0.0], [0.0, 0.2, 0.0], [0.0, 0.0, 0.2]], [0.5, 0.5, 0.5])
    style = _mid_range(5, [[0.1, 0.05, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.1]], [0.3, 0.6, 0.4])
    assert torch.equal(match_colors_to_style(content, [style], strength=0.0), content)   # 0: every colour kept
    full = match_colors_to_style(content, [style])
    half = match_colors_to_style(content, [style], strength=0.5)
    assert torch.allclose(half, content + 0.5 * (full - content), atol=1e-6)              # x + s (A x + b - x)
    matrix, offset = partial_colour_map((torch.full((3, 3), 2.0, dtype=torch.float64),
                                         torch.ones(3, 1, dtype=torch.float64)), 0.25)
    assert torch.allclose(matrix, 0.5 + 0.75 * torch.eye(3, dtype=torch.float64)) and torch.all(offset == 0.25)


def test_automatic_color_match_follows_the_style_loss_and_yields_to_preserve_color():
    base = EngineOptions()
    assert color_match_on(replace(base, style_loss="nnfm"), "none")            # ARF pairs them
    assert not color_match_on(base, "none")                                    # Gram: the content keeps its colours
    assert not color_match_on(replace(base, style_loss="nnfm"), "luminance")   # preserve-color wins when automatic
    assert not color_match_on(replace(base, style_loss="nnfm", method="feedforward"), "none")
    assert not color_match_on(replace(base, style_loss="nnfm", color_match=False), "none")
    assert color_match_on(replace(base, color_match=True), "none")
    with pytest.raises(MeshstyleError, match="use one of them"):
        color_match_on(replace(base, color_match=True), "histogram")
    assert ENGINE_DEFAULTS["mesh"].style_loss == "nnfm" and ENGINE_DEFAULTS["image"].style_loss == "gram"
    assert EngineOptions(preset="stylemesh", style_loss="nnfm", vgg_weights="random").validated().style_loss == "gram"


def test_color_match_flags_are_on_off_and_automatic():
    parser = build_parser()
    args = ["mesh", "in.obj", "--style", "s.jpg"]
    assert parser.parse_args(args).color_match is None
    assert parser.parse_args([*args, "--color-match"]).color_match is True
    assert parser.parse_args([*args, "--no-color-match"]).color_match is False
