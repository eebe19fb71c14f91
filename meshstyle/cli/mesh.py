"""The ``mesh`` and ``render`` commands (argument parsing and file writing only)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..core import optiontable
from ..core.errors import MeshstyleError
from ..core.imageio import check_image_output
from ..core.outputs import OutputPlan
from ..engine.options import EngineOptions
from ..stylize.jobs import mesh_job
from ..stylize.options import ENGINE_DEFAULTS, MeshOptions
from .epilog import EPILOG_WEIGHTS
from .image import add_option_flags
from .progress import ProgressBar

log = logging.getLogger("meshstyle")
FMT = argparse.RawDescriptionHelpFormatter
GIF = ".gif"

MESH_DESCRIPTION = """Restyle the texture of an OBJ/GLB mesh so it looks painted from every side.

The mesh is rendered from --views cameras at several resolutions; a style loss on the
features a pretrained network (--encoder, see "Networks" below) computes of those renders,
weighted by viewing angle and depth (StyleMesh, CVPR 2022), is backpropagated into a
multi-resolution texture, which is exported with the mesh. --method feedforward instead
stylizes the renders with feed-forward networks and fits the texture to them."""

MESH_EXAMPLES = """examples:
  meshstyle mesh cow.obj --style starry.jpg -o cow_starry.glb --preview sheet.png
  meshstyle mesh truck.glb --list-parts
  meshstyle mesh truck.glb --exclude-parts 'wheel*,glass' --style starry.jpg --style body=wave.jpg -o out.glb
  meshstyle mesh cow.glb --style wave.jpg -o cow_wave.obj --views 32 --iterations 500
  meshstyle mesh cow.obj --style a.jpg -o out.glb --checkpoint-every 50   # then --resume out.ckpt

"""


def add_commands(sub) -> None:
    """Register ``mesh`` and ``render`` on the CLI's subparsers."""
    p = sub.add_parser("mesh", formatter_class=FMT, help="restyle a mesh's texture from every viewpoint (StyleMesh)",
                       description=MESH_DESCRIPTION, epilog=MESH_EXAMPLES + EPILOG_WEIGHTS)
    p.add_argument("input", help="mesh with UVs and a texture (.obj with .mtl, .glb, .gltf); a mesh without UVs "
                                 "is unwrapped")
    p.add_argument("--style", action="append",
                   help="style image; repeat to blend several. NAME=painting.jpg gives the parts NAME (a name or "
                        "glob, see --list-parts) their own style in the same run (repeatable). With --method "
                        "feedforward also preset:N (N in 0..25, one of the 26 trained styles; 'meshstyle styles' "
                        "draws them all)")
    p.add_argument("-o", "--output", help="output mesh: .glb (texture embedded) or .obj (+.mtl +.png)")
    p.add_argument("--list-parts", action="store_true",
                   help="print the parts of INPUT that can be restyled (name, material, texture size, share of "
                        "the surface) for --parts, --exclude-parts and --style NAME=..., and stop")
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


def cmd_mesh(args) -> int:
    """``meshstyle mesh``: validate everything, stylize, export, preview; returns the exit status."""
    if args.list_parts:
        from ..mesh.textured import TexturedMesh
        from ..stylize.parts import format_parts

        print(format_parts(TexturedMesh.load(args.input, allow_missing_textures=args.allow_missing_textures)))
        return 0
    missing = [flag for flag, value in (("--style", args.style), ("-o/--output", args.output)) if not value]
    if missing:
        raise MeshstyleError(f"the following arguments are required: {', '.join(missing)}")
    options = optiontable.from_args(EngineOptions, args, ENGINE_DEFAULTS["mesh"])
    mesh_options = optiontable.from_args(MeshOptions, args)
    views_bar = ProgressBar("ray casting views", quiet=args.quiet, unit="view")
    bar = ProgressBar("stylizing", quiet=args.quiet)

    def on_step(info):
        views_bar.close()
        bar(info)

    try:
        outcome = mesh_job(args.input, args.style, args.output, options=options, mesh_options=mesh_options,
                           preview=args.preview, callback=on_step,
                           view_progress=lambda: views_bar.tick(mesh_options.views * mesh_options.depth_levels))
    finally:
        views_bar.close()
        bar.close()
    log.info("wrote %s", ", ".join(str(p) for p in outcome.written))
    if outcome.interrupted:
        log.warning("interrupted: wrote the texture so far")
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
