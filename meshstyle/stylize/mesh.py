"""Mesh texture stylization (StyleMesh, Höllein, Johnson & Nießner, CVPR 2022, adapted to assets).

Data flow (docs/ARCHITECTURE.md): cameras around the object -> per-camera depth-level crops ray-cast
once (:func:`~meshstyle.mesh.raycast.compute_level_views`) -> every step, a minibatch of views is
rendered from the texture parameterization and :class:`MultiViewLoss` turns the renders into weighted
style and content terms -> :func:`~meshstyle.engine.optimize.run` -> export.

The texture of every stylizable part is a :class:`~meshstyle.engine.texture.PyramidTexture` (several
resolution levels summed) at a working size (``texture_size``, up to the original's; by default the
original's, at most 1024 texels), initialized to the island-padded original (antialiased when smaller).
Export adds the *change* (working texture minus its start, padded beyond the UV islands, bilinearly
upsampled where smaller) to the full-resolution original, so texels the style left unchanged
keep the original's detail at any resolution.
"""

from __future__ import annotations

import bisect
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from ..core import optiontable
from ..core.errors import MeshstyleError
from ..core.imageio import load_image, long_edge_size, resize_tensor, rgb8_to_tensor, tensor_to_rgb8
from ..core.uv import MipPyramid
from ..core.views import LevelView, ViewStack, render
from ..engine.color import (
    RGB_TO_YIQ,
    DecorrelatedTexture,
    apply_colour_map,
    colour_statistics,
    combine_luminance,
    linear_colour_map,
    luminance,
    partial_colour_map,
    style_colour_basis,
)
from ..engine.losses import ObjectCells, cell_features
from ..engine.objective import Objective, total
from ..engine.optimize import RunSettings, StepInfo, load_parameters, run
from ..engine.options import EngineOptions, normalize_blend
from ..engine.runplan import RunPlan, make_plan
from ..engine.texture import LuminanceChange, PyramidTexture
from ..mesh.cameras import orbit_cameras
from ..mesh.coverage import unseen_share
from ..mesh.padding import island_mask, pad_texture
from ..mesh.raycast import compute_level_views
from ..mesh.textured import TexturedMesh
from .checkpoint import RunRandomness, fingerprint, load_checkpoint, save_checkpoint, style_digest
from .guards import ensure_finite
from .image import COARSE_ITERATION_SHARE
from .options import ENGINE_DEFAULTS, MeshOptions, color_match_on, is_preset, split_overrides
from .parts import narrowed, selected_parts, split_part_styles, style_groups
from .results import MeshResult
from .seams import SeamTerm
from .textures import export_texture, working_edges, working_texture

WEIGHTINGS = optiontable.choices(MeshOptions, "weighting")
log = logging.getLogger("meshstyle")


def _batch(step: int, count: int, batch: int, seed: int) -> list[int]:
    """Views of step ``step``: consecutive slices of a seeded permutation per epoch (resumable)."""
    per_epoch = max(1, math.ceil(count / batch))
    epoch, k = divmod(step, per_epoch)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed * 100003 + epoch)).tolist()
    chosen = order[k * batch:(k + 1) * batch]
    return chosen + order[:batch - len(chosen)] if len(chosen) < batch else chosen


def render_stages(iterations: int, scales: int) -> list[int]:
    """First step of each coarse-to-fine render scale, coarsest first: the coarser scales share the first
    ``COARSE_ITERATION_SHARE`` of the steps equally, the final scale (full resolution) takes the rest; a
    scale that would get no step is dropped.

    >>> render_stages(300, 2), render_stages(300, 3), render_stages(2, 2)
    ([0, 100], [0, 50, 100], [0, 1])
    """
    coarse = round(iterations * COARSE_ITERATION_SHARE) if scales > 1 else 0
    starts = [round(coarse * k / (scales - 1)) for k in range(scales - 1)] + [coarse]
    return sorted(set(min(start, max(iterations - 1, 0)) for start in starts))


def _style_images(style, blend, options: MeshOptions, min_side: int = 16) -> tuple[list[torch.Tensor], list[float]]:
    paths = style if isinstance(style, list | tuple) else [style]
    blend = normalize_blend(blend, len(paths))
    edge = options.style_size or options.resolution
    images, weights = [], []
    for item, b in zip(paths, blend):
        base = load_image(item) if not isinstance(item, torch.Tensor) else item.float()
        for s in options.style_scales:
            w, h = long_edge_size(base.shape[2], base.shape[1], max(16, round(edge * s)))
            if min(w, h) < min_side:  # deep VGG layers need a few pixels: upscale tiny styles
                w, h = round(w * min_side / min(w, h)), round(h * min_side / min(w, h))
            images.append(resize_tensor(base, (w, h), mode="bilinear"))
            weights.append(b / len(options.style_scales))
    return images, weights


#: ``--strength`` below 1 (optimization): the asset's own style statistics come from this many cameras...
OWN_VIEWS = 8
#: ...and at most this many object cells per render and layer (a seeded draw): bounded memory.
OWN_CELLS = 4096


