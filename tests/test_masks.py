"""Region masks for images (issue 27 item 2): ``meshstyle image --mask regions.png --style 1=a.jpg --style 2=b.jpg``.

Label and colour-keyed masks read from hand-built files, the guided Gram matrix against a hand computation, label 0
keeping the content's bytes, one-line refusals, and a 2-region run whose regions each end closer to their own style
(random VGG weights, 96 px)."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ASSETS, CONTENT, refused
from meshstyle.cli import main
from meshstyle.core.errors import MeshstyleError
from meshstyle.core.imageio import load_image
from meshstyle.engine.encoders import make_encoder
from meshstyle.engine.losses import ObjectCells, StyleLoss, make_statistic, weighted_gram
from meshstyle.engine.options import EngineOptions
from meshstyle.engine.runplan import make_plan
from meshstyle.stylize.image import _as_image, inside_mask, stylize_image
from meshstyle.stylize.masks import MaskedObjective, Regions, colour_labels, read_mask, style_regions

pytestmark = pytest.mark.usefixtures("one_torch_thread")
WAVE = ASSETS / "styles" / "wave.jpg"
COMPOSITION = ASSETS / "styles" / "composition_vii.jpg"
OPTIONS = EngineOptions(vgg_weights="random")
LABELS = np.array([[0, 0, 1, 1], [0, 2, 2, 1], [3, 3, 0, 0]], np.uint8)


def _save(array: np.ndarray, path, mode: str | None = None):
    img = Image.fromarray(array)
    (img.convert(mode) if mode else img).save(path)
    return path


# ------------------------------------------------------------------ reading masks


@pytest.mark.parametrize("mode", ["L", "I;16", "I"])
def test_label_image_values_are_the_labels(tmp_path, mode):
    path = tmp_path / ("m.tif" if mode == "I" else "m.png")                # PNG cannot hold 32-bit labels
    Image.fromarray(LABELS.astype(np.uint16 if mode != "L" else np.uint8)).convert(mode).save(path)
    labels, names = read_mask(path)
    assert names is None and labels.dtype == torch.int64
    assert labels.tolist() == LABELS.tolist()


def test_palette_mask_labels_are_palette_indices_and_bilevel_is_0_1(tmp_path):
    img = Image.frombytes("P", (4, 3), LABELS.tobytes())
    img.putpalette([255, 255, 255, 200, 0, 0, 0, 200, 0, 0, 0, 200])  # index 0 drawn white: still label 0
    img.save(tmp_path / "p.png")
    assert read_mask(tmp_path / "p.png")[0].tolist() == LABELS.tolist()
    Image.fromarray(LABELS > 1).save(tmp_path / "b.png")                  # mode "1"
    assert read_mask(tmp_path / "b.png")[0].tolist() == (LABELS > 1).astype(int).tolist()


def test_colour_mask_numbers_colours_by_hex_order_black_is_background(tmp_path):
    black, blue, red, white = (0, 0, 0), (0, 0, 255), (255, 0, 0), (255, 255, 255)
    rgb = np.array([[black, red, red], [blue, white, black]], np.uint8)
    labels, names = read_mask(_save(rgb, tmp_path / "c.png"))
    assert names == {0: "#000000", 1: "#0000ff", 2: "#ff0000", 3: "#ffffff"}
    assert labels.tolist() == [[0, 2, 2], [1, 3, 0]]
    no_black = colour_labels(rgb[:, 1:2])                                # red over white: 1, 2
    assert no_black[0].tolist() == [[1], [2]] and no_black[1] == {1: "#ff0000", 2: "#ffffff"}
    rgba = np.concatenate([rgb, np.full((2, 3, 1), 7, np.uint8)], 2)      # alpha is ignored
    assert read_mask(_save(rgba, tmp_path / "a.png"))[0].tolist() == labels.tolist()


def test_label_tensor_and_bad_masks_are_one_line_errors(tmp_path):
    assert read_mask(torch.tensor([[0, 2], [1, 1]]))[0].tolist() == [[0, 2], [1, 1]]
    noise = (np.random.default_rng(0).random((32, 32, 3)) * 255).astype(np.uint8)
    Image.fromarray(noise).save(tmp_path / "noisy.jpg")
    (tmp_path / "text.png").write_text("not an image")
    cases = [(torch.rand(4, 4), "integer labels"), (torch.tensor([[-1, 0]]), "labels >= 0"),
             (tmp_path / "noisy.jpg", "losslessly"), (tmp_path / "text.png", "not an image"),
             (_save(np.zeros((4, 4, 3), np.uint8), tmp_path / "k.tif", "CMYK"), "CMYK")]
    for mask, needle in cases:
        with pytest.raises(MeshstyleError, match=needle) as err:
            read_mask(mask)
        assert "\n" not in str(err.value)


# ------------------------------------------------------------------ styles of regions


def test_style_items_per_region_and_blends():
    mask = torch.tensor(LABELS.astype(np.int64))
    items, blend, regions = style_regions(["1=a.jpg", "3=b.jpg", "3=c.jpg", "p.jpg", "q.jpg"], mask,
                                          EngineOptions(style_blend=(3.0, 1.0)))
    assert regions.keys == [1, 2, 3] and regions.counts == [1, 2, 2]
    assert items == ["a.jpg", "p.jpg", "q.jpg", "b.jpg", "c.jpg"]          # label 2 takes the plain styles
    assert np.allclose(blend, [1 / 3, 0.75 / 3, 0.25 / 3, 0.5 / 3, 0.5 / 3])
    assert style_regions(["a.jpg", "b.jpg"], None, OPTIONS) == (["a.jpg", "b.jpg"], [0.5, 0.5], None)


def test_colour_keys_name_regions_of_a_colour_mask(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[:2] = (255, 0, 0)
    rgb[2:, 2:] = (0, 0, 255)
    path = _save(rgb, tmp_path / "c.png")
    items, _, regions = style_regions(["#FF0000=red.jpg", "1=blue.jpg"], path, OPTIONS)
    assert regions.keys == [1, 2] and items == ["blue.jpg", "red.jpg"]  # #0000ff is 1, #ff0000 is 2


@pytest.mark.parametrize("styles, needle", [
    (["4=a.jpg"], "the mask has no label 4; its labels are 0, 1, 2, 3"),
    (["0=a.jpg", "b.jpg"], "label 0 is the background"),
    (["1=a.jpg", "2=a.jpg"], "label 3 of the mask has no style"),
    (["1=a.jpg", "2=a.jpg", "3=a.jpg", "b.jpg"], "used by none"),
    (["#ff0000=a.jpg"], "needs a colour (RGB) mask"),
    (["sky=a.jpg"], "a label number or a #rrggbb colour"),
])
def test_region_style_mismatches_are_one_line_errors(styles, needle):
    with pytest.raises(MeshstyleError, match=re.escape(needle)):
        style_regions(styles, torch.tensor(LABELS.astype(np.int64)), OPTIONS)


def test_label_styles_need_a_mask_and_masks_need_the_optimization():
    with pytest.raises(MeshstyleError, match="needs --mask"):
        style_regions(["1=a.jpg"], None, OPTIONS)
    with pytest.raises(MeshstyleError, match="--method optimize"):
        style_regions(["1=a.jpg"], torch.ones(2, 2, dtype=torch.long), EngineOptions(method="feedforward"))
    with pytest.raises(MeshstyleError, match="only label 0"):
        style_regions(["a.jpg"], torch.zeros(2, 2, dtype=torch.long), OPTIONS)


# ------------------------------------------------------------------ the guided Gram matrix


def test_guided_gram_equals_the_hand_computation_with_soft_box_downsampled_masks():
    # features of 2 channels on a 2 x 2 grid; the region covers the left 3 of 4 image columns (4 x 4 px)
    feat = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 1.0], [-1.0, 2.0]]])[None]
    region = torch.zeros(1, 1, 4, 4)
    region[..., :3] = 1
    # box-downsampled to the 2 x 2 grid: left cells 1, right cells 0.5
    w = {(0, 0): 1.0, (0, 1): 0.5, (1, 0): 1.0, (1, 1): 0.5}
    hand = torch.zeros(2, 2)
    for (i, j), wp in w.items():
        f = feat[0, :, i, j]
        hand += wp * torch.outer(f, f)
    hand /= sum(w.values())                               # [[ (1 + 2 + 9 + 8) / 3, ...]]
    assert torch.allclose(weighted_gram(feat, region)[0], hand)
    assert hand[0, 0].item() == pytest.approx((1 * 1 + 0.5 * 4 + 1 * 9 + 0.5 * 16) / 3)


def test_region_weights_sit_inside_the_mirrored_frame_with_their_shares():
    labels = torch.zeros(8, 12, dtype=torch.long)
    labels[:, :7] = 1
    labels[:, 9:] = 2                                       # 0 in columns 7 and 8
    regions = Regions(labels, [1, 2], [1, 1], ["a", "b"], [0.25, 0.25])
    objective = MaskedObjective(make_plan(OPTIONS), regions.indicators((12, 8)), [1, 1])
    frame = inside_mask(8, 12, margin=2)                    # (1, 1, 12, 16), the image at rows/cols 2..
    (w1, s1), (w2, s2) = objective.region_weights(frame)
    assert w1.shape == frame.shape and (s1, s2) == (pytest.approx(56 / 96), 0.25)
    assert w1[0, 0, 2:10, 2:9].min() == 1 and w1.sum() == 56 and w2[0, 0, 2:10, 11:14].min() == 1
    half = objective.region_weights(inside_mask(4, 6, margin=1))[0][0]   # a coarser scale: 2 x 2 box filter
    assert half[0, 0, 1:5, 1:7].tolist() == [[1, 1, 1, 0.5, 0, 0]] * 4 and half.sum() == 14


def test_masked_style_term_is_the_share_weighted_sum_of_region_terms():
    options = EngineOptions(vgg_weights="random", style_layers={"relu1_1": 1.0, "relu2_1": 1.0}).validated()
    labels = torch.zeros(32, 32, dtype=torch.long)
    labels[:, :20] = 1
    labels[24:, 20:] = 2
    regions = Regions(labels, [1, 2], [1, 1], [], [])
    objective = MaskedObjective(make_plan(options), regions.indicators((32, 32)), [1, 1])
    styles = [load_image(WAVE, 32), load_image(COMPOSITION, 32)]
    objective.set_style(styles, [0.25, 0.25])
    image = torch.rand(1, 3, 32, 32)
    got = objective(image, style_weight=ObjectCells(torch.ones(1, 1, 32, 32)))["style"]
    expected = 0.0
    for k, (style, share) in enumerate(zip(styles, [20 / 32, 12 * 8 / 32 ** 2])):
        loss = StyleLoss(make_statistic("gram"), options.style_layers)
        loss.set_target([objective.encoder(style[None])], [1.0])
        expected += options.style_weight * share * loss(objective.encoder(image), (labels == k + 1).float()[None, None])
    assert float(got) == pytest.approx(float(expected), rel=1e-5)


# ------------------------------------------------------------------ runs


@pytest.fixture
def scene(tmp_path):
    """A 48 x 32 content PNG (the output size, so no resampling) and a label mask: 1 left, 2 right, 0 between."""
    content = (load_image(CONTENT, (48, 32)).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)
    Image.fromarray(content).save(tmp_path / "photo.png")
    labels = np.zeros((32, 48), np.uint8)
    labels[:, :20] = 1
    labels[:, 30:] = 2
    Image.fromarray(labels).save(tmp_path / "regions.png")
    return tmp_path


@pytest.mark.parametrize("extra", [[], ["--color-match"], ["--preserve-color", "luminance"]])
def test_label_0_pixels_keep_the_content_bytes(scene, extra):
    argv = ["image", scene / "photo.png", "--mask", scene / "regions.png", "--style", f"1={WAVE}", "--style",
            f"2={COMPOSITION}", "--size", "48", "--iterations", "3", "--vgg-weights", "random", "-q", "-o",
            scene / "out.png", *extra]
    assert main([str(a) for a in argv]) == 0
    out = np.asarray(Image.open(scene / "out.png"))
    photo = np.asarray(Image.open(scene / "photo.png"))
    assert np.array_equal(out[:, 20:30], photo[:, 20:30])
    assert (out[:, :20] != photo[:, :20]).any(-1).mean() > 0.5 and (out[:, 30:] != photo[:, 30:]).any(-1).mean() > 0.5


def test_unknown_label_is_refused_before_any_output(scene, capsys):
    argv = ["image", scene / "photo.png", "--mask", scene / "regions.png", "--style", f"1={WAVE}", "--style",
            f"3={COMPOSITION}", "--vgg-weights", "random", "-o", scene / "out.png"]
    refused(scene, argv, capsys, "no label 3", "0, 1, 2")
    refused(scene, [*argv[:6], *argv[8:]], capsys, "label 2 of the mask has no style")
    refused(scene, [*argv[:3], scene / "photo.png", *argv[4:]], capsys)   # the content itself as a mask: labels


def _region_distance(encoder, image: torch.Tensor, region: torch.Tensor, style: torch.Tensor, layers) -> float:
    """Gram distance (each layer normalized by its target, as the style loss) of ``image``'s cells wholly inside
    ``region`` (H, W) bool to ``style``."""
    loss = StyleLoss(make_statistic("gram"), layers)
    with torch.no_grad():
        loss.set_target([encoder(style[None])], [1.0])
        return float(loss(encoder(image[None]), ObjectCells(region[None, None].float())))


@pytest.mark.slow
def test_each_region_ends_closer_to_its_own_style():
    """Random VGG-19 weights, 96 x 64 px, 20 L-BFGS steps at one scale: the right half starts closer to the other
    style (the check can fail) and ends closer to its own; the measure uses the run's encoder."""
    labels = torch.ones(64, 96, dtype=torch.long)
    labels[:, 48:] = 2
    result = stylize_image(CONTENT, [f"1={COMPOSITION}", f"2={WAVE}"], mask=labels, size=96, iterations=20,
                           scales=1, vgg_weights="random", seed=0)
    layers = EngineOptions(vgg_weights="random").validated().style_layers
    encoder = make_encoder("vgg19", list(layers), weights="random", seed=0)
    styles = {1: _as_image(COMPOSITION, 96), 2: _as_image(WAVE, 96)}
    content = _as_image(CONTENT, 96)
    for own, other in ((1, 2), (2, 1)):
        region = labels == own
        after = [_region_distance(encoder, result.image, region, styles[k], layers) for k in (own, other)]
        assert after[0] < 0.7 * after[1], (own, after)
    before = [_region_distance(encoder, content, labels == 2, styles[k], layers) for k in (2, 1)]
    assert before[0] > before[1]
