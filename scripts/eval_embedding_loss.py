"""Explore the style-prediction network's embedding as a differentiable style loss (issue 11, item 5).

    python scripts/eval_embedding_loss.py [--style assets/styles/starry_night_google.jpg] [--size 256]
        [--steps 200] [--seed 0] [-o out/eval_embedding_loss] [--threads 1]

The same 2D texture synthesis from noise (Gatys et al. 2015 without content: pixels of a ``size`` px
square, uniform noise of ``seed``, Adam lr 0.02, ``steps`` steps, pixels clamped to [0, 1] after each
step) is run with four style losses, nothing else differing:

(a) ``gram-vgg-random``: Gram loss on VGG-19 with seeded RANDOM weights (the engine's Objective, the
    default style layers; what the optimization method does offline without ImageNet weights);
(b) ``embedding``: squared L2 distance between the embeddings (100-d) of the image and of the style
    painting, both through Magenta's style-prediction network (Ghiasi et al. 2017, pretrained);
(c) ``gram-mobilenet``: Gram loss on the same network's MobileNetV2 features (the engine's
    ``--encoder mobilenetv2-magenta``, the current pretrained offline encoder), for reference;
(d) ``embedding-crops``: (b) averaged over 2 random crops + flips per step (expectation over
    transformations, against the adversarial noise that (b) alone converges to).

Reported per loss: its value at step 0 and at the end (and the ratio), seconds per step (mean of
steps 2..end; the runs advance in lockstep so CPU contention hits them alike), and every final
image scored by the other losses (so that a loss which is easy to lower but says little about the look
shows up). Writes ``sheet.png`` (style | a | b | c | d) and the
numbers as ``results.json`` into the output folder.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from meshstyle.core.imageio import load_image, resize_tensor, save_pil, tensor_to_pil
from meshstyle.engine.feedforward import StylePredictor
from meshstyle.engine.objective import Objective
from meshstyle.engine.runplan import make_plan
from meshstyle.engine.texture import PlainTexture
from meshstyle.stylize.options import ENGINE_DEFAULTS

ROOT = Path(__file__).resolve().parent.parent


def gram_loss(encoder: str, style: torch.Tensor, seed: int):
    """Loss function image (1, 3, H, W) -> scalar: the engine's Gram style loss with ``encoder``."""
    options = replace(ENGINE_DEFAULTS["texture"], encoder=encoder, seed=seed, style_loss="gram",
                      vgg_weights="random" if encoder == "vgg19" else None, device="cpu")
    objective = Objective(make_plan(options, use_content=False))
    objective.set_style([style], [1.0])
    for p in objective.parameters():
        p.requires_grad_(False)
    return lambda image: objective(image)["style"]


def embedding_loss(predictor: StylePredictor, style: torch.Tensor):
    """Loss function image (1, 3, H, W) -> scalar: ``||P(image) - P(style)||^2`` (P: the predictor)."""
    with torch.no_grad():
        target = predictor(style[None])
    return lambda image: (predictor(image) - target).pow(2).sum()


def robust_embedding_loss(predictor: StylePredictor, style: torch.Tensor, seed: int, crops: int = 2):
    """Like :func:`embedding_loss`, averaged over ``crops`` random square crops (side 40-100 % of the
    image, random place, random horizontal flip) per call, each resized to 256 by the predictor: the
    expectation over transformations that makes adversarial pixel patterns costlier."""
    with torch.no_grad():
        target = predictor(style[None])
    gen = torch.Generator().manual_seed(seed + 1)

    def loss(image: torch.Tensor) -> torch.Tensor:
        h, w = image.shape[-2:]
        total = 0.0
        for _ in range(crops):
            side = int(min(h, w) * (0.4 + 0.6 * float(torch.rand(1, generator=gen))))
            top = int(torch.randint(0, h - side + 1, (1,), generator=gen))
            left = int(torch.randint(0, w - side + 1, (1,), generator=gen))
            crop = image[:, :, top:top + side, left:left + side]
            if float(torch.rand(1, generator=gen)) < 0.5:
                crop = crop.flip(-1)
            total = total + (predictor(crop) - target).pow(2).sum()
        return total / crops

    return loss


