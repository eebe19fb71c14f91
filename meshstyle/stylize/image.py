"""2D commands on the shared engine: style transfer, texture synthesis and content reconstruction.

A 2D image is a texture seen through one identity view (docs/ARCHITECTURE.md), so these functions optimize a
texture parameterization (:func:`parameterization`: with L-BFGS a preconditioning Laplacian pyramid, with
Adam the texels) with the same :class:`~meshstyle.engine.objective.Objective` and
:func:`~meshstyle.engine.optimize.run` loop the mesh command uses. Runs go coarse to fine (Gatys et al. 2017,
"coarse-to-fine"): every scale's style target is the final scale's style image downsampled; a style
transfer that starts from the content starts each finer scale from the content plus the upsampled
*change* of the coarser scale (:func:`upsampled_change`), other runs from the upsampled result; with
L-BFGS the coarser scales run a third of the steps (:func:`scale_iterations`).

References: Gatys, Ecker & Bethge, Texture Synthesis Using CNNs (NIPS 2015) and Image Style Transfer
Using CNNs (CVPR 2016); Gatys et al., Controlling Perceptual Factors in Neural Style Transfer (CVPR 2017).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import replace

import torch

from ..core.errors import MeshstyleError
from ..core.imageio import load_image, long_edge_size, resize_tensor
from ..core.views import ViewStack, render
from ..engine import color
from ..engine.losses import ObjectCells, cell_features
from ..engine.objective import Objective, total
from ..engine.optimize import RunResult, StepInfo, run
from ..engine.options import EngineOptions, normalize_blend
from ..engine.runplan import RunPlan, make_plan
from ..engine.texture import PlainTexture, PyramidTexture
from . import masks
from .guards import ensure_finite
from .options import ImageOptions, color_match_on, merged, parse_size, split_overrides
from .results import ImageResult

ImageInput = str | os.PathLike | torch.Tensor
MIN_SCALE_EDGE = 128
#: L-BFGS optimizes images through a Laplacian pyramid of this many levels whose coarser levels enter
#: the sum with this gain (:class:`~meshstyle.engine.texture.PyramidTexture`): a preconditioner that
#: doubles the step of each coarser band. Measured (random VGG, astronaut + Starry Night, 256 px, one
#: scale, style weight 1): the textbook loop's 60-step loss is reached after 41 steps (plain texels: not
#: in 60, gain 1: 52, gain 1/2: 44); at 128 px after 60 steps the loss is 22-69 % lower than with plain
#: texels for image (style weight 1 and 10), texture and reconstruct.
LBFGS_PYRAMID = {"levels": 4, "gain": 2 ** -0.5}
#: With L-BFGS each coarser coarse-to-fine scale runs this share of ``iterations`` (the final scale runs
#: them all): a coarse step costs a quarter of a finer one and was worth no more than that to the final
#: result (256 px, pyramid, an earlier variant of the loop: the textbook's 60-step loss reached at
#: 0.63-0.67 of its VGG cost with 20 coarse steps, 0.75 with 60; scripts/bench_image.py has today's figures).
COARSE_ITERATION_SHARE = 1 / 3
#: A 2D run shows the encoder the image inside a mirrored frame this many px wide (:func:`mirrored`), and
#: takes the style statistics and the content loss over the image's own cells only: the encoder's zero
#: padding (and the MobileNetV2's one-sided stride-2 padding, which leaves the top row and left column a
#: quarter of the gradient of the others) then falls on the frame, not on the image's outer pixels,
#: which otherwise turned into bright or coloured 1-4 px lines along the edges (issue 27 item 6;
#: measured in tests/test_edges.py). 16 px: one cell of relu5_1 (VGG) at every scale.
EDGE_MARGIN = 16


def _as_image(item: ImageInput, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """A path or a tensor (3, H, W) as a tensor, resized to a long edge (int) or (width, height)."""
    if isinstance(item, torch.Tensor):
        img = item.detach().float()
        if img.dim() == 4:
            img = img[0]
        if img.dim() != 3 or img.shape[0] != 3:
            raise MeshstyleError(f"image tensors must be (3, H, W), got {tuple(item.shape)}")
        img = img.clamp(0, 1)
        if size is None:
            return img
        return resize_tensor(img, long_edge_size(img.shape[2], img.shape[1], size) if isinstance(size, int) else size)
    return load_image(item, size)


def scale_sizes(width: int, height: int, scales: int | None) -> list[tuple[int, int]]:
    """Sizes (width, height) of a coarse-to-fine run ending at (width, height), halving each time.

    ``scales=None`` picks as many as keep the coarsest long edge >= 128 px (at most 4).
    """
    long_edge = max(width, height)
    if scales is None:
        scales = 1 + max(0, min(3, int(math.floor(math.log2(long_edge / MIN_SCALE_EDGE)))))
    if scales < 1:
        raise MeshstyleError(f"--scales must be >= 1, got {scales}")
    sizes = []
    for k in reversed(range(scales)):
        f = 2.0 ** -k
        sizes.append((max(16, round(width * f)), max(16, round(height * f))))
    return sizes


def _style_size(size: tuple[int, int], style: torch.Tensor, style_scale: float) -> tuple[int, int]:
    edge = max(16, round(max(size) * style_scale))
    return long_edge_size(style.shape[2], style.shape[1], edge)


def _noise(size: tuple[int, int], seed: int) -> torch.Tensor:
    w, h = size
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(3, h, w, generator=gen)


def _initial(init: str | ImageInput, size: tuple[int, int], content: torch.Tensor | None, seed: int) -> torch.Tensor:
    if isinstance(init, str) and init == "noise":
        return _noise(size, seed)
    if isinstance(init, str) and init == "content":
        if content is None:
            raise MeshstyleError("--init content needs a content image")
        return resize_tensor(content, size)
    return resize_tensor(_as_image(init), size)


def scale_iterations(iterations: int, scales: int, optimizer: str) -> list[int]:
    """Steps of each coarse-to-fine scale, coarse first: ``iterations`` at the final scale; with L-BFGS,
    ``ceil(iterations * COARSE_ITERATION_SHARE)`` at each coarser one (Adam: ``iterations`` everywhere).

    >>> scale_iterations(300, 3, "lbfgs"), scale_iterations(300, 2, "adam")
    ([100, 100, 300], [300, 300])
    """
    coarse = math.ceil(iterations * COARSE_ITERATION_SHARE) if optimizer == "lbfgs" else iterations
    return [coarse] * (scales - 1) + [iterations]


def upsampled_change(result: torch.Tensor, start: torch.Tensor, finer_start: torch.Tensor) -> torch.Tensor:
    """Start of a finer coarse-to-fine scale: ``finer_start + up(result - start)``, clamped to [0, 1].

    ``result`` and ``start`` (3, h, w) are the coarser scale's result and starting image, ``finer_start``
    (3, H, W) the finer scale's own starting image (the content at that size); ``up`` is bilinear. The
    coarser scale's *change* is carried up, so the content's fine detail survives (a plainly upsampled
    coarse result is blurred, and its missing detail raised the finer scale's first loss 2.5x on the
    astronaut at style weight 1). Measured (scripts/bench_image.py, 256 px, random VGG, with the style
    targets of every scale downsampled from the final one): cost ratio at style weight 10 0.617 instead of
    0.783 (astronaut) and 0.433 instead of 0.467 (chelsea); at style weight 1 unchanged (0.917) and 0.283
    instead of 0.30.

    >>> x = torch.full((3, 2, 2), 0.5)
    >>> upsampled_change(x + 0.1, x, torch.full((3, 4, 4), 0.2))[0, 0, 0].item()  # doctest: +ELLIPSIS
    0.3...
    """
    delta = torch.nn.functional.interpolate((result - start)[None], size=tuple(finer_start.shape[-2:]),
                                            mode="bilinear", align_corners=False)[0]
    return (finer_start + delta).clamp(0, 1)


def _margin(height: int, width: int, margin: int) -> int:
    """The frame actually used: ``margin``, at most a quarter of the short side (a 32 px image gets 8 px)."""
    return max(0, min(margin, min(height, width) // 4))


def mirrored(image: torch.Tensor, margin: int = EDGE_MARGIN) -> torch.Tensor:
    """``image`` (N, 3, H, W) inside a frame of ``margin`` px (at most min(H, W) / 4) mirrored from it
    (``reflect`` padding: the frame repeats the image's rows and columns next to the edge, without the
    edge itself); differentiable, so the frame's gradient flows back into the pixels it copies."""
    m = _margin(image.shape[-2], image.shape[-1], margin)
    return torch.nn.functional.pad(image, (m, m, m, m), mode="reflect") if m else image


