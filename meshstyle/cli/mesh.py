"""The ``meshstyle mesh`` and ``meshstyle render`` commands (argument parsing and file writing only)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..engine.options import EngineOptions

log = logging.getLogger("meshstyle")


def _floats(text):
    try:
        return tuple(float(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def add_mesh_commands(sub, fmt) -> None:
    """Register ``mesh`` and ``render`` on the CLI's subparsers."""
    from ..stylize.mesh import MeshOptions
    from . import EPILOG_WEIGHTS, _blend_list, _non_negative_float, _positive_int, engine_flags

    d = MeshOptions()
    p = sub.add_parser(
        "mesh", parents=[engine_flags(EngineOptions(iterations=300, optimizer="adam"))], formatter_class=fmt,
        help="restyle a mesh's texture from every viewpoint (StyleMesh)",
        description="Restyle the texture of an OBJ/GLB mesh so it looks painted from every side.\n\n"
                    "The mesh is rendered from --views cameras at several resolutions; a VGG style loss on\n"
                    "those renders, weighted by viewing angle and depth (StyleMesh, CVPR 2022), is\n"
                    "backpropagated into a multi-resolution texture, which is exported with the mesh.",
        epilog="examples:\n"
               "  meshstyle mesh cow.obj --style starry.jpg -o cow_starry.glb --preview sheet.png\n"
               "  meshstyle mesh cow.glb --style wave.jpg -o cow_wave.obj --views 32 --iterations 500\n"
               "  meshstyle mesh cow.obj --style a.jpg -o out.glb --checkpoint-every 50   # then --resume out.ckpt\n\n"
               "defaults take about 5 minutes and 1.6 GB on a 2-core CPU for the spot cow (5,856 faces).\n\n"
               + EPILOG_WEIGHTS)
    p.add_argument("input", help="mesh with UVs and a texture (.obj with .mtl, .glb, .gltf); a mesh without UVs is unwrapped")
    p.add_argument("--style", action="append", required=True, help="style image; repeat to blend several")
    p.add_argument("--style-blend", type=_blend_list, default=None, metavar="W1,W2,...", help="weights of the styles")
    p.add_argument("-o", "--output", required=True, help="output mesh: .glb (texture embedded) or .obj (+.mtl +.png)")
    g = p.add_argument_group("views")
    g.add_argument("--views", type=int, default=d.views, help="cameras around the object (default: %(default)s)")
    g.add_argument("--resolution", type=int, default=d.resolution, help="render size of the finest level, px (default: %(default)s)")
    g.add_argument("--depth-levels", type=int, default=d.depth_levels,
                   help="render resolution levels, each half the previous (default: %(default)s)")
    g.add_argument("--batch-views", type=int, default=d.batch_views, help="views per optimization step (default: %(default)s)")
    g.add_argument("--fov", type=float, default=d.fov, help="vertical field of view, degrees (default: %(default)s)")
    g.add_argument("--distance", type=float, default=d.distance,
                   help="camera distance factor; 1 is where the object just fills each view (default: %(default)s)")
    g.add_argument("--elevation", type=_floats, default=d.elevation, metavar="MIN,MAX",
                   help="camera elevation band, degrees (default: -30,75)")
    g.add_argument("--supersample", type=int, default=d.supersample, help="rays per pixel side (default: %(default)s)")
    g = p.add_argument_group("texture and style")
    g.add_argument("--levels", type=int, default=d.levels, help="texture pyramid levels (default: %(default)s, as StyleMesh)")
    g.add_argument("--texture-size", type=int, default=None,
                   help="optimized texture size, texels (default: the original, at most 512); output keeps the original size")
    g.add_argument("--angle-threshold", type=float, default=d.angle_threshold,
                   help="pixels seen more obliquely than this many degrees do not count for style (default: %(default)s)")
    g.add_argument("--no-depth-aware", action="store_true", help="judge every pixel at full resolution, whatever its depth")
    g.add_argument("--style-size", type=int, default=None, help="style image long edge at scale 1, px (default: --resolution)")
    g.add_argument("--style-scales", type=_floats, default=d.style_scales, metavar="S1,S2,...",
                   help="style image scales whose statistics are averaged (default: 1,0.5)")
    g.add_argument("--pyramid-weight", type=_non_negative_float, default=d.pyramid_weight,
                   help="regularizer pushing detail toward coarse texture levels (default: %(default)s)")
    g = p.add_argument_group("results")
    g.add_argument("--preview", default=None, metavar="SHEET.png|TURNTABLE.gif",
                   help="write a before/after contact sheet (.png/.jpg/.webp) or a turntable of the result (.gif)")
    g.add_argument("--checkpoint-every", type=_positive_int, default=None, metavar="N",
                   help="save the optimization state every N steps to OUTPUT's stem + .ckpt")
    g.add_argument("--resume", default=None, metavar="CKPT", help="continue from a checkpoint of the same command")
    p.set_defaults(func=cmd_mesh)

    p = sub.add_parser("render", formatter_class=fmt, help="preview a textured mesh (contact sheet or turntable GIF)",
                       description="Render a textured mesh with simple headlight shading.",
                       epilog="examples:\n  meshstyle render cow.glb -o sheet.png\n  meshstyle render cow.glb -o turntable.gif")
    p.add_argument("input", help="mesh (.obj, .glb, .gltf)")
    p.add_argument("-o", "--output", required=True, help=".png/.jpg/.webp contact sheet or .gif turntable")
    p.add_argument("--views", type=_positive_int, default=None, help="views in the sheet (8) or frames of the GIF (36)")
    p.add_argument("--size", type=_positive_int, default=256, help="size of each view, px (default: 256)")
    p.add_argument("--quiet", "-q", action="store_true", help="only errors")
    p.set_defaults(func=cmd_render)


