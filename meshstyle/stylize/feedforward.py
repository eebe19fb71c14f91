"""Feed-forward stylization jobs: images and mesh textures with pretrained networks (no VGG).

- :func:`stylize_image_feedforward`: one pass of Ghiasi et al.'s arbitrary network (any painting) or
  Dumoulin et al.'s 26-style network (``"preset:N"``), see :mod:`meshstyle.engine.feedforward`.
- :func:`stylize_mesh_feedforward`: render the views with the original texture, stylize every render with
  the same embedding, fit the texture to the stylized renders through the differentiable renderer (pixel
  loss weighted by mask x angle weight), then re-render, re-stylize and re-fit for a few rounds, so the
  views agree (docs/ARCHITECTURE.md, "feed-forward" path).
- :func:`feedforward_textures`: the same fit, one round by default, returning float textures to start the
  optimization method from (``--init feedforward``).

Quality measures reported by the mesh job: the mean *reprojection error* between neighbouring views
(StyleMesh's multi-view consistency measure; here colours of the texels seen by two neighbouring views
are compared in texture space, :func:`reprojection_error`) and the colour jump across UV seams
(:func:`seam_jump`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import MeshstyleError
from ..core.imageio import load_image, long_edge_size, resize_tensor, rgb8_to_tensor, tensor_to_rgb8
from ..core.uv import sample_texture, uv_to_grid
from ..core.views import ViewStack, render
from ..engine import color
from ..engine.feedforward import (
    DEFAULT_VARIANT,
    ArbitraryStylizer,
    PresetStylizer,
    StylePredictor,
    apply_strength,
    blend_embeddings,
    preset_weights,
)
from ..engine.options import normalize_blend, resolve_device
from ..engine.pretrained import provenance
from ..engine.texture import PlainTexture, PyramidTexture
from ..mesh.cameras import orbit_cameras
from ..mesh.padding import island_mask, pad_texture
from ..mesh.raycast import compute_views
from ..mesh.textured import TexturedMesh
from ..mesh.weights import angle_weight
from .options import PRESET_PREFIX, is_preset
from .results import ImageResult, MeshResult
from .textures import working_texture

StyleInput = str | os.PathLike | torch.Tensor


@dataclass
class _Style:
    """A parsed style: either preset weights (26,) or an embedding (100,)."""

    preset: torch.Tensor | None = None
    embedding: torch.Tensor | None = None
    models: tuple[str, ...] = ()


def _preset_index(item: str) -> int:
    text = item.strip()[len(PRESET_PREFIX):]
    try:
        return int(text)
    except ValueError:
        raise MeshstyleError(f"bad preset style {item!r}; write preset:N with N in 0..25") from None


def _image(item: StyleInput, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    if isinstance(item, torch.Tensor):
        img = item.detach().float()
        img = img[0] if img.dim() == 4 else img
        if img.dim() != 3 or img.shape[0] != 3:
            raise MeshstyleError(f"image tensors must be (3, H, W), got {tuple(item.shape)}")
        if size is not None:
            img = resize_tensor(img, long_edge_size(img.shape[2], img.shape[1], size) if isinstance(size, int)
                                else size)
        return img.clamp(0, 1)
    return load_image(item, size)


class FeedForward:
    """The loaded networks of a run (lazily): predictor, arbitrary transformer, preset transformer.

    ``variant``: int8 handling of the two Magenta graphs, ``"folded"`` (default) or ``"exact"`` (see
    :func:`meshstyle.engine.pretrained.load_model`).
    """

    def __init__(self, device: torch.device | str = "cpu", cache_dir: str | os.PathLike | None = None,
                 variant: str = DEFAULT_VARIANT):
        self.device = torch.device(device)
        self.cache_dir = cache_dir
        self.variant = variant
        self._nets: dict[str, torch.nn.Module] = {}

    def _net(self, name: str, cls) -> torch.nn.Module:
        if name not in self._nets:
            self._nets[name] = cls(cache_dir=self.cache_dir, variant=self.variant).to(self.device)
        return self._nets[name]

    @property
    def predictor(self) -> StylePredictor:
        return self._net("predict", StylePredictor)

    @property
    def arbitrary(self) -> ArbitraryStylizer:
        return self._net("arbitrary", ArbitraryStylizer)

    @property
    def preset(self) -> PresetStylizer:
        return self._net("preset", PresetStylizer)

    def parse_style(self, style: StyleInput | Sequence[StyleInput], blend: Sequence[float] | None = None,
                    recolour: torch.Tensor | None = None) -> _Style:
        """Turn ``style`` (a path, a tensor (3, H, W), ``"preset:N"``, or a list of one kind) and the blend
        weights into preset weights (26,) or one embedding (100,). ``recolour``: a content image whose
        colour statistics the style images get first (``--preserve-color histogram``)."""
        items = list(style) if isinstance(style, list | tuple) else [style]
        if not items:
            raise MeshstyleError("give at least one style")
        weights = normalize_blend(list(blend) if blend is not None else None, len(items))
        presets = [is_preset(i) for i in items]
        if any(presets) and not all(presets):
            raise MeshstyleError("cannot blend preset:N styles with style images; use one kind")
        if all(presets):
            w = torch.zeros(26)
            for item, b in zip(items, weights):
                w = w + b * preset_weights(_preset_index(item))
            return _Style(preset=preset_weights(w).to(self.device), models=("multistyle26",))
        images = [_image(i) for i in items]
        if recolour is not None:
            images = [color.match_color_histogram(img, recolour) for img in images]
        with torch.no_grad():
            emb = torch.cat([self.predictor(img[None].to(self.device)) for img in images])
        return _Style(embedding=blend_embeddings(emb, weights),
                      models=("arbitrary_predict", "arbitrary_transform"))

    def stylize(self, images: torch.Tensor, style: _Style, strength: float = 1.0,
                content_embedding: torch.Tensor | None = None, batch: int = 4) -> torch.Tensor:
        """Stylize (N, 3, H, W) in [0, 1] with ``style``; ``strength`` < 1 moves the embedding toward
        ``content_embedding`` ((N, 100) or (100,); default: each image's own embedding) and fades the
        network's reconstruction error back in (:meth:`ArbitraryStylizer.with_strength`: strength 0 is
        the input itself) or, for presets, mixes pixels with the input. No gradient; ``batch`` images per
        network call."""
        outs = []
        with torch.no_grad():
            for k in range(0, images.shape[0], batch):
                x = images[k:k + batch].to(self.device)
                if style.preset is not None:
                    y = self.preset(x, style.preset)
                    if strength < 1.0:
                        y = apply_strength(y, x, strength)  # presets: pixel mix
                else:
                    emb, own = style.embedding[None], None
                    if 0.0 < strength < 1.0:
                        if content_embedding is None:
                            own = self.predictor(x)
                        else:
                            own = content_embedding.reshape(-1, 100).to(self.device)
                            own = own if own.shape[0] == 1 else own[k:k + batch]
                    y = self.arbitrary.with_strength(x, emb, own, strength)
                outs.append(y.clamp(0, 1))
        return torch.cat(outs)


def _out_size(img: torch.Tensor, size: int | tuple[int, int] | None) -> tuple[int, int]:
    """(width, height) for a long edge ``size`` or an exact ``(w, h)``; None keeps the image size."""
    w, h = img.shape[2], img.shape[1]
    if size is None:
        return w, h
    if isinstance(size, int):
        return long_edge_size(w, h, size)
    return int(size[0]), int(size[1])


def stylize_image_feedforward(content: StyleInput, style: StyleInput | Sequence[StyleInput], *,
                              size: int | tuple[int, int] | None = 512,
                              style_blend: Sequence[float] | None = None,
                              strength: float = 1.0, preserve_color: str = "none", device: str = "auto",
                              cache_dir: str | os.PathLike | None = None,
                              networks: FeedForward | None = None) -> ImageResult:
    """Feed-forward style transfer of one image in one network pass (no optimization, no VGG).

    Args:
        content: path or tensor (3, H, W) in [0, 1].
        style: a painting (path or tensor) for Ghiasi et al.'s arbitrary network, ``"preset:N"`` (N in
            0..25) for Dumoulin et al.'s 26 styles, or a list of one kind mixed by ``style_blend``
            (embeddings or CIN weights are blended, Ghiasi §4.3 / Dumoulin §5).
        size: output long edge in px, or (width, height); ``None`` keeps the content size. The network
            runs fully convolutionally at that size (tiles above ~1536^2 px).
        strength: in [0, 1]; arbitrary styles interpolate the embedding toward the content's own
            embedding (Ghiasi §4) and add the network's reconstruction error back, scaled by
            ``1 - strength`` (:meth:`~meshstyle.engine.feedforward.ArbitraryStylizer.with_strength`),
            so 0 returns the content and 1 the full style; presets mix pixels with the content.
        preserve_color: ``"luminance"`` keeps the content's chroma (YIQ), ``"histogram"`` recolours the
            style images to the content's colour statistics before prediction (presets: the output is
            recoloured), see :mod:`meshstyle.engine.color`.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``. cache_dir: model cache folder.
        networks: loaded :class:`FeedForward` to reuse across calls.

    Returns:
        :class:`~meshstyle.stylize.image.ImageResult` with ``image`` (3, H, W) in [0, 1] and an empty
        history (``random_weights`` False: the networks are pretrained).

    Raises:
        MeshstyleError: unreadable inputs, bad options, or the ``pretrained`` extra missing.
    """
    if preserve_color not in color.MODES:
        raise MeshstyleError(f"--preserve-color must be one of {', '.join(color.MODES)}, "
                             f"got {preserve_color!r}")
    if not 0.0 <= strength <= 1.0:
        raise MeshstyleError(f"--strength must be in [0, 1], got {strength}")
    nets = networks or FeedForward(resolve_device(device), cache_dir)
    base = _image(content)
    img = resize_tensor(base, _out_size(base, size), mode="bicubic")
    items = list(style) if isinstance(style, list | tuple) else [style]
    recolour = img if preserve_color == "histogram" and not all(is_preset(i) for i in items) else None
    parsed = nets.parse_style(items, style_blend, recolour=recolour)
    out = nets.stylize(img[None], parsed, strength)[0].cpu()
    if preserve_color == "luminance":
        out = color.combine_luminance(out, img)
    elif preserve_color == "histogram" and parsed.preset is not None:
        out = color.match_color_histogram(out, img)
    return ImageResult(image=out.clamp(0, 1))


# --------------------------------------------------------------------------------------------- meshes


def _pad(texture: torch.Tensor, corner_uv: np.ndarray) -> torch.Tensor:
    """(3, H, W) texture whose texels outside the UV islands (grown by one texel) copy the nearest island
    texel, so bilinear sampling near island borders does not blend in unrelated colours."""
    rgb = texture.detach().permute(1, 2, 0).cpu().numpy()
    padded = pad_texture(rgb, island_mask(corner_uv, rgb.shape[:2], grow=1))
    return torch.from_numpy(np.ascontiguousarray(padded)).permute(2, 0, 1).to(texture)


def backproject(images: torch.Tensor, weights: torch.Tensor, views: ViewStack, textures: list[torch.Tensor]
                ) -> list[torch.Tensor]:
    """Weighted average of view colours per texel (nearest texel), a fast initial fit.

    Args:
        images: (V, 3, H, W) colours; weights: (V, 1, H, W) >= 0; views: the :class:`ViewStack` the
            images were rendered through (``supersample`` 1); textures: current (3, H_t, W_t) per part,
            kept where no pixel lands.
    Returns: new textures, same shapes.
    """
    out = []
    for index, tex in enumerate(textures):
        _, th, tw = tex.shape
        sel = (views.part == index) & (weights[:, 0] > 0)
        if not bool(sel.any()):
            out.append(tex.clone())
            continue
        g = views.grid[sel]
        col = ((g[:, 0] + 1) / 2 * tw).floor().long().clamp(0, tw - 1)
        row = ((g[:, 1] + 1) / 2 * th).floor().long().clamp(0, th - 1)
        flat = row * tw + col
        w = weights[:, 0][sel]
        rgb = images.permute(0, 2, 3, 1)[sel]
        num = torch.zeros(th * tw, 3, dtype=tex.dtype).index_add_(0, flat, rgb * w[:, None])
        den = torch.zeros(th * tw, dtype=tex.dtype).index_add_(0, flat, w)
        num = num.t().reshape(1, 3, th, tw)
        den = den.reshape(1, 1, th, tw)
        # push-pull: texels no pixel landed on (texture denser than the renders) take the average of a
        # coarser level, if that level saw their neighbourhood
        pyramid = [(num, den)]
        while min(pyramid[-1][1].shape[-2:]) >= 8 and len(pyramid) < 6:
            n_, d_ = pyramid[-1]
            pyramid.append((F.avg_pool2d(n_, 2, ceil_mode=True) * 4, F.avg_pool2d(d_, 2, ceil_mode=True) * 4))
        fill_n, fill_d = pyramid[-1]
        for n_, d_ in reversed(pyramid[:-1]):
            size = n_.shape[-2:]
            up_n = F.interpolate(fill_n, size=size, mode="nearest")
            up_d = F.interpolate(fill_d, size=size, mode="nearest")
            has = d_ > 0
            fill_n = torch.where(has, n_, up_n / up_d.clamp_min(1e-12) * 1e-3)
            fill_d = torch.where(has, d_, (up_d > 0).to(d_.dtype) * 1e-3)
        new = tex.clone()[None]
        reach = fill_d > 0
        mixed = fill_n / fill_d.clamp_min(1e-12)
        new = torch.where(reach.expand_as(new), mixed, new)
        out.append(new[0])
    return out


def reprojection_error(images: torch.Tensor, weights: torch.Tensor, views: ViewStack, camera_dirs: np.ndarray,
                       bins: int = 128) -> float:
    """Mean colour difference (0-1 scale, mean over RGB) between neighbouring views where they see the
    same surface (StyleMesh's multi-view consistency measure, computed in texture space).

    Each view's pixels are averaged into ``bins`` x ``bins`` texel cells per part (weighted by
    ``weights`` (V, 1, H, W)); for every view and its nearest neighbour by camera direction
    (``camera_dirs`` (V, 3)), cells seen by both are compared. Views that share no cell are skipped.
    """
    v = images.shape[0]
    cells = []
    for k in range(v):
        part = views.part[k]
        g = views.grid[k]
        ok = (part >= 0) & (weights[k, 0] > 0)
        col = ((g[..., 0] + 1) / 2 * bins).floor().long().clamp(0, bins - 1)
        row = ((g[..., 1] + 1) / 2 * bins).floor().long().clamp(0, bins - 1)
        key = (part.clamp_min(0) * bins + row) * bins + col
        key, w, rgb = key[ok], weights[k, 0][ok], images[k].permute(1, 2, 0)[ok]
        n = int(views.part.max().clamp_min(0)) + 1
        num = torch.zeros(n * bins * bins, 3).index_add_(0, key, rgb * w[:, None])
        den = torch.zeros(n * bins * bins).index_add_(0, key, w)
        cells.append((num, den))
    dirs = camera_dirs / np.linalg.norm(camera_dirs, axis=1, keepdims=True)
    cos = dirs @ dirs.T
    np.fill_diagonal(cos, -2)
    errors, total_w = 0.0, 0.0
    for i in range(v):
        j = int(np.argmax(cos[i]))
        (ni, di), (nj, dj) = cells[i], cells[j]
        both = (di > 0.5) & (dj > 0.5)
        if not bool(both.any()):
            continue
        diff = (ni[both] / di[both, None] - nj[both] / dj[both, None]).abs().mean(1)
        wgt = torch.minimum(di[both], dj[both])
        errors += float((diff * wgt).sum())
        total_w += float(wgt.sum())
    return errors / total_w if total_w > 0 else float("nan")


def edge_samples(mesh: TexturedMesh, name: str, samples: int, inset: float
                 ) -> dict[bool, tuple[np.ndarray, np.ndarray]]:
    """UV sample pairs across the edges of part ``name``: ``{True: seam pairs, False: ordinary edges}``,
    each ``(uv_side1, uv_side2)`` of shape (E * samples, 2).

    Edges are matched by vertex positions; an edge whose two faces give it different UVs is a seam.
    Points sit at ``(k + 0.5) / samples`` along the edge, moved ``inset`` (UV units) toward the inside
    of each face; the two points of a pair show the same place on the surface.
    """
    geom = mesh.scene.geometry[name]
    corner_uv = mesh.corner_uv(name)
    key = np.unique(np.round(np.asarray(geom.vertices), 6), axis=0, return_inverse=True)[1].reshape(-1)
    edges: dict[tuple[int, int], list] = {}
    for f, face in enumerate(np.asarray(geom.faces)):
        for a in range(3):
            b, c = (a + 1) % 3, (a + 2) % 3
            ka, kb = key[face[a]], key[face[b]]
            uv_a, uv_b, uv_c = corner_uv[f, a], corner_uv[f, b], corner_uv[f, c]
            if ka > kb:
                ka, kb, uv_a, uv_b = kb, ka, uv_b, uv_a
            edges.setdefault((ka, kb), []).append((uv_a, uv_b, uv_c))
    t = (np.arange(samples) + 0.5) / samples
    groups: dict[bool, tuple[list, list]] = {True: ([], []), False: ([], [])}
    for sides in edges.values():
        if len(sides) != 2:
            continue
        (a1, b1, _), (a2, b2, _) = sides
        is_seam = not (np.abs(a1 - a2).max() < 1e-6 and np.abs(b1 - b2).max() < 1e-6)
        for (a, b, c), out in zip(sides, groups[is_seam]):
            pts = a[None] + t[:, None] * (b - a)[None]
            towards = c[None] - pts
            towards /= np.maximum(np.linalg.norm(towards, axis=1, keepdims=True), 1e-12)
            out.append(pts + inset * towards)
    empty = np.zeros((0, 2))
    return {k: (np.concatenate(v[0]) if v[0] else empty, np.concatenate(v[1]) if v[1] else empty)
            for k, v in groups.items()}


def _pair_grid(side1: np.ndarray, side2: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(uv_to_grid(np.concatenate([side1, side2]))).reshape(1, 1, -1, 2)


def seam_jump(mesh: TexturedMesh, samples: int = 5, inset_texels: float = 1.5) -> dict[str, float]:
    """Mean colour jump (0-1 scale, mean over RGB) across UV seams of the stylizable parts, and across
    ordinary (non-seam) edges as the baseline of the texture's own local variation.

    The texture is sampled on both sides of every edge (:func:`edge_samples`, ``samples`` points per
    edge, ``inset_texels`` inside each face) and the two colours compared. Returns ``{"seam",
    "interior", "ratio"}`` (NaN where there are no such edges); a ratio near 1 means seams are no more
    visible than any other edge.
    """
    seam, interior = [], []
    for name in mesh.stylizable:
        tex = rgb8_to_tensor(mesh.texture(name))
        pairs = edge_samples(mesh, name, samples, inset_texels / max(tex.shape[-2:]))
        for is_seam, (side1, side2) in pairs.items():
            if not len(side1):
                continue
            colours = sample_texture(tex, _pair_grid(side1, side2))[0, :, 0].t()
            half = colours.shape[0] // 2
            (seam if is_seam else interior).append((colours[:half] - colours[half:]).abs().mean(1))

    def mean(values: list) -> float:
        return float(torch.cat(values).mean()) if values else float("nan")

    s, i = mean(seam), mean(interior)
    return {"seam": s, "interior": i, "ratio": s / i if i > 0 else float("nan")}


@dataclass
class _FitOptions:
    """Settings of a feed-forward mesh job; the meaning of each is in :func:`stylize_mesh_feedforward`."""

    views: int = 24
    resolution: int = 384
    rounds: int = 3
    iterations: int = 40
    batch_views: int = 4
    seam_weight: float = 1.0
    lr: float = 0.02
    levels: int = 1
    texture_size: int | None = None
    strength: float = 1.0
    angle_threshold: float = 60.0
    fov: float = 40.0
    distance: float = 1.0
    elevation: tuple[float, float] = (-75.0, 75.0)
    seed: int = 0

    def check(self) -> None:
        """Raise :class:`MeshstyleError` for out-of-range settings."""
        if (not 1 <= self.views <= 1024 or not 32 <= self.resolution <= 4096 or self.rounds < 1
                or self.iterations < 0):
            raise MeshstyleError("need 1 <= views <= 1024, 32 <= resolution <= 4096, rounds >= 1, "
                                 "iterations >= 0")
        if not 0.0 <= self.strength <= 1.0:
            raise MeshstyleError(f"--strength must be in [0, 1], got {self.strength}")


@dataclass
class _Scene:
    """What a mesh job renders through: the views (``stack``, ``weight`` (V, 1, H, W) = mask x angle
    weight, camera directions ``dirs`` (V, 3)) and, per stylizable part, the working texture (3, H_t, W_t),
    its original (width, height), its corner UVs (F, 3, 2) and its seam point pairs (or None)."""

    stack: ViewStack
    weight: torch.Tensor
    dirs: np.ndarray
    textures: list[torch.Tensor]
    sizes: list[tuple[int, int]]
    corner_uvs: list[np.ndarray]
    seam_grids: list[torch.Tensor | None]


def _views(source: TexturedMesh, opts: _FitOptions) -> tuple[ViewStack, torch.Tensor, np.ndarray]:
    """Orbit views of ``source``: the view stack, its pixel weights and the camera directions."""
    center, radius = source.bounding_sphere()
    cameras = orbit_cameras(center, radius, opts.views, fov=opts.fov, distance=opts.distance,
                            elevation=opts.elevation, seed=opts.seed, points=source.points())
    stack = compute_views(source, cameras, [opts.resolution])[0]
    weight = stack.mask * angle_weight(stack.cos_angle, opts.angle_threshold)
    dirs = np.stack([c.position - center for c in cameras])
    return stack, weight, dirs


def _scene(source: TexturedMesh, opts: _FitOptions, timings: dict[str, float]) -> _Scene:
    """Views (timed as ``timings["views"]``) and working textures of ``source``."""
    t = time.perf_counter()
    stack, weight, dirs = _views(source, opts)
    timings["views"] = time.perf_counter() - t
    textures, sizes, seam_grids = [], [], []
    for name in source.stylizable:
        full, tex, _ = working_texture(source, name, opts.texture_size)
        textures.append(tex)
        sizes.append((full.shape[2], full.shape[1]))
        side1, side2 = edge_samples(source, name, 8, 0.5 / max(tex.shape[-2:]))[True]
        seam_grids.append(_pair_grid(side1, side2) if len(side1) else None)
    corner_uvs = [source.corner_uv(name) for name in source.stylizable]
    return _Scene(stack, weight, dirs, textures, sizes, corner_uvs, seam_grids)


def _start_fit(targets: torch.Tensor, scene: _Scene, opts: _FitOptions
               ) -> tuple[list[PlainTexture | PyramidTexture], torch.optim.Optimizer]:
    """Texture parameters initialized by back-projecting ``targets`` (V, 3, H, W), and their Adam."""
    init = backproject(targets, scene.weight, scene.stack, scene.textures)
    init = [_pad(x, uv) for x, uv in zip(init, scene.corner_uvs)]
    params = [PyramidTexture(x, opts.levels) if opts.levels > 1 else PlainTexture(x) for x in init]
    return params, torch.optim.Adam([p for m in params for p in m.parameters()], lr=opts.lr)


def _add_seam_loss(loss: torch.Tensor, params: list, seam_grids: list, weight: float) -> torch.Tensor:
    """``loss`` plus ``weight * mean((tex(uv_1) - tex(uv_2))^2)`` over each part's seam point pairs."""
    for p, grid in zip(params, seam_grids):
        if grid is not None:
            colours = sample_texture(p(), grid)[0, :, 0]
            half = colours.shape[1] // 2
            loss = loss + weight * (colours[:, :half] - colours[:, half:]).pow(2).mean()
    return loss


