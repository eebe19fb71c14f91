"""Hostile and careless inputs, second pass (issue 25). Each case: exit status, one line naming the problem,
no traceback, nothing written, inputs unchanged. Inputs are crafted here; none is committed."""

from __future__ import annotations

import base64
import errno
import io
import json
import logging
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SPOT, TINY_MESH, checker, quad_gltf, refused
from meshstyle.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def render_argv(path: Path, out: Path) -> list:
    return ["render", path, "-o", out, "--views", "1", "--size", "32", "-q"]


# item 4: nesting --------------------------------------------------------------------------------------

@pytest.mark.parametrize("suffix", [".gltf", ".glb"])
def test_deeply_nested_gltf_json_is_one_line(work, capsys, suffix):
    text = json.dumps(quad_gltf())[:-1] + ', "extras": ' + "[" * 1000 + "]" * 1000 + "}"
    path = work / f"deep{suffix}"
    if suffix == ".gltf":
        path.write_text(text)
    else:
        from meshstyle.mesh.gltf import join_glb

        glb = join_glb({"asset": {"version": "2.0"}}, b"")
        body = text.encode() + b" " * (-len(text) % 4)
        path.write_bytes(glb[:4] + struct.pack("<II", 2, 20 + len(body)) + struct.pack("<II", len(body), 0x4E4F534A)
                         + body)
    assert len(path.read_bytes()) < 40_000
    refused(work, render_argv(path, work / "o.png"), capsys, "nested 1001 levels", path.name)
    refused(work, ["mesh", path, "--style", work / "s.png", "-o", work / "o.glb", *TINY_MESH], capsys, "nested")


def test_json_depth_ignores_brackets_in_strings():
    from meshstyle.mesh.gltf import json_depth

    assert json_depth(b'{"a": [[1], {"b": "[[[[[[\\"]]"}]}') == 3
    assert json_depth(b"[]") == 1 and json_depth(b'"x"') == 0


# item 5: data URIs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("media", ["application/octet-stream", "application/gltf-buffer"])
@pytest.mark.parametrize("image", ["image/png", "image/jpeg"])
def test_embedded_data_uris_of_the_spec_load(work, media, image):
    from meshstyle.mesh.textured import TexturedMesh

    encoded = io.BytesIO()
    Image.fromarray(checker(16, 4)).save(encoded, "PNG" if image == "image/png" else "JPEG", quality=95)
    doc = quad_gltf(f"data:{image};base64," + base64.b64encode(encoded.getvalue()).decode(), media)
    (work / "q.gltf").write_text(json.dumps(doc))
    mesh = TexturedMesh.load(work / "q.gltf")
    texture = mesh.texture(mesh.stylizable[0])
    assert texture.shape == (16, 16, 3)
    assert np.abs(texture.astype(int) - checker(16, 4)).max() <= (0 if image == "image/png" else 40)
    assert main([str(a) for a in render_argv(work / "q.gltf", work / "sheet.png")]) == 0
    assert Image.open(work / "sheet.png").size[0] >= 32


@pytest.mark.parametrize("uri,needle", [
    ("data:text/plain;base64,aGVsbG8=", "media type 'text/plain'"),
    ("data:image/png,notbase64", "not base64"),
    ("data:image/png;base64,@@@@", "does not decode"),
    ("data:image/png;base64", "no comma"),
])


def test_bad_data_uris_are_one_line(work, capsys, uri, needle):
    (work / "q.gltf").write_text(json.dumps(quad_gltf(uri)))
    refused(work, render_argv(work / "q.gltf", work / "o.png"), capsys, "image 0", needle)


# item 7: accessors, MTL options -----------------------------------------------------------------------

@pytest.mark.parametrize("edit,needle", [
    (lambda d: d["accessors"][0].update(count=400), "accessor 0 needs 4800 bytes (400 x VEC3) but its bufferView 0 "
                                                    "has only 48"),
    (lambda d: d["accessors"][1].update(bufferView=9), "accessor 1 names bufferView 9, which does not exist"),
    (lambda d: d["accessors"][2].update(componentType=7), "accessor 2 has an unknown componentType 7"),
    (lambda d: d["bufferViews"][1].update(byteOffset=4000), "bufferView 1 (bytes 4000..4032) lies outside buffer 0"),
])


def test_bad_accessor_is_named_in_words(work, capsys, edit, needle):
    doc = quad_gltf()
    edit(doc)
    (work / "q.gltf").write_text(json.dumps(doc))
    message = refused(work, render_argv(work / "q.gltf", work / "o.png"), capsys, needle)
    assert "AssertionError" not in message


