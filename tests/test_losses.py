"""Loss values against hand-computed ones, and masked statistics that ignore masked-out pixels."""

import math

import pytest
import torch

from meshstyle.engine.losses import (
    LAYER_PRESETS,
    STATISTICS,
    ContentLoss,
    GramStatistic,
    NearestNeighbourStatistic,
    StyleLoss,
    joint_groups,
    layer_size,
    make_statistic,
    object_cells,
    resize_weight,
    total_variation,
    weighted_gram,
    weighted_mean_std,
    weighted_sliced_wasserstein,
)


def features():
    # N=1, C=2, H=1, W=3: channel 0 = [1, 2, 3], channel 1 = [0, 1, -1]
    return torch.tensor([[[[1.0, 2.0, 3.0]], [[0.0, 1.0, -1.0]]]])


def test_gram_hand_computed():
    g = weighted_gram(features())[0]
    # G = F F^T / P with P = 3: [[1+4+9, 0+2-3], [.., 0+1+1]] / 3
    expected = torch.tensor([[14.0, -1.0], [-1.0, 2.0]]) / 3
    assert torch.allclose(g, expected)


def test_gram_weighted_ignores_zero_weight_pixels():
    weight = torch.tensor([[[[1.0, 1.0, 0.0]]]])
    g = weighted_gram(features(), weight)[0]
    assert torch.allclose(g, torch.tensor([[5.0, 2.0], [2.0, 1.0]]) / 2)
    changed = features().clone()
    changed[..., 2] = torch.tensor([[100.0], [-50.0]])
    assert torch.equal(weighted_gram(changed, weight), weighted_gram(features(), weight))


def test_gram_does_not_depend_on_resolution():
    f = torch.rand(1, 4, 8, 8)
    big = f.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    assert torch.allclose(weighted_gram(f), weighted_gram(big), atol=1e-6)


def test_mean_std_hand_computed_and_weighted():
    mean, std = weighted_mean_std(features(), eps=0.0)
    assert torch.allclose(mean[0], torch.tensor([2.0, 0.0]))
    assert torch.allclose(std[0], torch.tensor([math.sqrt(2 / 3), math.sqrt(2 / 3)]))
    weight = torch.tensor([[[[0.0, 1.0, 3.0]]]])
    mean, std = weighted_mean_std(features(), weight, eps=0.0)
    # channel 0: (2*1 + 3*3)/4 = 2.75; var = (1*0.5625 + 3*0.0625)/4 = 0.1875
    assert torch.allclose(mean[0, 0], torch.tensor(2.75))
    assert torch.allclose(std[0, 0], torch.tensor(math.sqrt(0.1875)))


def test_sliced_wasserstein_one_dimension_hand_computed():
    feat = torch.tensor([[[[4.0, 1.0, 3.0, 2.0]]]])          # C=1, values 1..4
    target = torch.tensor([[2.0], [3.0], [4.0], [5.0]])       # shifted by one
    direction = torch.ones(1, 1)
    assert torch.allclose(weighted_sliced_wasserstein(feat, None, target, direction), torch.tensor([1.0]))
    # sorted matching, not pixel order: a permutation of the source gives the same value
    perm = feat[..., [2, 0, 3, 1]]
    assert torch.allclose(weighted_sliced_wasserstein(perm, None, target, direction), torch.tensor([1.0]))


def test_sliced_wasserstein_weighted_ignores_zero_weight_pixels():
    gen = torch.Generator().manual_seed(0)
    feat = torch.randn(2, 3, 4, 5, generator=gen)
    target = torch.randn(50, 3, generator=gen)
    dirs = torch.nn.functional.normalize(torch.randn(3, 6, generator=gen), dim=0)
    weight = torch.ones(2, 1, 4, 5)
    weight[:, :, :2] = 0
    base = weighted_sliced_wasserstein(feat, weight, target, dirs)
    changed = feat.clone()
    changed[:, :, :2] = torch.randn(2, 3, 2, 5, generator=gen) * 100
    assert torch.allclose(weighted_sliced_wasserstein(changed, weight, target, dirs), base, atol=1e-6)
    assert not torch.allclose(weighted_sliced_wasserstein(changed, None, target, dirs), base)


