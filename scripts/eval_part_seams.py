"""Seams where parts meet (issue 27: "no seam at part boundaries beyond the input's").

The spot cow is cut into two parts along a plane across its body (``front``: the faces whose centroid lies
in the front third of its length; ``back``: the rest), each with its own copy of the cow's texture, so the
input continues across the cut. The cut mesh is restyled in several ways and
:func:`meshstyle.stylize.mesh_quality.part_boundary_jump` measures the colour jump across the cut against
the jump across ordinary edges (both sides sampled 1.5 texels inside their faces); a ratio no larger than
the input's means restyling added no seam where the parts meet. Cases:

* ``one style``: both parts restyled with one painting in one optimization (the default method);
* ``feedforward``: the same with the feed-forward networks;
* ``two styles``: a painting per part (``--style front=A --style back=B``): a jump is the intent there;
* ``back only``: ``--exclude-parts front`` (front's image bytes must stay identical).

    python scripts/eval_part_seams.py [--iterations 200] [--set lr=0.06] [--cases one,feedforward,two,back]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
import trimesh

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchlib import option_sets  # noqa: E402

from meshstyle.mesh.textured import TexturedMesh  # noqa: E402
from meshstyle.stylize.mesh import stylize_mesh  # noqa: E402
from meshstyle.stylize.mesh_quality import part_boundary_jump, seam_jump  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
STYLES = ROOT / "assets" / "styles"


def cut_cow(folder: Path) -> Path:
    """The spot cow as a GLB of two parts, ``front`` and ``back``, each with its own copy of the texture."""
    cow = trimesh.load(ROOT / "assets" / "meshes" / "spot" / "cow.obj", process=False, force="mesh")
    extent = cow.bounds[1] - cow.bounds[0]
    axis = int(np.argmax(extent))
    front = cow.triangles_center[:, axis] > cow.bounds[1][axis] - extent[axis] / 3
    scene = trimesh.Scene()
    for name, faces in (("front", np.flatnonzero(front)), ("back", np.flatnonzero(~front))):
        scene.add_geometry(cow.submesh([faces], append=True), geom_name=name, node_name=name)
    path = folder / "cow_cut.glb"
    scene.export(path)
    return path


def jumps(mesh: TexturedMesh) -> dict:
    """The part-boundary figures and, as ``uv_seam_ratio``, the UV seams' jump against ordinary edges."""
    out = {k: round(v, 4) for k, v in part_boundary_jump(mesh).items()}
    return {**out, "uv_seam_ratio": round(seam_jump(mesh)["ratio"], 4)}


def image_sha(mesh: TexturedMesh, name: str) -> str:
    return hashlib.sha256(np.ascontiguousarray(mesh.texture(name)).tobytes()).hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--style", default="starry_night_google.jpg")
    parser.add_argument("--second-style", default="wave.jpg")
    parser.add_argument("--cases", default="one,feedforward,two,back")
    parser.add_argument("--iterations", type=int, default=None, help="optimization steps (default: the mesh default)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra option (repeatable)")
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    extra = option_sets(args.set)
    if args.iterations:
        extra["iterations"] = args.iterations
    a, b = str(STYLES / args.style), str(STYLES / args.second_style)
    cases = {"one": ([a], {}), "feedforward": ([a], {"method": "feedforward"}),
             "two": ([f"front={a}", f"back={b}"], {}), "back": ([a], {"exclude_parts": ("front",)})}
    with tempfile.TemporaryDirectory() as tmp:
        source = TexturedMesh.load(cut_cow(Path(tmp)))
        print(json.dumps({"case": "input", **jumps(source)}))
        for case in args.cases.split(","):
            styles, options = cases[case]
            if options.get("method") != "feedforward":
                options = {**extra, **options}
            result = stylize_mesh(source, styles, seed=0, **options)
            row = {"case": case, **jumps(result.mesh)}
            if case == "back":
                row["front_unchanged"] = image_sha(result.mesh, "front") == image_sha(source, "front")
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
