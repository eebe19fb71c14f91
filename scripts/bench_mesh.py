"""Benchmark of mesh stylization: UV-map precompute seconds, seconds per step split into VGG
forward+backward and everything else, and end-to-end seconds and peak resident memory of the README
command. Prints one JSON line.

    python scripts/bench_mesh.py                 # per-step split (12 steps) + the README command
    python scripts/bench_mesh.py --no-end-to-end # only the per-step split

Uses seeded random VGG weights (timing does not depend on the weights).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import StepTimer, peak_rss_mb  # noqa: E402

from meshstyle.stylize import mesh as stylize3d  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPOT = ROOT / "assets" / "meshes" / "spot" / "cow.obj"
STYLE = ROOT / "assets" / "styles" / "starry_night_google.jpg"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--no-end-to-end", action="store_true")
    args = parser.parse_args()
    timer = StepTimer()
    timer.patch(stylize3d)
    result = stylize3d.stylize_mesh(SPOT, STYLE, iterations=args.steps, vgg_weights="random", callback=timer)
    out = {"defaults": {k: getattr(stylize3d.MeshOptions(), k) for k in ("views", "resolution", "depth_levels", "batch_views")},
           "uv_maps_s": round(result.timings["views"], 3), **timer.summary(),
           "in_process_peak_rss_mb": round(peak_rss_mb(), 1)}
    if not args.no_end_to_end:
        with tempfile.TemporaryDirectory() as tmp:
            cmd = [sys.executable, "-m", "meshstyle.cli", "mesh", str(SPOT), "--style", str(STYLE), "-o",
                   f"{tmp}/spot.glb", "--preview", f"{tmp}/sheet.png", "--vgg-weights", "random", "--quiet"]
            start = time.perf_counter()
            subprocess.run(cmd, check=True)
            out["end_to_end_s"] = round(time.perf_counter() - start, 1)
            out["end_to_end_peak_rss_mb"] = round(peak_rss_mb(children=True), 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