def inside_mask(height: int, width: int, margin: int = EDGE_MARGIN, device=None) -> torch.Tensor:
    """(1, 1, H + 2m, W + 2m) float mask of a :func:`mirrored` image: 1 on the image, 0 on the frame."""
    m = _margin(height, width, margin)
    mask = torch.zeros(1, 1, height + 2 * m, width + 2 * m, device=device)
    mask[..., m:m + height, m:m + width] = 1
    return mask


def parameterization(start: torch.Tensor, optimizer: str) -> torch.nn.Module:
    """What a 2D run optimizes, starting from the image ``start`` (3, H, W) in [0, 1]: for L-BFGS a
    :class:`~meshstyle.engine.texture.PyramidTexture` with :data:`LBFGS_PYRAMID` (unconstrained, only
    the output is clamped), for Adam the texels themselves (clamped after each step)."""
    if optimizer == "lbfgs":
        return PyramidTexture(start, **LBFGS_PYRAMID)
    return PlainTexture(start)


@torch.no_grad()
def _own_features(objective: Objective, framed: torch.Tensor | None, cells: ObjectCells) -> dict | None:
    """The content's own style-layer features over its cells (the pseudo-images of
    :func:`~meshstyle.engine.losses.cell_features`) when ``--strength`` < 1 blends the style targets toward
    them, else None (no content, or full strength)."""
    if framed is None or objective.options.strength >= 1.0 or objective.style is None:
        return None
    layers = list(objective.style.layer_weights)
    return cell_features(objective.encoder(framed), cells, layers)