def _fit_steps(params: list, opt: torch.optim.Optimizer, scene: _Scene, targets: torch.Tensor,
               opts: _FitOptions, gen: torch.Generator) -> None:
    """``opts.iterations`` Adam steps on the weighted pixel loss (+ seam term) of random view batches."""
    for _ in range(opts.iterations):
        idx = torch.randperm(opts.views, generator=gen)[:opts.batch_views]
        opt.zero_grad(set_to_none=True)
        renders = render([p() for p in params], scene.stack.select(idx))
        w = scene.weight[idx]
        loss = ((renders - targets[idx]).pow(2) * w).sum() / (3 * w.sum().clamp_min(1e-8))
        if opts.seam_weight > 0:
            loss = _add_seam_loss(loss, params, scene.seam_grids, opts.seam_weight)
        loss.backward()
        opt.step()
        for p in params:
            p.project_()


def _settle(params: list, scene: _Scene, targets: torch.Tensor) -> tuple[torch.Tensor, float]:
    """Pad plain textures outside their islands, re-render all views; returns the renders (V, 3, H, W)
    and their weighted MSE to ``targets``."""
    with torch.no_grad():
        for p, uv in zip(params, scene.corner_uvs):
            if isinstance(p, PlainTexture):
                p.texels.copy_(_pad(p.texels, uv))
        current = render([p() for p in params], scene.stack)
        wsum = scene.weight.sum().clamp_min(1e-8)
        loss = float(((current - targets).pow(2) * scene.weight).sum() / (3 * wsum))
    return current, loss


