"""Seconds per optimization step of each encoder, measured in one run (interleaved rounds, medians).

One step = encoder forward on a (1, 3, S, S) image + Gram style loss on the encoder's default style layers
(plus its content layer, as in style transfer) + backward + Adam update. Encoders: VGG-19 with seeded random
weights (same cost as ImageNet weights) and the MobileNetV2 of Magenta with its defaults and as trained. Rounds
alternate between encoders so that load changes on a shared machine hit all of them alike; the ratio
``vgg19 / encoder`` is the number to quote.

Measured (256 px, one thread, shared CPU): VGG-19 0.88 s/step, MobileNetV2 default 0.099 (8.9x), as trained
0.069 (12.7x); under heavier load in another run 1.93 / 0.31 / 0.21 (6.2x / 9.4x).

Each encoder runs in float32 and in bfloat16 (``precision="bf16"``, see ``meshstyle.engine.precision``).

Usage: python scripts/bench_encoders.py [--size 256] [--rounds 5] [--steps 4] [--threads 1]
Prints one JSON line per encoder: {"encoder", "s_per_step", "speedup_vs_vgg19", ...}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from meshstyle.engine import encoders  # noqa: E402
from meshstyle.engine.losses import ContentLoss, StyleLoss, make_statistic  # noqa: E402
from meshstyle.engine.texture import PlainTexture  # noqa: E402

CONFIGS = {
    "vgg19 (random weights)": ("vgg19", {"weights": "random:0"}),
    "vgg19 bf16 (random weights)": ("vgg19", {"weights": "random:0", "precision": "bf16"}),
    "mobilenetv2-magenta default (antialias, jitter 1 px)": ("mobilenetv2-magenta", {}),
    "mobilenetv2-magenta as trained (no smoothing, no jitter)": ("mobilenetv2-magenta",
                                                                 {"smoothing": "none", "jitter": 0.0}),
    "mobilenetv2-magenta default bf16": ("mobilenetv2-magenta", {"precision": "bf16"}),
}


class Case:
    """An encoder with its default style and content losses, targets from a random image."""

    def __init__(self, name: str, kwargs: dict, size: int):
        style, content = encoders.default_layers(name)
        self.style_layers, self.content_layers = style.split(","), content.split(",")
        self.encoder = encoders.make_encoder(name, self.style_layers + self.content_layers, **kwargs)
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            feats = self.encoder(torch.rand(1, 3, size, size, generator=gen))
        self.style = StyleLoss(make_statistic("gram"), {k: 1.0 for k in self.style_layers})
        self.style.set_target([feats], [1.0])
        self.content = ContentLoss({k: 1.0 for k in self.content_layers})
        self.targets = {k: feats[k] for k in self.content_layers}
        self.param = PlainTexture(torch.rand(3, size, size, generator=gen))
        self.opt = torch.optim.Adam(self.param.parameters(), lr=0.02)

    def step(self) -> None:
        self.opt.zero_grad()
        feats = self.encoder(self.param()[None])
        (self.style(feats) + self.content(feats, self.targets)).backward()
        self.opt.step()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per encoder per round")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is much faster than 2 on a CPU shared with other jobs)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cases = {label: Case(name, kw, args.size) for label, (name, kw) in CONFIGS.items()}
    for case in cases.values():  # warm-up
        case.step()
    times: dict[str, list[float]] = {label: [] for label in cases}
    for _ in range(args.rounds):
        for label, case in cases.items():
            start = time.perf_counter()
            for _ in range(args.steps):
                case.step()
            times[label].append((time.perf_counter() - start) / args.steps)
    vgg = statistics.median(times["vgg19 (random weights)"])
    for label, values in times.items():
        med = statistics.median(values)
        print(json.dumps({"encoder": label, "size": args.size, "threads": args.threads,
                          "s_per_step": round(med, 4), "min": round(min(values), 4), "max": round(max(values), 4),
                          "speedup_vs_vgg19": round(vgg / med, 2)}), flush=True)


if __name__ == "__main__":
    main()