def _run_scales(objective: Objective, options: EngineOptions, sizes: list[tuple[int, int]],
                content: torch.Tensor | None, styles: list[torch.Tensor], blend: list[float],
                style_scale: float, init, callback, on_checkpoint, save_every: int) -> tuple[torch.Tensor, list[RunResult]]:
    device = objective.device
    current = None
    results = []
    steps = scale_iterations(options.iterations, len(sizes), options.optimizer)
    # every scale's style target is the final scale's style image downsampled (Gatys et al. 2017)
    finals = [resize_tensor(s, _style_size(sizes[-1], s, style_scale)) for s in styles]
    keep_detail = content is not None and isinstance(init, str) and init == "content"
    previous_start = None
    for scale, size in enumerate(sizes):
        framed = None if content is None else mirrored(resize_tensor(content, size)[None].to(device))
        inside = inside_mask(size[1], size[0], device=device)
        cells = ObjectCells(inside)  # style statistics over the image's own cells, not the mirrored frame
        if styles:
            objective.set_style([resize_tensor(s, _style_size(size, s, style_scale)) for s in finals], blend,
                                _own_features(objective, framed, cells), options.strength)
        targets = None
        if framed is not None and objective.content is not None:
            targets = objective.content_targets(framed)
        if current is None:
            start = _initial(init, size, content, options.seed)
        elif keep_detail:
            start = upsampled_change(current, previous_start, resize_tensor(content, size))
        else:
            start = resize_tensor(current, size)
        previous_start = start
        param = parameterization(start.to(device), options.optimizer)

        view = ViewStack.identity(size[1], size[0]).to(device)  # an image is one identity view

        def loss_fn(step, param=param, targets=targets, view=view, cells=cells, inside=inside):
            image = param()
            terms = objective(mirrored(render([image], view)), style_weight=cells, content_targets=targets,
                              content_weight=inside)
            terms.update(objective.tv(image))
            return total(terms)

        def checkpoint(step, p, opt, averaged):
            on_checkpoint(p().detach().clamp(0, 1).cpu())

        result = run(param, loss_fn, steps[scale], optimizer=options.optimizer, lr=objective.plan.lr,
                     line_search=options.line_search,
                     ema_decay=options.ema or None, callback=callback, scale=scale, scales=len(sizes),
                     total_steps=sum(steps),
                     checkpoint=checkpoint if on_checkpoint and save_every else None, checkpoint_every=save_every)
        ensure_finite(result.history, result.texture)
        results.append(result)
        current = result.texture.cpu()
        if result.interrupted:
            break
    return current, results