class MultiViewLoss(nn.Module):
    """StyleMesh's multi-view objective: renders of a minibatch of views -> weighted style/content terms.

    For each view and each of its depth levels (:class:`~meshstyle.core.views.LevelView`), the crop is
    rendered and encoded once; then, with ``weighting="gradient"`` (StyleMesh's code):

    * the render's gradient is multiplied per pixel by the level view's weight (coverage x angle weight
      x soft level weight) through a backward hook, so pixels beyond the angle threshold or off-level
      receive no gradient;
    * each style statistic is taken only over the layer's cells whose pixels all have positive weight
      (:func:`~meshstyle.engine.losses.object_cells`), so background never enters the statistics;
    * each level's terms are scaled by its share of the view's object pixels, and views are averaged.

    ``weighting="gram"`` instead puts the per-pixel weight inside the statistics (weighted Gram,
    area-resized to each layer) and uses no hook. Content compares relu4_2 of the render with that of
    the original texture through the same crop, over the object's pixels.

    Args:
        objective: :class:`~meshstyle.engine.objective.Objective` with its style targets set.
        views: per camera, its level views (on the objective's device).
        weighting: ``"gradient"`` or ``"gram"``.
        groups: per-part styles (``--style NAME=painting``): ``[(part indices, style targets), ...]`` with the
            targets of :attr:`StyleLoss.targets <meshstyle.engine.losses.StyleLoss>`; each group's style term
            is taken over the cells of its own parts only and weighted by their share of the level's weighted
            pixels; one encoder pass serves them all. ``None``: one style for every part.
    """

    def __init__(self, objective: Objective, views: list[list[LevelView]], weighting: str = "gradient",
                 groups: list[tuple[list[int], dict]] | None = None):
        super().__init__()
        if weighting not in WEIGHTINGS:
            raise MeshstyleError(f"unknown weighting {weighting!r}; use one of {', '.join(WEIGHTINGS)}")
        self.objective, self.views, self.weighting, self.groups = objective, views, weighting, groups
        self.grey = False  # luminance renders (preserve_color="luminance"), set by the caller
        self.cells = [[ObjectCells(lv.weight > 0) for lv in per_view] for per_view in views]
        self.group_cells = None if groups is None else [
            [[_group_weight(lv, indices, weighting) for indices, _ in groups] for lv in per_view] for per_view in views]
        self.content: list[list[dict | None]] = [[None] * len(per_view) for per_view in views]
        #: per level view, per style group: its own style targets (``--strength`` < 1), else None
        self.own_targets: list[list[list[dict]]] | None = None

    @torch.no_grad()
    def set_content(self, textures: list[torch.Tensor], mixing: tuple[list, float] | None = None) -> None:
        """Content targets: features of ``textures`` (the original) rendered through every level view.

        ``mixing`` = (per style group ``(style features, blend)``, strength s < 1): the same pass also gives
        every level view its own style targets, the statistics of s x style + (1 - s) x that level view's own
        object cells (:meth:`Objective.set_style <meshstyle.engine.objective.Objective.set_style>`), so at
        s = 0 every view starts at its target and the style term is 0 (a target pooled over views would
        not be: views differ, and pulling each toward the pool changes the texture at any strength)."""
        objective = self.objective
        if objective.content is None and mixing is None:
            return
        content_layers = list(objective.options.content_layers) if objective.content is not None else []
        style_layers = list(objective.style.layer_weights) if mixing is not None else []
        if mixing is not None:
            self.own_targets = [[[] for _ in per_view] for per_view in self.views]
        for v, per_view in enumerate(self.views):
            for k, lv in enumerate(per_view):
                feats = objective.encoder(self._seen(render(textures, lv.view)))
                if content_layers:
                    self.content[v][k] = {layer: feats[layer] for layer in content_layers}
                if mixing is None:
                    continue
                sets, strength = mixing
                for g, (style_feats, blend) in enumerate(sets):
                    weight = self.cells[v][k] if self.groups is None else self.group_cells[v][k][g][0]
                    own = cell_features(feats, weight, style_layers)
                    self.own_targets[v][k].append(objective.mixed_targets(style_feats, blend, own, strength))

    @torch.no_grad()
    def own_features(self, textures: list[torch.Tensor], group: int | None = None) -> dict[str, torch.Tensor]:
        """The style-layer features of ``textures`` (the original) over the object cells of up to
        :data:`OWN_VIEWS` evenly spaced cameras (every level view of each, at most :data:`OWN_CELLS` cells
        per render and layer, seeded), pooled as :func:`~meshstyle.engine.losses.cell_features` pseudo-images
        ``{layer: (1, C, 1, P)}``; ``group``: only the cells of that per-part style group's parts."""
        layers = list(self.objective.style.layer_weights)
        picks = sorted({round(i * (len(self.views) - 1) / max(OWN_VIEWS - 1, 1))
                        for i in range(min(OWN_VIEWS, len(self.views)))})
        generator = torch.Generator().manual_seed(self.objective.options.seed)
        pooled: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
        for v in picks:
            for k, lv in enumerate(self.views[v]):
                feats = self.objective.encoder(self._seen(render(textures, lv.view)))
                weight = self.cells[v][k] if group is None else self.group_cells[v][k][group][0]
                for layer, cells in cell_features(feats, weight, layers, OWN_CELLS, generator).items():
                    pooled[layer].append(cells.float())
        return {layer: torch.cat(parts, -1) for layer, parts in pooled.items()}

    def forward(self, textures: list[torch.Tensor], batch: list[int]) -> dict[str, torch.Tensor]:
        """Loss terms ``{"style": ..., "content": ...}`` (scalars) of views ``batch`` for part textures
        (3, H_t, W_t); the mean over views of the share-weighted sum over levels."""
        terms: dict[str, torch.Tensor] = {}
        mips = [MipPyramid(t) for t in textures]  # one mip pyramid per texture for all renders of the step
        for v in batch:
            for k, lv in enumerate(self.views[v]):
                image = self._seen(render(textures, lv.view, mips=mips))
                if self.weighting == "gradient" and image.requires_grad:
                    image.register_hook(lambda grad, w=lv.weight: grad * w)
                if self.groups is not None:
                    level = self._grouped(image, v, k)
                else:
                    if self.own_targets is not None:
                        self.objective.style.targets = self.own_targets[v][k][0]
                    style_weight = self.cells[v][k] if self.weighting == "gradient" else lv.weight
                    level = self.objective(image, style_weight=style_weight, content_targets=self.content[v][k],
                                           content_weight=lv.view.mask)
                for key, value in level.items():
                    terms[key] = terms.get(key, 0.0) + value * (lv.share / len(batch))
        return terms

    def _seen(self, image: torch.Tensor) -> torch.Tensor:
        """The render as the encoder sees it: itself, or its luminance Y on all three channels (``grey``)."""
        if not self.grey:
            return image
        y = torch.einsum("c,nchw->nhw", RGB_TO_YIQ[0].to(image), image)
        return y.unsqueeze(1).expand(-1, 3, -1, -1)

    def _grouped(self, image: torch.Tensor, v: int, k: int) -> dict[str, torch.Tensor]:
        """The terms of one level render with per-part styles: one encoder pass, each group's style
        statistics over its own parts' cells against its own targets, weighted by its pixel share."""
        objective = self.objective
        feats = objective.encoder(image)
        out = {}
        if objective.style is not None and objective.options.style_weight > 0:
            style = image.new_zeros(())
            own = self.own_targets[v][k] if self.own_targets is not None else [None] * len(self.groups)
            for (_, targets), (weight, share), mixed in zip(self.groups, self.group_cells[v][k], own):
                if share > 0:
                    targets = targets if mixed is None else mixed
                    objective.style.targets = targets
                    style = style + share * objective.style(feats, weight)
            out["style"] = objective.options.style_weight * style
        content = self.content[v][k]
        if objective.content is not None and content is not None and objective.options.content_weight > 0:
            out["content"] = objective.options.content_weight * objective.content(
                feats, content, self.views[v][k].view.mask)
        return out


