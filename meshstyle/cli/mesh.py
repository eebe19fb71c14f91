"""The ``mesh`` and ``render`` commands (argument parsing and file writing only)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..core import optiontable
from ..core.imageio import check_image_output, open_image
from ..core.outputs import OutputPlan
from ..engine.options import EngineOptions
from ..stylize.guards import ensure_finite
from ..stylize.options import ENGINE_DEFAULTS, MeshOptions, check_style_kinds, is_preset
from . import EPILOG_WEIGHTS, RANDOM_LABEL
from .image import add_option_flags
from .progress import ProgressBar

log = logging.getLogger("meshstyle")
FMT = argparse.RawDescriptionHelpFormatter
GIF = ".gif"

MESH_DESCRIPTION = """Restyle the texture of an OBJ/GLB mesh so it looks painted from every side.

The mesh is rendered from --views cameras at several resolutions; a VGG style loss on
those renders, weighted by viewing angle and depth (StyleMesh, CVPR 2022), is
backpropagated into a multi-resolution texture, which is exported with the mesh."""

MESH_EXAMPLES = """examples:
  meshstyle mesh cow.obj --style starry.jpg -o cow_starry.glb --preview sheet.png
  meshstyle mesh cow.glb --style wave.jpg -o cow_wave.obj --views 32 --iterations 500
  meshstyle mesh cow.obj --style a.jpg -o out.glb --checkpoint-every 50   # then --resume out.ckpt

"""


def add_commands(sub) -> None:
    """Register ``mesh`` and ``render`` on the CLI's subparsers."""
    p = sub.add_parser("mesh", formatter_class=FMT, help="restyle a mesh's texture from every viewpoint (StyleMesh)",
                       description=MESH_DESCRIPTION, epilog=MESH_EXAMPLES + EPILOG_WEIGHTS)
    p.add_argument("input", help="mesh with UVs and a texture (.obj with .mtl, .glb, .gltf); a mesh without UVs "
                                 "is unwrapped")
    p.add_argument("--style", action="append", required=True, help="style image; repeat to blend several")
    p.add_argument("-o", "--output", required=True, help="output mesh: .glb (texture embedded) or .obj (+.mtl +.png)")
    p.add_argument("--preview", default=None, metavar="SHEET.png|TURNTABLE.gif",
                   help="also write a before/after contact sheet (.png/.jpg/.webp) or a turntable of the result (.gif)")
    add_option_flags(p, "mesh", MeshOptions)
    p.set_defaults(func=cmd_mesh)

    p = sub.add_parser("render", formatter_class=FMT, help="preview a textured mesh (contact sheet or turntable GIF)",
                       description="Render a textured mesh with simple headlight shading.",
                       epilog="examples:\n  meshstyle render cow.glb -o sheet.png\n  meshstyle render cow.glb -o turntable.gif")
    p.add_argument("input", help="mesh (.obj, .glb, .gltf)")
    p.add_argument("-o", "--output", required=True, help=".png/.jpg/.webp contact sheet or .gif turntable")
    p.add_argument("--views", type=_positive_int, default=None, help="views in the sheet (8) or frames of the GIF (36)")
    p.add_argument("--size", type=_positive_int, default=256, help="size of each view, px (default: 256)")
    p.add_argument("--allow-missing-textures", action="store_true",
                   help="draw parts whose texture files are missing in their base colour instead of stopping")
    p.add_argument("--quiet", "-q", action="store_true", help="only errors")
    p.set_defaults(func=cmd_render)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 1 <= value <= 4096:
        raise argparse.ArgumentTypeError(f"must be in [1, 4096], got {value}")
    return value


def _check_preview(path: str | None) -> None:
    if path is not None and Path(path).suffix.lower() != GIF:
        check_image_output(path)


def plan_mesh_outputs(args, mesh_options: MeshOptions, mesh, out: Path) -> OutputPlan:
    """The output plan of ``meshstyle mesh``: the mesh ``out`` and the siblings its export writes, the
    preview and the checkpoint, checked against every input file (the mesh's own MTL and textures too)."""
    resume = mesh_options.resume
    if resume and mesh_options.checkpoint and Path(resume).resolve() == Path(mesh_options.checkpoint).resolve():
        resume = None  # continuing a checkpoint and saving it again is the documented workflow
    plan = OutputPlan([args.input, *[s for s in args.style if not is_preset(s)], resume, *mesh.resource_files()])
    for path in mesh.output_paths(out, texture_format=mesh_options.texture_format):
        plan.add(path)
    if args.preview:
        _check_preview(args.preview)
        plan.add(args.preview)
    if mesh_options.checkpoint:
        plan.add(mesh_options.checkpoint)
    plan.check()
    return plan