def _prepare(command: str, options: EngineOptions | None, image_options: ImageOptions | None,
             overrides: dict) -> tuple[EngineOptions, ImageOptions, RunPlan]:
    """The run's validated options and its :class:`~meshstyle.engine.runplan.RunPlan` (``reconstruct``:
    the content layer ``layer``, no style loss; ``texture``: no content loss)."""
    from .options import ENGINE_DEFAULTS

    image_over, engine_over = split_overrides(overrides, ImageOptions, EngineOptions)
    image_options = merged(image_options or ImageOptions(), image_over)
    image_options.validate()
    if image_options.init == "feedforward" and command != "image":
        raise MeshstyleError("--init feedforward needs a content image and a style: use it with 'meshstyle image'")
    options = merged(options or ENGINE_DEFAULTS[command], engine_over)
    if command == "reconstruct" and image_options.layer is not None:
        options = replace(options, content_layers=image_options.layer)  # parsed for the encoder by the plan
    plan = make_plan(options, use_style=command != "reconstruct", use_content=command != "texture")
    if options.threads is not None:
        torch.set_num_threads(options.threads)
    torch.manual_seed(options.seed)
    return plan.options, image_options, plan


def _result(image, results, objective) -> ImageResult:
    return ImageResult(image=image, history=[r.history for r in results],
                       interrupted=any(r.interrupted for r in results),
                       random_weights=objective.plan.random_weights,
                       weights_source=objective.plan.weights_source)


_COMMON_ARGS = """        options: :class:`~meshstyle.engine.options.EngineOptions` (default: the CLI's defaults).
        image_options: :class:`~meshstyle.stylize.options.ImageOptions` (``size``, ``style_scale``,
            ``init``, ``preserve_color``, ``scales``, ``save_every``, ``layer``).
        callback: receives a :class:`~meshstyle.engine.optimize.StepInfo` per step.
        on_checkpoint: ``on_checkpoint(image)`` every ``save_every`` steps.
        **overrides: any field of either options class by name (``iterations=50``, ``size=256``,
            ``style_blend=(0.7, 0.3)``, ``vgg_weights="random"``); they win over ``options``.

    Returns:
        :class:`ImageResult` (the image (3, H, W) in [0, 1]).

    Raises:
        MeshstyleError: unreadable inputs or out-of-range options."""


def _or(value, default):
    return default if value is None else value


def _feedforward(content, styles: list, options: EngineOptions, image_options: ImageOptions,
                 device: torch.device) -> ImageResult:
    """The pretrained feed-forward networks instead of the optimization (``method="feedforward"``)."""
    from .feedforward import stylize_image_feedforward

    size = None if image_options.size is None else parse_size(image_options.size)
    return stylize_image_feedforward(content, styles, size=size, style_blend=options.style_blend,
                                     strength=options.strength, preserve_color=image_options.preserve_color,
                                     device=device)


