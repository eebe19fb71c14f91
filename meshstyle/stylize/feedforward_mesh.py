"""The feed-forward mesh job: render the views with the original texture, stylize every render with
the same embedding, fit the texture to the stylized renders through the differentiable renderer (pixel
loss weighted by mask x angle weight), then re-render, re-stylize and re-fit for a few rounds, so the
views agree (docs/ARCHITECTURE.md, "feed-forward" path).

- :func:`stylize_mesh_feedforward`: the job (``meshstyle mesh --method feedforward``).
- :func:`feedforward_textures`: the same fit, one round by default, returning float textures to start the
  optimization method from (``--init feedforward``).

Quality measures of each round come from :mod:`meshstyle.stylize.mesh_quality`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from ..core import optiontable
from ..core.errors import MeshstyleError
from ..core.imageio import resize_tensor, tensor_to_rgb8
from ..core.uv import sample_texture
from ..core.views import ViewStack, render
from ..engine.optimize import StepInfo
from ..engine.options import EngineOptions, resolve_device
from ..engine.pretrained import provenance
from ..engine.texture import PlainTexture, PyramidTexture
from ..mesh.cameras import orbit_cameras
from ..mesh.padding import island_mask, pad_texture
from ..mesh.raycast import compute_views
from ..mesh.textured import TexturedMesh
from ..mesh.weights import angle_weight
from .feedforward import FeedForward, ParsedStyle, StyleInput, shared_networks
from .mesh_quality import edge_samples, pair_grid, reprojection_error, seam_jump
from .options import ENGINE_DEFAULTS, MeshOptions
from .results import MeshResult
from .textures import FIT_EDGE, working_texture


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


_MESH = MeshOptions()
_ENGINE = ENGINE_DEFAULTS["mesh"]
#: Options of the optimization's tables that the feed-forward job shares (their defaults and ranges).
_SHARED = {MeshOptions: ("views", "resolution", "rounds", "texture_size", "angle_threshold", "fov", "distance",
                         "elevation"), EngineOptions: ("strength", "seed")}
#: The smallest render the networks take, px.
MIN_RESOLUTION = 32


@dataclass
class _FitOptions:
    """Settings of a feed-forward mesh job; the meaning of each is in :func:`stylize_mesh_feedforward`.

    The settings it shares with the optimization take their defaults and ranges from
    :class:`~meshstyle.stylize.options.MeshOptions` and :class:`~meshstyle.engine.options.EngineOptions`;
    the fit's own (render size, Adam steps and rate, batch, seam weight, texture levels) are set here: the
    networks were trained near 384 px, and a plain texture fitted with 40 steps per round suffices."""

    views: int = _MESH.views
    resolution: int = 384
    rounds: int = _MESH.rounds
    iterations: int = 40
    batch_views: int = 4
    seam_weight: float = 1.0
    lr: float = 0.02
    levels: int = 1
    texture_size: int | None = _MESH.texture_size
    strength: float = _ENGINE.strength
    angle_threshold: float = _MESH.angle_threshold
    fov: float = _MESH.fov
    distance: float = _MESH.distance
    elevation: tuple[float, float] = _MESH.elevation
    seed: int = _ENGINE.seed

    def check(self) -> None:
        """Raise :class:`MeshstyleError` (one line) for out-of-range settings: the shared ones by the
        option tables, the fit's own here."""
        for table, names in _SHARED.items():
            values = {name: getattr(self, name) for name in names}
            optiontable.check(replace(_MESH if table is MeshOptions else _ENGINE, **values))
        if self.resolution < MIN_RESOLUTION:
            raise MeshstyleError(f"--resolution must be at least {MIN_RESOLUTION} px for the feed-forward "
                                 f"networks, got {self.resolution}")
        if self.iterations < 0 or self.batch_views < 1 or not 1 <= self.levels <= 8 or self.lr <= 0 \
                or self.seam_weight < 0:
            raise MeshstyleError("need iterations >= 0, batch_views >= 1, 1 <= levels <= 8, lr > 0 and "
                                 "seam_weight >= 0")


