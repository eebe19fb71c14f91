"""Parts (issue 27 item 1): --list-parts, --parts / --exclude-parts by name or glob, per-part styles
(--style NAME=painting) in one optimization; parts left out keep their texture bytes and still occlude."""

from __future__ import annotations

import hashlib
import json
import struct

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from conftest import checker, cube, quad
from meshstyle.cli import main
from meshstyle.core.errors import MeshstyleError
from meshstyle.mesh.cameras import Camera, look_at
from meshstyle.mesh.raycast import compute_views
from meshstyle.mesh.textured import TexturedMesh
from meshstyle.stylize.mesh import stylize_mesh
from meshstyle.stylize.parts import narrowed, selected_parts, split_part_styles, style_groups

pytestmark = pytest.mark.usefixtures("one_torch_thread")
FAST = dict(iterations=2, views=2, resolution=64, depth_levels=1, render_scales=1, vgg_weights="random", seed=0)
FAST_FLAGS = ["--iterations", "2", "--views", "2", "--resolution", "64", "--depth-levels", "1",
              "--render-scales", "1", "--vgg-weights", "random", "-q"]
PARTS = ["body", "wheel_front", "wheel_back"]


@pytest.fixture
def truck(tmp_path):
    """A GLB with three textured parts: a cube 'body' and two small quads 'wheel_front' (in front of the
    body's +z face) and 'wheel_back' (behind its -z face), each with its own image."""
    scene = trimesh.Scene()
    scene.add_geometry(cube(checker(32, 4)), geom_name="body", node_name="body")
    scene.add_geometry(quad(0.5, np.full((32, 32, 3), 128, np.uint8)), geom_name="wheel_front", node_name="wf",
                       transform=trimesh.transformations.translation_matrix([0, 0, 1.2]))
    scene.add_geometry(quad(0.5, np.full((16, 16, 3), 90, np.uint8)), geom_name="wheel_back", node_name="wb",
                       transform=trimesh.transformations.translation_matrix([0, 0, -1.2]))
    path = tmp_path / "truck.glb"
    scene.export(path)
    return path


