"""The README's side-by-side sheet: a mesh before, restyled feed-forward, and restyled by the optimization.

Rows: the input and each result; columns: 4 turntable views (shaded, 256 px).

    python scripts/compare_sheet.py assets/meshes/spot/cow.obj out/spot_starry.glb out/spot_starry_opt.glb \\
        --title "spot cow + The Starry Night ..." -o docs/compare_spot_starry.png
"""

from __future__ import annotations

import argparse

from meshstyle.mesh.preview import contact_sheet, shade_views, turntable_views
from meshstyle.mesh.textured import TexturedMesh


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="the input mesh")
    parser.add_argument("feedforward", help="the feed-forward result")
    parser.add_argument("optimize", help="the optimization's result")
    parser.add_argument("--title", default=None)
    parser.add_argument("-o", "--out", required=True)
    args = parser.parse_args()
    source = TexturedMesh.load(args.before)
    cameras = turntable_views(source, 4)
    images = []
    for path in (args.before, args.feedforward, args.optimize):
        images += shade_views(TexturedMesh.load(path), cameras, size=256)
    contact_sheet(images, columns=4, labels=["before", "feed-forward", "optimize"], title=args.title).save(args.out)


if __name__ == "__main__":
    main()