def _group_weight(lv: LevelView, indices: list[int], weighting: str) -> tuple[object, float]:
    """(style weight, share) of the parts ``indices`` in a level view: the pixels wholly covered by those
    parts with positive weight (as :class:`ObjectCells` for ``gradient`` weighting, else the weight map times
    the parts' coverage), and their share of the level's weighted pixels."""
    view = lv.view
    member = torch.isin(view.part, torch.as_tensor(indices, device=view.part.device)).float()[:, None]
    if view.supersample > 1:
        member = F.avg_pool2d(member, view.supersample)
    active = (lv.weight > 0) & (member >= 1 - 1e-6)
    share = float(active.sum()) / max(float((lv.weight > 0).sum()), 1.0)
    return (ObjectCells(active) if weighting == "gradient" else lv.weight * member), share


def _prepare_views(source: TexturedMesh, mesh_options: MeshOptions, plan: RunPlan,
                   progress) -> tuple[list[list[LevelView]], dict]:
    seed = plan.options.seed
    center, radius = source.bounding_sphere()
    cameras = orbit_cameras(center, radius, mesh_options.views, fov=mesh_options.fov, distance=mesh_options.distance,
                            elevation=mesh_options.elevation, seed=seed, points=source.points())
    views, level_plan = compute_level_views(
        source, cameras, mesh_options.resolution, mesh_options.depth_levels, mesh_options.angle_threshold,
        mesh_options.supersample, mesh_options.depth_aware,
        mesh_options.depth_reference_percentile, plan.min_input_size, progress,
        mesh_options.level_blend, mesh_options.crop_tiles, plan.call_cost)
    return [[lv.to(plan.device) for lv in per_view] for per_view in views], asdict(level_plan)


def _run_settings(plan: RunPlan, mesh_options: MeshOptions, checkpoint,
                  restart_steps: tuple[int, ...] = ()) -> RunSettings:
    options = plan.options
    return RunSettings(optimizer=options.optimizer, lr=plan.lr, ema_decay=options.ema or None,
                       line_search=options.line_search, lr_decay=mesh_options.lr_decay,
                       lr_milestones=tuple(mesh_options.lr_milestones),
                       checkpoint=checkpoint, checkpoint_every=mesh_options.checkpoint_every,
                       restart_steps=restart_steps)