def _mesh_options(args):
    from ..stylize.mesh import MeshOptions

    out = Path(args.output)
    return MeshOptions(
        views=args.views, resolution=args.resolution, depth_levels=args.depth_levels, levels=args.levels,
        texture_size=args.texture_size, batch_views=args.batch_views, angle_threshold=args.angle_threshold,
        depth_aware=not args.no_depth_aware, style_size=args.style_size, style_scales=args.style_scales,
        pyramid_weight=args.pyramid_weight, fov=args.fov, distance=args.distance,
        elevation=tuple(args.elevation), supersample=args.supersample,
        checkpoint_every=args.checkpoint_every or 0,
        checkpoint=str(out.with_suffix(".ckpt")) if args.checkpoint_every else None, resume=args.resume)


def cmd_mesh(args) -> int:
    """``meshstyle mesh``: validate everything, stylize, export, preview; returns the exit status."""
    from ..core.imageio import check_distinct, check_image_output, open_image
    from ..mesh.preview import before_after_sheet, render_turntable
    from ..mesh.textured import TexturedMesh, check_mesh_output
    from ..stylize.mesh import stylize_mesh
    from . import RANDOM_LABEL, engine_options
    from .progress import ProgressBar

    out = check_mesh_output(args.output)
    inputs = [args.input, *args.style]
    check_distinct(out, inputs)
    if args.preview:
        if Path(args.preview).suffix.lower() != ".gif":
            check_image_output(args.preview)
        check_distinct(args.preview, inputs + [out])
    if out.suffix.lower() == ".obj":
        for sibling in (out.with_suffix(".mtl"), out.with_suffix(".png")):
            check_distinct(sibling, inputs)
    mesh_options = _mesh_options(args)
    mesh_options.validate()
    options = engine_options(args).validated()
    for style in args.style:
        open_image(style)  # fail fast on a bad style before the slow work
    mesh = TexturedMesh.load(args.input)
    log.info("loaded %s: %d stylizable part(s), %d faces", args.input, len(mesh.stylizable),
             sum(len(i.faces) for i in mesh.instances()))
    views_bar = ProgressBar("ray casting views", quiet=args.quiet, unit="view")
    bar = ProgressBar("stylizing", quiet=args.quiet)

    def on_step(info):
        views_bar.close()
        bar(info)

    try:
        result = stylize_mesh(mesh, args.style, style_blend=args.style_blend, mesh_options=mesh_options,
                              options=options, callback=on_step,
                              view_progress=lambda: views_bar.tick(mesh_options.views * mesh_options.depth_levels))
    finally:
        views_bar.close()
        bar.close()
    written = result.mesh.save(out)
    note = RANDOM_LABEL if result.random_weights else None
    if args.preview and Path(args.preview).suffix.lower() == ".gif":
        render_turntable(result.mesh, args.preview)
        written.append(Path(args.preview))
    elif args.preview:
        before_after_sheet(mesh, result.mesh, args.preview, note=note)
        written.append(Path(args.preview))
    if result.random_weights:
        log.warning("%s", RANDOM_LABEL)
    log.info("wrote %s", ", ".join(str(p) for p in written))
    if result.interrupted:
        log.warning("interrupted after %d steps: wrote the texture so far", len(result.history))
        return 130
    return 0


def cmd_render(args) -> int:
    """``meshstyle render``: contact sheet or turntable GIF of a mesh; returns the exit status."""
    from ..core.imageio import check_distinct, check_image_output
    from ..mesh.preview import render_sheet, render_turntable
    from ..mesh.textured import TexturedMesh

    out = Path(args.output)
    check_distinct(out, [args.input])
    if out.suffix.lower() != ".gif":
        check_image_output(out)
    mesh = TexturedMesh.load(args.input)
    if out.suffix.lower() == ".gif":
        render_turntable(mesh, out, frames=args.views or 36, size=args.size)
    else:
        render_sheet(mesh, out, views=args.views or 8, size=args.size)
    log.info("wrote %s", out)
    return 0
