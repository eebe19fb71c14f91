"""Style distance of each mesh method, and the gallery sheets that show them side by side.

For every mesh x style x setting (optimization with ImageNet VGG-16 and the Gram loss, with VGG-16 and ARF's
nearest-neighbour loss and colour step (the mesh default), with the MobileNetV2 and the Gram loss; and the
feed-forward networks), the mesh is stylized through the public API and judged by three distances to the style
image, lower is closer:

* ``render_gram``: Gram distance (ImageNet VGG-16, relu1_1..relu5_1, each layer normalized by its target, as
  :class:`meshstyle.engine.losses.StyleLoss`) of 8 turntable renders of the result at 256 px, unshaded, taken
  over the object's cells only (background never counts), against the style at 256 px.
* ``texel_gram``: the same on the stylized texture itself (long edge 512, island texels only: no gutter),
  against the style at 512 px.
* ``texel_rgb_sw``: sliced Wasserstein-2 distance (64 directions) between the RGB colours of the visible
  texture's island texels and the style's pixels: a judge that no setting optimizes.

Both Gram judges use VGG-16, which the VGG-16 Gram setting optimizes (on renders, at other sizes): read them
beside the colour distance and the sheets. Writes ``OUT/methods_<mesh>.jpg`` (rows: settings, columns: styles,
2 turntable views per cell) and prints one JSON line per run and a summary table.

    python scripts/eval_methods.py [--meshes spot/cow.obj,gltf/Fox.glb] [--styles starry_night_google.jpg,...]
        [--settings vgg16-gram,vgg16-nnfm,mobilenetv2,feedforward] [--iterations 600] [--out docs/gallery]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from meshstyle.core.atomic import write_text
from meshstyle.core.imageio import load_image, rgb8_to_tensor
from meshstyle.core.views import render
from meshstyle.engine.features import VGGEncoder
from meshstyle.engine.losses import ObjectCells, StyleLoss, make_statistic, random_directions
from meshstyle.mesh.padding import island_mask
from meshstyle.mesh.preview import contact_sheet, shade_views, turntable_views
from meshstyle.mesh.raycast import compute_views
from meshstyle.mesh.textured import TexturedMesh
from meshstyle.stylize.mesh import stylize_mesh

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import option_sets  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = {
    "vgg16-gram": {"encoder": "vgg16", "style_loss": "gram"},
    "vgg16-nnfm": {"encoder": "vgg16", "style_loss": "nnfm"},       # the mesh default (colour step, weight 10)
    "vgg16-nnfm-nocolor": {"encoder": "vgg16", "style_loss": "nnfm", "color_match": False},
    "mobilenetv2": {"encoder": "mobilenetv2-magenta", "style_loss": "gram"},
    "feedforward": {"method": "feedforward"},
}
JUDGE_LAYERS = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]


def gram_distance(judge: VGGEncoder, images: torch.Tensor, cells: torch.Tensor | None, style: torch.Tensor) -> float:
    """Mean over items of the normalized Gram distance of ``images`` (N, 3, H, W) to ``style`` (3, h, w), over
    the cells whose pixels are all inside ``cells`` (N, 1, H, W) {0, 1} (None: every cell)."""
    loss = StyleLoss(make_statistic("gram"), {name: 1.0 for name in JUDGE_LAYERS})
    with torch.no_grad():
        loss.set_target([judge(style[None])], [1.0])
        return float(loss(judge(images), None if cells is None else ObjectCells(cells)))


def rgb_sliced_wasserstein(pixels: torch.Tensor, style: torch.Tensor, directions: int = 64) -> float:
    """SW-2 between RGB point sets ``pixels`` (3, P) and the style's (3, H, W), equal quantiles."""
    dirs = random_directions(3, directions, torch.Generator().manual_seed(0))
    a = (pixels.T @ dirs).sort(0).values
    b = (style.reshape(3, -1).T @ dirs).sort(0).values
    q = torch.linspace(0, 1, 1024)
    ia, ib = (q * (a.shape[0] - 1)).long(), (q * (b.shape[0] - 1)).long()
    return float((a[ia] - b[ib]).pow(2).mean())


