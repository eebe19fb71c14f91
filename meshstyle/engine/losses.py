"""Feature losses: content, style statistics (Gram, mean/std, sliced Wasserstein, nearest-neighbour feature
matching) and total variation.

Every feature loss reads a dict of VGG features ``{layer: (N, C, H_l, W_l)}`` from one encoder pass
and takes an optional per-pixel weight map (N, 1, H, W) at image resolution. The map is area-resized
to each layer; a feature pixel whose weight is 0 does not influence any statistic (weighted sums,
weighted quantiles), so masked, grazing or off-level pixels never count.

Each layer's loss is divided by the mean square of its target, so layers contribute on the same
scale whatever their channel count or the image resolution (the normalization style-transfer-pytorch
uses); ``layer_weights`` then set their relative importance.

References: Gatys, Ecker & Bethge (CVPR 2016) for content and Gram losses; Huang & Belongie, AdaIN
(ICCV 2017) for mean/std statistics; Heitz et al., A Sliced Wasserstein Loss for Neural Texture
Synthesis (CVPR 2021); Zhang et al., ARF: Artistic Radiance Fields (ECCV 2022) for NNFM.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

EPS = 1e-8


def resize_weight(weight: torch.Tensor | None, size: tuple[int, int]) -> torch.Tensor | None:
    """Area-resize a weight map (N, 1, H, W) to ``size`` = (H_l, W_l); ``None`` stays ``None``.

    A layer pixel gets the mean weight of the image pixels it covers, so it is 0 exactly when all of
    them are 0.
    """
    if weight is None or tuple(weight.shape[-2:]) == tuple(size):
        return weight
    return F.adaptive_avg_pool2d(weight, size)


def layer_size(layer: str, height: int, width: int) -> tuple[int, int]:
    """(H_l, W_l) of VGG layer ``layer`` (``conv/relu{b}_{i}`` or ``pool{b}``) for an (H, W) input:
    each of the ``b - 1`` pooling layers before block ``b`` (``b`` for ``pool{b}``) halves and floors."""
    name = layer.rstrip("0123456789_")
    block = int(layer[len(name):].split("_")[0])
    pools = block if name == "pool" else block - 1
    return height >> pools, width >> pools


def cells_at(active: torch.Tensor, size: tuple[int, int], erode: int = 0) -> torch.Tensor:
    """(N, 1, H_l, W_l) float {0, 1}: the cells of an (H_l, W_l) feature grid whose image pixels are all
    active (area average of ``active`` (N, 1, H, W) equal to 1), eroded by ``erode`` more cells."""
    cells = (F.adaptive_avg_pool2d(active.float(), size) >= 1 - 1e-6).float()
    for _ in range(erode):
        cells = -F.max_pool2d(-F.pad(cells, (1, 1, 1, 1), value=0.0), 3, stride=1)
    return cells


class ObjectCells:
    """StyleMesh's per-layer masks as a weight for :class:`StyleLoss`: at every layer, only the cells
    whose image pixels all belong to ``active`` (N, 1, H, W) count, so background and pixels of zero
    weight never enter the statistics. The cell grid is taken from each layer's actual feature size,
    so any encoder works. ``erode`` removes that many more cells around excluded ones."""

    def __init__(self, active: torch.Tensor, erode: int = 0):
        self.active, self.erode = active, erode
        self._cache: dict[tuple[int, int], torch.Tensor] = {}

    def at(self, size: tuple[int, int]) -> torch.Tensor:
        """The (N, 1, H_l, W_l) mask for a feature grid of ``size``."""
        size = tuple(size)
        if size not in self._cache:
            self._cache[size] = cells_at(self.active, size, self.erode)
        return self._cache[size]


def object_cells(active: torch.Tensor, layers, erode: int = 0) -> dict[str, torch.Tensor]:
    """Per-VGG-layer cell masks (StyleMesh's eroded, downsampled masks): a cell of a layer counts when
    every image pixel it covers is active and so are its neighbours within ``erode`` cells.

    Args:
        active: (N, 1, H, W) bool or {0, 1} map of pixels that belong to the statistics.
        layers: VGG layer names (sizes from :func:`layer_size`; :class:`ObjectCells` works for any encoder).
        erode: extra cells of erosion (3 x 3 min filter applied ``erode`` times; 0: a cell counts when
            its own pixels are all active, so no counted cell covers background).

    Returns:
        ``{layer: (N, 1, H_l, W_l) float {0, 1}}``; usable as the ``weight`` of :class:`StyleLoss`.
    """
    out = {}
    for layer in layers:
        h, w = layer_size(layer, *active.shape[-2:])
        out[layer] = cells_at(active, (max(h, 1), max(w, 1)), erode) if h >= 1 and w >= 1 else \
            active.new_zeros(active.shape[0], 1, max(h, 1), max(w, 1)).float()
    return out


def _layer_weight(weight, layer: str, size: tuple[int, int]):
    """The weight map of ``layer`` (feature grid ``size``): from an :class:`ObjectCells`, a per-layer
    dict, or ``weight`` itself."""
    if isinstance(weight, ObjectCells):
        return weight.at(size)
    return weight.get(layer) if isinstance(weight, dict) else weight


def cell_features(feats: dict[str, torch.Tensor], weight, layers, max_cells: int | None = None,
                  generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """The feature vectors of a batch's counted cells as one pseudo-image per layer.

    Args:
        feats: ``{layer: (N, C, H_l, W_l)}`` features.
        weight: the weight as :class:`StyleLoss` takes it (an :class:`ObjectCells`, a per-layer dict or a
            map (N, 1, H, W)); a cell counts when its weight is positive.
        layers: the layers to keep.
        max_cells: keep at most this many counted cells per layer (drawn without replacement by
            ``generator``), None: all.

    Returns:
        ``{layer: (1, C, 1, P)}``: the P counted cells of every item side by side, a pseudo-image whose
        statistics (Gram matrix, mean/std, feature set) are those of the counted cells; batches are pooled
        by concatenating along the last axis (a mesh's own renders as a style target: ``--strength`` of
        the optimization method on meshes).
    """
    out = {}
    for layer in layers:
        feat = feats[layer]
        flat, w = _flat(feat, _layer_weight(weight, layer, feat.shape[-2:]))
        vectors = flat.permute(1, 0, 2)[:, w[:, 0] > 0]                      # (C, P) counted cells
        if max_cells is not None and vectors.shape[1] > max_cells:
            pick = torch.randperm(vectors.shape[1], generator=generator)[:max_cells]
            vectors = vectors[:, pick.to(vectors.device)]
        out[layer] = vectors[None, :, None]
    return out


def _flat(feat: torch.Tensor, weight: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Features (N, C, P) and weights (N, 1, P) with P = H*W; all-ones weights when ``weight`` is None."""
    n, c, h, w = feat.shape
    flat = feat.reshape(n, c, h * w)
    if weight is None:
        return flat, flat.new_ones(n, 1, h * w)
    return flat, resize_weight(weight, (h, w)).reshape(n, 1, h * w).to(flat.dtype)


class _GramFunction(torch.autograd.Function):
    """``G = (F * w) F^T / s`` with a backward of one matrix product: ``dF = (dG + dG^T) (F * w) / s``.

    Autograd's generic backward of ``bmm(F * w, F^T)`` needs two products, an addition of two
    gradients of F's size, and a copy of ``F * w``. With a weight map, only the pixels of positive
    weight enter the products (mesh renders are mostly background), which cuts the cost by the share
    of empty pixels.
    """

    @staticmethod
    def forward(ctx, flat, weight, scale):
        ctx.scale, ctx.shape = scale, flat.shape
        if weight is None:
            ctx.save_for_backward(flat)
            ctx.index = None
            return torch.bmm(flat, flat.transpose(1, 2)) / scale
        grams, parts, index = [], [], []
        for n in range(flat.shape[0]):
            idx = torch.nonzero(weight[n, 0] > 0).squeeze(1)
            cols = flat[n].index_select(1, idx)
            weighted = cols * weight[n, :, idx]
            grams.append(weighted @ cols.T)
            parts.append(weighted)
            index.append(idx)
        ctx.parts, ctx.index = parts, index
        return torch.stack(grams) / scale

    @staticmethod
    def backward(ctx, grad):
        sym = (grad + grad.transpose(1, 2)) / ctx.scale
        if ctx.index is None:
            (flat,) = ctx.saved_tensors
            return torch.bmm(sym, flat), None, None
        out = grad.new_zeros(ctx.shape)
        for n, (idx, weighted) in enumerate(zip(ctx.index, ctx.parts)):
            out[n].index_copy_(1, idx, sym[n] @ weighted)
        return out, None, None


def weighted_gram(feat: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted Gram matrix ``G[c, d] = sum_p w_p f_cp f_dp / sum_p w_p``.

    Args:
        feat: (N, C, H, W) features.
        weight: (N, 1, H', W') non-negative weights, area-resized to (H, W); ``None`` means 1.

    Returns:
        (N, C, C). Dividing by the total weight (the number of pixels when unweighted) makes the value
        independent of resolution. An item whose weights are all 0 gives a zero matrix.
    """
    n, c, h, w = feat.shape
    flat = feat.reshape(n, c, h * w)
    if weight is None:
        return _GramFunction.apply(flat, None, flat.new_full((n, 1, 1), float(h * w)))
    wmap = resize_weight(weight, (h, w)).reshape(n, 1, h * w).to(flat.dtype).detach()
    return _GramFunction.apply(flat, wmap, wmap.sum(-1, keepdim=True).clamp_min(EPS))


class _MeanStdFunction(torch.autograd.Function):
    """Weighted channel mean and std from first and second moments, with a one-pass backward:
    ``dF = w (a F + b)`` where ``a = g_std / (std W)``, ``b = g_mean / W - a mean`` and W the total
    weight. torch's generic ``var_mean`` backward makes several full-size temporaries."""

    @staticmethod
    def forward(ctx, flat, wmap, eps):
        if wmap is None:
            total = flat.new_full((flat.shape[0], 1), float(flat.shape[-1]))
            mean = flat.sum(-1) / total
            second = torch.linalg.vector_norm(flat, dim=-1).square() / total
        else:
            total = wmap.sum(1).clamp_min(EPS)                             # (N, 1)
            mean = torch.bmm(flat, wmap).squeeze(-1) / total
            second = torch.bmm(flat * flat, wmap).squeeze(-1) / total
        std = ((second - mean * mean).clamp_min(0) + eps).sqrt()
        ctx.save_for_backward(flat, wmap, mean, std, total)
        return mean, std

    @staticmethod
    def backward(ctx, g_mean, g_std):
        flat, wmap, mean, std, total = ctx.saved_tensors
        a = g_std / (std * total)
        b = g_mean / total - a * mean
        grad = torch.addcmul(b.unsqueeze(-1), flat, a.unsqueeze(-1))
        if wmap is not None:
            grad = grad * wmap.transpose(1, 2)
        return grad, None, None


def weighted_mean_std(feat: torch.Tensor, weight: torch.Tensor | None = None,
                      eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted per-channel mean and standard deviation (AdaIN statistics).

    Args:
        feat: (N, C, H, W); weight: (N, 1, H', W') or ``None``.

    Returns:
        mean (N, C) and std (N, C) with ``std = sqrt(sum_p w_p (f_p - mean)^2 / sum_p w_p + eps)``.
    """
    n, c, h, w = feat.shape
    flat = feat.reshape(n, c, h * w)
    wmap = None
    if weight is not None:
        wmap = resize_weight(weight, (h, w)).reshape(n, h * w, 1).to(flat.dtype).detach()
    return _MeanStdFunction.apply(flat, wmap, eps)


def random_directions(channels: int, count: int, generator: torch.Generator) -> torch.Tensor:
    """``count`` random unit vectors in R^channels as a (channels, count) matrix (CPU, float32)."""
    dirs = torch.randn(channels, count, generator=generator)
    return dirs / dirs.norm(dim=0, keepdim=True)


def _target_quantiles(target_sorted: torch.Tensor, quantile: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of sorted target projections (K, M) at quantiles in [0, 1] of shape
    (..., K, P) or (P,) (the same for every direction)."""
    m = target_sorted.shape[-1]
    pos = (quantile * m - 0.5).clamp(0, m - 1)
    lo = pos.floor().long().clamp(max=m - 1)
    hi = (lo + 1).clamp(max=m - 1)
    frac = pos - lo.to(pos.dtype)
    if quantile.dim() == 1:
        return torch.lerp(target_sorted[:, lo], target_sorted[:, hi], frac)
    expanded = target_sorted.unsqueeze(0).expand(quantile.shape[0], -1, -1)
    return torch.lerp(expanded.gather(-1, lo), expanded.gather(-1, hi), frac)


def weighted_sliced_wasserstein(feat: torch.Tensor, weight: torch.Tensor | None, target: torch.Tensor,
                                directions: torch.Tensor) -> torch.Tensor:
    """Sliced Wasserstein-2 distance between weighted feature distributions and a target set.

    The features of each item, projected on each direction, form a weighted 1-D distribution; the
    distance to the target's projections is ``sum_i w_i (s_i - T^-1(q_i))^2 / sum_i w_i`` with s sorted,
    ``q_i`` the mid-point of its cumulative weight and ``T^-1`` the target's quantile function
    (linear interpolation). With equal weights and equal counts this is the loss of Heitz et al.
    (CVPR 2021); zero-weight pixels take no quantile mass and add nothing.

    Args:
        feat: (N, C, H, W); weight: (N, 1, H', W') or ``None``.
        target: (M, C) target feature vectors (e.g. every pixel of the style image's layer).
        directions: (C, K) unit projection directions.

    Returns:
        (N,) mean over directions of the squared distances.
    """
    n, c, h, w = feat.shape
    flat = feat.reshape(n, c, h * w)
    directions = directions.to(flat)
    proj = torch.einsum("ncp,ck->nkp", flat, directions)                    # (N, K, P)
    src, order = proj.sort(dim=-1)
    tgt = (target.to(flat) @ directions).T.contiguous().sort(dim=-1).values  # (K, M)
    if weight is None:  # equal weights: the quantiles are the same for every item and direction
        quantile = (torch.arange(h * w, device=flat.device, dtype=flat.dtype) + 0.5) / (h * w)
        return (src - _target_quantiles(tgt, quantile)).pow(2).mean((1, 2))
    wmap = resize_weight(weight, (h, w)).reshape(n, 1, h * w).to(flat.dtype)
    w_sorted = wmap.expand(-1, proj.shape[1], -1).gather(-1, order)         # (N, K, P)
    total = w_sorted.sum(-1, keepdim=True).clamp_min(EPS)
    quantile = (w_sorted.cumsum(-1) - 0.5 * w_sorted) / total               # in [0, 1]
    dist = ((src - _target_quantiles(tgt, quantile)) ** 2 * w_sorted).sum(-1) / total.squeeze(-1)
    return dist.mean(-1)


def _item_mask(weight: torch.Tensor | None, n: int, device) -> torch.Tensor:
    """(N,) float: 1 for items with any positive weight."""
    if weight is None:
        return torch.ones(n, device=device)
    return (weight.flatten(1).sum(1) > 0).float()


def _mean_over_items(per_item: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Average per-item losses over items that have any weight (0 when none has)."""
    mask = _item_mask(weight, per_item.shape[0], per_item.device).to(per_item)
    return (per_item * mask).sum() / mask.sum().clamp_min(1.0)


class StyleStatistic:
    """Template of a style statistic: build a target from style features, compare batch features to it.

    Subclasses implement :meth:`target` (from a list of (1, C, H, W) features of style images with blend
    weights) and :meth:`distance` (per item, already normalized by the target's scale), and are registered
    in :data:`STATISTICS` under their ``name`` (the ``--style-loss`` choice): a new loss is one class.
    """

    name = "base"
    #: True when layers of one feature grid are compared together (see :class:`StyleLoss`).
    joint = False
    #: True when a mesh run at ``--strength`` < 1 mixes each view's own statistics into its target (a
    #: statistic of a distribution); False when one pooled own set serves every view (a point set, where a
    #: view's own vectors are members of the pool).
    per_view_mix = True
    #: The automatic ``--style-weight`` is the encoder's times this (a distance on another scale than the
    #: target-normalized statistics).
    weight_scale = 1.0

    def __init__(self, seed: int = 0):
        """``seed``: for statistics that draw random numbers (subsampling, projections); others ignore it."""

    def target(self, feats: list[torch.Tensor], blend: list[float]):
        raise NotImplementedError

    def distance(self, feat: torch.Tensor, weight: torch.Tensor | None, target) -> torch.Tensor:
        raise NotImplementedError


class GramStatistic(StyleStatistic):
    """Gram matrices (Gatys et al.); blended targets are blend-weighted sums of Gram matrices."""

    name = "gram"

    def target(self, feats, blend):
        gram = sum(b * weighted_gram(f)[0] for f, b in zip(feats, blend))
        return gram, gram.pow(2).mean().clamp_min(EPS)

    def distance(self, feat, weight, target):
        gram, scale = target
        return (weighted_gram(feat, weight) - gram).pow(2).mean((1, 2)) / scale


class MeanStdStatistic(StyleStatistic):
    """Channel means and standard deviations (AdaIN statistics); blended targets are weighted sums."""

    name = "meanstd"

    def target(self, feats, blend):
        stats = [weighted_mean_std(f) for f in feats]
        mean = sum(b * s[0][0] for s, b in zip(stats, blend))
        std = sum(b * s[1][0] for s, b in zip(stats, blend))
        return mean, std, (mean.pow(2) + std.pow(2)).mean().clamp_min(EPS)

    def distance(self, feat, weight, target):
        mean_t, std_t, scale = target
        mean, std = weighted_mean_std(feat, weight)
        return ((mean - mean_t).pow(2) + (std - std_t).pow(2)).mean(1) / scale


def style_points(feats: list[torch.Tensor], blend: list[float], max_points: int,
                 generator: torch.Generator) -> torch.Tensor:
    """The feature vectors (M, C) of style images' features (1, C, H, W), pooled as one blended set: style
    ``k`` contributes ``max(1, round(max_points * blend[k]))`` of its vectors (all of them when it has fewer),
    drawn without replacement by ``generator``."""
    parts = []
    for f, b in zip(feats, blend):
        vecs = f[0].flatten(1).T                                            # (P, C)
        count = max(1, min(vecs.shape[0], round(max_points * b)))
        if count < vecs.shape[0]:
            vecs = vecs[torch.randperm(vecs.shape[0], generator=generator)[:count].to(vecs.device)]
        parts.append(vecs)
    return torch.cat(parts)


class SlicedWassersteinStatistic(StyleStatistic):
    """Sliced Wasserstein distance to the style features' distribution (Heitz et al. 2021).

    Blended targets are a mixture: each style contributes a share of the target set proportional to
    its blend weight. Target sets are subsampled (seeded) to at most ``max_points`` vectors; new
    random directions are drawn from a seeded generator at every evaluation.
    """

    name = "sw"
    per_view_mix = False

    def __init__(self, seed: int = 0, max_points: int = 1 << 14, directions: int | None = None):
        self.generator = torch.Generator().manual_seed(seed)
        self.max_points = max_points
        self.directions = directions

    def target(self, feats, blend):
        points = style_points(feats, blend, self.max_points, self.generator)
        return points, points.pow(2).mean().clamp_min(EPS)

    def distance(self, feat, weight, target):
        points, scale = target
        channels = feat.shape[1]
        dirs = random_directions(channels, self.directions or channels, self.generator).to(feat.device)
        # a projection on a random unit vector has about the per-channel mean square of the features
        return weighted_sliced_wasserstein(feat, weight, points, dirs) / scale


class NearestNeighbourStatistic(StyleStatistic):
    """Nearest-neighbour feature matching (NNFM) of Zhang et al., "ARF: Artistic Radiance Fields" (ECCV 2022):
    each feature vector of a render is pulled toward its nearest style feature vector by cosine distance.

    The loss of an item is ``sum_p w_p (1 - cos(f_p, s_nn(p))) / sum_p w_p`` where ``s_nn(p)`` is the style
    vector of largest cosine similarity to ``f_p`` (searched without gradient, in chunks of at most
    ``chunk_bytes`` of similarities, so the search adds a bounded amount of memory); pixels of weight 0
    are neither searched nor counted. Layers whose features share one grid (ARF: VGG-16 relu3_1..relu3_3)
    are matched jointly on their concatenated channels (``joint``; :class:`StyleLoss` groups them).
    Blended or multi-scale targets are one set: each style contributes vectors in proportion to its blend
    weight, at most ``max_points`` in all (seeded subsampling). The distance is in [0, 2] and needs no
    normalization by the target's scale.
    """

    name = "nnfm"
    per_view_mix = False
    joint = True
    #: A cosine distance of about 0.3 at the start that falls slowly: against a content loss of weight 1
    #: the texture kept the asset's look and took no strokes (spot cow, The Starry Night, 300 steps); 10
    #: paints the swirls and keeps a trace of the asset's patches, 100 paints them over.
    weight_scale = 10.0

    def __init__(self, seed: int = 0, max_points: int = 1 << 14, chunk_bytes: int = 1 << 28):
        self.generator = torch.Generator().manual_seed(seed)
        self.max_points, self.chunk_bytes = max_points, chunk_bytes

    def target(self, feats, blend):
        return F.normalize(style_points(feats, blend, self.max_points, self.generator), dim=1)  # (M, C) unit

    def nearest(self, queries: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        """Index (P,) into ``points`` (M, C) of the nearest unit vector to each of ``queries`` (P, C) by
        cosine similarity, searched in chunks of queries (no gradient)."""
        with torch.no_grad():
            q = F.normalize(queries.detach(), dim=1)
            rows = max(1, self.chunk_bytes // (4 * max(1, points.shape[0])))
            return torch.cat([(q[i:i + rows] @ points.T).argmax(1) for i in range(0, q.shape[0], rows)])

    def distance(self, feat, weight, target):
        points = target.to(feat)
        flat, w = _flat(feat, weight)
        out = []
        for n in range(flat.shape[0]):
            idx = torch.nonzero(w[n, 0] > 0).squeeze(1)
            if idx.numel() == 0:
                out.append(flat.new_zeros(()))
                continue
            vecs = flat[n].index_select(1, idx).T                           # (P, C)
            wn = w[n, 0, idx]
            cos = (F.normalize(vecs, dim=1) * points[self.nearest(vecs, points)]).sum(1)
            out.append(((1 - cos) * wn).sum() / wn.sum().clamp_min(EPS))
        return torch.stack(out)


#: The style losses by name (``--style-loss``): each a :class:`StyleStatistic` subclass built with ``seed``.
STATISTICS = {cls.name: cls for cls in (GramStatistic, MeanStdStatistic, SlicedWassersteinStatistic,
                                          NearestNeighbourStatistic)}


def make_statistic(name: str, seed: int = 0) -> StyleStatistic:
    """The style statistic called ``name`` (a key of :data:`STATISTICS`), seeded where it draws random numbers.

    Raises:
        KeyError: unknown name (options are checked against :data:`STATISTICS` before).
    """
    return STATISTICS[name](seed=seed)


def joint_groups(layers: list[str], sizes: dict[str, tuple[int, ...]]) -> list[tuple[str, ...]]:
    """``layers`` grouped by feature grid size (in order of first appearance): the layers that a joint
    statistic (:class:`NearestNeighbourStatistic`) concatenates."""
    groups: dict[tuple[int, ...], list[str]] = {}
    for layer in layers:
        groups.setdefault(tuple(sizes[layer]), []).append(layer)
    return [tuple(g) for g in groups.values()]


class StyleLoss(nn.Module):
    """Sum over layers of ``layer_weight * distance(statistic(features, weight), target)``.

    Args:
        statistic: a :class:`StyleStatistic`.
        layer_weights: ``{layer: weight}``.

    Call :meth:`set_target` once with the style images' features (no gradient is kept), then call the
    module with the features of a batch (N, C, H, W) and an optional weight map (N, 1, H, W), a dict
    of per-layer maps ``{layer: (N, 1, H_l, W_l)}`` (e.g. :func:`object_cells`) or an :class:`ObjectCells`. Returns a scalar: per
    layer, the mean over items that have any weight at that layer. A statistic with ``joint = True``
    (NNFM) sees the layers of one feature grid concatenated along channels, weighted by their mean layer
    weight (:func:`joint_groups`).
    """

    def __init__(self, statistic: StyleStatistic, layer_weights: dict[str, float]):
        super().__init__()
        self.statistic = statistic
        self.layer_weights = dict(layer_weights)
        self.groups: list[tuple[str, ...]] = [(layer,) for layer in self.layer_weights]
        self.targets: dict[tuple[str, ...], object] = {}

    @torch.no_grad()
    def set_target(self, style_feats: list[dict[str, torch.Tensor]], blend: list[float]) -> None:
        """Targets from the features of one or more style images, blended with ``blend`` (sums to 1)."""
        if getattr(self.statistic, "joint", False):
            self.groups = joint_groups(list(self.layer_weights),
                                       {k: style_feats[0][k].shape[-2:] for k in self.layer_weights})
        self.targets = {
            group: self.statistic.target([torch.cat([f[layer].detach() for layer in group], 1)
                                          for f in style_feats], blend)
            for group in self.groups
        }

    def forward(self, feats: dict[str, torch.Tensor], weight: torch.Tensor | None = None) -> torch.Tensor:
        total = 0.0
        for group in self.groups:
            feat = feats[group[0]] if len(group) == 1 else torch.cat([feats[layer] for layer in group], 1)
            lw = sum(self.layer_weights[layer] for layer in group) / len(group)
            w = _layer_weight(weight, group[0], feat.shape[-2:])
            per_item = self.statistic.distance(feat, w, self.targets[group])
            total = total + lw * _mean_over_items(per_item, w)
        return total


class ContentLoss(nn.Module):
    """Weighted feature MSE ``sum_p w_p |F_p - T_p|^2 / (C sum_p w_p)``, divided by ``mean(T^2)``.

    Call with features ``{layer: (N, C, H, W)}``, targets of the same shapes and an optional weight map
    (N, 1, H, W). Gatys et al. (CVPR 2016) use relu4_2 (conv4_2 in the paper's wording).
    """

    def __init__(self, layer_weights: dict[str, float]):
        super().__init__()
        self.layer_weights = dict(layer_weights)

    def forward(self, feats: dict[str, torch.Tensor], targets: dict[str, torch.Tensor],
                weight: torch.Tensor | None = None) -> torch.Tensor:
        total = 0.0
        for layer, lw in self.layer_weights.items():
            feat, tgt = feats[layer], targets[layer]
            flat, w = _flat(feat, weight)
            diff = ((flat - tgt.reshape(flat.shape)) ** 2 * w).sum((1, 2))
            per_item = diff / (w.sum((1, 2)) * flat.shape[1]).clamp_min(EPS)
            scale = tgt.pow(2).mean().clamp_min(EPS)
            total = total + lw * _mean_over_items(per_item / scale, weight)
        return total


def total_variation(image: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between neighbouring pixels of (..., H, W): a smoothness prior."""
    dh = (image[..., 1:, :] - image[..., :-1, :]).pow(2).mean()
    dw = (image[..., :, 1:] - image[..., :, :-1]).pow(2).mean()
    return dh + dw


#: Named loss presets. ``"stylemesh"``: the Gram loss with the layer weights of StyleMesh's code (Höllein et
#: al., CVPR 2022; relu1_1..relu5_1 = 1000, 1000, 10, 10, 1000, style weight 1e-4, content relu4_2). Here
#: each layer's loss is already divided by its target's mean square, so the numbers set relative
#: importance rather than reproduce StyleMesh's absolute loss values.
LAYER_PRESETS = {
    "stylemesh": {"style_loss": "gram", "style_layers": {"relu1_1": 1000.0, "relu2_1": 1000.0, "relu3_1": 10.0, "relu4_1": 10.0,
                                   "relu5_1": 1000.0},
                  "style_weight": 1e-4, "content_layers": {"relu4_2": 1.0}},
}
