"""The decorrelated colour parameterization of mesh textures (engine.color.DecorrelatedTexture)."""

import torch

from meshstyle.engine.color import DecorrelatedTexture, rgb_to_yiq
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
