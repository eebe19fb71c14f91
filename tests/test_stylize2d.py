"""2D engine runs with seeded random VGG weights at 64-96 px."""

import torch

from meshstyle.core.uv import identity_grid, sample_texture
from meshstyle.engine import color
from meshstyle.engine.texture import PlainTexture
from meshstyle.stylize.image import (
    reconstruct_content,
    scale_iterations,
    scale_sizes,
    stylize_image,
    synthesize_texture,
    upsampled_change,
)

FAST = dict(vgg_weights="random", iterations=40, seed=0)


def test_identity_view_renders_the_image_unchanged():
    img = torch.rand(3, 5, 7)
    assert torch.allclose(sample_texture(img, identity_grid(5, 7))[0], img, atol=1e-6)


def test_style_transfer_lowers_style_loss_by_half(content_path, style_path):
    result = stylize_image(content_path, style_path, size=96, **FAST)
    history = result.history[-1]
    assert history[-1]["style"] <= 0.5 * history[0]["style"]
    assert result.image.shape == (3, 64, 96) and result.random_weights


def test_same_seed_same_output(content_path, style_path):
    a = stylize_image(content_path, style_path, size=64, **{**FAST, "iterations": 5})
    b = stylize_image(content_path, style_path, size=64, **{**FAST, "iterations": 5})
    assert torch.equal(a.image, b.image)


def _chroma_error(image, content):
    """Mean absolute difference of the YIQ chroma channels (I, Q)."""
    return float((color.rgb_to_yiq(image)[1:] - color.rgb_to_yiq(content)[1:]).abs().mean())


def test_luminance_transfer_keeps_content_chroma(content_path, style_path):
    from meshstyle.stylize.image import _as_image

    content = _as_image(content_path, 64)
    plain = stylize_image(content, style_path, size=64, **FAST)
    kept = stylize_image(content, style_path, size=64, preserve_color="luminance", **FAST)
    # bound: the chroma is copied from the content; only clipping to [0, 1] can change it
    assert _chroma_error(kept.image, content) < 0.02
    assert _chroma_error(plain.image, content) > 2 * _chroma_error(kept.image, content)


def test_histogram_matching_gives_style_the_content_colour_statistics(content_path, style_path):
    from meshstyle.stylize.image import _as_image

    content, style = _as_image(content_path, 64), _as_image(style_path, 64)
    matched = color.match_color_histogram(style, content)
    assert torch.allclose(matched.reshape(3, -1).mean(1), content.reshape(3, -1).mean(1), atol=0.02)
    cov_m, cov_c = torch.cov(matched.reshape(3, -1)), torch.cov(content.reshape(3, -1))
    assert float((cov_m - cov_c).abs().max()) < 0.01


def test_texture_synthesis_any_size(style_path):
    result = synthesize_texture(style_path, size=(80, 48), **FAST)
    assert result.image.shape == (3, 48, 80)
    assert result.history[-1][-1]["style"] < 0.5 * result.history[0][0]["style"]


def test_content_reconstruction_from_noise(content_path):
    result = reconstruct_content(content_path, layer="relu2_1", size=64, **FAST)
    h = result.history[0]
    assert "style" not in h[0] and h[-1]["content"] < 0.5 * h[0]["content"]


def test_coarse_to_fine_sizes_and_blend(content_path, style_path):
    assert scale_sizes(512, 256, None) == [(128, 64), (256, 128), (512, 256)]
    assert scale_sizes(100, 80, None) == [(100, 80)]
    seen = []
    result = stylize_image(content_path, [style_path, content_path], style_blend=[0.7, 0.3], size=96, scales=2,
                           callback=lambda info: seen.append(info.total_steps), **{**FAST, "iterations": 3})
    assert seen == [4] * 4  # 1 + 3 steps: what a progress bar needs for its total
    assert len(result.history) == 2 and result.image.shape == (3, 64, 96)
    # L-BFGS: a third of the steps (rounded up) at the coarser scale, all of them at the final one
    assert [len(h) for h in result.history] == [1, 3]
    assert scale_iterations(300, 3, "lbfgs") == [100, 100, 300] and scale_iterations(7, 2, "adam") == [7, 7]


def test_finer_scale_starts_from_content_plus_upsampled_change():
    # a coarse change of +0.25 in the left column, -0.5 in the right (2x1 -> 4x2, bilinear): the finer
    # start keeps the content's own pattern and adds the interpolated change; the sum is clamped to [0, 1]
    start = torch.full((3, 1, 2), 0.5)
    result = start + torch.tensor([0.25, -0.5]).view(1, 1, 2)
    fine = torch.tensor([[0.1, 0.9, 0.1, 0.9], [0.9, 0.1, 0.9, 0.1]]).expand(3, 2, 4)
    out = upsampled_change(result, start, fine)
    # bilinear 2 -> 4 (align_corners=False) gives weights 1, 3/4, 1/4, 0 on the left sample
    change = torch.tensor([0.25, 0.25 * 0.75 - 0.5 * 0.25, 0.25 * 0.25 - 0.5 * 0.75, -0.5])
    assert torch.allclose(out, (fine + change).clamp(0, 1), atol=1e-6)
    assert abs(float(out[0, 0, 3]) - 0.4) < 1e-6 and float(out[0, 1, 3]) == 0.0  # 0.9 - 0.5; clamped 0


def test_coarse_scale_keeps_the_contents_fine_detail(content_path, style_path):
    # the coarse-to-fine run's finer scale starts from content + upsampled change: its first loss is
    # below that of a start from the plainly upsampled coarse result (the earlier behaviour)
    import meshstyle.stylize.image as image

    def first_fine_loss():
        seen = []
        # 128 px (coarse scale 64): at 64 px the mirrored edge frame leaves 3x3 relu5_1 cells (random VGG)
        stylize_image(content_path, style_path, size=128, scales=2, callback=lambda i: seen.append(i),
                      **{**FAST, "iterations": 3})
        return [i.losses["total"] for i in seen if i.scale == 1][0]

    with_detail = first_fine_loss()
    original = image.upsampled_change
    image.upsampled_change = lambda result, start, finer: image.resize_tensor(
        result, (finer.shape[2], finer.shape[1]))
    try:
        blurred = first_fine_loss()
    finally:
        image.upsampled_change = original
    assert with_detail < blurred


def test_plain_texture_stays_in_unit_range():
    p = PlainTexture(torch.rand(3, 4, 4))
    with torch.no_grad():
        p.texels.add_(2.0)
    p.project_()
    assert float(p().detach().max()) == 1.0
