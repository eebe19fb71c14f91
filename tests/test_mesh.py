"""Loading, exporting, padding and unwrapping of textured meshes."""

import io
import logging
import os

import numpy as np
import pytest
from PIL import Image

from conftest import ASSETS, multi_primitive_scene, quad
from meshstyle.core import imageio
from meshstyle.core.errors import MeshstyleError
from meshstyle.mesh import unwrap as unwrap_module
from meshstyle.mesh.padding import island_mask
from meshstyle.mesh.rasterize import rasterize_uv
from meshstyle.mesh.textured import TexturedMesh


def _geometry(mesh, name):
    return mesh.scene.geometry[name]


@pytest.mark.parametrize("ext", [".obj", ".glb"])
def test_round_trip_keeps_geometry_uvs_and_texture(tmp_path, spot_path, ext):
    mesh = TexturedMesh.load(spot_path)
    written = mesh.save(tmp_path / f"cow{ext}")
    assert written[0] == tmp_path / f"cow{ext}" and all(p.exists() for p in written)
    assert any(p.suffix == ".png" for p in written)
    back = TexturedMesh.load(tmp_path / f"cow{ext}")
    a, b = _geometry(mesh, mesh.stylizable[0]), _geometry(back, back.stylizable[0])
    assert np.abs(a.vertices - b.vertices).max() < 1e-6
    assert np.array_equal(a.faces, b.faces)
    assert np.abs(a.visual.uv - b.visual.uv).max() < 1e-6
    assert np.array_equal(mesh.texture(mesh.stylizable[0]), back.texture(back.stylizable[0]))


def test_obj_and_glb_samples_agree(spot_path):
    obj = TexturedMesh.load(spot_path)
    glb = TexturedMesh.load(ASSETS / "meshes" / "gltf" / "cow.glb")
    a, b = obj.instances()[0], glb.instances()[0]
    assert a.faces.shape == b.faces.shape
    assert np.allclose(np.sort(a.vertices, axis=0), np.sort(b.vertices, axis=0), atol=1e-5)
    assert np.allclose(np.sort(a.corner_uv.reshape(-1, 2), axis=0), np.sort(b.corner_uv.reshape(-1, 2), axis=0), atol=1e-5)


def test_node_transforms_are_applied_to_world_geometry():
    mesh = TexturedMesh(multi_primitive_scene())
    ball = [i for i in mesh.instances() if i.geometry == "ball"][0]
    assert np.allclose(ball.vertices.mean(0), [3, 0, 0], atol=1e-6)


def test_multi_primitive_glb_keeps_untextured_parts(tmp_path):
    multi_primitive_scene().export(tmp_path / "scene.glb")
    mesh = TexturedMesh.load(tmp_path / "scene.glb")
    assert mesh.stylizable == ["box"]
    mesh.set_texture("box", np.zeros((16, 16, 3), np.uint8))
    mesh.save(tmp_path / "out.glb")
    back = TexturedMesh.load(tmp_path / "out.glb")
    before, after = _geometry(mesh, "ball"), _geometry(back, "ball")
    assert np.array_equal(before.vertices, after.vertices) and np.array_equal(before.faces, after.faces)
    assert np.array_equal(before.visual.vertex_colors, after.visual.vertex_colors)
    assert back.texture("box").max() == 0


def test_padding_fills_texels_around_islands(tmp_path):
    # one small island in the middle of a 64x64 texture
    mesh = TexturedMesh(quad())
    geom = _geometry(mesh, mesh.stylizable[0])
    geom.visual.uv = 0.375 + 0.25 * geom.visual.uv  # island covers texels 24..40
    background = np.zeros((64, 64, 3), np.uint8)
    background[...] = [255, 0, 255]
    texture = background.copy()
    # the island as bilinear filtering reads it: texel centres inside, plus one texel around
    inside = island_mask(mesh.corner_uv(mesh.stylizable[0]), (64, 64))
    texture[inside] = [10, 200, 10]
    mesh.set_texture(mesh.stylizable[0], texture)
    mesh.save(tmp_path / "padded.glb")
    back = TexturedMesh.load(tmp_path / "padded.glb")
    back = back.texture(back.stylizable[0])
    from scipy import ndimage

    ring = ndimage.binary_dilation(inside, iterations=8) & ~inside
    assert ring.sum() > 100
    assert not np.any(np.all(back[ring] == [255, 0, 255], axis=1))