_FIT = _FitOptions()


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


class _Progress:
    """The job's work units for a :class:`~meshstyle.engine.optimize.StepInfo` callback: the views ray-cast,
    then per round the views stylized and the fit steps (one unit each). Each of those phases is a stage
    (``stage_starts``): a unit of one costs something else than a unit of another, so a time-left
    estimate comes from the last round's fit only."""

    def __init__(self, callback: Callable[[StepInfo], None] | None, opts: _FitOptions):
        v, n = opts.views, opts.iterations
        self.callback, self.done, self.total = callback, 0, v + opts.rounds * (v + n)
        self.stages = tuple(v + r * (v + n) + k for r in range(opts.rounds) for k in (0, v))
        self.start = time.perf_counter()

    def open(self) -> None:
        """Report 0 units done (the bar appears before the first unit)."""
        self._report({})

    def __call__(self, count: int = 1, losses: dict[str, float] | None = None) -> None:
        for _ in range(count):
            self.done += 1
            self._report(losses or {})

    def _report(self, losses: dict[str, float]) -> None:
        if self.callback is not None:
            self.callback(StepInfo(0, 1, self.done, self.total, losses, time.perf_counter() - self.start,
                                   None, self.stages))


def _views(source: TexturedMesh, opts: _FitOptions, progress: _Progress
           ) -> tuple[ViewStack, torch.Tensor, np.ndarray]:
    """Orbit views of ``source``: the view stack, its pixel weights and the camera directions."""
    center, radius = source.bounding_sphere()
    cameras = orbit_cameras(center, radius, opts.views, fov=opts.fov, distance=opts.distance,
                            elevation=opts.elevation, seed=opts.seed, points=source.points())
    stack = compute_views(source, cameras, [opts.resolution], progress=progress)[0]
    weight = stack.mask * angle_weight(stack.cos_angle, opts.angle_threshold)
    dirs = np.stack([c.position - center for c in cameras])
    return stack, weight, dirs


def _scene(source: TexturedMesh, opts: _FitOptions, timings: dict[str, float], progress: _Progress) -> _Scene:
    """Views (timed as ``timings["views"]``) and working textures of ``source``."""
    t = time.perf_counter()
    stack, weight, dirs = _views(source, opts, progress)
    timings["views"] = time.perf_counter() - t
    textures, sizes, seam_grids = [], [], []
    for name in source.stylizable:
        full, tex, _ = working_texture(source, name, opts.texture_size, FIT_EDGE)
        textures.append(tex)
        sizes.append((full.shape[2], full.shape[1]))
        side1, side2 = edge_samples(source, name, 8, 0.5 / max(tex.shape[-2:]))[True]
        seam_grids.append(pair_grid(side1, side2) if len(side1) else None)
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
               opts: _FitOptions, gen: torch.Generator, progress: _Progress) -> None:
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
        progress(1, {"fit": float(loss.detach())})


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


def _content_embedding(nets: FeedForward, parsed: ParsedStyle, renders: torch.Tensor, strength: float
                       ) -> torch.Tensor | None:
    """The renders' mean embedding (100,) when an arbitrary style is weakened (0 < ``strength`` < 1), else
    None."""
    if parsed.embedding is None or not 0.0 < strength < 1.0:
        return None
    with torch.no_grad():
        return nets.predictor(renders.to(nets.device)).mean(0)


