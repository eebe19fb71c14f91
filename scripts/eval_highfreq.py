"""High-frequency energy of textures synthesized through the MobileNetV2 encoder, per checkerboard remedy.

For each remedy and each style (red discs on white, generated; assets/styles/starry_night_google.jpg),
synthesizes a texture from uniform noise with the engine's pieces (MobileNetEncoder, Gram StyleLoss,
PlainTexture, Adam) and prints one JSON line:

    {"remedy": ..., "ratio_circles": r1, "ratio_starry": r2, "ratio_max": max, "loss_drop": ..., "s": ...}

``ratio`` = (share of the output's spectral energy above half Nyquist) / (the same for the style image at
the synthesis size): 1 means as much fine detail as the style, > 1 means added noise (the checkerboard).
Spectra are of the mean-free image under a 2D Hann window, summed over RGB; "above half Nyquist" is a
radial frequency > 0.25 cycles/px.

Remedies: ``none``; ``tv`` (total variation, weight 0.3 or as named); ``swag`` (softmax-transformed
activations, Wang et al. CVPR 2021); ``jitter`` (random sub-pixel shift of the optimized image, +-1 px);
``multiscale`` (coarse to fine: half size, then full size from the upsampled result, as the 2D commands
do by default); ``antialias`` (strided convolutions -> stride 1 + ReLU6 + blur-pool, Zhang ICML 2019);
combinations; and ``/smooth-init`` rows that start from smooth noise, as a mesh run starts from its
texture, which isolates the checkerboard the gradient paints.

Measured (256 px, 400 Adam steps, one thread, ratio discs / Starry Night): none 12.2 / 7.8; tv 2.4 / 1.2;
swag 15.5 / 7.8; jitter 4.2 / 6.8; multiscale 3.0 / 3.1; antialias 2.8 / 7.5; antialias+multiscale
1.08 / 1.92; antialias+jitter+multiscale = default 1.02 / 1.22; antialias+tv0.01+multiscale 0.87 / 0.96.
Smooth start: none 8.9 / 3.4, antialias 1.6 / 1.6, antialias+jitter (default) 1.24 / 0.85, antialias+tv0.01
1.4 / 1.1. With --optimizer lbfgs,
antialias+multiscale (the L-BFGS default: no jitter) 0.54 / 0.71; with jitter it diverged.

Usage: python scripts/eval_highfreq.py [--size 256] [--steps 400] [--remedies none,antialias] [--save DIR]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from meshstyle.core.imageio import load_image  # noqa: E402
from meshstyle.engine.losses import StyleLoss, make_statistic, total_variation  # noqa: E402
from meshstyle.engine.mobilenet import DEFAULT_STYLE_LAYERS, MobileNetEncoder  # noqa: E402
from meshstyle.engine.optimize import make_optimizer  # noqa: E402
from meshstyle.engine.texture import PlainTexture  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STARRY = ROOT / "assets" / "styles" / "starry_night_google.jpg"

NONE, AA = {"smoothing": "none", "jitter": 0.0}, {"smoothing": "antialias", "jitter": 0.0}
#: name -> (encoder keyword arguments, TV weight, coarse-to-fine, initial image)
REMEDIES = {
    "none": (NONE, 0.0, False, "noise"),
    "tv": (NONE, 0.3, False, "noise"),
    "swag": ({"smoothing": "swag", "jitter": 0.0}, 0.0, False, "noise"),
    "jitter": ({"smoothing": "none", "jitter": 1.0}, 0.0, False, "noise"),
    "multiscale": (NONE, 0.0, True, "noise"),
    "antialias": (AA, 0.0, False, "noise"),
    "swag+multiscale": ({"smoothing": "swag", "jitter": 0.0}, 0.0, True, "noise"),
    "jitter+multiscale": ({"smoothing": "none", "jitter": 1.0}, 0.0, True, "noise"),
    "antialias+multiscale": (AA, 0.0, True, "noise"),
    "antialias+jitter+multiscale": ({"smoothing": "antialias", "jitter": 1.0}, 0.0, True, "noise"),
    # the encoder's defaults (antialias, jitter 1 px) with the 2D commands' default coarse-to-fine run
    "default": ({}, 0.0, True, "noise"),
    "antialias+tv0.01+multiscale": (AA, 0.01, True, "noise"),
    "antialias+tv0.03+multiscale": (AA, 0.03, True, "noise"),
    # a smooth start (as a mesh's own texture is): only the gradient's checkerboard is left to remove
    "none/smooth-init": (NONE, 0.0, False, "smooth"),
    "antialias/smooth-init": (AA, 0.0, False, "smooth"),
    "antialias+jitter/smooth-init": ({"smoothing": "antialias", "jitter": 1.0}, 0.0, False, "smooth"),
    "antialias+tv0.01/smooth-init": (AA, 0.01, False, "smooth"),
}


def discs(size: int, seed: int = 0) -> torch.Tensor:
    """Red discs (radius size/18) on white, non-overlapping, (3, size, size) in [0, 1]."""
    rng = np.random.default_rng(seed)
    radius = size / 18
    yy, xx = np.mgrid[:size, :size]
    img = np.ones((size, size, 3), np.float32)
    centres: list[np.ndarray] = []
    for _ in range(20000):
        c = rng.uniform(radius, size - radius, 2)
        if all(np.hypot(*(c - p)) > 2.4 * radius for p in centres):
            centres.append(c)
            img[(yy - c[0]) ** 2 + (xx - c[1]) ** 2 <= radius * radius] = (0.85, 0.1, 0.1)
        if len(centres) >= 30:
            break
    return torch.from_numpy(img).permute(2, 0, 1)


def highfreq_share(image: torch.Tensor) -> float:
    """Share of the spectral energy of (3, H, W) above half Nyquist (radial frequency > 0.25 cycles/px)."""
    x = image.double() - image.double().mean((1, 2), keepdim=True)
    h, w = x.shape[1:]
    window = torch.hann_window(h, periodic=False, dtype=torch.double)[:, None] * \
        torch.hann_window(w, periodic=False, dtype=torch.double)[None]
    power = torch.fft.fft2(x * window).abs().pow(2).sum(0)
    fy = torch.fft.fftfreq(h, dtype=torch.double)[:, None]
    fx = torch.fft.fftfreq(w, dtype=torch.double)[None]
    radius = torch.sqrt(fx ** 2 + fy ** 2)
    return float(power[radius > 0.25].sum() / power.sum().clamp_min(1e-20))


def initial(kind: str, side: int, gen: torch.Generator) -> torch.Tensor:
    """``"noise"``: uniform noise (the 2D commands' start); ``"smooth"``: uniform noise at 1/8 size,
    upsampled bilinearly (no fine detail)."""
    if kind == "noise":
        return torch.rand(3, side, side, generator=gen)
    coarse = torch.rand(1, 3, max(1, side // 8), max(1, side // 8), generator=gen)
    return F.interpolate(coarse, size=(side, side), mode="bilinear", align_corners=False)[0]


def synthesize(style: torch.Tensor, encoder_kw: dict, tv: float, coarse_to_fine: bool, steps: int,
               size: int, init: str = "noise", seed: int = 0, lr: float = 0.02,
               optimizer: str = "adam") -> tuple[torch.Tensor, list[float]]:
    """Gram texture synthesis; returns the texture (3, size, size) and the style loss per step."""
    layers = DEFAULT_STYLE_LAYERS.split(",")
    encoder = MobileNetEncoder(layers, seed=seed, **encoder_kw)
    gen = torch.Generator().manual_seed(seed)
    sizes = [size // 2, size] if coarse_to_fine else [size]
    texture, history = None, []
    for side in sizes:
        loss = StyleLoss(make_statistic("gram"), {name: 1.0 for name in layers})
        target = F.interpolate(style[None], size=(side, side), mode="area") if side != style.shape[-1] else style[None]
        with torch.no_grad():
            loss.set_target([encoder(target)], [1.0])
        if texture is None:
            start = initial(init, side, gen)
        else:
            start = F.interpolate(texture[None], size=(side, side), mode="bilinear", align_corners=False)[0]
        param = PlainTexture(start)
        opt = make_optimizer(optimizer, param.parameters(), None if optimizer == "lbfgs" else lr)
        for _ in range(steps // len(sizes)):
            def closure(opt=opt, param=param, loss=loss):
                opt.zero_grad()
                image = param()
                value = loss(encoder(image[None]))
                total = value + tv * total_variation(image) if tv else value
                total.backward()
                history.append(float(value.detach()))
                return total

            opt.step(closure)
            if optimizer == "adam":
                param.project_()
        texture = param().detach().clamp(0, 1)
    return texture, history


def save_png(image: torch.Tensor, path: Path) -> None:
    from PIL import Image

    Image.fromarray((image.clamp(0, 1).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8)).save(path)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=400, help="Adam steps in all (split over scales)")
    parser.add_argument("--remedies", default=",".join(REMEDIES))
    parser.add_argument("--optimizer", choices=("adam", "lbfgs"), default="adam",
                        help="adam (lr 0.02) or the engine's L-BFGS (lr 1, one evaluation per step)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is much faster than 2 on a CPU shared with other jobs)")
    parser.add_argument("--save", type=Path, default=None, help="folder for the PNGs")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    styles = {"circles": discs(args.size), "starry": load_image(STARRY, (args.size, args.size))}
    shares = {name: highfreq_share(img) for name, img in styles.items()}
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for name, img in styles.items():
            save_png(img, args.save / f"style_{name}.png")
    for remedy in args.remedies.split(","):
        encoder_kw, tv, c2f, init = REMEDIES[remedy]
        row = {"remedy": remedy, "optimizer": args.optimizer}
        start = time.perf_counter()
        drops = []
        for name, style in styles.items():
            texture, history = synthesize(style, encoder_kw, tv, c2f, args.steps, args.size, init,
                                          optimizer=args.optimizer)
            row[f"ratio_{name}"] = round(highfreq_share(texture) / shares[name], 3)
            drops.append(history[-1] / history[0])
            if args.save:
                save_png(texture, args.save / f"{name}_{remedy.replace('+', '_').replace('/', '_')}.png")
        row["ratio_max"] = max(row[f"ratio_{name}"] for name in styles)
        row["loss_final_over_first"] = round(max(drops), 4)
        row["s"] = round(time.perf_counter() - start, 1)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
