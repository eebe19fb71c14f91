"""The preset contact sheet: an image and the 26 preset styles of Dumoulin et al. (2017) applied to it
(``meshstyle styles --sheet``)."""

from __future__ import annotations

import os

from PIL import Image, ImageDraw, ImageFont

from ..core.errors import MeshstyleError
from ..core.imageio import resize_tensor, tensor_to_pil
from ..engine.feedforward import preset_weights
from ..engine.options import resolve_device
from .feedforward import FeedForward, ParsedStyle, StyleInput, read_image, shared_networks


def preset_sheet(image: StyleInput, *, tile: int = 160, columns: int = 7, work: int = 384,
                 device: str = "auto", cache_dir: str | os.PathLike | None = None,
                 networks: FeedForward | None = None):
    """Contact sheet (a Pillow RGB image) of ``image`` and the 26 preset styles (Dumoulin et al. 2017)
    applied to it, each tile labelled with the ``preset:N`` name to pass as ``--style``.

    ``image``: path or tensor (3, H, W) in [0, 1]. The network runs on ``image`` at a long edge of
    ``max(tile, work)`` px and each result is scaled down to the ``tile`` px tile (16..1024): the
    styles were trained for images of a few hundred px, and run on a tiny tile their strokes cover the
    whole picture (so a sheet would not show what a real-size run gives).

    Raises:
        MeshstyleError: unreadable image, bad sizes, or the ``pretrained`` extra missing.
    """
    if not 16 <= tile <= 1024 or not 1 <= columns <= 27 or not 16 <= work <= 2048:
        raise MeshstyleError("--tile must be 16..1024 px, --columns 1..27 and work 16..2048 px")
    nets = networks or shared_networks(resolve_device(device), cache_dir)
    img = read_image(image, tile)
    w, h = img.shape[2], img.shape[1]
    big = read_image(image, max(tile, work))[None]
    styles = [ParsedStyle(preset=preset_weights(k).to(nets.device)) for k in range(26)]
    outs = [img] + [resize_tensor(nets.stylize(big, s)[0].cpu(), (w, h)) for s in styles]
    names = ["original"] + [f"preset:{k}" for k in range(26)]
    label, pad = 14, 4
    rows = -(-len(outs) // columns)
    sheet = Image.new("RGB", (columns * (w + pad) + pad, rows * (h + label + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(11)  # the default 10 px size drops the colon after "t" here
    for n, (name, out) in enumerate(zip(names, outs)):
        r, c = divmod(n, columns)
        x, y = pad + c * (w + pad), pad + r * (h + label + pad)
        draw.text((x + 2, y + 1), name, fill=(0, 0, 0), font=font)
        sheet.paste(tensor_to_pil(out), (x, y + label))
    return sheet