def test_unwrap_mesh_without_uvs(caplog):
    with caplog.at_level(logging.WARNING, logger="meshstyle"):
        mesh = TexturedMesh.load(ASSETS / "meshes" / "no_uv" / "spot_low_resolution.obj", bake_size=256)
    assert "xatlas" in caplog.text
    uv = mesh.corner_uv(mesh.stylizable[0])
    assert uv.min() >= 0 and uv.max() <= 1
    face, _, counts = rasterize_uv(uv, (512, 512), count_overlaps=True)
    covered = (counts > 0).sum()
    # texel centres exactly on a shared edge count twice; real overlaps would cover whole areas
    assert (counts > 1).sum() < 1e-3 * covered
    assert mesh.texture(mesh.stylizable[0]).shape == (256, 256, 3)


def test_xatlas_crash_becomes_a_clear_error(monkeypatch):
    monkeypatch.setattr(unwrap_module, "WORKER", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    with pytest.raises(MeshstyleError, match="crashed .SIGSEGV."):
        unwrap_module.unwrap(np.zeros((3, 3)), np.array([[0, 1, 2]]))


def test_bad_mesh_files(tmp_path):
    with pytest.raises(MeshstyleError, match="not found"):
        TexturedMesh.load(tmp_path / "missing.obj")
    (tmp_path / "junk.glb").write_bytes(b"glTF" + bytes(range(200)))
    with pytest.raises(MeshstyleError, match="cannot read"):
        TexturedMesh.load(tmp_path / "junk.glb")
    (tmp_path / "points.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\n")
    with pytest.raises(MeshstyleError, match="no triangle faces"):
        TexturedMesh.load(tmp_path / "points.obj")
    (tmp_path / "mesh.stl2").write_text("solid")
    with pytest.raises(MeshstyleError, match="unsupported"):
        TexturedMesh.load(tmp_path / "mesh.stl2")


def test_missing_mtl_texture_is_an_error_unless_allowed(tmp_path, caplog):
    (tmp_path / "m.mtl").write_text("newmtl red\nKd 0.8 0.1 0.1\nmap_Kd missing.png\n")
    (tmp_path / "m.obj").write_text("mtllib m.mtl\nusemtl red\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nf 1/1 2/2 3/3\n")
    with pytest.raises(MeshstyleError, match="texture file 'missing.png' named in .* not found"):
        TexturedMesh.load(tmp_path / "m.obj", bake_size=32)
    with caplog.at_level(logging.WARNING, logger="meshstyle"):
        mesh = TexturedMesh.load(tmp_path / "m.obj", bake_size=32, allow_missing_textures=True)
    assert "missing.png" in caplog.text and "no texture" in caplog.text
    tex = mesh.texture(mesh.stylizable[0])
    assert tex[..., 0].mean() > 150 and tex[..., 1].mean() < 60


def test_missing_mtl_file_is_an_error_unless_allowed(tmp_path, caplog):
    (tmp_path / "m.obj").write_text("mtllib gone.mtl\nusemtl red\nv 0 0 0\nv 1 0 0\nv 0 1 0\n"
                                    "vt 0 0\nvt 1 0\nvt 0 1\nf 1/1 2/2 3/3\n")
    with pytest.raises(MeshstyleError, match="MTL file 'gone.mtl'"):
        TexturedMesh.load(tmp_path / "m.obj", bake_size=16)
    with caplog.at_level(logging.WARNING, logger="meshstyle"):
        TexturedMesh.load(tmp_path / "m.obj", bake_size=16, allow_missing_textures=True)
    assert "gone.mtl" in caplog.text


def _obj_with_texture(tmp_path, map_kd: str, name: str = "t.obj"):
    (tmp_path / "t.mtl").write_text(f"newmtl m\nmap_Kd {map_kd}\n")
    (tmp_path / name).write_text("mtllib t.mtl\nusemtl m\nv 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\n"
                                 "f 1/1 2/2 3/3\n")
    return tmp_path / name


@pytest.mark.parametrize("map_kd, message", [
    ("../outside.png", "outside the asset's folder"),
    ("/etc/hostname", "absolute path"),
    ("link.png", "outside the asset's folder"),  # a symbolic link to a file outside
    ("notimage.png", "not an image"),
    ("truncated.png", "cannot decode"),
])


def test_textures_outside_the_folder_or_corrupt_are_refused(tmp_path, map_kd, message):
    asset = tmp_path / "asset"
    asset.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "outside.png")
    (asset / "link.png").symlink_to(tmp_path / "outside.png")
    (asset / "notimage.png").write_text("hello")
    good = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(good, format="PNG")
    (asset / "truncated.png").write_bytes(good.getvalue()[:200])
    with pytest.raises(MeshstyleError, match=message) as info:
        TexturedMesh.load(_obj_with_texture(asset, map_kd))
    assert "\n" not in str(info.value)