def cmd_mesh(args) -> int:
    """``meshstyle mesh``: validate everything, stylize, export, preview; returns the exit status."""
    from ..mesh.preview import before_after_sheet, render_turntable
    from ..mesh.textured import TexturedMesh, check_mesh_output
    from ..stylize.mesh import stylize_mesh

    options = optiontable.from_args(EngineOptions, args, ENGINE_DEFAULTS["mesh"])
    mesh_options = optiontable.from_args(MeshOptions, args)
    if mesh_options.checkpoint_every and not mesh_options.checkpoint:
        mesh_options.checkpoint = str(Path(args.output).with_suffix(".ckpt"))
    mesh_options.validate()
    out = check_mesh_output(args.output)
    for style in args.style:
        if not is_preset(style):
            open_image(style)  # fail fast on a bad style before the slow work
    check_style_kinds(args.style, options.method)
    mesh = TexturedMesh.load(args.input, allow_missing_textures=mesh_options.allow_missing_textures)
    options = options.validated()
    plan = plan_mesh_outputs(args, mesh_options, mesh, out)
    log.info("loaded %s: %d stylizable part(s), %d faces", args.input, len(mesh.stylizable),
             sum(len(i.faces) for i in mesh.instances()))
    views_bar = ProgressBar("ray casting views", quiet=args.quiet, unit="view")
    bar = ProgressBar("stylizing", quiet=args.quiet)

    def on_step(info):
        views_bar.close()
        bar(info)

    try:
        result = stylize_mesh(mesh, args.style, mesh_options=mesh_options, options=options, callback=on_step,
                              view_progress=lambda: views_bar.tick(mesh_options.views * mesh_options.depth_levels))
    finally:
        views_bar.close()
        bar.close()
    ensure_finite(result.history)
    seams = (result.history[-1] if result.history else {}).get("seams_after")
    if isinstance(seams, dict) and {"seam", "interior"} <= set(seams):
        log.info("feed-forward fit: mean colour jump across UV seams %.3f (across ordinary edges %.3f)",
                 seams["seam"], seams["interior"])
    note = RANDOM_LABEL if result.random_weights else None
    provenance = {"style": ", ".join(Path(s).name if not is_preset(s) else s for s in args.style),
                  "method": options.method, "encoder": options.encoder if options.method == "optimize" else "none",
                  "vgg_weights": "random" if result.random_weights else "pretrained", "seed": options.seed}
    if result.precision is not None:
        provenance["precision"] = result.precision
    writers = {out: lambda tmp: result.mesh.save(tmp, texture_format=mesh_options.texture_format,
                                                 jpeg_quality=mesh_options.jpeg_quality, provenance=provenance)}
    if args.preview and Path(args.preview).suffix.lower() == GIF:
        writers[Path(args.preview)] = lambda tmp: render_turntable(result.mesh, tmp)
    elif args.preview:
        writers[Path(args.preview)] = lambda tmp: before_after_sheet(mesh, result.mesh, tmp, note=note)
    written = plan.commit(writers)
    if result.random_weights:
        log.warning("%s", RANDOM_LABEL)
    log.info("wrote %s", ", ".join(str(p) for p in written))
    if result.interrupted:
        log.warning("interrupted after %d steps: wrote the texture so far", len(result.history))
        return 130
    return 0


def cmd_render(args) -> int:
    """``meshstyle render``: contact sheet or turntable GIF of a mesh; returns the exit status."""
    from ..mesh.preview import render_sheet, render_turntable
    from ..mesh.textured import TexturedMesh

    out = Path(args.output)
    _check_preview(args.output)
    plan = OutputPlan([args.input])
    plan.add(out)
    plan.check()
    mesh = TexturedMesh.load(args.input, allow_missing_textures=args.allow_missing_textures)
    if out.suffix.lower() == GIF:
        plan.commit({out: lambda tmp: render_turntable(mesh, tmp, frames=args.views or 36, size=args.size)})
    else:
        plan.commit({out: lambda tmp: render_sheet(mesh, tmp, views=args.views or 8, size=args.size)})
    log.info("wrote %s", out)
    return 0