def _stripes(path, a, b, n=64):
    img = np.zeros((n, n, 3), np.uint8)
    img[:] = a
    img[(np.arange(n) // 4) % 2 == 1] = b
    Image.fromarray(img).save(path)
    return path


def _image_hashes(path) -> dict[str, str]:
    """sha256 of each part's base-colour image bytes in a GLB, by mesh name."""
    data = path.read_bytes()
    length = struct.unpack_from("<I", data, 12)[0]
    doc = json.loads(data[20:20 + length])
    blob = data[20 + length + 8:]
    out = {}
    for mesh in doc["meshes"]:
        material = doc["materials"][mesh["primitives"][0]["material"]]
        image = doc["images"][doc["textures"][material["pbrMetallicRoughness"]["baseColorTexture"]["index"]]["source"]]
        view = doc["bufferViews"][image["bufferView"]]
        start = view.get("byteOffset", 0)
        out[mesh["name"]] = hashlib.sha256(blob[start:start + view["byteLength"]]).hexdigest()
    return out


def test_list_parts_prints_each_part_with_size_and_share(truck, capsys):
    assert main(["mesh", str(truck), "--list-parts"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == PARTS
    assert "32x32 texels" in lines[0] and "16x16 texels" in lines[2]
    shares = [float(line.split("texels")[1].split("%")[0]) for line in lines]
    assert sum(shares) == pytest.approx(100, abs=0.2) and shares[0] > 90  # the cube: 24 of 26 area units


def test_select_by_name_and_glob(truck):
    mesh = TexturedMesh.load(truck)
    assert selected_parts(mesh) == PARTS
    assert selected_parts(mesh, "wheel*") == ["wheel_front", "wheel_back"]
    assert selected_parts(mesh, "wheel_back, body") == ["body", "wheel_back"]
    assert selected_parts(mesh, None, "wheel_?ront") == ["body", "wheel_back"]
    assert selected_parts(mesh, ["*"], ["wheel*"]) == ["body"]
    with pytest.raises(MeshstyleError, match="no part is called 'door'.*body, wheel_front, wheel_back"):
        selected_parts(mesh, "body,door")
    with pytest.raises(MeshstyleError, match="leave no part"):
        selected_parts(mesh, "body", "b*")


def test_unknown_part_is_a_one_line_error_listing_the_parts(truck, tmp_path, capsys, style_path):
    out = tmp_path / "out.glb"
    code = main(["mesh", str(truck), "--style", str(style_path), "--parts", "wheel*,door", "-o", str(out),
                 *FAST_FLAGS])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists()
    assert len(err.splitlines()) == 1 and "'door'" in err and "body, wheel_front, wheel_back" in err
    code = main(["mesh", str(truck), "--style", f"hood={style_path}", "-o", str(out), *FAST_FLAGS])
    err = capsys.readouterr().err.strip()
    assert code == 2 and not out.exists() and len(err.splitlines()) == 1 and "'hood'" in err
    assert main(["mesh", str(truck), "-o", str(out)]) == 2
    assert "--style" in capsys.readouterr().err


def test_per_part_style_items_are_grouped(truck, tmp_path):
    mesh = TexturedMesh.load(truck)
    plain, per_part = split_part_styles(["a.jpg", "body=b.jpg", "wheel*=c.jpg"])
    assert plain == ["a.jpg"] and per_part == [("body", "b.jpg"), ("wheel*", "c.jpg")]
    assert style_groups(mesh, PARTS, plain, per_part) == [(["body"], ["b.jpg"]), (["wheel_front", "wheel_back"], ["c.jpg"])]
    assert style_groups(mesh, PARTS, plain, per_part[:1]) == [(["body"], ["b.jpg"]), (["wheel_front", "wheel_back"], ["a.jpg"])]
    with pytest.raises(MeshstyleError, match="'wheel_front' has no style"):
        style_groups(mesh, PARTS, [], per_part[:1])
    odd = tmp_path / "x=y.png"  # an existing file whose name has '=' is a plain style
    odd.write_bytes(b"")
    assert split_part_styles([str(odd)]) == ([str(odd)], [])


def test_parts_left_out_keep_their_bytes_and_still_occlude(truck, tmp_path, style_path, capsys):
    out = tmp_path / "out.glb"
    assert main(["mesh", str(truck), "--style", str(style_path), "--exclude-parts", "wheel*", "-o", str(out),
                 *FAST_FLAGS]) == 0
    before, after = _image_hashes(truck), _image_hashes(out)
    assert after["wheel_front"] == before["wheel_front"] and after["wheel_back"] == before["wheel_back"]
    assert after["body"] != before["body"]
    # the excluded front quad hides the body's +z face behind it: seen from +z its pixels are no part (-1)
    body_only = narrowed(TexturedMesh.load(truck), ["body"])
    eye = np.array([0.0, 0.0, 6.0])
    view = compute_views(body_only, [Camera(eye, look_at(eye, np.zeros(3)))], [64])[0]
    assert int(view.part[0, 32, 32]) == -1          # the wheel, in front
    assert int(view.part[0, 32, 18]) == 0           # the body, beside the wheel
    assert body_only.stylizable == ["body"] and TexturedMesh.load(truck).stylizable == PARTS


def test_two_styles_on_two_parts_each_closer_to_its_own(truck, tmp_path):
    """One optimization, body painted red and the wheels blue: each part's colours move toward its own
    style's (channel mean/std statistics, RGB texture change: random VGG weights measure colour there)."""
    styles = {"red": _stripes(tmp_path / "red.png", (230, 40, 30), (150, 20, 20)),
              "blue": _stripes(tmp_path / "blue.png", (30, 60, 230), (20, 20, 140))}
    result = stylize_mesh(truck, [f"body={styles['red']}", f"wheel*={styles['blue']}"],
                          **{**FAST, "iterations": 30}, style_loss="meanstd", texture_colours="rgb", lr=0.05,
                          content_weight=0.0)
    source = TexturedMesh.load(truck)
    mean = {k: np.asarray(Image.open(p), float).reshape(-1, 3).mean(0) for k, p in styles.items()}
    for part, own, other in (("body", "red", "blue"), ("wheel_front", "blue", "red")):
        start = source.texture(part).reshape(-1, 3).astype(float).mean(0)
        colour = result.mesh.texture(part).reshape(-1, 3).astype(float).mean(0)
        assert np.linalg.norm(colour - mean[own]) < np.linalg.norm(colour - mean[other]), (part, colour)
        assert float(np.dot(colour - start, mean[own] - mean[other])) > 20 * 100, (part, colour - start)
    assert torch.isfinite(torch.tensor([h["total"] for h in result.history])).all()