def judge_result(mesh: TexturedMesh, style_path: Path, judge: VGGEncoder) -> dict:
    """The three distances of a stylized mesh (see the module docstring)."""
    stack = compute_views(mesh, turntable_views(mesh, 8), [256])[0]
    textures = [rgb8_to_tensor(mesh.texture(n)) for n in mesh.stylizable]
    renders = render(textures, stack)
    out = {"render_gram": gram_distance(judge, renders, (stack.mask >= 0.999).float(), load_image(style_path, 256))}
    name = mesh.stylizable[0]
    texture = textures[0]
    islands = torch.from_numpy(island_mask(mesh.corner_uv(name), tuple(texture.shape[-2:])))
    scale = 512 / max(texture.shape[-2:])
    size = (round(texture.shape[1] * scale), round(texture.shape[2] * scale))
    small = F.interpolate(texture[None], size=size, mode="bilinear", antialias=True, align_corners=False)
    cells = F.interpolate(islands[None, None].float(), size=size, mode="nearest")
    out["texel_gram"] = gram_distance(judge, small, cells, load_image(style_path, 512))
    out["texel_rgb_sw"] = rgb_sliced_wasserstein(texture[:, islands], load_image(style_path, 256))
    return {k: round(v, 4) for k, v in out.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meshes", default="spot/cow.obj,gltf/Fox.glb,bob/bob_tri.obj")
    parser.add_argument("--styles", default="starry_night_google.jpg,wave.jpg,the_scream.jpg")
    parser.add_argument("--settings", default="vgg16-gram,vgg16-nnfm,mobilenetv2,feedforward",
                        help=f"comma-separated, of: {', '.join(SETTINGS)}")
    parser.add_argument("--iterations", type=int, default=None, help="optimization steps (default: the mesh default)")
    parser.add_argument("--out", default=None, help="folder for the sheets (e.g. docs/gallery)")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="extra stylize_mesh option of the optimization runs (repeatable), e.g. lr=0.04")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    judge = VGGEncoder(JUDGE_LAYERS, arch="vgg16", weights="imagenet", precision="fp32")
    settings = args.settings.split(",")
    rows = []
    for mesh_name in args.meshes.split(","):
        source = TexturedMesh.load(ROOT / "assets" / "meshes" / mesh_name)
        cams = turntable_views(source, 4)[:2]
        cells = {}
        for style in args.styles.split(","):
            style_path = ROOT / "assets" / "styles" / style
            for setting in settings:
                extra = dict(SETTINGS[setting])
                if extra.get("method") != "feedforward":
                    extra.update(option_sets(args.set))
                    if args.iterations:
                        extra["iterations"] = args.iterations
                start = time.perf_counter()
                result = stylize_mesh(source, str(style_path), seed=0, **extra)
                seconds = time.perf_counter() - start
                row = {"mesh": mesh_name, "style": style, "setting": setting, "seconds": round(seconds, 1),
                       **judge_result(result.mesh, style_path, judge)}
                print(json.dumps(row), flush=True)
                rows.append(row)
                cells[(setting, style)] = shade_views(result.mesh, cams, size=192)
        if args.out:
            images, labels = [], []
            for setting in settings:
                for style in args.styles.split(","):
                    images += cells[(setting, style)]
                labels.append(setting)
            sheet = contact_sheet(images, columns=2 * len(args.styles.split(",")), labels=labels)
            Path(args.out).mkdir(parents=True, exist_ok=True)
            sheet.save(Path(args.out) / f"methods_{Path(mesh_name).stem}.jpg", quality=85)
    report = methods_report(rows, " ".join(["python", *sys.argv]))
    print(report)
    if args.out:
        write_text(Path(args.out) / "methods.md", report)


def methods_report(rows: list[dict], command: str) -> str:
    """Markdown of the runs ``rows`` (the JSON lines this script prints): one table per mesh (styles x
    settings, the three distances and the seconds), then each setting's median rank per column over every
    mesh and style (1: closest to the style)."""
    lines = ["# Mesh methods side by side", "",
             f"Made by `{command}` (sheets `methods_<mesh>.jpg`: rows the settings, two turntable views per "
             "style). Distances to the style, lower is closer: render Gram (ImageNet VGG-16, relu1_1..relu5_1, "
             "object cells of 8 turntable renders), texel Gram (the texture's island texels), texel RGB "
             "sliced Wasserstein (colours only, a judge no setting optimizes). The Gram judges are the loss "
             "the VGG-16 Gram setting minimizes.", ""]
    for mesh in dict.fromkeys(r["mesh"] for r in rows):
        lines += [f"## {mesh}", "", "| style | setting | s | render Gram | texel Gram | texel RGB SW |",
                  "| --- | --- | --- | --- | --- | --- |"]
        lines += [f"| {r['style']} | {r['setting']} | {r['seconds']} | {r['render_gram']} | {r['texel_gram']} | "
                  f"{r['texel_rgb_sw']} |" for r in rows if r["mesh"] == mesh]
        lines.append("")
    columns = ("render_gram", "texel_gram", "texel_rgb_sw")
    ranks = {}
    for key in dict.fromkeys((r["mesh"], r["style"]) for r in rows):
        group = [r for r in rows if (r["mesh"], r["style"]) == key]
        for column in columns:
            for rank, r in enumerate(sorted(group, key=lambda r: r[column]), 1):
                ranks.setdefault(r["setting"], {}).setdefault(column, []).append(rank)
    lines += ["## Median rank over every mesh and style (1: closest)", "",
              "| setting | render Gram | texel Gram | texel RGB SW |", "| --- | --- | --- | --- |"]
    lines += [f"| {setting} | " + " | ".join(f"{statistics.median(by[c]):g}" for c in columns) + " |"
              for setting, by in ranks.items()]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