@dataclass
class _Selection:
    """What a run restyles: the ``original`` mesh as loaded (the export starts from it), the restyled part
    ``names`` and their style ``groups`` ``[(part names, style items), ...]`` with each group's
    ``style_blend`` in ``blends`` (the user's for the plain styles, equal weights for ``NAME=`` ones)."""

    original: TexturedMesh
    names: list[str]
    groups: list[tuple[list[str], list]]
    blends: list

    @property
    def style(self) -> list:
        """The style items of a one-group run, else every group's items in order."""
        return [item for _, items in self.groups for item in items]

    def indices(self, source: TexturedMesh) -> list[list[int]] | None:
        """Per group, its parts' indices in ``source.stylizable``; None for a one-group run."""
        return None if len(self.groups) == 1 else [[source.stylizable.index(n) for n in names]
                                                   for names, _ in self.groups]

    def onto(self, result: MeshResult) -> MeshResult:
        """``result`` with its mesh put back onto a copy of ``original``: the restyled parts take their new
        textures, every other part keeps its texture (and its bytes on export) and its place in the scene."""
        if self.names == list(self.original.stylizable):
            return result
        full = self.original.copy()
        for name in self.names:
            full.set_texture(name, result.mesh.texture(name), pad=False)
        return replace(result, mesh=full)


def _select(original: TexturedMesh, style, mesh_options: MeshOptions, options: EngineOptions) -> _Selection:
    """The :class:`_Selection` of ``parts`` / ``exclude_parts`` and ``NAME=path`` style items.

    Raises:
        MeshstyleError: an unknown part name (listing the parts), a part without style, or per-part styles
            with an option that takes one style for every part.
    """
    plain, per_part = split_part_styles(style)
    names = selected_parts(original, mesh_options.parts, mesh_options.exclude_parts)
    groups = style_groups(original, names, plain, per_part)
    if len(groups) > 1 and (options.method == "feedforward" or mesh_options.init == "feedforward"):
        raise MeshstyleError("different styles per part (--style NAME=PAINTING) need --method optimize and "
                             "--init original")
    return _Selection(original, names, groups, [options.style_blend if items == plain else None
                                                for _, items in groups])


def _group_images(selection: _Selection, plan: RunPlan, mesh_options: MeshOptions
                  ) -> list[tuple[list[torch.Tensor], list[float]]]:
    """Per style group, its style images and blend weights at ``mesh_options``' style size."""
    return [_style_images(items, blend, mesh_options, plan.min_style_size)
            for (_, items), blend in zip(selection.groups, selection.blends)]


def _pooled(groups: list[tuple[list[torch.Tensor], list[float]]]) -> tuple[list[torch.Tensor], list[float]]:
    """Every group's style images in one list, each group weighing the same in the blend."""
    return ([img for images, _ in groups for img in images],
            [w / len(groups) for _, weights in groups for w in weights])


def _inputs(mesh, style, mesh_options, options, overrides):
    """Validated (mesh options, the run's :class:`~meshstyle.engine.runplan.RunPlan`, source mesh restricted
    to the selected parts, (style images, blend weights: every group's, pooled), :class:`_Selection`)."""
    mesh_over, engine_over = split_overrides(overrides, MeshOptions, EngineOptions)
    mesh_options = replace(mesh_options or MeshOptions(), **mesh_over)
    options = replace(options or ENGINE_DEFAULTS["mesh"], **engine_over).validated()
    mesh_options.validate()
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    if options.method == "optimize" and options.optimizer == "lbfgs" and mesh_options.batch_views < mesh_options.views:
        log.warning("L-BFGS sees another batch of views at each step (--batch-views %d < --views %d), which breaks "
                    "its curvature pairs; Adam (the mesh default) suits minibatches of views",
                    mesh_options.batch_views, mesh_options.views)
    original = TexturedMesh.load(mesh) if not isinstance(mesh, TexturedMesh) else mesh
    if not original.stylizable:
        raise MeshstyleError("the mesh has nothing stylizable (no part with UVs and a texture)")
    selection = _select(original, style, mesh_options, options)
    plan = make_plan(options)
    options = plan.options
    source = narrowed(original, selection.names)
    working_edges(source, mesh_options.texture_size)  # a refused --texture-size stops before any ray casting
    recolour = color_match_on(options, mesh_options.preserve_color)
    if mesh_options.preserve_color != "none":
        selection = _colour_preserving(selection, source, mesh_options.preserve_color, options)
    if options.method == "feedforward":  # the networks read the styles themselves (paths or preset:N)
        return mesh_options, plan, source, ([], []), selection
    if mesh_options.init == "feedforward":
        source = _feedforward_start(source, selection.style, plan)
    styles = _pooled(_group_images(selection, plan, mesh_options))
    if recolour:
        source = colour_matched(source, *styles, strength=options.strength)
    return mesh_options, plan, source, styles, selection


def _island_texels(source: TexturedMesh) -> torch.Tensor:
    """(3, T, 1): the texels inside the UV islands of every stylizable part, pooled, in [0, 1]."""
    inside = []
    for name in source.stylizable:
        texture = rgb8_to_tensor(source.texture(name))
        islands = torch.from_numpy(island_mask(source.corner_uv(name), tuple(texture.shape[-2:])))
        inside.append(texture[:, islands])
    return torch.cat(inside, 1)[..., None]