def _run_rounds(nets: FeedForward, parsed: ParsedStyle, scene: _Scene, opts: _FitOptions,
                timings: dict[str, float], callback: Callable[[dict], None] | None, progress: _Progress
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
        targets = nets.stylize(current, parsed, opts.strength, content_embedding, progress=progress).cpu()
        timings["stylize"] += time.perf_counter() - t
        t = time.perf_counter()
        if params is None:
            params, opt = _start_fit(targets, scene, opts)
        _fit_steps(params, opt, scene, targets, opts, gen, progress)
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
    style: ParsedStyle
    timings: dict[str, float]


def _fit_mesh(mesh: TexturedMesh | str | os.PathLike, style, opts: _FitOptions, style_blend, device: str | torch.device,
              cache_dir, networks: FeedForward | None, callback, step_callback=None) -> _Fitted:
    """Load, render, stylize and fit (see :func:`stylize_mesh_feedforward`)."""
    opts.check()
    progress = _Progress(step_callback, opts)
    progress.open()
    timings = {"views": 0.0, "stylize": 0.0, "fit": 0.0}
    torch.manual_seed(opts.seed)
    source = TexturedMesh.load(mesh) if not isinstance(mesh, TexturedMesh) else mesh
    if not source.stylizable:
        raise MeshstyleError("the mesh has nothing stylizable (no part with UVs and a texture)")
    nets = networks or shared_networks(resolve_device(device), cache_dir)
    parsed = nets.parse_style(style, style_blend)
    scene = _scene(source, opts, timings, progress)
    params, history = _run_rounds(nets, parsed, scene, opts, timings, callback, progress)
    with torch.no_grad():
        textures = [resize_tensor(_pad(p(), uv), size, mode="bicubic", antialias=False).clamp(0, 1)
                    for p, size, uv in zip(params, scene.sizes, scene.corner_uvs)]
    return _Fitted(source, textures, history, parsed, timings)


def stylize_mesh_feedforward(mesh: TexturedMesh | str | os.PathLike,
                             style: StyleInput | Sequence[StyleInput], *,
                             views: int = _FIT.views, resolution: int = _FIT.resolution,
                             rounds: int = _FIT.rounds, iterations: int = _FIT.iterations,
                             batch_views: int = _FIT.batch_views, seam_weight: float = _FIT.seam_weight,
                             lr: float = _FIT.lr, levels: int = _FIT.levels, texture_size: int | None = _FIT.texture_size,
                             style_blend: Sequence[float] | None = None, strength: float = _FIT.strength,
                             angle_threshold: float = _FIT.angle_threshold, fov: float = _FIT.fov,
                             distance: float = _FIT.distance, elevation: tuple[float, float] = _FIT.elevation,
                             seed: int = _FIT.seed, device: str | torch.device = _ENGINE.device, cache_dir: str | os.PathLike | None = None,
                             networks: FeedForward | None = None,
                             callback: Callable[[dict], None] | None = None,
                             progress: Callable[[StepInfo], None] | None = None) -> MeshResult:
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
    renders themselves; presets: pixel mix). ``callback`` receives each round's history dict when the round
    ends; ``progress`` a :class:`~meshstyle.engine.optimize.StepInfo` at the start (0 done) and after every
    view ray-cast, view stylized and fit step.

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
    fit = _fit_mesh(mesh, style, opts, style_blend, device, cache_dir, networks, callback, progress)
    out = fit.source.copy()
    for name, texture in zip(fit.source.stylizable, fit.textures):
        out.set_texture(name, tensor_to_rgb8(texture))
    fit.history.append({"summary": True, "seams_before": seam_jump(fit.source), "seams_after": seam_jump(out),
                        "provenance": [provenance(m) for m in fit.style.models]})
    fit.timings["total"] = time.perf_counter() - t0
    return MeshResult(out, fit.history, False, False, fit.timings)


def feedforward_textures(mesh: TexturedMesh, style: StyleInput | Sequence[StyleInput], *,
                         style_blend: Sequence[float] | None = None, strength: float = _FIT.strength,
                         seed: int = _FIT.seed, device: str | torch.device = _ENGINE.device, views: int = 16, resolution: int = 320, rounds: int = 1,
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