def synthesize(loss_fns: dict, size: int, steps: int, seed: int, lr: float = 0.02) -> dict[str, dict]:
    """Adam on the pixels of the same noise image, one run per loss, stepped in lockstep (step k of
    every run before step k + 1 of any) so that a busy shared CPU slows all of them alike; returns per
    loss the losses, seconds per step (mean of steps 2..end) and the final image."""
    noise = torch.rand(3, size, size, generator=torch.Generator().manual_seed(seed))
    runs = {}
    for name in loss_fns:
        param = PlainTexture(noise.clone())
        opt = torch.optim.Adam(param.parameters(), lr=lr)
        runs[name] = {"param": param, "opt": opt, "losses": [], "times": []}
    for _ in range(steps):
        for name, fn in loss_fns.items():
            run = runs[name]
            t = time.perf_counter()
            run["opt"].zero_grad(set_to_none=True)
            loss = fn(run["param"]()[None])
            loss.backward()
            run["opt"].step()
            run["param"].project_()
            run["times"].append(time.perf_counter() - t)
            run["losses"].append(float(loss.detach()))
    out = {}
    for name, run in runs.items():
        with torch.no_grad():
            final = float(loss_fns[name](run["param"]()[None]))
        losses, times = run["losses"], run["times"]
        out[name] = {"start": losses[0], "end": final, "ratio": final / losses[0],
                     "seconds_per_step": sum(times[1:]) / max(1, len(times) - 1),
                     "image": run["param"]().detach().clone(), "curve": losses[:: max(1, steps // 20)]}
    return out


def labelled(images: list[torch.Tensor], labels: list[str]) -> Image.Image:
    """One row of images (3, H, W) with a text label above each."""
    tiles = [tensor_to_pil(x) for x in images]
    w, h = tiles[0].size
    sheet = Image.new("RGB", (len(tiles) * (w + 4) + 4, h + 22), "white")
    draw = ImageDraw.Draw(sheet)
    for k, (tile, label) in enumerate(zip(tiles, labels)):
        draw.text((4 + k * (w + 4), 4), label, fill=(0, 0, 0))
        sheet.paste(tile, (4 + k * (w + 4), 20))
    return sheet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", default=str(ROOT / "assets" / "styles" / "starry_night_google.jpg"))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: fastest on a shared CPU)")
    parser.add_argument("-o", "--output", default=str(ROOT / "out" / "eval_embedding_loss"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    style = load_image(args.style, args.size)
    predictor = StylePredictor()
    for p in predictor.parameters():
        p.requires_grad_(False)
    losses = {"gram-vgg-random": gram_loss("vgg19", style, args.seed),
              "embedding": embedding_loss(predictor, load_image(args.style)),
              "gram-mobilenet": gram_loss("mobilenetv2-magenta", style, args.seed),
              "embedding-crops": robust_embedding_loss(predictor, load_image(args.style), args.seed)}
    results = synthesize(losses, args.size, args.steps, args.seed)
    noise = torch.rand(3, args.size, args.size, generator=torch.Generator().manual_seed(args.seed))
    scored = {"noise": noise, **{name: r["image"] for name, r in results.items()},
              "style": resize_tensor(style, (args.size, args.size))}
    with torch.no_grad():
        cross = {img: {name: float(fn(x[None])) for name, fn in losses.items()} for img, x in scored.items()}
    report = {name: {k: v for k, v in r.items() if k != "image"} for name, r in results.items()}
    report["cross"] = cross
    report["settings"] = vars(args)
    print(f"{'loss':16s} {'start':>10s} {'end':>10s} {'ratio':>8s} {'s/step':>8s}")
    for name, r in results.items():
        print(f"{name:16s} {r['start']:10.4g} {r['end']:10.4g} {r['ratio']:8.4f} "
              f"{r['seconds_per_step']:8.4f}")
    print("\nfinal image (row) scored by each loss (column):")
    print(f"{'':16s}" + "".join(f"{n:>17s}" for n in losses))
    for img, row in cross.items():
        print(f"{img:16s}" + "".join(f"{row[n]:17.4g}" for n in losses))
    sheet = labelled([scored["style"]] + [r["image"] for r in results.values()],
                     ["style (resized)", "(a) Gram, RANDOM VGG", "(b) embedding", "(c) Gram, MobileNetV2",
                      "(d) embedding, random crops"])
    save_pil(sheet, out / "sheet.png", "(a) uses RANDOM VGG weights: not a real stylization")
    (out / "results.json").write_text(json.dumps(report, indent=1))
    print(f"\nwrote {out / 'sheet.png'} and {out / 'results.json'}")


if __name__ == "__main__":
    main()