def _colour_preserving(selection: _Selection, source: TexturedMesh, mode: str, options: EngineOptions) -> _Selection:
    """``preserve_color``: every style image recoloured to the asset (``histogram``: RGB mean and covariance of
    the island texels, Gatys et al. 2017) or made grey (``luminance``: Y matched to theirs). The feed-forward
    method keeps its styles for ``luminance`` and ``preset:N`` styles (no image to recolour): its fitted
    textures are corrected after the fit instead (:func:`feedforward_colours`).

    """
    if options.method == "feedforward" and mode == "luminance":
        return selection
    texels = _island_texels(source)
    target = colour_statistics([texels])

    def recolour(item):
        if is_preset(item):
            return item
        image = load_image(item) if not isinstance(item, torch.Tensor) else item.float()
        if mode == "luminance":
            return luminance(image, like=texels)
        return apply_colour_map(image, linear_colour_map(colour_statistics([image]), target))

    return replace(selection, groups=[(names, [recolour(i) for i in items]) for names, items in selection.groups])


def feedforward_colours(result: MeshResult, source: TexturedMesh, mode: str, presets: bool) -> MeshResult:
    """``preserve_color`` after a feed-forward fit. ``luminance``: every restyled texture keeps the luminance
    (YIQ Y) of the fitted one and the chroma (I, Q) of ``source``'s, as for images (Gatys et al. 2017,
    luminance-only transfer); ``histogram`` with ``preset:N`` styles (``presets``), which have no image to
    recolour before the networks: the fitted textures' island texels get the RGB mean and covariance of the
    source's by one linear colour map; other ``histogram`` runs are returned as they are (their style
    images were recoloured before the networks). Textures (H, W, 3) uint8, the same size in both meshes."""
    if mode == "none" or (mode == "histogram" and not presets):
        return result
    out = result.mesh.copy()
    transform = None
    if mode == "histogram":
        transform = linear_colour_map(colour_statistics([_island_texels(out)]),
                                      colour_statistics([_island_texels(source)]))
    for name in out.stylizable:
        fitted = rgb8_to_tensor(out.texture(name))
        changed = (combine_luminance(fitted, rgb8_to_tensor(source.texture(name))) if transform is None
                   else apply_colour_map(fitted, transform))
        out.set_texture(name, tensor_to_rgb8(changed))
    return replace(result, mesh=out)


def colour_matched(source: TexturedMesh, styles: list[torch.Tensor], blend: list[float],
                   strength: float = 1.0) -> TexturedMesh:
    """A copy of ``source`` whose stylizable textures are recoloured by one linear colour map that gives the
    texels inside their UV islands (all parts pooled) the RGB mean and covariance of the style images
    ``styles`` (3, H, W) pooled with ``blend`` (``color_match``; ARF's colour step, Zhang et al. 2022);
    ``strength`` < 1 goes that part of the way (:func:`~meshstyle.engine.color.partial_colour_map`).
    Gutter texels are mapped alike but do not count."""
    textures = {name: rgb8_to_tensor(source.texture(name)) for name in source.stylizable}
    inside = []
    for name, texture in textures.items():
        islands = torch.from_numpy(island_mask(source.corner_uv(name), tuple(texture.shape[-2:])))
        inside.append(texture[:, islands])
    transform = partial_colour_map(linear_colour_map(colour_statistics(inside), colour_statistics(styles, blend)),
                                   strength)
    out = source.copy()
    for name, texture in textures.items():
        out.set_texture(name, tensor_to_rgb8(apply_colour_map(texture, transform)))
    return out


def _feedforward_start(source: TexturedMesh, style, plan: RunPlan) -> TexturedMesh:
    """A copy of ``source`` whose stylizable textures are the feed-forward networks' fitted textures
    (``init="feedforward"``); the optimization then starts from them and keeps them as content."""
    from .feedforward_mesh import feedforward_textures

    options = plan.options
    start = source.copy()
    for name, texture in feedforward_textures(source, style, style_blend=options.style_blend,
                                              strength=options.strength, seed=options.seed,
                                              device=plan.device).items():
        start.set_texture(name, tensor_to_rgb8(texture))
    return start


def mesh_feedforward(mesh, style, plan: RunPlan, mesh_options: MeshOptions,
                     callback: Callable[[StepInfo], None] | None = None) -> MeshResult:
    """``method="feedforward"``: :func:`~meshstyle.stylize.feedforward_mesh.stylize_mesh_feedforward` with the
    run's options and device (``plan``); ``resolution`` and ``iterations`` left at the optimization defaults
    take the feed-forward job's own (384 px, 40 fitting steps per round)."""
    from .feedforward_mesh import stylize_mesh_feedforward

    options = plan.options
    chosen = {}
    if mesh_options.resolution != MeshOptions().resolution:
        chosen["resolution"] = mesh_options.resolution
    if options.iterations != ENGINE_DEFAULTS["mesh"].iterations:
        chosen["iterations"] = options.iterations
    result = stylize_mesh_feedforward(
        mesh, style, views=mesh_options.views, rounds=mesh_options.rounds, texture_size=mesh_options.texture_size,
        style_blend=options.style_blend, strength=options.strength, angle_threshold=mesh_options.angle_threshold,
        fov=mesh_options.fov, distance=mesh_options.distance, elevation=mesh_options.elevation, seed=options.seed,
        device=plan.device, progress=callback, **chosen)
    ensure_finite(result.history)
    return result


