"""The colour parameterizations of mesh textures (engine.color.DecorrelatedTexture, style_colour_basis)."""

import pytest
import torch

from meshstyle.engine.color import STYLE_BASIS_FLOOR, DecorrelatedTexture, rgb_to_yiq, style_colour_basis
from meshstyle.engine.texture import PyramidTexture


def _drift(colours: str, steps: int = 50) -> tuple[float, float]:
    """(luma std, chroma std) of the change after Adam steps on random gradients (noise a texel gets
    from views that disagree)."""
    gen = torch.Generator().manual_seed(0)
    start = torch.full((3, 32, 32), 0.5)
    pyramid = PyramidTexture(start, levels=1)
    texture = DecorrelatedTexture(pyramid, start) if colours == "decorrelated" else pyramid
    opt = torch.optim.Adam(texture.parameters(), lr=0.01)
    for _ in range(steps):
        opt.zero_grad()
        (texture() * torch.randn(3, 32, 32, generator=gen)).sum().backward()
        opt.step()
    yiq = rgb_to_yiq(texture().detach() - start)
    return float(yiq[0].std()), float(yiq[1:].std())


def test_decorrelated_texture_starts_at_the_texture_and_projects_into_range():
    start = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1))
    texture = DecorrelatedTexture(PyramidTexture(start, levels=3), start)
    assert torch.allclose(texture(), start, atol=1e-6)
    with torch.no_grad():
        texture.inner.levels[0].add_(2.0)  # push far out of [0, 1]
    texture.project_()
    out = texture().detach()
    assert float(out.min()) >= -1e-5 and float(out.max()) <= 1 + 1e-5


def test_noisy_adam_steps_move_chroma_much_less_than_luma_in_the_decorrelated_basis():
    luma_rgb, chroma_rgb = _drift("rgb")
    luma_dec, chroma_dec = _drift("decorrelated")
    # RGB: independent channel steps give chroma noise about as large as luma noise
    assert chroma_rgb / luma_rgb > 0.8
    # decorrelated: the chroma axes are 4-8x shorter than the luma axis
    assert chroma_dec / luma_dec < 0.35


def _discs_on_white() -> torch.Tensor:
    """(3, 32, 32): white with a red (1, 0, 0) square covering a quarter of the pixels."""
    image = torch.ones(3, 32, 32)
    image[1:, 8:24, 8:24] = 0.0
    return image


def test_style_basis_puts_the_style_colour_axis_first_and_floors_the_others():
    basis = style_colour_basis([_discs_on_white()])
    # white <-> red varies G and B together: the first axis is +-(0, 1, 1)/sqrt(2) at unit norm
    first = basis[:, 0] * torch.sign(basis[1, 0])
    assert torch.allclose(first, torch.tensor([0.0, 1.0, 1.0]) / 2 ** 0.5, atol=1e-5)
    # the style has no other variation: the other two axes are raised to the floor, orthogonal to it
    assert basis[:, 1:].norm(dim=0).tolist() == [pytest.approx(STYLE_BASIS_FLOOR, rel=1e-4)] * 2
    assert float((basis.T @ basis - torch.diag(torch.diag(basis.T @ basis))).abs().max()) < 1e-6
    # pooled with weights: a grey ramp weighted 3:1 against the discs makes luma the first axis
    ramp = torch.linspace(0, 1, 32).expand(3, 32, 32).clone()
    first = style_colour_basis([ramp, _discs_on_white()], [3.0, 1.0])[:, 0]
    assert float((first * torch.sign(first.sum())).min()) > 0.4          # all three channels together


def test_in_the_style_basis_noisy_steps_move_along_the_style_colours():
    # Adam on random gradients (views that disagree): the change stays near the white <-> red axis
    gen = torch.Generator().manual_seed(0)
    start = torch.full((3, 32, 32), 0.5)
    texture = DecorrelatedTexture(PyramidTexture(start, levels=1), start, style_colour_basis([_discs_on_white()]))
    opt = torch.optim.Adam(texture.parameters(), lr=0.01)
    for _ in range(50):
        opt.zero_grad()
        (texture() * torch.randn(3, 32, 32, generator=gen)).sum().backward()
        opt.step()
    change = (texture().detach() - start).reshape(3, -1)
    along = torch.tensor([0.0, 1.0, 1.0]) / 2 ** 0.5
    on_axis = (along @ change).square().sum()
    assert float(on_axis / change.square().sum()) > 0.95
