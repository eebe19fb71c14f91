"""Benchmark of 2D style transfer: seconds per iteration at 256 and 512 px, the share of each step spent
outside VGG forward+backward, and peak resident memory. Prints one JSON line.

    python scripts/bench_image.py [--iterations 6] [--optimizer lbfgs] [--style-loss gram]

Uses seeded random VGG weights (timing does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import StepTimer, peak_rss_mb  # noqa: E402

from meshstyle.stylize import image as stylize2d  # noqa: E402

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=6)
    parser.add_argument("--optimizer", default="lbfgs")
    parser.add_argument("--style-loss", default="gram", choices=("gram", "meanstd", "sw"))
    args = parser.parse_args()
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "optimizer": args.optimizer,
           "style_loss": args.style_loss}
    for size in (256, 512):
        timer = StepTimer()
        timer.patch(stylize2d)
        stylize2d.stylize_image(ASSETS / "content" / "astronaut.png", ASSETS / "styles" / "starry_night_google.jpg",
                                size=size, scales=1, iterations=args.iterations, optimizer=args.optimizer, style_loss=args.style_loss,
                                vgg_weights="random", callback=timer)
        out[f"{size}px"] = timer.summary()
    out["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
