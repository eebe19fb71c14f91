"""Open meshstyle outputs in real 3D clients and report what they see.

Clients (each optional; a missing one is skipped with a message):

- Blender, headless (``blender -b --python ...``): imports each GLB/glTF (``import_scene.gltf``) or OBJ
  (``wm.obj_import``, Blender >= 3.2, else the legacy ``import_scene.obj``) and reports per mesh object
  the face count, and per material the Principled BSDF's metallic, roughness, base colour and whether
  an image texture feeds the base colour; plus armature and animation counts.
- The Khronos glTF-Validator (``build/gltf-validator``, see tests/gltf_validator.py): errors and
  warnings of every GLB/glTF.

For every file the face count meshstyle's own loader sees is printed next to Blender's, so a client
that drops faces (the CesiumMilkTruck OBJ bug of issue 14) shows up as a mismatch (exit status 1).

Usage::

    python scripts/check_clients.py OUT.glb OUT.obj ...
    python scripts/check_clients.py --demo      # export the sample assets to a temp folder and check them

Set ``BLENDER`` to the Blender executable if it is not on PATH as ``blender``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

BLENDER_SCRIPT = r'''
import json, sys, bpy
try:  # Blender 3.4's glTF add-on uses numpy.bool, removed in numpy 1.24 (Debian bookworm pairs the two)
    import numpy
    if "bool" not in numpy.__dict__:
        numpy.bool = bool
except ImportError:
    pass
path = sys.argv[sys.argv.index("--") + 1]
bpy.ops.wm.read_factory_settings(use_empty=True)
if path.lower().endswith((".glb", ".gltf")):
    bpy.ops.import_scene.gltf(filepath=path)
elif hasattr(bpy.ops.wm, "obj_import"):
    bpy.ops.wm.obj_import(filepath=path)
else:
    bpy.ops.import_scene.obj(filepath=path)
report = {"objects": {}, "materials": {}, "armatures": 0, "actions": len(bpy.data.actions)}
for ob in bpy.data.objects:
    if ob.type == "MESH":
        report["objects"][ob.name] = len(ob.data.polygons)
    elif ob.type == "ARMATURE":
        report["armatures"] += 1
for mat in bpy.data.materials:
    if not mat.use_nodes:
        continue
    bsdf = next((n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED"), None)
    if bsdf is None:
        continue
    base = bsdf.inputs["Base Color"]
    report["materials"][mat.name] = {
        "metallic": round(bsdf.inputs["Metallic"].default_value, 4),
        "roughness": round(bsdf.inputs["Roughness"].default_value, 4),
        "base_color": [round(c, 4) for c in base.default_value],
        "base_color_texture": any(link.from_node.type == "TEX_IMAGE" for link in base.links),
    }
print("MESHSTYLE_REPORT " + json.dumps(report))
'''


def blender_report(path: Path) -> dict | None:
    """What Blender sees of ``path``, or None when Blender is not installed."""
    blender = os.environ.get("BLENDER") or shutil.which("blender")
    if not blender:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(BLENDER_SCRIPT)
    try:
        proc = subprocess.run([blender, "-b", "--factory-startup", "--python", f.name, "--", str(path.resolve())],
                              capture_output=True, text=True, timeout=600)
    finally:
        os.unlink(f.name)
    for line in proc.stdout.splitlines():
        if line.startswith("MESHSTYLE_REPORT "):
            return json.loads(line[len("MESHSTYLE_REPORT "):])
    return {"error": (proc.stderr.strip().splitlines() or ["no report"])[-1]}


def validator_report(path: Path) -> dict | None:
    import pytest
    from gltf_validator import validate

    try:
        issues = validate(path)[path]
    except (pytest.skip.Exception, pytest.fail.Exception):
        return None
    return {"errors": issues["numErrors"], "warnings": sorted({m["code"] for m in issues["messages"]
                                                               if m["severity"] == 1})}


def meshstyle_faces(path: Path) -> int:
    from meshstyle.mesh.textured import TexturedMesh

    return sum(len(i.faces) for i in TexturedMesh.load(path).instances())


def demo_files(folder: Path) -> list[Path]:
    """Export the sample assets (textures inverted, no stylization) as GLB and OBJ into ``folder``."""
    import numpy as np
    import trimesh

    from conftest import cube
    from meshstyle.mesh.textured import TexturedMesh

    assets = ROOT / "assets" / "meshes"
    # a mixed scene: two textured boxes and an untextured (vertex-coloured) ball, as in CesiumMilkTruck
    scene = trimesh.Scene()
    ball = trimesh.creation.icosphere(subdivisions=1)
    ball.visual = trimesh.visual.ColorVisuals(ball, vertex_colors=np.tile([200, 30, 30, 255], (len(ball.vertices), 1)))
    for name, geom, offset in (("box", cube(), 0), ("ball", ball, 3), ("box2", cube(), 6)):
        scene.add_geometry(geom, geom_name=name, node_name=name,
                           transform=trimesh.transformations.translation_matrix([offset, 0, 0]))
    (folder / "mixed").mkdir(parents=True, exist_ok=True)
    scene.export(folder / "mixed" / "mixed.glb")
    out = []
    for source in (assets / "spot" / "cow.obj", assets / "gltf" / "Fox.glb", assets / "gltf" / "BoxTextured.glb",
                   folder / "mixed" / "mixed.glb"):
        mesh = TexturedMesh.load(source)
        for name in mesh.stylizable:
            mesh.set_texture(name, 255 - mesh.texture(name))
        for ext in (".glb", ".obj"):
            out.append(mesh.save(folder / source.stem / f"{source.stem}_out{ext}",
                                 provenance={"note": "check_clients demo"})[0])
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--demo", action="store_true", help="export the sample assets and check those")
    args = parser.parse_args(argv)
    files = list(args.files)
    tmp = None
    if args.demo:
        tmp = tempfile.TemporaryDirectory(prefix="meshstyle-clients-")
        files += demo_files(Path(tmp.name))
    if not files:
        parser.error("give files or --demo")
    status, notes = 0, set()
    for path in files:
        line = {"file": str(path), "meshstyle_faces": meshstyle_faces(path)}
        blender = blender_report(path)
        if blender is None:
            notes.add("Blender not found (put it on PATH as 'blender' or set BLENDER): skipped")
        else:
            line["blender"] = blender
            faces = sum(blender.get("objects", {}).values())
            if "error" in blender or faces != line["meshstyle_faces"]:
                status = 1
        if path.suffix.lower() in (".glb", ".gltf"):
            validator = validator_report(path)
            if validator is None:
                notes.add("glTF-Validator not installed (npm install --no-audit --no-fund --prefix "
                          "build/gltf-validator gltf-validator): skipped")
            else:
                line["gltf_validator"] = validator
                status = 1 if validator["errors"] else status
        print(json.dumps(line))
    for note in sorted(notes):
        print(f"note: {note}", file=sys.stderr)
    if tmp is not None:
        tmp.cleanup()
    return status


if __name__ == "__main__":
    sys.exit(main())