def _content_embedding(nets: FeedForward, parsed: _Style, renders: torch.Tensor, strength: float
                       ) -> torch.Tensor | None:
    """The renders' mean embedding (100,) when an arbitrary style is weakened (0 < ``strength`` < 1), else
    None."""
    if parsed.embedding is None or not 0.0 < strength < 1.0:
        return None
    with torch.no_grad():
        return nets.predictor(renders.to(nets.device)).mean(0)


def _run_rounds(nets: FeedForward, parsed: _Style, scene: _Scene, opts: _FitOptions,
                timings: dict[str, float], callback: Callable[[dict], None] | None
                ) -> tuple[list, list[dict]]:
    """Stylize the current renders, fit the texture to them, repeat ``opts.rounds`` times; returns the
    texture parameters and one history dict per round (timings ``stylize`` and ``fit`` accumulate)."""
    gen = torch.Generator().manual_seed(opts.seed)
    with torch.no_grad():
        current = render(scene.textures, scene.stack)
    content_embedding = _content_embedding(nets, parsed, current, opts.strength)
    history: list[dict] = []
    params, opt = None, None
    for rnd in range(opts.rounds):
        t = time.perf_counter()
        targets = nets.stylize(current, parsed, opts.strength, content_embedding).cpu()
        timings["stylize"] += time.perf_counter() - t
        t = time.perf_counter()
        if params is None:
            params, opt = _start_fit(targets, scene, opts)
        _fit_steps(params, opt, scene, targets, opts, gen)
        current, loss_value = _settle(params, scene, targets)
        timings["fit"] += time.perf_counter() - t
        entry = {"round": rnd, "fit_loss": loss_value,
                 "target_reprojection": reprojection_error(targets, scene.weight, scene.stack, scene.dirs),
                 "render_reprojection": reprojection_error(current, scene.weight, scene.stack, scene.dirs)}
        history.append(entry)
        if callback is not None:
            callback(entry)
    return params, history


