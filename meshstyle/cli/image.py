"""The 2D commands: ``image`` (style transfer), ``texture`` (texture synthesis), ``reconstruct``."""

from __future__ import annotations

import argparse
import logging

from ..core import optiontable
from ..engine.options import EngineOptions
from ..stylize.jobs import image_job
from ..stylize.options import ENGINE_DEFAULTS, ImageOptions
from .epilog import EPILOG_WEIGHTS
from .progress import ProgressBar

log = logging.getLogger("meshstyle")
FMT = argparse.RawDescriptionHelpFormatter

COMMANDS = {
    "image": ("style transfer of a photo",
              "Repaint CONTENT in the style of one or more paintings (Gatys et al. 2016).",
              ["meshstyle image photo.jpg --style starry.jpg -o out.png",
               "meshstyle image photo.jpg --style a.jpg --style b.jpg --style-blend 0.7,0.3 -o out.png",
               "meshstyle image photo.jpg --style wave.jpg --preserve-color luminance -o out.png",
               "meshstyle image photo.jpg --mask regions.png --style 1=a.jpg --style 2=b.jpg -o out.png",
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
                               "('meshstyle styles' shows them); with --mask, LABEL=painting.jpg (a label number "
                               "or #rrggbb colour of the mask) styles that region" if command == "image" else ""))
        if command == "image":
            p.add_argument("--mask", metavar="REGIONS.png",
                           help="regions: a label image (one channel, pixel value = label) or an RGB image with one "
                                "flat colour per region (numbered by ascending #rrggbb, black = 0); each region "
                                "takes its --style LABEL=painting.jpg (unlabelled styles go to regions without "
                                "one); label 0 keeps the content's pixels")
        p.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp)")
        add_option_flags(p, command, ImageOptions)
        p.set_defaults(func=run_image_command)


def run_image_command(args) -> int:
    """Run one of the 2D commands from parsed arguments; returns the exit status."""
    options = optiontable.from_args(EngineOptions, args, ENGINE_DEFAULTS[args.command])
    image_options = optiontable.from_args(ImageOptions, args)
    bar = ProgressBar(quiet=args.quiet)
    try:
        outcome = image_job(args.command, getattr(args, "content", None), list(getattr(args, "style", None) or []),
                            args.output, options=options, image_options=image_options, callback=bar,
                            mask=getattr(args, "mask", None))
    finally:
        bar.close()
    if outcome.interrupted:
        log.warning("interrupted: wrote the result so far to %s", args.output)
        return 130
    log.info("wrote %s", args.output)
    return 0
