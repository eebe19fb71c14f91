"""Benchmark of mesh stylization on the spot cow with default options: per depth level, the pixels fed
to VGG, the pixels with style weight > 0 and their ratio (the useful share); seconds per step split into
VGG forward+backward and the rest; the VGG floor (forward+backward of one square image holding only
the weighted pixels of a step) and the step over the encoder time it actually spends (``step_over_fed_vgg``:
rendering, hooks and the optimizer on top of the fed crops); and optionally end-to-end seconds and peak
memory of the README command.
Prints one JSON line.

    python scripts/bench_mesh.py                 # per-step split (12 steps) + the README command
    python scripts/bench_mesh.py --no-end-to-end # only the per-step split

``--weighting``, ``--level-blend`` and ``--crop-tiles`` set those MeshOptions fields of the run (and the
flags of the end-to-end command); tests/test_stylize3d.py checks that each changes what it measures.

``encoder_calls_per_step`` with the fed pixels of two runs (``--crop-tiles 1`` and ``4``) gives the cost
of one more encoder input, a in seconds per step = inputs x a + pixels x b
(``Network.call_cost_pixels`` in meshstyle/engine = a / b).

Steps are timed with one render scale (``render_scales=1``: all at full resolution). Uses seeded random
VGG-19 weights (timing does not depend on the weights); ``--encoder mobilenetv2-magenta``
times that encoder instead (its "VGG" figures are then that encoder's). Other processes on the machine
change absolute times: compare the numbers of one run with each other (ratios). ``--precision`` (auto: as
the CLI picks it, bf16 for VGG on CPUs with AMX) sets the encoder's arithmetic for the run and the floor.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import StepTimer, peak_rss_mb  # noqa: E402

from meshstyle.engine.encoders import make_encoder  # noqa: E402
from meshstyle.engine.losses import layer_size  # noqa: E402
from meshstyle.engine.precision import PRECISIONS  # noqa: E402
from meshstyle.stylize import mesh as stylize3d  # noqa: E402
from meshstyle.stylize.mesh import WEIGHTINGS  # noqa: E402
from meshstyle.stylize.options import MeshOptions  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPOT = ROOT / "assets" / "meshes" / "spot" / "cow.obj"
STYLE = ROOT / "assets" / "styles" / "starry_night_google.jpg"


class _Kept(list):
    base: type


def capture_loss() -> _Kept:
    """Instrument (not configure) a run: MultiViewLoss is swapped for a subclass that keeps the instances
    the run builds (for their level views); :func:`measure` puts the original back."""
    kept, base = _Kept(), stylize3d.MultiViewLoss
    kept.base = base

    class Kept(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            kept.append(self)

    stylize3d.MultiViewLoss = Kept
    return kept


def level_pixels(loss, batch_views: int) -> dict:
    """Per level, averaged over views and scaled to a step's batch: pixels fed to VGG and pixels of
    positive style weight, and their ratio."""
    levels: dict[int, list[float]] = {}
    scale = batch_views / len(loss.views)
    for per_view in loss.views:
        for lv in per_view:
            entry = levels.setdefault(lv.level, [0.0, 0.0, lv.frame])
            entry[0] += lv.weight.numel() * scale
            entry[1] += float((lv.weight > 0).sum()) * scale
    out = {f"level_{k}": {"frame_px": v[2], "fed_px_per_step": round(v[0]), "weighted_px_per_step": round(v[1]),
                          "useful_share": round(v[1] / max(v[0], 1), 3)} for k, v in sorted(levels.items())}
    fed, useful = sum(v[0] for v in levels.values()), sum(v[1] for v in levels.values())
    out["all"] = {"fed_px_per_step": round(fed), "weighted_px_per_step": round(useful),
                  "useful_share": round(useful / max(fed, 1), 3),
                  "encoder_calls_per_step": round(sum(map(len, loss.views)) * scale, 2)}
    return out


def background_mass(loss) -> dict:
    """Per style layer, the share of style-statistic weight mass that sits in feature cells whose pixels
    include background (coverage < 1), over every level view (target < 0.1)."""
    out = {}
    for layer in loss.objective.options.style_layers:
        total = touching = 0.0
        for v, per_view in enumerate(loss.views):
            for k, lv in enumerate(per_view):
                size = layer_size(layer, *lv.weight.shape[-2:])
                if loss.weighting == "gradient":
                    mass = loss.cells[v][k].at(size)
                else:
                    mass = torch.nn.functional.adaptive_avg_pool2d(lv.weight, size)
                covered = torch.nn.functional.adaptive_avg_pool2d(lv.view.mask, mass.shape[-2:])
                total += float(mass.sum())
                touching += float((mass * (covered < 1 - 1e-6)).sum())
        out[layer] = round(touching / max(total, 1e-12), 4)
    return out


def vgg_floor(pixels: float, layers: list[str], repeats: int = 4, name: str = "vgg19", precision: str = "fp32") -> float:
    """Seconds of encoder forward+backward of one square image of ``pixels`` pixels (median of repeats)."""
    side = max(16, round(math.sqrt(pixels)))
    weights = {"weights": "random"} if name.startswith("vgg") else {}
    encoder = make_encoder(name, layers, precision=precision, **weights)
    image = torch.rand(1, 3, side, side, requires_grad=True)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        feats = encoder(image)
        sum(f.square().mean() for f in feats.values()).backward()
        times.append(time.perf_counter() - start)
    return sorted(times[1:])[len(times[1:]) // 2]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--no-end-to-end", action="store_true")
    parser.add_argument("--weighting", default=None, choices=WEIGHTINGS,
                        help="MeshOptions.weighting (default: its default)")
    parser.add_argument("--level-blend", type=float, default=None,
                        help="MeshOptions.level_blend, octaves (default: its default)")
    parser.add_argument("--crop-tiles", type=int, default=None, help="MeshOptions.crop_tiles (default: its default)")
    parser.add_argument("--encoder", default="vgg19", help="encoder to time (vgg19 with random weights, or "
                        "mobilenetv2-magenta)")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="encoder precision of the run and of the floor (auto: as the CLI picks it)")
    return parser.parse_args(argv)


def run_options(args: argparse.Namespace) -> tuple[MeshOptions, dict]:
    """The mesh options and engine keyword overrides of the timed run: one render scale (every timed step
    is a full-resolution step; the default's coarse steps are cheaper) and the flags given."""
    chosen = {name: getattr(args, name) for name in ("weighting", "level_blend", "crop_tiles")
              if getattr(args, name) is not None}
    engine = {"encoder": args.encoder, "precision": args.precision}
    if args.encoder.startswith("vgg"):
        engine["vgg_weights"] = "random"
    return MeshOptions(render_scales=1, **chosen), engine


def measure(mesh, style, mesh_options: MeshOptions, engine: dict, steps: int, callback=None):
    """Run :func:`~meshstyle.stylize.mesh.stylize_mesh` for ``steps`` steps; returns the result and the
    :class:`~meshstyle.stylize.mesh.MultiViewLoss` the run built (its level views and weights)."""
    kept = capture_loss()
    try:
        result = stylize3d.stylize_mesh(mesh, style, mesh_options=mesh_options, iterations=steps,
                                        callback=callback, **engine)
    finally:
        stylize3d.MultiViewLoss = kept.base
    return result, kept[0]


def main() -> None:
    args = parse_args()
    timer = StepTimer()
    timer.patch(stylize3d)
    mesh_options, engine = run_options(args)
    result, loss = measure(SPOT, STYLE, mesh_options, engine, args.steps, timer)
    pixels = level_pixels(loss, mesh_options.batch_views)
    pixels["background_mass_share"] = background_mass(loss)
    layers, precision = loss.objective.plan.layers, loss.objective.plan.precision
    floor = vgg_floor(pixels["all"]["weighted_px_per_step"], layers, name=args.encoder, precision=precision)
    summary = timer.summary()
    out = {"threads": torch.get_num_threads(), "encoder": args.encoder, "precision": precision,
           "defaults": {k: getattr(mesh_options, k) for k in ("views", "resolution", "depth_levels", "batch_views",
                                                               "crop_tiles", "weighting", "level_blend")},
           "plan": result.timings.get("plan"), "uv_maps_s": round(result.timings["views"], 3), "levels": pixels,
           **summary, "vgg_floor_s": round(floor, 4), "step_over_floor": round(summary["s_per_step"] / floor, 3),
           "step_over_fed_vgg": round(summary["s_per_step"] / max(summary["vgg_s_per_step"], 1e-9), 3),
           "in_process_peak_rss_mb": round(peak_rss_mb(), 1)}
    if not args.no_end_to_end:
        out.update(end_to_end(args, mesh_options, "vgg_weights" in engine))
    print(json.dumps(out))


def end_to_end(args: argparse.Namespace, mesh_options: MeshOptions, random_weights: bool) -> dict:
    """Seconds and peak memory of the CLI command with the same flags (all render scales, as users run it)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "meshstyle.cli", "mesh", str(SPOT), "--style", str(STYLE), "-o",
               f"{tmp}/spot.glb", "--encoder", args.encoder, "--quiet", "--precision", args.precision,
               *(["--vgg-weights", "random"] if random_weights else []),
               "--crop-tiles", str(mesh_options.crop_tiles), "--weighting", mesh_options.weighting,
               "--level-blend", str(mesh_options.level_blend)]
        start = time.perf_counter()
        subprocess.run(cmd, check=True)
        return {"end_to_end_s": round(time.perf_counter() - start, 1),
                "end_to_end_peak_rss_mb": round(peak_rss_mb(children=True), 1)}


if __name__ == "__main__":
    main()