@dataclass
class _Fitted:
    """A finished feed-forward mesh fit: the loaded ``source``, per-part ``textures`` (3, H, W) in [0, 1]
    at the original texture sizes, round ``history``, the parsed style and ``timings``."""

    source: TexturedMesh
    textures: list[torch.Tensor]
    history: list[dict]
    style: _Style
    timings: dict[str, float]


def _fit_mesh(mesh: TexturedMesh | str | os.PathLike, style, opts: _FitOptions, style_blend, device: str,
              cache_dir, networks: FeedForward | None, callback) -> _Fitted:
    """Load, render, stylize and fit (see :func:`stylize_mesh_feedforward`)."""
    opts.check()
    timings = {"views": 0.0, "stylize": 0.0, "fit": 0.0}
    torch.manual_seed(opts.seed)
    source = TexturedMesh.load(mesh) if not isinstance(mesh, TexturedMesh) else mesh
    if not source.stylizable:
        raise MeshstyleError("the mesh has nothing stylizable (no part with UVs and a texture)")
    nets = networks or FeedForward(resolve_device(device), cache_dir)
    parsed = nets.parse_style(style, style_blend)
    scene = _scene(source, opts, timings)
    params, history = _run_rounds(nets, parsed, scene, opts, timings, callback)
    with torch.no_grad():
        textures = [resize_tensor(_pad(p(), uv), size, mode="bicubic", antialias=False).clamp(0, 1)
                    for p, size, uv in zip(params, scene.sizes, scene.corner_uvs)]
    return _Fitted(source, textures, history, parsed, timings)