def stylize_mesh(mesh: TexturedMesh | str | os.PathLike, style, *, mesh_options: MeshOptions | None = None,
                 options: EngineOptions | None = None, callback: Callable[[StepInfo], None] | None = None,
                 view_progress: Callable[[], None] | None = None, **overrides) -> MeshResult:
    """Restyle the textures of a mesh so it looks painted from every viewpoint (StyleMesh).

    Args:
        mesh: a :class:`TexturedMesh` or a path to OBJ/GLB.
        style: a style image path or tensor (3, H, W) in [0, 1], or a list to blend.
        mesh_options: :class:`~meshstyle.stylize.options.MeshOptions`; options:
            :class:`~meshstyle.engine.options.EngineOptions` (default: ``ENGINE_DEFAULTS["mesh"]``, the
            CLI's defaults). Keyword overrides go to whichever has the field (``views=8``,
            ``iterations=20``, ``vgg_weights="random"``, ``style_blend=(0.7, 0.3)``...).
        callback: receives a :class:`~meshstyle.engine.optimize.StepInfo` per step.
        view_progress: called ``depth_levels`` times per camera while views are ray-cast.

    ``method="feedforward"`` runs the pretrained networks instead (:func:`mesh_feedforward`);
    ``init="feedforward"`` starts the optimization from their fitted texture.

    Returns:
        :class:`MeshResult` with a new mesh; the input mesh is not modified.

    Raises:
        MeshstyleError: unreadable inputs, nothing stylizable, out-of-range options or a bad checkpoint.
    """
    timings, t0 = {}, time.perf_counter()
    mesh_options, plan, source, (styles, blend), selection = _inputs(mesh, style, mesh_options, options,
                                                                      overrides)
    options, device = plan.options, plan.device
    if options.method == "feedforward":
        fitted = mesh_feedforward(source, selection.style, plan, mesh_options, callback)
        return selection.onto(feedforward_colours(fitted, source, mesh_options.preserve_color,
                                                  all(is_preset(item) for item in selection.style)))
    torch.manual_seed(options.seed)
    firsts = render_stages(options.iterations, _usable_scales(mesh_options, plan))
    stages = [_stage(source, selection, (styles, blend), mesh_options, plan, view_progress, 2 ** k)
              for k in reversed(range(len(firsts)))]
    timings.update(plan=stages[-1].plan, views=time.perf_counter() - t0)
    parts = [working_texture(source, name, mesh_options.texture_size) for name in source.stylizable]
    params = _texture_parameters([start.to(device) for _, start, _ in parts], mesh_options, (styles, blend),
                                 _part_styles(source, selection, stages[-1]))
    objective = Objective(plan)
    current = _StageLoss(objective, stages, firsts, [start.to(device) for _, start, _ in parts], mesh_options,
                         selection.indices(source))
    loss_fn, settings = _checkpointed_loss(source, selection.style, styles, mesh_options, options, params, current,
                                           firsts)
    t = time.perf_counter()
    result = run(_Textures(params), loss_fn, options.iterations, settings, callback)
    timings["optimize"] = time.perf_counter() - t
    ensure_finite(result.history, *(p().detach() for p in params))
    out = _export(source, parts, params, result.averaged)
    timings["total"] = time.perf_counter() - t0
    return selection.onto(MeshResult(out, result.history, result.interrupted, plan.random_weights,
                                     timings, plan.precision, plan.weights_source))


def _part_styles(source: TexturedMesh, selection: _Selection, stage: _Stage
                 ) -> list[tuple[list[torch.Tensor], list[float]]] | None:
    """Per part of ``source``, the style images and blend of its group (for its colour basis); None for a
    one-group run."""
    if stage.groups is None:
        return None
    group_of = {name: g for g, (names, _) in enumerate(selection.groups) for name in names}
    return [stage.groups[group_of[name]] for name in source.stylizable]