def stylize_image(content: ImageInput, style: ImageInput | list[ImageInput], *,
                  options: EngineOptions | None = None, image_options: ImageOptions | None = None,
                  callback: Callable[[StepInfo], None] | None = None, mask: masks.MaskInput | None = None,
                  on_checkpoint: Callable[[torch.Tensor], None] | None = None, **overrides) -> ImageResult:
    """Neural style transfer of one image (Gatys et al. 2016).

    Args:
        content: path or tensor (3, H, W) in [0, 1].
        style: one or several styles (paths or tensors (3, H, W) in [0, 1]), mixed by ``style_blend``.
        mask: regions (:mod:`meshstyle.stylize.masks`: a label or colour-keyed image file, or (H, W) integer
            labels): styles ``"LABEL=path"`` restyle their region with guided Gram matrices (Gatys et al. 2017);
            label 0 keeps the content's pixels exactly (composited at the end; the content loss stays).
    {common}

    ``preserve_color``: ``"luminance"`` (luminance-only transfer) or ``"histogram"`` (style colours
    matched to the content), see :mod:`meshstyle.engine.color`; ``color_match``: the reverse, the content
    recoloured to the style's colours before optimizing (ARF). ``size``: long edge in px or (W, H).
    ``method="feedforward"`` runs the pretrained networks of
    :func:`~meshstyle.stylize.feedforward.stylize_image_feedforward` instead (styles may then be
    ``"preset:N"``; ``strength`` applies); ``init="feedforward"`` starts the optimization from their result.
    """
    options, image_options, plan = _prepare("image", options, image_options, overrides)
    styles_in, blend, regions = masks.style_regions(style, mask, options, image_options.init)
    recolour = color_match_on(options, image_options.preserve_color)
    if options.method == "feedforward":
        return _feedforward(content, styles_in, options, image_options, plan.device)
    preserve_color = image_options.preserve_color
    content_img = photo = _as_image(content, parse_size(image_options.size))
    if image_options.init == "feedforward":
        image_options = replace(image_options, init=_feedforward(
            content_img, styles_in, options, replace(image_options, size=None), plan.device).image)
    out_size = (content_img.shape[2], content_img.shape[1])
    styles = [_as_image(s) for s in styles_in]
    if recolour:
        content_img = color.match_colors_to_style(content_img, styles, blend, options.strength)
    original = content_img
    if preserve_color == "luminance":
        styles = [color.luminance(s, like=content_img) for s in styles]
        content_img = color.luminance(content_img)
    elif preserve_color == "histogram":
        styles = [color.match_color_histogram(s, content_img) for s in styles]

    def finish(image):
        if preserve_color == "luminance":
            image = color.combine_luminance(image, resize_tensor(original, (image.shape[2], image.shape[1])))
        return image if regions is None else regions.keep_background(image, photo)

    objective = Objective(plan) if regions is None else regions.objective(plan, out_size)
    checkpoint = (lambda img: on_checkpoint(finish(img))) if on_checkpoint else None
    image, results = _run_scales(objective, options, scale_sizes(*out_size, image_options.scales), content_img,
                                 styles, blend, image_options.style_scale, _or(image_options.init, "content"),
                                 callback, checkpoint, image_options.save_every)
    return _result(finish(image), results, objective)


def synthesize_texture(style: ImageInput | list[ImageInput], *, options: EngineOptions | None = None,
                       image_options: ImageOptions | None = None,
                       callback: Callable[[StepInfo], None] | None = None,
                       on_checkpoint: Callable[[torch.Tensor], None] | None = None, **overrides) -> ImageResult:
    """Texture synthesis from style statistics alone (Gatys, Ecker & Bethge, NIPS 2015).

    ``size`` is (width, height) or a square side; ``init`` defaults to noise; there is no content loss.

    Args:
        style: one or several styles (paths or tensors (3, H, W) in [0, 1]).
    {common}
    """
    options, image_options, plan = _prepare("texture", options, image_options, overrides)
    styles_in = style if isinstance(style, list | tuple) else [style]
    blend = normalize_blend(options.style_blend, len(styles_in))
    size = parse_size(image_options.size)
    out_size = (size, size) if isinstance(size, int) else tuple(size)
    styles = [_as_image(s) for s in styles_in]
    objective = Objective(plan)
    image, results = _run_scales(objective, options, scale_sizes(*out_size, image_options.scales), None, styles,
                                 blend, image_options.style_scale, _or(image_options.init, "noise"), callback,
                                 on_checkpoint, image_options.save_every)
    return _result(image, results, objective)


def reconstruct_content(content: ImageInput, *, options: EngineOptions | None = None,
                        image_options: ImageOptions | None = None,
                        callback: Callable[[StepInfo], None] | None = None,
                        on_checkpoint: Callable[[torch.Tensor], None] | None = None, **overrides) -> ImageResult:
    """Reconstruct an image from the features of one network layer (Gatys et al. 2016, Fig. 1).

    Starts from noise (``init``) and minimizes the content loss at ``layer`` only, at one scale unless
    ``scales`` says otherwise; deeper layers keep the layout and lose the exact pixels.

    Args:
        content: path or tensor (3, H, W) in [0, 1].
    {common}
    """
    options, image_options, plan = _prepare("reconstruct", options, image_options, overrides)
    content_img = _as_image(content, parse_size(image_options.size))
    out_size = (content_img.shape[2], content_img.shape[1])
    objective = Objective(plan)
    image, results = _run_scales(objective, options, scale_sizes(*out_size, image_options.scales or 1),
                                 content_img, [], [], 1.0, _or(image_options.init, "noise"), callback, on_checkpoint,
                                 image_options.save_every)
    return _result(image, results, objective)


for _f in (stylize_image, synthesize_texture, reconstruct_content):
    _f.__doc__ = _f.__doc__.replace("    {common}", _COMMON_ARGS)