def test_device_and_fifo_resources_are_refused_without_reading(tmp_path):
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    with pytest.raises(MeshstyleError, match="outside the asset's folder"):
        TexturedMesh.load(_obj_with_texture(tmp_path, "zero.png"))
    os.mkfifo(tmp_path / "fifo.png")
    with pytest.raises(MeshstyleError, match="not a regular file"):
        TexturedMesh.load(_obj_with_texture(tmp_path, "fifo.png"))
    os.mkfifo(tmp_path / "fifo.obj")
    with pytest.raises(MeshstyleError, match="not a regular file"):
        TexturedMesh.load(tmp_path / "fifo.obj")


def test_decompression_bomb_texture_is_one_line(tmp_path, monkeypatch):
    # one pixel limit for textures and for images given on the command line (core.imageio.MAX_PIXELS)
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(tmp_path / "big.png")
    monkeypatch.setattr(imageio, "MAX_PIXELS", 4095)
    with pytest.raises(MeshstyleError, match="texture big.png .*than the limit of 4095") as info:
        TexturedMesh.load(_obj_with_texture(tmp_path, "big.png"))
    assert "\n" not in str(info.value)
    with pytest.raises(MeshstyleError, match="64x64 px"):
        imageio.open_image(tmp_path / "big.png")
    monkeypatch.setattr(imageio, "MAX_PIXELS", 4096)
    assert TexturedMesh.load(_obj_with_texture(tmp_path, "big.png")).stylizable
    assert imageio.open_image(tmp_path / "big.png").size == (64, 64)


@pytest.mark.parametrize("text, message", [
    ("v 0 0 0\nv nan 0 0\nv 0 1 0\nf 1 2 3\n", "line 2: non-finite"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nf 1 2", "line 5: a face needs at least 3 corners"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\nv 0 0", "line 5: expected at least 3 numbers"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 4\n", "face vertex index 4 out of range"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nf 1/1 2/2 3/3\n", "face UV index 2 out of range"),
    ("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 x\n", "malformed face corner"),
    ("", "no vertices"),
])


def test_corrupt_obj_is_a_one_line_error(tmp_path, text, message):
    (tmp_path / "bad.obj").write_text(text)
    with pytest.raises(MeshstyleError, match=message) as info:
        TexturedMesh.load(tmp_path / "bad.obj")
    assert "\n" not in str(info.value)


def test_garbage_obj_is_a_clear_error(tmp_path):
    (tmp_path / "garbage.obj").write_bytes(bytes(np.random.default_rng(1).integers(0, 256, 4000, np.uint8)))
    with pytest.raises(MeshstyleError, match="not a text OBJ file") as info:
        TexturedMesh.load(tmp_path / "garbage.obj")
    assert "charset" not in str(info.value)


def test_glb_with_bad_indices_or_nan_positions_is_refused(tmp_path):
    from meshstyle.mesh import gltf as gltf_io

    source = ASSETS / "meshes" / "gltf" / "BoxTextured.glb"
    doc, blob = gltf_io.split_glb(source.read_bytes(), "box")
    indices = doc["bufferViews"][doc["accessors"][0]["bufferView"]]
    bad = bytearray(blob)
    bad[indices["byteOffset"]:indices["byteOffset"] + 2] = (500).to_bytes(2, "little")
    (tmp_path / "index.glb").write_bytes(gltf_io.join_glb(doc, bytes(bad)))
    with pytest.raises(MeshstyleError, match="out of range"):
        TexturedMesh.load(tmp_path / "index.glb")
    positions = doc["bufferViews"][doc["accessors"][2]["bufferView"]]
    bad = bytearray(blob)
    start = positions["byteOffset"] + doc["accessors"][2]["byteOffset"]
    bad[start:start + 4] = np.float32(np.nan).tobytes()
    (tmp_path / "nan.glb").write_bytes(gltf_io.join_glb(doc, bytes(bad)))
    with pytest.raises(MeshstyleError, match="non-finite"):
        TexturedMesh.load(tmp_path / "nan.glb")