def stylize_mesh_feedforward(mesh: TexturedMesh | str | os.PathLike,
                             style: StyleInput | Sequence[StyleInput], *,
                             views: int = 24, resolution: int = 384, rounds: int = 3, iterations: int = 40,
                             batch_views: int = 4, seam_weight: float = 1.0,
                             lr: float = 0.02, levels: int = 1, texture_size: int | None = None,
                             style_blend: Sequence[float] | None = None, strength: float = 1.0,
                             angle_threshold: float = 60.0, fov: float = 40.0, distance: float = 1.0,
                             elevation: tuple[float, float] = (-75.0, 75.0), seed: int = 0,
                             device: str = "auto", cache_dir: str | os.PathLike | None = None,
                             networks: FeedForward | None = None,
                             callback: Callable[[dict], None] | None = None) -> MeshResult:
    """Stylize a mesh's textures with a feed-forward network and a texture fit (no VGG).

    Round 0 renders ``views`` orbit views (``resolution`` px square) of the original texture, stylizes
    each with one embedding (or preset), and initializes the texture by back-projecting the stylized
    renders (weighted mean per texel), then refines the texels (a
    :class:`~meshstyle.engine.texture.PlainTexture`, or a :class:`~meshstyle.engine.texture.PyramidTexture`
    of ``levels`` > 1; the plain one is 4x faster here) with Adam (``iterations`` steps of ``batch_views``
    random views, ``lr``) on the pixel loss ``sum w (render - target)^2 / sum w`` with
    ``w = mask x angle_weight(cos, angle_threshold)``. Each further round re-renders the fitted texture,
    re-stylizes the renders and re-fits, so neighbouring views converge to one painting. ``seam_weight`` > 0
    adds ``seam_weight * mean((tex(uv_1) - tex(uv_2))^2)`` over point pairs on both sides of every UV seam
    (:func:`edge_samples`, half a texel inside each face), so the two islands meet without a colour jump.
    ``strength`` < 1 moves the embedding toward the renders' own mean embedding and fades each view's
    reconstruction error back in, as in :func:`stylize_image_feedforward` (strength 0: the targets are the
    renders themselves; presets: pixel mix).

    Measured on the spot cow with Starry Night at these defaults (scripts/bench_feedforward.py, shared
    2-core CPU, 1 torch thread): 27-36 s, 1.4 GB peak; reprojection error of the stylized views 0.077
    -> 0.052 -> 0.046 over the 3 rounds (fitted texture's renders: 0.011); 16 views at 320 px: 23 s,
    0.059. Seam jump (:func:`seam_jump`) 0.042 against 0.094 across ordinary edges (0.121 without the
    seam term); the input texture's seams: 0.0007.

    Returns:
        :class:`~meshstyle.stylize.mesh.MeshResult`: a new mesh (input unchanged), ``history`` with one
        dict per round (``round``, ``fit_loss`` (final weighted MSE), ``target_reprojection``: reprojection
        error of that round's stylized views, ``render_reprojection``: of the fitted texture's renders),
        then a summary dict (``summary`` True, ``seams_before``/``seams_after`` from :func:`seam_jump`,
        ``provenance``); ``timings`` in seconds (``views``, ``stylize``, ``fit``, ``total``).

    Raises:
        MeshstyleError: unreadable inputs, nothing stylizable, bad options, the ``pretrained`` extra missing.
    """
    t0 = time.perf_counter()
    opts = _FitOptions(views, resolution, rounds, iterations, batch_views, seam_weight, lr, levels,
                       texture_size, strength, angle_threshold, fov, distance, elevation, seed)
    fit = _fit_mesh(mesh, style, opts, style_blend, device, cache_dir, networks, callback)
    out = fit.source.copy()
    for name, texture in zip(fit.source.stylizable, fit.textures):
        out.set_texture(name, tensor_to_rgb8(texture))
    fit.history.append({"summary": True, "seams_before": seam_jump(fit.source), "seams_after": seam_jump(out),
                        "provenance": [provenance(m) for m in fit.style.models]})
    fit.timings["total"] = time.perf_counter() - t0
    return MeshResult(out, fit.history, False, False, fit.timings)


