"""Region masks (issue 27 item 2): does each region of a masked run end closer to its own style than to the other?

The astronaut photo at 256 px with a drawn mask: a disc over the face is label 0 (keeps the photo), the rest of the
left half is label 1, the rest of the right half label 2; ``meshstyle image --mask`` gives region 1 STYLE1 and
region 2 STYLE2 (ImageNet VGG-16 by default, the package's defaults otherwise). Judge: the Gram distance
(ImageNet VGG-16 relu1_1..relu5_1, each layer normalized by its target's mean square, as the style loss) of the
result's cells wholly inside each region to each style image (at 256 px, as the run sees it); the same for the
photo before the run. Prints one JSON line per run and a table; also checks that label-0 pixels equal the photo's.
``--sheet`` writes content | mask | result side by side (docs/mask_example.png).

Measured (2026-12-07, defaults: wave.jpg left, composition_vii.jpg right, VGG-16 ImageNet, 300 steps, 1 thread;
Gram distance own / other): region 1 16.14 / 5.26 before, 0.807 / 2.50 after; region 2 3.87 / 7.89 before,
0.369 / 6.07 after; label-0 pixels equal the photo's. Peak RSS 1.41 GB.

    python scripts/eval_masks.py [--style1 wave.jpg] [--style2 composition_vii.jpg] [--iterations 300]
        [--encoder vgg16] [--vgg-weights imagenet] [--threads 1] [--sheet docs/mask_example.png]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from meshstyle.core.imageio import load_image, tensor_to_pil, tensor_to_rgb8
from meshstyle.engine.features import VGGEncoder
from meshstyle.engine.losses import ObjectCells, StyleLoss, make_statistic
from meshstyle.stylize.image import stylize_image

ROOT = Path(__file__).resolve().parent.parent
CONTENT = ROOT / "assets" / "content" / "astronaut.png"
JUDGE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
SIZE = 256
#: Label colours of the mask panel of the sheet: 0 grey, 1 orange, 2 blue.
PANEL = np.array([[128, 128, 128], [230, 140, 40], [40, 110, 220]], np.uint8)


def drawn_mask(size: int = SIZE) -> torch.Tensor:
    """(size, size) labels: 1 left half, 2 right half, 0 in a disc over the astronaut's face."""
    y, x = torch.meshgrid(torch.arange(size) + 0.5, torch.arange(size) + 0.5, indexing="ij")
    labels = torch.where(x < size / 2, 1, 2)
    face = (x - 0.44 * size) ** 2 + (y - 0.24 * size) ** 2 < (0.17 * size) ** 2
    return labels.masked_fill(face, 0).long()


def region_distance(judge: VGGEncoder, image: torch.Tensor, region: torch.Tensor, style: torch.Tensor) -> float:
    """Gram distance of ``image`` (3, H, W)'s cells wholly inside ``region`` (H, W) bool to ``style`` (3, h, w)."""
    loss = StyleLoss(make_statistic("gram"), {name: 1.0 for name in JUDGE_LAYERS})
    with torch.no_grad():
        loss.set_target([judge(style[None])], [1.0])
        return float(loss(judge(image[None]), ObjectCells(region[None, None].float())))


def sheet(content: torch.Tensor, labels: torch.Tensor, result: torch.Tensor, path: Path) -> None:
    """content | mask (label colours) | result, side by side."""
    panel = Image.fromarray(PANEL[labels.numpy()])
    images = [tensor_to_pil(content), panel, tensor_to_pil(result)]
    out = Image.new("RGB", (sum(i.width for i in images) + 8 * (len(images) - 1), images[0].height), "white")
    x = 0
    for img in images:
        out.paste(img, (x, 0))
        x += img.width + 8
    out.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--style1", default="wave.jpg", help="style of the left region (assets/styles/)")
    parser.add_argument("--style2", default="composition_vii.jpg", help="style of the right region")
    parser.add_argument("--iterations", type=int, default=300)
    parser.add_argument("--encoder", default="vgg16")
    parser.add_argument("--vgg-weights", default="imagenet")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sheet", type=Path, default=None, help="write content | mask | result here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    paths = {1: ROOT / "assets" / "styles" / args.style1, 2: ROOT / "assets" / "styles" / args.style2}
    labels = drawn_mask()
    content = load_image(CONTENT, SIZE)
    start = time.perf_counter()
    result = stylize_image(CONTENT, [f"{k}={p}" for k, p in paths.items()], mask=labels, size=SIZE,
                           iterations=args.iterations, encoder=args.encoder, vgg_weights=args.vgg_weights,
                           threads=args.threads, seed=0).image
    seconds = time.perf_counter() - start
    judge = VGGEncoder(JUDGE_LAYERS, arch="vgg16", weights="imagenet", precision="fp32")
    styles = {k: load_image(p, SIZE) for k, p in paths.items()}
    row = {"styles": {k: p.name for k, p in paths.items()}, "iterations": args.iterations, "encoder": args.encoder,
           "seconds": round(seconds, 1),
           "background_equal": bool(np.array_equal(tensor_to_rgb8(result)[labels.numpy() == 0],
                                                   tensor_to_rgb8(content)[labels.numpy() == 0]))}
    for name, image in (("before", content), ("after", result)):
        row[name] = {f"region{r}": {f"to_style{k}": round(region_distance(judge, image, labels == r, styles[k]), 4)
                                    for k in paths} for r in paths}
    print(json.dumps(row))
    print(f"{'region':8} {'own before':>11} {'other before':>13} {'own after':>10} {'other after':>12}")
    for r in paths:
        other = 3 - r
        b, a = row["before"][f"region{r}"], row["after"][f"region{r}"]
        print(f"{r:<8} {b[f'to_style{r}']:>11.4f} {b[f'to_style{other}']:>13.4f} {a[f'to_style{r}']:>10.4f} "
              f"{a[f'to_style{other}']:>12.4f}")
    if args.sheet:
        sheet(content, labels, result, args.sheet)


if __name__ == "__main__":
    main()