def test_degenerate_faces_warn(tmp_path, caplog):
    # with UVs, so no (slow) unwrap runs
    (tmp_path / "d.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 2 0 0\nvt 0 0\nvt 1 0\nvt 0 1\nvt 1 1\n"
                                    "f 1/1 2/2 3/3\nf 1/1 2/2 4/4\n")
    with caplog.at_level(logging.WARNING, logger="meshstyle"):
        TexturedMesh.load(tmp_path / "d.obj", bake_size=16)
    assert "degenerate" in caplog.text


def test_existing_output_replaced_only_when_complete(tmp_path, spot_path, monkeypatch):
    from meshstyle.mesh import export

    out = tmp_path / "cow.glb"
    out.write_bytes(b"old")
    mesh = TexturedMesh.load(spot_path)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(export, "build_glb", broken)
    with pytest.raises(RuntimeError):
        mesh.save(out)
    assert out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cow.glb"]


def test_quads_are_triangulated_and_uvs_outside_the_unit_square_wrap(tmp_path):
    (tmp_path / "q.mtl").write_text("newmtl m\nKd 1 1 1\nmap_Kd q.png\n")
    from PIL import Image

    from conftest import QUADRANT_TEXTURE

    Image.fromarray(QUADRANT_TEXTURE).save(tmp_path / "q.png")
    (tmp_path / "q.obj").write_text("mtllib q.mtl\nusemtl m\nv -1 -1 0\nv 1 -1 0\nv 1 1 0\nv -1 1 0\n"
                                    "vt 1 1\nvt 2 1\nvt 2 2\nvt 1 2\nf 1/1 2/2 3/3 4/4\n")
    mesh = TexturedMesh.load(tmp_path / "q.obj")
    assert len(mesh.instances()[0].faces) == 2
    from conftest import camera, quadrant_checks
    from meshstyle.mesh.raycast import compute_views
    from meshstyle.stylize.mesh import render_views

    # UVs 1..2 repeat the texture exactly as 0..1 would
    quadrant_checks(render_views(mesh, compute_views(mesh, [camera((0, 0, 4))], [64]))[0], 64)


def test_huge_texture_is_downscaled_with_a_warning(caplog):
    big = np.zeros((16, 8200, 3), np.uint8)
    with caplog.at_level(logging.WARNING, logger="meshstyle"):
        mesh = TexturedMesh(quad(texture=big))
    assert mesh.texture(mesh.stylizable[0]).shape[1] == 8192
    assert "downscaled" in caplog.text


def test_resource_files_name_every_file_read(spot_path, tmp_path):
    mesh = TexturedMesh.load(spot_path)
    folder = spot_path.parent.resolve()
    assert mesh.resource_files() == [spot_path, folder / "cow.mtl", folder / "cow_texture.png"]
    assert TexturedMesh.load(ASSETS / "meshes" / "gltf" / "Fox.glb").resource_files()[1:] == []


def test_mtl_comments_do_not_change_colours_or_textures(tmp_path):
    Image.fromarray(np.full((4, 4, 3), 7, np.uint8)).save(tmp_path / "t.png")
    (tmp_path / "k.mtl").write_text("newmtl grey # comment\nKd 0.5 0.25 1.0  # sRGB\n\n"
                                    "newmtl tex  # textured\nKd 1 1 1 # white\nmap_Kd t.png\n")
    (tmp_path / "k.obj").write_text("mtllib k.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nvt 0 0\nvt 1 0\nvt 0 1\n"
                                    "usemtl grey\nf 1 2 3\nusemtl tex\nf 2/2 4/1 3/3\n")
    mesh = TexturedMesh.load(tmp_path / "k.obj")
    assert mesh.stylizable == ["tex"]
    assert (mesh.texture("tex") == 7).all()
    grey = mesh.scene.geometry["grey"].visual.material
    assert list(grey.diffuse) == [128, 64, 255, 255]