def feedforward_textures(mesh: TexturedMesh, style: StyleInput | Sequence[StyleInput], *,
                         style_blend: Sequence[float] | None = None, strength: float = 1.0, seed: int = 0,
                         device: str = "auto", views: int = 16, resolution: int = 320, rounds: int = 1,
                         iterations: int = 40, cache_dir: str | os.PathLike | None = None,
                         networks: FeedForward | None = None) -> dict[str, torch.Tensor]:
    """Feed-forward textures of ``mesh`` for starting the optimization method (``--init feedforward``).

    Runs the fit of :func:`stylize_mesh_feedforward` (same cameras for the same ``seed``, seam term,
    ``strength`` and ``style_blend`` as there) with fewer views and one round by default, so it is cheap
    next to the optimization that follows (spot cow: a few seconds on 2 CPU cores).

    Args:
        mesh: the loaded mesh (unchanged). style: a painting (path or tensor (3, H, W)), ``"preset:N"``
            or a list of one kind, as in :func:`stylize_image_feedforward`.
        views, resolution: orbit views and their size in px; rounds, iterations: render-stylize-fit
            rounds and Adam steps per round.

    Returns:
        ``{part name: texture (3, H, W) float32 in [0, 1]}`` for every stylizable part, at that part's
        original texture size (H, W of ``mesh.texture(name)``).

    Raises:
        MeshstyleError: nothing stylizable, bad options, unreadable style, the ``pretrained`` extra missing.
    """
    opts = _FitOptions(views=views, resolution=resolution, rounds=rounds, iterations=iterations,
                       strength=strength, seed=seed)
    fit = _fit_mesh(mesh, style, opts, style_blend, device, cache_dir, networks, None)
    return {name: texture.float().cpu() for name, texture in zip(fit.source.stylizable, fit.textures)}