def _checkpointed_loss(source: TexturedMesh, style, styles: list[torch.Tensor], mesh_options: MeshOptions,
                       options: EngineOptions, params: nn.ModuleList, current: _StageLoss,
                       firsts: list[int]) -> tuple[Callable[[int], dict[str, torch.Tensor]], RunSettings]:
    """The loss of each step and the :class:`RunSettings` of a run, with its checkpoints: saved with the
    run's fingerprint, EMA and random states (:class:`~meshstyle.stylize.checkpoint.RunRandomness`), and,
    with ``resume``, loaded into ``params`` and the settings; the saved random states are restored at the
    first step, after rebuilding the render scale's loss when the step starts none (rebuilding draws
    numbers the uninterrupted run did not).

    Raises:
        MeshstyleError: a checkpoint that does not belong to this run or is damaged.
    """
    objective = current.objective
    save = mesh_options.checkpoint and mesh_options.checkpoint_every
    style_files = [s for s in (style if isinstance(style, list | tuple) else [style]) if isinstance(s, str | os.PathLike)]
    run_print = fingerprint(source, mesh_options, options, style_digest(styles), style_files) \
        if save or mesh_options.resume else None
    randomness = RunRandomness(objective)
    seams = SeamTerm(source, current.starts) if mesh_options.seam_weight > 0 else None
    start_step, opt_state, ema_state, pending = 0, None, None, None
    if mesh_options.resume:
        start_step, opt_state, extra = load_checkpoint(mesh_options.resume, params, run_print)
        ema_state = _checkpoint_ema(extra, params) if options.ema else None
        pending = extra.get("rng")

    def loss_fn(step: int) -> dict[str, torch.Tensor]:
        nonlocal pending
        if pending is not None:  # resumed: the random states as the uninterrupted run had them at this step
            if step not in firsts:
                current.at(step)
            randomness.restore(pending, mesh_options.resume)
            pending = None
        randomness.step_started(step)
        return _step_terms(current.at(step), params, objective, mesh_options,
                           _batch(step, mesh_options.views, mesh_options.batch_views, options.seed), seams)

    settings = _run_settings(objective.plan, mesh_options, (lambda step, p, opt, averaged: save_checkpoint(
        mesh_options.checkpoint, step, params, opt, run_print,
        {"rng": randomness.state_for(step)} | ({"ema": averaged} if averaged else {})))
        if save else None, restart_steps=tuple(firsts[1:]))
    return loss_fn, replace(settings, start_iteration=start_step, optimizer_state=opt_state, ema_state=ema_state)


def _usable_scales(mesh_options: MeshOptions, plan: RunPlan) -> int:
    """``render_scales``, fewer while the coarsest scale's coarsest depth level would be smaller than the
    encoder's smallest input."""
    smallest = plan.min_input_size
    scales = mesh_options.render_scales
    while scales > 1 and mesh_options.resolution >> (scales - 1 + mesh_options.depth_levels - 1) < smallest:
        scales -= 1
    return scales


@dataclass
class _Stage:
    """One coarse-to-fine render scale: its level views, style images (and blend) and level plan."""

    views: list[list[LevelView]]
    styles: list[torch.Tensor]
    blend: list[float]
    plan: dict
    groups: list[tuple[list[torch.Tensor], list[float]]] | None = None


