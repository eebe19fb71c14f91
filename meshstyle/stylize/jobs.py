"""One job from files to files: validate, plan the outputs, stylize, write them all at once.

The ``mesh`` and ``image``/``texture``/``reconstruct`` commands and ``meshstyle batch`` run a job through
these functions, so a job plans, writes and labels its outputs the same way whichever way it started:
every output is planned with :class:`~meshstyle.core.outputs.OutputPlan` before the slow work (no output
may replace an input, the mesh's own MTL and textures included) and committed together at the end.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from ..core.imageio import check_image_output, open_image, save_image
from ..core.outputs import OutputPlan
from ..engine.features import is_random_weights
from ..engine.optimize import StepInfo
from ..engine.options import EngineOptions
from .options import ImageOptions, MeshOptions, check_style_kinds, is_preset
from .parts import split_part_styles

log = logging.getLogger("meshstyle")
RANDOM_LABEL = "made with RANDOM (untrained) VGG weights: a test output, not a real stylization"
GIF = ".gif"

StyleItem = str | os.PathLike | torch.Tensor


@dataclass
class JobOutcome:
    """What a job wrote and how.

    Attributes:
        written: every file written, main output first.
        inputs: every file the job read (mesh, its MTL/textures/buffers, style files, init image).
        provenance: the facts recorded in the outputs (style, method, encoder, weights, seed, precision).
        random_weights: made with untrained VGG weights (outputs are labelled).
        interrupted: stopped by Ctrl-C; the outputs hold the result so far.
        encoder: the encoder that defined style and content (``"none"`` for the feed-forward method).
    """

    written: list[Path]
    inputs: list[Path] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    random_weights: bool = False
    interrupted: bool = False
    encoder: str = "none"


def style_label(styles: list[StyleItem], names: list[str] | None = None) -> str:
    """The styles as provenance text: file names, ``preset:N`` as given, or ``names`` for tensors."""
    if names is not None:
        return ", ".join(names)
    return ", ".join(s if is_preset(s) else Path(s).name if not isinstance(s, torch.Tensor) else "tensor"
                     for s in styles)


def _weights_label(result) -> str:
    """The provenance's ``vgg_weights``: ``random`` for untrained weights, else where the encoder's weights came
    from (``result.weights_source``), ``pretrained`` when the job had no encoder (feed-forward)."""
    if result.random_weights:
        return "random"
    return result.weights_source or "pretrained"


def _style_files(styles: list[StyleItem]) -> list[StyleItem]:
    return [s for s in styles if not is_preset(s) and not isinstance(s, torch.Tensor)]


def _keyed_style_files(styles: list[StyleItem]) -> list[StyleItem]:
    """The style files of a job, those of keyed items ``NAME=path`` included (mesh parts, image mask regions)."""
    plain, per_part = split_part_styles(styles)
    return _style_files(plain + [path for _, path in per_part])


def plan_mesh_outputs(input_path, styles: list[StyleItem], mesh_options: MeshOptions, mesh, out: Path,
                      preview: str | os.PathLike | None = None) -> OutputPlan:
    """The output plan of a mesh job: the mesh ``out`` and the siblings its export writes, the preview and
    the checkpoint, checked against every input file (the mesh's own MTL and textures too).

    Raises:
        MeshstyleError: an output would replace an input, two outputs collide, or a folder is unwritable.
    """
    resume = mesh_options.resume
    if resume and mesh_options.checkpoint and Path(resume).resolve() == Path(mesh_options.checkpoint).resolve():
        resume = None  # continuing a checkpoint and saving it again is the documented workflow
    plan = OutputPlan([input_path, *_keyed_style_files(styles), resume, *mesh.resource_files()])
    for path in mesh.output_paths(out, texture_format=mesh_options.texture_format):
        plan.add(path)
    if preview:
        if Path(preview).suffix.lower() != GIF:
            check_image_output(preview)
        plan.add(preview)
    if mesh_options.checkpoint:
        plan.add(mesh_options.checkpoint)
    plan.check()
    return plan


def mesh_job(input_path: str | os.PathLike, styles: list[StyleItem], output: str | os.PathLike, *,
             options: EngineOptions, mesh_options: MeshOptions, preview: str | os.PathLike | None = None,
             style_names: list[str] | None = None, callback: Callable[[StepInfo], None] | None = None,
             view_progress: Callable[[], None] | None = None) -> JobOutcome:
    """Restyle the mesh file ``input_path`` and write ``output`` (.glb or .obj with its MTL and textures)
    and the optional ``preview`` (a before/after sheet .png/.jpg/.webp, or a turntable .gif), all at once.

    ``styles`` are paths, ``preset:N`` or tensors (3, H, W) in [0, 1] (then ``style_names`` names them in
    the provenance). ``options`` start from ``ENGINE_DEFAULTS["mesh"]`` in the CLI; a checkpoint with no
    file name is written beside ``output`` (its stem + .ckpt). ``callback`` and ``view_progress`` are
    :func:`~meshstyle.stylize.mesh.stylize_mesh`'s.

    Raises:
        MeshstyleError: a bad option, style, mesh or output path (before any slow work), or a run
            whose losses became non-finite (nothing written then).
    """
    from ..mesh.export import check_mesh_output
    from ..mesh.preview import before_after_sheet, render_turntable
    from ..mesh.textured import TexturedMesh
    from .mesh import stylize_mesh

    if mesh_options.checkpoint_every and not mesh_options.checkpoint:
        mesh_options = replace(mesh_options, checkpoint=str(Path(output).with_suffix(".ckpt")))
    mesh_options.validate()
    out = check_mesh_output(output)
    for style in _keyed_style_files(styles):
        open_image(style)  # fail fast on a bad style before the slow work
    check_style_kinds(styles, options.method)
    mesh = TexturedMesh.load(input_path, allow_missing_textures=mesh_options.allow_missing_textures)
    options = options.validated()
    plan = plan_mesh_outputs(input_path, styles, mesh_options, mesh, out, preview)
    log.info("loaded %s: %d stylizable part(s), %d faces", input_path, len(mesh.stylizable),
             sum(len(i.faces) for i in mesh.instances()))
    result = stylize_mesh(mesh, list(styles), mesh_options=mesh_options, options=options, callback=callback,
                          view_progress=view_progress)
    seams = (result.history[-1] if result.history else {}).get("seams_after")
    if isinstance(seams, dict) and {"seam", "interior"} <= set(seams):
        log.info("feed-forward fit: mean colour jump across UV seams %.3f, across ordinary edges %.3f (seams "
                 "jumping no more than ordinary edges do not show; the input's seams: %.3f)",
                 seams["seam"], seams["interior"], result.history[-1]["seams_before"]["seam"])
    note = RANDOM_LABEL if result.random_weights else None
    encoder = options.encoder if options.method == "optimize" else "none"
    provenance = {"style": style_label(list(styles), style_names), "method": options.method, "encoder": encoder,
                  "vgg_weights": _weights_label(result), "seed": options.seed}
    if result.precision is not None:
        provenance["precision"] = result.precision
    writers = {out: lambda tmp: result.mesh.save(tmp, texture_format=mesh_options.texture_format,
                                                 jpeg_quality=mesh_options.jpeg_quality, provenance=provenance)}
    if preview and Path(preview).suffix.lower() == GIF:
        writers[Path(preview)] = lambda tmp: render_turntable(result.mesh, tmp)
    elif preview:
        writers[Path(preview)] = lambda tmp: before_after_sheet(mesh, result.mesh, tmp, note=note)
    written = plan.commit(writers)
    if result.random_weights:
        log.warning("%s", RANDOM_LABEL)
    return JobOutcome(written, [Path(p) for p in mesh.resource_files()] + [Path(s) for s in _keyed_style_files(styles)],
                      provenance, result.random_weights, result.interrupted, encoder)


def image_job(command: str, content: str | os.PathLike | None, styles: list[StyleItem], output: str | os.PathLike,
              *, options: EngineOptions, image_options: ImageOptions, style_names: list[str] | None = None,
              callback: Callable[[StepInfo], None] | None = None,
              mask: str | os.PathLike | None = None) -> JobOutcome:
    """Run the 2D ``command`` (``image``, ``texture`` or ``reconstruct``) and write ``output`` (.png, .jpg,
    .webp; with ``save_every`` also during the run), atomically.

    ``content`` is the photo (None for ``texture``); ``styles`` are paths, ``preset:N`` or tensors (3, H, W)
    in [0, 1] (``style_names`` names tensors in the provenance). ``mask`` (``image`` only): a region mask file
    for ``LABEL=path`` styles (:mod:`meshstyle.stylize.masks`). Outputs made with untrained VGG weights
    are labelled in their metadata.

    Raises:
        MeshstyleError: a bad option, input or output path (before any slow work).
    """
    from . import image as jobs

    image_options.validate()
    init = image_options.init if image_options.init not in (None, "content", "noise", "feedforward") else None
    if isinstance(init, torch.Tensor):
        init = None
    inputs = [p for p in (content, *_keyed_style_files(styles), mask, init) if p is not None and not is_preset(p)]
    out = check_image_output(output)
    plan = OutputPlan(inputs)
    plan.add(out)
    plan.check()
    for path in inputs:
        open_image(path)  # fail fast on a bad input before the slow work
    options = options.validated()
    random_vgg = options.method == "optimize" and options.encoder.startswith("vgg") and is_random_weights(
        options.vgg_weights)
    label = RANDOM_LABEL if random_vgg else None

    def on_checkpoint(image):
        save_image(image, out, label)

    check_style_kinds(styles, options.method)
    kwargs = {"options": options, "image_options": image_options, "callback": callback,
              "on_checkpoint": on_checkpoint}
    if command == "image":
        result = jobs.stylize_image(content, list(styles), mask=mask, **kwargs)
    elif command == "texture":
        result = jobs.synthesize_texture(list(styles), **kwargs)
    else:
        result = jobs.reconstruct_content(content, **kwargs)
    label = RANDOM_LABEL if result.random_weights else None
    save_image(result.image, out, label)
    if result.random_weights:
        log.warning("%s: %s", out, RANDOM_LABEL)
    encoder = options.encoder if options.method == "optimize" else "none"
    provenance = {"style": style_label(list(styles), style_names), "method": options.method, "encoder": encoder,
                  "vgg_weights": _weights_label(result), "seed": options.seed}
    if mask is not None:
        provenance["mask"] = Path(mask).name
    return JobOutcome([out], [Path(p) for p in inputs], provenance, result.random_weights, result.interrupted,
                      encoder)