def test_mtl_map_options_are_parsed_and_kept(work, capsys):
    from meshstyle.mesh.textured import TexturedMesh

    spot = work / "spot"
    mtl = (spot / "cow.mtl").read_text()
    assert "map_Kd cow_texture.png" in mtl
    (spot / "cow.mtl").write_text(mtl.replace("map_Kd cow_texture.png",
                                              "map_Kd -s 1 1 1 -o 0 0 0 -bm 1 -clamp off -blendu on -blendv on "
                                              "-mm 0 1 -t 0 0 0 -texres 512 -imfchan l -cc off -boost 1 "
                                              "cow_texture.png"))
    mesh = TexturedMesh.load(spot / "cow.obj")
    plain = TexturedMesh.load(SPOT)
    assert np.array_equal(mesh.texture(mesh.stylizable[0]), plain.texture(plain.stylizable[0]))
    assert np.array_equal(mesh.corner_uv(mesh.stylizable[0]), plain.corner_uv(plain.stylizable[0]))
    assert main([str(a) for a in ["mesh", spot / "cow.obj", "--style", work / "s.png", "-o", work / "out/cow.obj",
                                  *TINY_MESH]]) == 0
    line = [x for x in (work / "out/cow.mtl").read_text().splitlines() if x.startswith("map_Kd")]
    assert line == ["map_Kd -s 1 1 1 -o 0 0 0 -bm 1 -clamp off -blendu on -blendv on -mm 0 1 -t 0 0 0 -texres 512 "
                    "-imfchan l -cc off -boost 1 cow.png"], line
    assert (work / "out/cow.png").is_file()


def test_mtl_scale_and_offset_move_the_uvs():
    from meshstyle.mesh.obj import map_uv_transform, split_map_options

    options, name, parsed = split_map_options(" -s 2 3 -o 0.5 -clamp on my tex.png")
    assert (options, name) == ("-s 2 3 -o 0.5 -clamp on", "my tex.png")
    scale, offset = map_uv_transform(parsed)
    assert scale.tolist() == [2, 3] and offset.tolist() == [0.5, 0]
    assert split_map_options("tex.png") == ("", "tex.png", {})


def test_mtl_option_without_its_value_is_one_line(work, capsys):
    spot = work / "spot"
    (spot / "cow.mtl").write_text((spot / "cow.mtl").read_text().replace("map_Kd cow_texture.png",
                                                                         "map_Kd -bm cow_texture.png"))
    refused(work, render_argv(spot / "cow.obj", work / "o.png"), capsys, "-bm needs 1")


# item 6: disk full ------------------------------------------------------------------------------------

@pytest.mark.parametrize("command", ["mesh", "render"])
def test_disk_full_during_the_write_is_one_line(work, capsys, monkeypatch, command):
    real = Path.write_bytes
    failed = []

    def full(self, data):  # the export writes its files with Path.write_bytes (atomic_path inside a stage)
        if ".meshstyle-" in str(self):
            real(self, data[:len(data) // 2])  # half written, then the disk is full
            failed.append(self)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, data)

    from PIL import Image as PILImage

    real_save = PILImage.Image.save

    def full_save(self, fp, *args, **kwargs):
        if ".meshstyle-" in str(fp):
            failed.append(fp)
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_save(self, fp, *args, **kwargs)

    monkeypatch.setattr(Path, "write_bytes", full)
    monkeypatch.setattr(PILImage.Image, "save", full_save)
    argv = (["mesh", work / "spot/cow.obj", "--style", work / "s.png", "-o", work / "out.glb", *TINY_MESH]
            if command == "mesh" else render_argv(work / "spot/cow.obj", work / "sheet.png"))
    refused(work, argv, capsys, "no space left on the device", "nothing was written")
    assert failed
    assert not [p for p in work.rglob("*") if p.name.startswith(".meshstyle-") or ".part" in p.name]


def test_outputs_are_written_as_a_set_one_line(work, capsys, monkeypatch):
    from meshstyle.mesh import preview

    def broken(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(preview, "before_after_sheet", broken)
    refused(work, ["mesh", work / "spot/cow.obj", "--style", work / "s.png", "-o", work / "out.glb",
                   "--preview", work / "sheet.png", *TINY_MESH], capsys, "sheet.png", "read-only")


# item 8: silent garbage -------------------------------------------------------------------------------

def test_uvs_far_outside_the_tiling_range_warn(work, caplog):
    from meshstyle.mesh.textured import TexturedMesh

    (work / "far.gltf").write_text(json.dumps(quad_gltf(uv_scale=1e30)))
    (work / "near.gltf").write_text(json.dumps(quad_gltf(uv_scale=3.0)))
    with caplog.at_level(logging.WARNING, logger="meshstyle"):
        TexturedMesh.load(work / "near.gltf")
        assert not [r for r in caplog.records if "tiling range" in r.getMessage()]
        TexturedMesh.load(work / "far.gltf")
    assert [r for r in caplog.records if "reach 1e+30" in r.getMessage() and "tiling range" in r.getMessage()]


def test_straight_down_cameras_warn_about_unseen_texture(work, caplog):
    from meshstyle.stylize.mesh import stylize_mesh

    with caplog.at_level(logging.WARNING, logger="meshstyle"):
        stylize_mesh(str(work / "spot/cow.obj"), str(work / "s.png"), views=2, resolution=64, depth_levels=1,
                     iterations=1, vgg_weights="random", texture_size=32, style_scales=(1.0,),
                     elevation=(90.0, 90.0))
    unseen = [r.getMessage() for r in caplog.records if "seen by no camera" in r.getMessage()]
    assert unseen and int(unseen[0].split("%")[0]) > 40, unseen