def test_style_loss_zero_at_target_and_positive_elsewhere():
    f = torch.rand(1, 4, 6, 6)
    loss = StyleLoss(GramStatistic(), {"x": 1.0})
    loss.set_target([{"x": f}], [1.0])
    assert float(loss({"x": f})) < 1e-10
    assert float(loss({"x": f * 2})) > 0.1


def test_content_loss_hand_computed():
    target = {"x": torch.zeros(1, 2, 1, 2) + 1.0}
    feats = {"x": torch.tensor([[[[1.0, 3.0]], [[1.0, 1.0]]]])}
    # sum of squared differences 4 over C * P = 4 values, divided by mean(T^2) = 1
    assert torch.allclose(ContentLoss({"x": 1.0})(feats, target), torch.tensor(1.0))
    weight = torch.tensor([[[[1.0, 0.0]]]])
    assert float(ContentLoss({"x": 1.0})(feats, target, weight)) == 0.0


def test_total_variation_hand_computed():
    img = torch.tensor([[[0.0, 1.0], [0.0, 1.0]]])
    # horizontal diffs all 1 (mean 1), vertical diffs all 0
    assert torch.allclose(total_variation(img), torch.tensor(1.0))


@pytest.mark.parametrize("size", [(3, 3), (2, 5)])
def test_resize_weight_keeps_zero_regions_zero(size):
    w = torch.zeros(1, 1, 12, 12)
    w[..., :4, :4] = 1
    small = resize_weight(w, size)
    assert small.shape[-2:] == size
    assert float(small[..., -1, -1]) == 0.0 and float(small[..., 0, 0]) > 0