def preset_sheet(image: StyleInput, *, tile: int = 160, columns: int = 7, work: int = 384,
                 device: str = "auto", cache_dir: str | os.PathLike | None = None,
                 networks: FeedForward | None = None):
    """Contact sheet (a Pillow RGB image) of ``image`` and the 26 preset styles (Dumoulin et al. 2017)
    applied to it, each tile labelled with the ``preset:N`` name to pass as ``--style``.

    ``image``: path or tensor (3, H, W) in [0, 1]. The network runs on ``image`` at a long edge of
    ``max(tile, work)`` px and each result is scaled down to the ``tile`` px tile (16..1024): the
    styles were trained for images of a few hundred px, and run on a tiny tile their strokes cover the
    whole picture (so a sheet would not show what a real-size run gives).

    Raises:
        MeshstyleError: unreadable image, bad sizes, or the ``pretrained`` extra missing.
    """
    from PIL import Image, ImageDraw, ImageFont

    from ..core.imageio import tensor_to_pil

    if not 16 <= tile <= 1024 or not 1 <= columns <= 27 or not 16 <= work <= 2048:
        raise MeshstyleError("--tile must be 16..1024 px, --columns 1..27 and work 16..2048 px")
    nets = networks or FeedForward(resolve_device(device), cache_dir)
    img = _image(image, tile)
    w, h = img.shape[2], img.shape[1]
    big = _image(image, max(tile, work))[None]
    styles = [_Style(preset=preset_weights(k).to(nets.device)) for k in range(26)]
    outs = [img] + [resize_tensor(nets.stylize(big, s)[0].cpu(), (w, h)) for s in styles]
    names = ["original"] + [f"preset:{k}" for k in range(26)]
    label, pad = 14, 4
    rows = -(-len(outs) // columns)
    sheet = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + label + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(11)  # the default 10 px size drops the colon after "t" here
    for n, (name, out) in enumerate(zip(names, outs)):
        r, c = divmod(n, columns)
        x, y = pad + c * (w + pad), pad + r * (h + label + pad)
        draw.text((x + 2, y + 1), name, fill=(0, 0, 0), font=font)
        sheet.paste(tensor_to_pil(out), (x, y + label))
    return sheet
