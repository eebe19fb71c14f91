"""The 2D commands: ``image`` (style transfer), ``texture`` (texture synthesis), ``reconstruct``."""

from __future__ import annotations

import argparse
import logging

from ..core import optiontable
from ..core.imageio import check_image_output, open_image, save_image
from ..core.outputs import OutputPlan
from ..engine.features import is_random_weights
from ..engine.options import EngineOptions
from ..stylize.options import ENGINE_DEFAULTS, ImageOptions, check_style_kinds, is_preset
from . import EPILOG_WEIGHTS, RANDOM_LABEL
from .progress import ProgressBar

log = logging.getLogger("meshstyle")
FMT = argparse.RawDescriptionHelpFormatter

COMMANDS = {
    "image": ("style transfer of a photo",
              "Repaint CONTENT in the style of one or more paintings (Gatys et al. 2016).",
              ["meshstyle image photo.jpg --style starry.jpg -o out.png",
               "meshstyle image photo.jpg --style a.jpg --style b.jpg --style-blend 0.7,0.3 -o out.png",
               "meshstyle image photo.jpg --style wave.jpg --preserve-color luminance -o out.png",
               "meshstyle image photo.jpg --style starry.jpg --method feedforward -o out.png   # pretrained, 1 s",
               "meshstyle image photo.jpg --style preset:3 --style preset:7 --style-blend 0.5,0.5 "
               "--method feedforward -o out.png"]),
    "texture": ("texture synthesis from a painting",
                "Synthesize a new texture with the style statistics of STYLE (Gatys et al. 2015).",
                ["meshstyle texture --style wave.jpg --size 512x512 -o wave_texture.png"]),
    "reconstruct": ("reconstruct a photo from one network layer",
                    "Reconstruct CONTENT from its features at one layer, starting from noise.",
                    ["meshstyle reconstruct photo.jpg --layer relu3_1 -o recon.png"]),
}


def add_option_flags(parser: argparse.ArgumentParser, command: str, *tables) -> None:
    """Flags of ``command`` from the engine table (with the command's defaults) and ``tables``."""
    groups: dict = {}
    optiontable.add_flags(parser, EngineOptions, command, ENGINE_DEFAULTS[command], groups)
    for table in tables:
        optiontable.add_flags(parser, table, command, None, groups)
    groups.setdefault("output", parser.add_argument_group("output"))
    groups["output"].add_argument("--quiet", "-q", action="store_true", help="no progress bar, only errors")


def add_commands(sub) -> None:
    """Register ``image``, ``texture`` and ``reconstruct`` on the CLI's subparsers."""
    for command, (summary, description, examples) in COMMANDS.items():
        p = sub.add_parser(command, formatter_class=FMT, help=summary, description=description,
                           epilog="examples:\n" + "".join(f"  {e}\n" for e in examples) + "\n" + EPILOG_WEIGHTS)
        if command != "texture":
            p.add_argument("content", help="content image (any format Pillow reads)")
        if command != "reconstruct":
            p.add_argument("--style", action="append", required=True,
                           help="style image; repeat to blend several" + (
                               "; preset:N (0..25) picks a pretrained style for --method feedforward "
                               "('meshstyle styles' shows them)" if command == "image" else ""))
        p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp)")
        add_option_flags(p, command, ImageOptions)
        p.set_defaults(func=run_image_command)


def run_image_command(args) -> int:
    """Run one of the 2D commands from parsed arguments; returns the exit status."""
    from ..stylize import image as jobs

    options = optiontable.from_args(EngineOptions, args, ENGINE_DEFAULTS[args.command])
    image_options = optiontable.from_args(ImageOptions, args)
    image_options.validate()
    styles = list(getattr(args, "style", None) or [])
    content = getattr(args, "content", None)
    init = image_options.init if image_options.init not in (None, "content", "noise", "feedforward") else None
    inputs = [p for p in (content, *styles, init) if p is not None and not is_preset(p)]
    out = check_image_output(args.output)
    plan = OutputPlan(inputs)
    plan.add(out)
    plan.check()
    for path in inputs:
        open_image(path)  # fail fast on a bad input before the slow work
    options = options.validated()
    random_vgg = options.method == "optimize" and options.encoder.startswith("vgg") and is_random_weights(
        options.vgg_weights)
    label = RANDOM_LABEL if random_vgg else None
    bar = ProgressBar(quiet=args.quiet)

    def on_checkpoint(image):
        save_image(image, out, label)

    check_style_kinds(styles, options.method)
    kwargs = {"options": options, "image_options": image_options, "callback": bar, "on_checkpoint": on_checkpoint}
    try:
        if args.command == "image":
            result = jobs.stylize_image(content, styles, **kwargs)
        elif args.command == "texture":
            result = jobs.synthesize_texture(styles, **kwargs)
        else:
            result = jobs.reconstruct_content(content, **kwargs)
    finally:
        bar.close()
    label = RANDOM_LABEL if result.random_weights else None
    save_image(result.image, out, label)
    if result.random_weights:
        log.warning("%s: %s", out, RANDOM_LABEL)
    if result.interrupted:
        log.warning("interrupted: wrote the result so far to %s", out)
        return 130
    log.info("wrote %s", out)
    return 0
