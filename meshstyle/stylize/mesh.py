"""Mesh texture stylization (StyleMesh, Höllein, Johnson & Nießner, CVPR 2022, adapted to assets).

The texture of every stylizable part is a :class:`~meshstyle.engine.texture.PyramidTexture` (several
resolution levels summed, initialized to the original texture). Each step renders a minibatch of
precomputed views (:mod:`meshstyle.mesh.raycast`) at several resolution levels, encodes them once per level
with VGG, and compares

* style statistics of the renders, weighted per pixel by the visibility mask, the viewing angle and
  the depth level (:mod:`meshstyle.mesh.weights`), with targets from the style image at several scales;
* content features (relu4_2) with those of renders of the original texture through the same views.

Adam by default; everything is seeded.
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from ..core.errors import MeshstyleError
from ..core.imageio import load_image, long_edge_size, resize_tensor, rgb8_to_tensor, tensor_to_rgb8
from ..core.views import ViewStack, render
from ..engine.features import min_input_size
from ..engine.objective import Objective, total
from ..engine.optimize import StepInfo, run
from ..engine.options import EngineOptions, normalize_blend, resolve_device
from ..engine.texture import PyramidTexture
from ..mesh.cameras import orbit_cameras
from ..mesh.raycast import compute_views
from ..mesh.textured import TexturedMesh
from ..mesh.weights import style_weights
from .checkpoint import fingerprint, load_checkpoint, save_checkpoint, style_digest
from .options import ENGINE_DEFAULTS, MeshOptions, split_overrides

log = logging.getLogger("meshstyle")


@dataclass
class MeshResult:
    """Result of :func:`stylize_mesh`: the stylized ``mesh`` (a new :class:`TexturedMesh`), per-step loss
    ``history``, ``interrupted`` (Ctrl-C), ``random_weights`` and timings in seconds."""

    mesh: TexturedMesh
    history: list[dict[str, float]] = field(default_factory=list)
    interrupted: bool = False
    random_weights: bool = False
    timings: dict[str, float] = field(default_factory=dict)


def _texture_tensor(mesh: TexturedMesh, name: str, size: int | None) -> tuple[torch.Tensor, tuple[int, int]]:
    rgb = mesh.texture(name)
    original = (rgb.shape[1], rgb.shape[0])
    edge = size if size is not None else min(512, max(original))
    return resize_tensor(rgb8_to_tensor(rgb), long_edge_size(*original, edge), mode="bilinear"), original


def _to_rgb8(texture: torch.Tensor, size: tuple[int, int]) -> np.ndarray:
    return tensor_to_rgb8(resize_tensor(texture, size, mode="bicubic", antialias=False))


def _batch(step: int, count: int, batch: int, seed: int) -> list[int]:
    """Views of step ``step``: consecutive slices of a seeded permutation per epoch (resumable)."""
    per_epoch = max(1, math.ceil(count / batch))
    epoch, k = divmod(step, per_epoch)
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed * 100003 + epoch)).tolist()
    chosen = order[k * batch:(k + 1) * batch]
    return chosen + order[:batch - len(chosen)] if len(chosen) < batch else chosen


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


def stylize_mesh(mesh: TexturedMesh | str | os.PathLike, style, *, mesh_options: MeshOptions | None = None, options: EngineOptions | None = None,
                 callback: Callable[[StepInfo], None] | None = None,
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
        view_progress: called once per precomputed view and level.

    Returns:
        :class:`MeshResult` with a new mesh; the input mesh is not modified.

    Raises:
        MeshstyleError: unreadable inputs, nothing stylizable, out-of-range options or a bad checkpoint.
    """
    mesh_over, engine_over = split_overrides(overrides, MeshOptions, EngineOptions)
    mesh_options = replace(mesh_options or MeshOptions(), **mesh_over)
    options = replace(options or ENGINE_DEFAULTS["mesh"], **engine_over).validated()
    mesh_options.validate()
    timings = {}
    t0 = time.perf_counter()
    source = TexturedMesh.load(mesh) if not isinstance(mesh, TexturedMesh) else mesh
    if not source.stylizable:
        raise MeshstyleError("the mesh has nothing stylizable (no part with UVs and a texture)")
    styles, blend = _style_images(style, options.style_blend, mesh_options,
                                  min_input_size(list(options.style_layers), options.arch))
    torch.manual_seed(options.seed)
    device = resolve_device(options.device)

    center, radius = source.bounding_sphere()
    cameras = orbit_cameras(center, radius, mesh_options.views, fov=mesh_options.fov, distance=mesh_options.distance,
                            elevation=mesh_options.elevation, seed=options.seed, points=source.points())
    resolutions = [mesh_options.resolution >> k for k in range(mesh_options.depth_levels)]
    t = time.perf_counter()
    stacks = compute_views(source, cameras, resolutions, mesh_options.supersample, view_progress)
    weights = style_weights(stacks, mesh_options.angle_threshold, mesh_options.depth_aware)
    stacks = [s.to(device) for s in stacks]
    weights = [w.to(device) for w in weights]
    timings["views"] = time.perf_counter() - t

    originals, params = [], []
    for name in source.stylizable:
        tex, size = _texture_tensor(source, name, mesh_options.texture_size)
        originals.append(size)
        params.append(PyramidTexture(tex.to(device), mesh_options.levels))
    param = torch.nn.ModuleList(params)

    objective = Objective(options, device)
    objective.set_style(styles, blend)
    with torch.no_grad():
        base = [p() for p in params]
        content = [objective.content_targets(render(base, stacks[0].select([v]))) for v in range(mesh_options.views)]
    content_targets = {k: torch.cat([c[k] for c in content]) for k in options.content_layers}

    start_step, opt_state = 0, None
    run_print = fingerprint(source, mesh_options, options, style_digest(styles))
    if mesh_options.resume:
        start_step, opt_state, _ = load_checkpoint(mesh_options.resume, param, run_print)

    module = _Textures(param)

    def loss_fn(step: int) -> dict[str, torch.Tensor]:
        idx = _batch(step, mesh_options.views, mesh_options.batch_views, options.seed)
        textures = [p() for p in params]
        terms: dict[str, torch.Tensor] = {}
        for level, (stack, weight) in enumerate(zip(stacks, weights)):
            w = weight[idx]
            if level > 0 and not bool(w.any()):
                continue
            renders = render(textures, stack.select(idx))
            level_terms = objective(renders, style_weight=w,
                                    content_targets={k: v[idx] for k, v in content_targets.items()} if level == 0 else None,
                                    content_weight=stack.mask[idx] if level == 0 else None)
            for key, value in level_terms.items():
                terms[key] = terms.get(key, 0.0) + value
        if mesh_options.pyramid_weight > 0:
            terms["pyramid"] = mesh_options.pyramid_weight * sum(p.regularizer() for p in params)
        for tex in textures:
            for key, value in objective.tv(tex).items():
                terms[key] = terms.get(key, 0.0) + value
        return total(terms)

    def checkpoint(step, p, opt):
        save_checkpoint(mesh_options.checkpoint, step, param, opt, run_print)

    t = time.perf_counter()
    result = run(module, loss_fn, options.iterations, optimizer=options.optimizer, lr=options.lr,
                 ema_decay=options.ema or None, callback=callback, start_iteration=start_step,
                 optimizer_state=opt_state,
                 checkpoint=checkpoint if mesh_options.checkpoint and mesh_options.checkpoint_every else None,
                 checkpoint_every=mesh_options.checkpoint_every)
    timings["optimize"] = time.perf_counter() - t
    if mesh_options.checkpoint and mesh_options.checkpoint_every:
        save_checkpoint(mesh_options.checkpoint, result.steps, param, None, run_print)

    out = source.copy()
    with torch.no_grad():
        for name, p, size in zip(source.stylizable, params, originals):
            out.set_texture(name, _to_rgb8(p().detach(), size))
    timings["total"] = time.perf_counter() - t0
    return MeshResult(out, result.history, result.interrupted, objective.encoder.random_weights, timings)


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
