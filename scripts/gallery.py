"""Gallery of meshstyle results on the sample assets: every style applied to a photo and to the spot cow,
gathered into one contact sheet per kind.

    python scripts/gallery.py -o out/gallery [--vgg-weights PATH] [--quick]

Without ImageNet weights available, pass ``--vgg-weights random``: the sheets are then labelled as made
with random weights. ``--quick`` uses tiny settings (for a smoke test of the script).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from meshstyle import TexturedMesh, stylize_image, stylize_mesh
from meshstyle.core.imageio import load_image, save_pil, tensor_to_pil
from meshstyle.engine.features import is_random_weights
from meshstyle.mesh.preview import contact_sheet, shade_views, turntable_views

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="out/gallery", help="output folder")
    parser.add_argument("--vgg-weights", default=None, help="imagenet (default), a path, or random")
    parser.add_argument("--quick", action="store_true", help="tiny settings, for a smoke test")
    args = parser.parse_args()
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    styles = sorted((ASSETS / "styles").glob("*.jpg"))
    note = "RANDOM VGG weights: test output, not a real stylization" if is_random_weights(args.vgg_weights) else None
    size, tile = (64, 96) if args.quick else (384, 256)
    image_kw = dict(iterations=5 if args.quick else 200, vgg_weights=args.vgg_weights)
    mesh_kw = dict(iterations=5 if args.quick else 300, vgg_weights=args.vgg_weights)
    if args.quick:
        mesh_kw.update(views=2, resolution=64, depth_levels=1, texture_size=64)

    content = ASSETS / "content" / "chelsea.png"
    tiles = [tensor_to_pil(load_image(content, (tile, tile)))]
    for style in styles:
        tiles.append(tensor_to_pil(load_image(style, (tile, tile))))
        result = stylize_image(content, style, size=size, **image_kw)
        tiles.append(tensor_to_pil(result.image).resize((tile, tile)))
    save_pil(contact_sheet(tiles[1:], 2, title=note), out / "images.png", note)

    cow = TexturedMesh.load(ASSETS / "meshes" / "spot" / "cow.obj")
    cams = turntable_views(cow, 3)
    rows = shade_views(cow, cams, tile)
    labels = ["original"]
    for style in styles:
        result = stylize_mesh(cow, style, **mesh_kw)
        result.mesh.save(out / f"spot_{style.stem}.glb")
        rows += shade_views(result.mesh, cams, tile)
        labels.append(style.stem[:9])
    save_pil(contact_sheet(rows, 3, labels=labels, title=note), out / "meshes.png", note)
    print(f"wrote {out / 'images.png'} and {out / 'meshes.png'}")


if __name__ == "__main__":
    main()