@pytest.mark.parametrize("weighted", [False, True])
def test_gram_gradient_matches_autograd_of_the_definition(weighted):
    gen = torch.Generator().manual_seed(1)
    feat = torch.randn(2, 3, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(2, 1, 4, 5, generator=gen, dtype=torch.float64) if weighted else None
    if weighted:
        weight[:, :, :2] = 0  # masked pixels: skipped by the products, zero gradient
    probe = torch.randn(2, 3, 3, generator=gen, dtype=torch.float64)
    (weighted_gram(feat, weight) * probe).sum().backward()
    fast = feat.grad.clone()
    feat.grad = None
    flat = feat.reshape(2, 3, 20)
    w = weight.reshape(2, 1, 20) if weighted else torch.ones(2, 1, 20, dtype=torch.float64)
    reference = torch.bmm(flat * w, flat.transpose(1, 2)) / w.sum(-1, keepdim=True)
    (reference * probe).sum().backward()
    assert torch.allclose(fast, feat.grad)
    if weighted:
        assert float(fast[:, :, :2].abs().max()) == 0.0


def test_unit_weights_give_the_unweighted_statistics():
    gen = torch.Generator().manual_seed(2)
    feat = torch.randn(2, 3, 5, 4, generator=gen)
    ones = torch.ones(2, 1, 5, 4)
    for a, b in zip(weighted_mean_std(feat), weighted_mean_std(feat, ones)):
        assert torch.allclose(a, b, atol=1e-5)
    target = torch.randn(33, 3, generator=gen)
    dirs = torch.nn.functional.normalize(torch.randn(3, 4, generator=gen), dim=0)
    assert torch.allclose(weighted_sliced_wasserstein(feat, None, target, dirs),
                          weighted_sliced_wasserstein(feat, ones, target, dirs), atol=1e-5)


@pytest.mark.parametrize("weighted", [False, True])
def test_mean_std_gradient_matches_autograd_of_the_definition(weighted):
    gen = torch.Generator().manual_seed(4)
    feat = torch.rand(2, 3, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.rand(2, 1, 4, 5, generator=gen, dtype=torch.float64) if weighted else None
    pm, ps = torch.randn(2, 3, generator=gen, dtype=torch.float64), torch.randn(2, 3, generator=gen, dtype=torch.float64)
    mean, std = weighted_mean_std(feat, weight)
    ((mean * pm).sum() + (std * ps).sum()).backward()
    fast = feat.grad.clone()
    feat.grad = None
    flat = feat.reshape(2, 3, 20)
    w = weight.reshape(2, 1, 20) if weighted else torch.ones(2, 1, 20, dtype=torch.float64)
    m = (flat * w).sum(-1) / w.sum(-1)
    s = (((flat - m.unsqueeze(-1)) ** 2 * w).sum(-1) / w.sum(-1) + 1e-5).sqrt()
    ((m * pm).sum() + (s * ps).sum()).backward()
    assert torch.allclose(mean, m) and torch.allclose(std, s)
    assert torch.allclose(fast, feat.grad)


def test_layer_sizes_follow_vgg_pooling():
    assert layer_size("relu1_1", 37, 20) == (37, 20)
    assert layer_size("relu3_1", 37, 20) == (9, 5)     # two floor-halvings
    assert layer_size("pool3", 37, 20) == (4, 2)
    assert layer_size("relu5_1", 128, 100) == (8, 6)


def test_object_cells_count_only_fully_covered_cells():
    active = torch.zeros(1, 1, 16, 16)
    active[..., 2:14, 4:16] = 1
    cells = object_cells(active, ["relu1_1", "relu2_1", "relu3_1"])
    assert torch.equal(cells["relu1_1"], active)
    # relu2_1: 2x2 cells; rows 2..13 -> cells 1..6, columns 4..15 -> cells 2..7
    expected = torch.zeros(1, 1, 8, 8)
    expected[..., 1:7, 2:8] = 1
    assert torch.equal(cells["relu2_1"], expected)
    # relu3_1: 4x4 cells; only rows 4..11 (cells 1, 2) are fully inside, columns 4..15 (cells 1..3)
    assert cells["relu3_1"][0, 0].nonzero().tolist() == [[r, c] for r in (1, 2) for c in (1, 2, 3)]
    eroded = object_cells(active, ["relu2_1"], erode=1)["relu2_1"]
    assert int(eroded.sum()) == 4 * 4   # one more cell off every side (the image border counts as outside)


def test_per_layer_weight_maps_select_cells_per_layer():
    feats = {"a": torch.rand(1, 4, 8, 8), "b": torch.rand(1, 4, 4, 4)}
    loss = StyleLoss(GramStatistic(), {"a": 1.0, "b": 1.0})
    loss.set_target([{k: torch.rand_like(v) for k, v in feats.items()}], [1.0])
    mask = {"a": torch.zeros(1, 1, 8, 8), "b": torch.ones(1, 1, 4, 4)}
    mask["a"][..., :4, :] = 1
    changed = {"a": feats["a"].clone(), "b": feats["b"]}
    changed["a"][..., 4:, :] = 7.0  # only cells outside layer a's mask change
    assert torch.equal(loss(feats, mask), loss(changed, mask))
    # a layer whose map is all zero adds nothing: the loss is that of layer b alone
    only_b = StyleLoss(GramStatistic(), {"b": 1.0})
    only_b.targets = {("b",): loss.targets[("b",)]}
    assert torch.allclose(loss(feats, {"a": torch.zeros(1, 1, 8, 8), "b": mask["b"]}), only_b(feats, mask))


def test_stylemesh_preset_layer_weights():
    preset = LAYER_PRESETS["stylemesh"]
    assert list(preset["style_layers"]) == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
    assert [w * preset["style_weight"] for w in preset["style_layers"].values()] == pytest.approx(
        [0.1, 0.1, 0.001, 0.001, 0.1])
    assert list(preset["content_layers"]) == ["relu4_2"]


def test_nnfm_hand_computed_nearest_and_cosine_distance():
    # style vectors (C=2): e_x and e_y; render pixels (1, 1) -> nearest e_x or e_y at 45 degrees (tie broken
    # by argmax: the first), (2, 0) -> e_x exactly, (0, -1) -> e_y at 180 degrees or e_x at 90: e_x
    stat = NearestNeighbourStatistic()
    style = torch.tensor([[[[1.0, 0.0]], [[0.0, 1.0]]]])              # (1, 2, 1, 2): pixels e_x, e_y
    target = stat.target([style], [1.0])
    feat = torch.tensor([[[[1.0, 2.0, 0.0]], [[1.0, 0.0, -1.0]]]])     # pixels (1,1), (2,0), (0,-1)
    expected = [1 - 1 / math.sqrt(2), 0.0, 1.0]
    assert torch.allclose(stat.distance(feat, None, target), torch.tensor([sum(expected) / 3]), atol=1e-6)
    weight = torch.tensor([[[[0.0, 1.0, 3.0]]]])                         # the first pixel does not count
    assert torch.allclose(stat.distance(feat, weight, target), torch.tensor([(0.0 + 3.0) / 4]), atol=1e-6)
    # chunked search (one query per chunk) finds the same neighbours
    small = NearestNeighbourStatistic(chunk_bytes=1)
    assert torch.equal(small.nearest(feat[0].flatten(1).T, target), stat.nearest(feat[0].flatten(1).T, target))


def test_nnfm_gradient_pulls_toward_the_nearest_style_vector_only_where_weighted():
    stat = NearestNeighbourStatistic()
    target = stat.target([torch.tensor([[[[1.0]], [[0.0]]]])], [1.0])   # one style vector: e_x
    feat = torch.tensor([[[[1.0, 1.0]], [[1.0, 1.0]]]], requires_grad=True)
    weight = torch.tensor([[[[1.0, 0.0]]]])
    stat.distance(feat, weight, target).sum().backward()
    # d(1 - cos)/df = -(e / |f| - cos f / |f|^2); at f = (1, 1), e = e_x: -(1, -1) / (2 sqrt 2); pixel 2: 0
    half = 1 / (2 * math.sqrt(2))
    assert torch.allclose(feat.grad[0, :, 0, 0], torch.tensor([-half, half]), atol=1e-6)
    assert torch.equal(feat.grad[0, :, 0, 1], torch.zeros(2))


def test_nnfm_matches_layers_of_one_grid_jointly_and_is_registered():
    assert STATISTICS["nnfm"] is NearestNeighbourStatistic and isinstance(make_statistic("nnfm", seed=3),
                                                                          NearestNeighbourStatistic)
    assert set(STATISTICS) >= {"gram", "meanstd", "sw", "nnfm"}
    layers = {"relu3_1": 1.0, "relu3_2": 1.0, "relu4_1": 2.0}
    sizes = {"relu3_1": (8, 8), "relu3_2": (8, 8), "relu4_1": (4, 4)}
    assert joint_groups(list(layers), sizes) == [("relu3_1", "relu3_2"), ("relu4_1",)]
    torch.manual_seed(0)
    style = {k: torch.rand(1, 3, *sizes[k]) for k in layers}
    loss = StyleLoss(NearestNeighbourStatistic(), layers)
    loss.set_target([style], [1.0])
    assert loss.groups == [("relu3_1", "relu3_2"), ("relu4_1",)]
    assert loss.targets[("relu3_1", "relu3_2")].shape == (64, 6)       # channels concatenated
    assert float(loss(style)) == pytest.approx(0.0, abs=1e-5)           # the style is its own nearest neighbour
    other = {k: torch.rand(1, 3, *sizes[k]) for k in layers}
    joint = loss(other)
    stat = NearestNeighbourStatistic()
    by_hand = (stat.distance(torch.cat([other["relu3_1"], other["relu3_2"]], 1), None,
                             loss.targets[("relu3_1", "relu3_2")]) * 1.0
               + 2.0 * stat.distance(other["relu4_1"], None, loss.targets[("relu4_1",)]))
    assert float(joint) == pytest.approx(float(by_hand), rel=1e-6)
