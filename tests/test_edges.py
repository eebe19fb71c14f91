"""2D edge lines (issue 27 item 6): the outer 4 px of an output must not stand out from its interior.

Cause: the encoder's zero padding (and the MobileNetV2's one-sided stride-2 padding) makes the image's
outer pixels features of an "edge", which the style statistics reward with lines (the Great Wave print
has a frame); :func:`meshstyle.stylize.image.mirrored` moves the edge into a mirrored frame the statistics
ignore. Measured here with random VGG weights at 64 px (without the frame: a 32-grey-level line)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from conftest import ASSETS, CONTENT
from meshstyle.core.imageio import load_image
from meshstyle.stylize.image import inside_mask, mirrored, stylize_image, synthesize_texture

pytestmark = pytest.mark.usefixtures("one_torch_thread")
WAVE = ASSETS / "styles" / "wave.jpg"
FAST = dict(iterations=20, vgg_weights="random", seed=0, scales=1)


def band_jumps(image: torch.Tensor, offset: int, band: int = 4, ref: int = 8) -> list[float]:
    """Per side (top, bottom, left, right): the largest channel difference, 0-255 grey levels, between the
    mean of the ``band`` px starting ``offset`` px from that side and the mean of the next ``ref`` px inward."""
    a = image.permute(1, 2, 0).numpy() * 255
    h, w = a.shape[:2]
    sides = [(a[offset:offset + band], a[offset + band:offset + band + ref]),
             (a[h - offset - band:h - offset], a[h - offset - band - ref:h - offset - band]),
             (a[:, offset:offset + band], a[:, offset + band:offset + band + ref]),
             (a[:, w - offset - band:w - offset], a[:, w - offset - band - ref:w - offset - band])]
    return [float(np.abs(x.reshape(-1, 3).mean(0) - y.reshape(-1, 3).mean(0)).max()) for x, y in sides]


def test_mirrored_frame_and_its_mask():
    image = torch.rand(2, 3, 16, 24)
    framed = mirrored(image, 2)
    assert framed.shape == (2, 3, 20, 28)
    assert torch.equal(framed[..., 2:18, 2:26], image)
    assert torch.equal(framed[..., 0, 2:26], image[..., 2, :])    # row -2 mirrors row 2
    assert torch.equal(framed[..., 2:18, 1], image[..., :, 1])    # column -1 mirrors column 1
    mask = inside_mask(16, 24, 2)
    assert mask.shape == (1, 1, 20, 28) and mask.sum() == 16 * 24 and mask[0, 0, 2:18, 2:26].min() == 1
    assert mirrored(image, 99).shape == (2, 3, 24, 32)            # at most a quarter of the short side
    assert mirrored(torch.rand(1, 3, 512, 256)).shape == (1, 3, 544, 288)  # EDGE_MARGIN = 16


def test_texture_synthesis_has_no_edge_lines():
    result = synthesize_texture(WAVE, size=64, **FAST).image
    outer = band_jumps(result, 0)
    interior = band_jumps(result, 12) + band_jumps(result, 20)
    assert max(outer) <= max(interior), (outer, interior)


def test_luminance_transfer_edges_no_worse_than_the_photo():
    result = stylize_image(CONTENT, WAVE, size=64, preserve_color="luminance", **FAST).image
    photo = load_image(CONTENT, 64)
    assert max(band_jumps(result, 0)) <= max(band_jumps(photo, 0)) + 2, (band_jumps(result, 0),
                                                                          band_jumps(photo, 0))
