"""The strip of results that documents ``--strength`` for the optimization method (issue 27 item 4).

Restyles the spot cow with one painting at several strengths (the same seed and settings otherwise) and
prints per strength: the mean absolute change of the texture's island texels (0-1 scale) and the render Gram
distance to the painting (ImageNet VGG-16, as ``eval_methods.py``); ``--out`` writes a sheet with one row of
2 turntable views per strength. ``--strength s`` blends the style statistics with the asset's own
(``meshstyle.stylize.mesh``); a knob that reads as a single dial should move both figures steadily.

    python scripts/strength_strip.py [--strengths 0.25,0.5,0.75,1] [--iterations 600] [--out docs/strength_strip.jpg]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import option_sets  # noqa: E402
from eval_methods import JUDGE_LAYERS, ROOT, judge_result  # noqa: E402

from meshstyle.engine.features import VGGEncoder  # noqa: E402
from meshstyle.mesh.padding import island_mask  # noqa: E402
from meshstyle.mesh.preview import contact_sheet, shade_views, turntable_views  # noqa: E402
from meshstyle.mesh.textured import TexturedMesh  # noqa: E402
from meshstyle.stylize.mesh import stylize_mesh  # noqa: E402


def island_change(before: TexturedMesh, after: TexturedMesh) -> float:
    """Mean absolute difference (0-1) of the island texels of every stylizable part."""
    total, count = 0.0, 0
    for name in before.stylizable:
        a = torch.from_numpy(before.texture(name)).float() / 255
        b = torch.from_numpy(after.texture(name)).float() / 255
        islands = torch.from_numpy(island_mask(before.corner_uv(name), tuple(a.shape[:2])))
        total += float((a - b).abs()[islands].sum())
        count += int(islands.sum()) * 3
    return total / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mesh", default="spot/cow.obj")
    parser.add_argument("--style", default="starry_night_google.jpg")
    parser.add_argument("--strengths", default="0.25,0.5,0.75,1")
    parser.add_argument("--iterations", type=int, default=None, help="optimization steps (default: the mesh default)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra stylize_mesh option (repeatable), e.g. views=8")
    parser.add_argument("--out", default=None, help="sheet to write (rows: strengths)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    judge = VGGEncoder(JUDGE_LAYERS, arch="vgg16", weights="imagenet", precision="fp32")
    source = TexturedMesh.load(ROOT / "assets" / "meshes" / args.mesh)
    style_path = ROOT / "assets" / "styles" / args.style
    extra = option_sets(args.set)
    if args.iterations:
        extra["iterations"] = args.iterations
    cams = turntable_views(source, 4)[:2]
    images, labels = shade_views(source, cams, size=192), ["strength 0 (input)"]
    print(json.dumps({"strength": 0.0, "texel_change": 0.0, **judge_result(source, style_path, judge)}), flush=True)
    for strength in (float(s) for s in args.strengths.split(",")):
        result = stylize_mesh(source, str(style_path), seed=0, strength=strength, **extra)
        row = {"strength": strength, "texel_change": round(island_change(source, result.mesh), 4),
               **judge_result(result.mesh, style_path, judge)}
        print(json.dumps(row), flush=True)
        images += shade_views(result.mesh, cams, size=192)
        labels.append(f"strength {strength:g}")
    if args.out:
        contact_sheet(images, columns=2, labels=labels).save(args.out, quality=85)


if __name__ == "__main__":
    main()