def _stage(source: TexturedMesh, selection: _Selection, final: tuple[list[torch.Tensor], list[float]],
           mesh_options: MeshOptions, plan: RunPlan, progress, factor: int) -> _Stage:
    """The render scale ``1 / factor``: views at ``resolution / factor`` px and the style images at
    ``style_size / factor`` (the same size on the surface; ``final``, the run's (styles, blend), at factor
    1), per style group when ``selection`` has several; only the final scale reports view progress and
    warns about texture no view sees."""
    scaled = replace(mesh_options, resolution=max(16, mesh_options.resolution // factor),
                     style_size=max(16, (mesh_options.style_size or mesh_options.resolution) // factor))
    views, level_plan = _prepare_views(source, scaled, plan, progress if factor == 1 else None)
    if factor == 1:
        _warn_unseen(source, views)
    groups = _group_images(selection, plan, scaled) if factor != 1 or len(selection.groups) > 1 else None
    styles, blend = final if factor == 1 else _pooled(groups)
    return _Stage(views, styles, blend, level_plan, groups if len(selection.groups) > 1 else None)


#: Share of a part's UV islands that, seen by no view, triggers a warning.
UNSEEN_WARNING = 0.05


def _warn_unseen(source: TexturedMesh, views: list[list[LevelView]]) -> None:
    """Warn about parts whose UV islands are more than :data:`UNSEEN_WARNING` unseen by every view."""
    for name, share in unseen_share(source, views).items():
        if share > UNSEEN_WARNING:
            log.warning("%.0f%% of the texture of %r is seen by no camera within --angle-threshold and gets no "
                        "strokes (widen --elevation or add --views)", 100 * share, name)


class _StageLoss:
    """The :class:`MultiViewLoss` of the render scale a step belongs to (built when the run reaches it,
    also on resume): the objective's style targets switch to that scale's style images."""

    def __init__(self, objective: Objective, stages: list[_Stage], firsts: list[int], starts: list[torch.Tensor],
                 mesh_options: MeshOptions, part_groups: list[list[int]] | None = None):
        self.objective, self.stages, self.firsts, self.starts = objective, stages, firsts, starts
        self.part_groups = part_groups
        self.grey = mesh_options.preserve_color == "luminance"
        self.weighting = mesh_options.weighting
        self.index, self.loss = -1, None

    def at(self, step: int) -> MultiViewLoss:
        index = bisect.bisect_right(self.firsts, step) - 1
        if index != self.index:
            stage = self.stages[index]
            self.loss = MultiViewLoss(self.objective, stage.views, self.weighting,
                                      None if stage.groups is None else [(indices, {}) for indices in self.part_groups])
            self.loss.grey = self.grey
            strength, objective = self.objective.options.strength, self.objective
            styled = strength < 1 and objective.style is not None and objective.options.style_weight > 0
            per_view = styled and objective.style.statistic.per_view_mix
            pooled = styled and not per_view
            sets = stage.groups if stage.groups is not None else [(stage.styles, stage.blend)]
            style_sets = []  # per group: the style images' features (one encoder pass each) and blend
            for g, (images, blend) in enumerate(sets):  # per-part styles: one set of targets per group
                feats = objective.style_features(images)
                own = self.loss.own_features(self.starts, g if stage.groups is not None else None) if pooled else None
                targets = objective.mixed_targets(feats, blend, own, strength)
                if stage.groups is not None:
                    self.loss.groups[g] = (self.part_groups[g], targets)
                style_sets.append((feats, blend))
            self.loss.set_content(self.starts, (style_sets, strength) if per_view else None)
            self.index = index
        return self.loss


def _checkpoint_ema(extra: dict, params: nn.Module) -> list[torch.Tensor] | None:
    """The moving average saved in a checkpoint's ``extra`` (one tensor per parameter of ``params``), or
    None when it holds none (the average then restarts at the resumed parameters).

    Raises:
        MeshstyleError: the saved average does not fit the parameters.
    """
    ema = extra.get("ema") if isinstance(extra, dict) else None
    if ema is None:
        return None
    shapes = [p.shape for p in params.parameters()]
    if not isinstance(ema, list | tuple) or [getattr(e, "shape", None) for e in ema] != shapes:
        raise MeshstyleError("cannot resume: the checkpoint's moving average (--ema) does not fit this run")
    return [e.to(p) for e, p in zip(ema, params.parameters())]  # dtype and device of the parameters


def _texture_parameters(starts: list[torch.Tensor], mesh_options: MeshOptions, styles,
                        part_styles: list | None = None) -> nn.ModuleList:
    """The optimized parameterization of each part's working texture (3, H, W): a texture pyramid, its
    change in a colour basis (``texture_colours``: the style images' principal colour axes, ``style``;
    natural images', ``decorrelated``) unless ``rgb``. ``styles``: (images, blend weights); ``part_styles``:
    per part, its own (images, blend) for its colour basis (per-part styles), else None."""
    basis = style_colour_basis(*styles) if mesh_options.texture_colours == "style" else None
    out = nn.ModuleList()
    for index, start in enumerate(starts):
        if mesh_options.preserve_color == "luminance":  # the change is grey: chroma stays exactly
            out.append(LuminanceChange(start, mesh_options.levels))
            continue
        pyramid = PyramidTexture(start, mesh_options.levels)
        if basis is not None and part_styles is not None:
            basis = style_colour_basis(*part_styles[index])
        out.append(pyramid if mesh_options.texture_colours == "rgb" else
                   DecorrelatedTexture(pyramid, start, None if basis is None else basis.to(start)))
    return out


def _step_terms(loss: MultiViewLoss, params, objective: Objective, mesh_options: MeshOptions,
                batch: list[int], seams: SeamTerm | None = None) -> dict[str, torch.Tensor]:
    """All weighted terms of one step (multi-view loss, pyramid regularizer, seam coupling, total variation)
    and their total."""
    textures = [p() for p in params]
    terms = loss(textures, batch)
    if mesh_options.pyramid_weight > 0:
        terms["pyramid"] = mesh_options.pyramid_weight * sum(p.regularizer() for p in params)
    if seams is not None and len(seams):
        terms["seam"] = mesh_options.seam_weight * seams(textures)
    for tex in textures:
        for key, value in objective.tv(tex).items():
            terms[key] = terms.get(key, 0.0) + value
    return total(terms)


def _export(source: TexturedMesh, parts, params, averaged) -> TexturedMesh:
    """A copy of ``source`` with each part's exported texture (from the EMA parameters when given),
    padded beyond the UV islands."""
    if averaged is not None:
        load_parameters(params, averaged)
    out = source.copy()
    with torch.no_grad():
        for name, (full, start, islands), p in zip(source.stylizable, parts, params):
            small = F.adaptive_max_pool2d(torch.from_numpy(islands)[None, None].float(), tuple(start.shape[-2:]))
            rgb = export_texture(full, start, p().clamp(0, 1).cpu(), small[0, 0].numpy() > 0)
            out.set_texture(name, pad_texture(rgb, islands), pad=False)
    return out


class _Textures(torch.nn.Module):
    """Adapter giving :func:`~meshstyle.engine.optimize.run` one module over all part textures; ``forward``
    returns the first part's texture (used for the returned preview tensor only)."""

    def __init__(self, params: torch.nn.ModuleList):
        super().__init__()
        self.params = params

    def forward(self) -> torch.Tensor:
        return self.params[0]()

    def project_(self) -> None:
        for p in self.params:
            p.project_()


def render_views(mesh: TexturedMesh, stacks: list[ViewStack]) -> torch.Tensor:
    """Renders (V, 3, H, W) of a mesh's current textures through the finest view stack (for tests)."""
    textures = [rgb8_to_tensor(mesh.texture(n)) for n in mesh.stylizable]
    return render(textures, stacks[0])
