"""Lossless export (issue 14): the input document is edited, not rebuilt.

Every GLB written here is checked with the Khronos glTF-Validator (tests/gltf_validator.py): no errors
and no warning the input did not have. No stylization runs here: textures are set directly.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import logging
import struct

import numpy as np
import pytest
import trimesh
from gltf_validator import assert_valid
from PIL import Image

from conftest import ASSETS, SPOT, cube
from meshstyle.core.errors import MeshstyleError
from meshstyle.mesh import gltf as gltf_io
from meshstyle.mesh.export import linear_to_srgb, srgb_to_linear
from meshstyle.mesh.obj import scan_obj
from meshstyle.mesh.textured import TexturedMesh

GLTF = ASSETS / "meshes" / "gltf"
NO_UV = ASSETS / "meshes" / "no_uv" / "spot_low_resolution.obj"
GLB_ASSETS = [GLTF / "cow.glb", GLTF / "Fox.glb", GLTF / "BoxTextured.glb"]
SIZES = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT4": 16}
BYTES = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
PROVENANCE = {"style": "wave.jpg", "vgg_weights": "random"}


def read_glb(path):
    return gltf_io.split_glb(path.read_bytes(), str(path))


def accessor_bytes(doc, blob, index) -> bytes:
    acc = doc["accessors"][index]
    view = doc["bufferViews"][acc["bufferView"]]
    elem = SIZES[acc["type"]] * BYTES[acc["componentType"]]
    stride = view.get("byteStride", elem)
    start = view.get("byteOffset", 0) + acc.get("byteOffset", 0)
    return b"".join(blob[start + i * stride:start + i * stride + elem] for i in range(acc["count"]))


def image_of(doc, blob, index) -> Image.Image:
    image = doc["images"][index]
    view = doc["bufferViews"][image["bufferView"]]
    data = blob[view.get("byteOffset", 0):view.get("byteOffset", 0) + view["byteLength"]]
    return Image.open(io.BytesIO(data))


def invert_textures(mesh: TexturedMesh, pad: bool = True) -> TexturedMesh:
    out = mesh.copy()
    for name in out.stylizable:
        out.set_texture(name, 255 - out.texture(name), pad=pad)
    return out


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def faces(mesh: TexturedMesh) -> int:
    return sum(len(i.faces) for i in mesh.instances())


def geometry_lines(data: bytes) -> list[bytes]:
    return [line for line in data.splitlines() if line.split(b" ", 1)[0] in (b"v", b"vt", b"vn", b"f")]


@pytest.mark.parametrize("asset", GLB_ASSETS, ids=lambda p: p.name)
def test_glb_round_trip_edits_only_texture_pixels(tmp_path, asset):
    mesh = TexturedMesh.load(asset)
    out = invert_textures(mesh, pad=False)
    written = out.save(tmp_path / "out.glb", provenance=PROVENANCE)
    assert_valid(written[0], baseline=asset)
    doc_in, blob_in = read_glb(asset)
    doc_out, blob_out = read_glb(written[0])
    for key in ("nodes", "meshes", "skins", "animations", "samplers", "materials", "textures", "images",
                "accessors", "scenes"):
        assert len(doc_out.get(key, [])) == len(doc_in.get(key, [])), key
    # every accessor (positions, normals, UVs, joints, weights, indices, animation keys) byte-identical
    for i in range(len(doc_in["accessors"])):
        assert accessor_bytes(doc_in, blob_in, i) == accessor_bytes(doc_out, blob_out, i), i
    # the JSON is the input's except buffer layout, image data, provenance and base-colour factors
    for key in set(doc_in) | set(doc_out):
        if key not in ("bufferViews", "buffers", "images", "asset", "materials"):
            assert doc_in.get(key) == doc_out.get(key), key
    for image_in, image_out in zip(doc_in["images"], doc_out["images"]):
        assert image_out["mimeType"] == image_in["mimeType"]
        assert {k: v for k, v in image_in.items() if k != "bufferView"} == \
               {k: v for k, v in image_out.items() if k != "bufferView"}
    # texture: same size and format as the input's, pixels exactly what was set
    name = mesh.stylizable[0]
    index = mesh.origin.base_image[name]
    new, old = image_of(doc_out, blob_out, index), image_of(doc_in, blob_in, index)
    assert new.size == old.size and new.format == old.format
    assert np.array_equal(np.asarray(new.convert("RGB")), 255 - mesh.texture(name))
    back = TexturedMesh.load(written[0])
    assert faces(back) == faces(mesh)
    assert doc_out["asset"]["extras"]["meshstyle"]["vgg_weights"] == "random"
    assert doc_out["asset"]["generator"].startswith("meshstyle ")
    assert doc_out["asset"].get("copyright") == doc_in["asset"].get("copyright")


def test_fox_keeps_skin_and_animations(tmp_path):
    written = invert_textures(TexturedMesh.load(GLTF / "Fox.glb")).save(tmp_path / "fox.glb")
    doc, _ = read_glb(written[0])
    assert len(doc["skins"]) == 1 and len(doc["animations"]) == 3
    assert {"JOINTS_0", "WEIGHTS_0"} <= set(doc["meshes"][0]["primitives"][0]["attributes"])
    assert "copyright" in doc["asset"]


def _box_document(tmp_path, edit) -> tuple:
    doc, blob = read_glb(GLTF / "BoxTextured.glb")
    edit(doc)
    path = tmp_path / "box_in.glb"
    path.write_bytes(gltf_io.join_glb(doc, blob))
    return path, doc


def test_unknown_fields_extensions_and_texture_transform_survive(tmp_path):
    def edit(doc):
        doc["vendorField"] = {"keep": [1, 2, 3]}
        doc["nodes"][1]["extras"] = {"note": "keep me"}
        doc["nodes"][1]["vendorNodeField"] = 7
        doc["samplers"][0]["wrapS"] = 33071
        info = doc["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"]
        info["extensions"] = {"KHR_texture_transform": {"offset": [0.5, 0], "scale": [0.5, 1]}}
        doc["extensionsUsed"] = ["KHR_texture_transform"]
        doc["materials"][0]["extras"] = {"material": "extra"}

    path, doc_in = _box_document(tmp_path, edit)
    plain = TexturedMesh.load(GLTF / "BoxTextured.glb")
    mesh = TexturedMesh.load(path)
    # UVs are where the texture is sampled: u' = 0.5 u + 0.5 (v unchanged)
    name = mesh.stylizable[0]
    assert np.allclose(mesh.corner_uv(name)[..., 0], 0.5 * plain.corner_uv(name)[..., 0] + 0.5)
    written = invert_textures(mesh).save(tmp_path / "out.glb")
    assert_valid(written[0], baseline=path)
    doc, _ = read_glb(written[0])
    assert doc["vendorField"] == {"keep": [1, 2, 3]}
    assert doc["nodes"][1]["extras"] == {"note": "keep me"} and doc["nodes"][1]["vendorNodeField"] == 7
    assert doc["samplers"] == doc_in["samplers"]
    material = doc["materials"][0]
    assert material["pbrMetallicRoughness"]["baseColorTexture"] == doc_in["materials"][0]["pbrMetallicRoughness"]["baseColorTexture"]
    assert material["extras"] == {"material": "extra"}


def test_jpeg_stays_jpeg_and_format_options(tmp_path):
    def to_jpeg(doc):
        doc["images"][0]["mimeType"] = "image/jpeg"

    doc, blob = read_glb(GLTF / "BoxTextured.glb")
    png = image_of(doc, blob, 0).convert("RGB")
    buf = io.BytesIO()
    png.save(buf, format="JPEG", quality=90)
    view = doc["bufferViews"][doc["images"][0]["bufferView"]]
    start = view["byteOffset"]
    blob = blob[:start] + buf.getvalue() + blob[start + view["byteLength"]:]
    shift = len(buf.getvalue()) - view["byteLength"]
    view["byteLength"] = len(buf.getvalue())
    for other in doc["bufferViews"]:
        if other is not view and other.get("byteOffset", 0) > start:
            other["byteOffset"] += shift
    doc["buffers"][0]["byteLength"] = len(blob)
    to_jpeg(doc)
    path = tmp_path / "jpeg_in.glb"
    path.write_bytes(gltf_io.join_glb(doc, blob + b"\0" * (-len(blob) % 4)))
    mesh = invert_textures(TexturedMesh.load(path))
    for fmt, mime, pil in ((None, "image/jpeg", "JPEG"), ("png", "image/png", "PNG"), ("webp", "image/webp", "WEBP")):
        written = mesh.save(tmp_path / f"out_{fmt}.glb", texture_format=fmt, jpeg_quality=80)
        assert_valid(written[0], baseline=path)
        out_doc, out_blob = read_glb(written[0])
        assert out_doc["images"][0]["mimeType"] == mime
        image = image_of(out_doc, out_blob, 0)
        assert image.format == pil and image.size == png.size
        assert written[1].suffix == {"JPEG": ".jpg", "PNG": ".png", "WEBP": ".webp"}[pil]
        if fmt == "webp":
            assert out_doc["extensionsRequired"] == ["EXT_texture_webp"]
            assert out_doc["textures"][0]["extensions"]["EXT_texture_webp"] == {"source": 0}
    with pytest.raises(MeshstyleError, match="texture format"):
        mesh.save(tmp_path / "bad.glb", texture_format="tiff")


def test_shared_image_is_written_once(tmp_path):
    def share(doc):
        doc["materials"].append(copy.deepcopy(doc["materials"][0]) | {"name": "second"})
        prim = copy.deepcopy(doc["meshes"][0]["primitives"][0]) | {"material": 1}
        doc["meshes"].append({"name": "Mesh2", "primitives": [prim]})
        doc["nodes"].append({"mesh": 1, "translation": [3, 0, 0]})
        doc["scenes"][0]["nodes"].append(2)

    path, _ = _box_document(tmp_path, share)
    mesh = TexturedMesh.load(path)
    assert len(mesh.stylizable) == 2
    first, second = mesh.stylizable
    size = mesh.texture(first).shape
    mesh.set_texture(first, np.full(size, 10, np.uint8), pad=False)
    written = mesh.save(tmp_path / "out.glb")
    assert_valid(written[0], baseline=path)
    doc, blob = read_glb(written[0])
    assert len(doc["images"]) == 1 and len([p for p in written if p.suffix == ".png"]) == 1
    # the changed part's texture wins where the islands overlap (here: the same islands)
    inside = np.asarray(image_of(doc, blob, 0).convert("RGB"))
    from meshstyle.mesh.padding import island_mask

    assert (inside[island_mask(mesh.corner_uv(first), size[:2])] == 10).all()


def test_same_inputs_give_the_same_bytes(tmp_path):
    scene = trimesh.Scene()
    for i in range(3):  # several nodes: no random node names in the output
        scene.add_geometry(cube(), transform=trimesh.transformations.translation_matrix([3 * i, 0, 0]))
    for source, ext in ((SPOT, ".glb"), (SPOT, ".obj"), (GLTF / "Fox.glb", ".glb"), (GLTF / "Fox.glb", ".obj"),
                        (None, ".glb")):
        hashes = set()
        for run in range(2):
            mesh = TexturedMesh.load(source) if source else TexturedMesh(scene.copy())
            mesh = invert_textures(mesh)
            written = mesh.save(tmp_path / f"run{run}" / f"out{ext}", provenance=PROVENANCE)
            hashes.add(tuple(sha(p) for p in written))
            if ext == ".glb":
                assert_valid(written[0])
        assert len(hashes) == 1, (source, ext)


def test_provenance_in_png_and_mtl(tmp_path):
    written = invert_textures(TexturedMesh.load(SPOT)).save(tmp_path / "cow.obj", provenance=PROVENANCE)
    png = next(p for p in written if p.suffix == ".png")
    with Image.open(png) as image:
        record = json.loads(image.text["Comment"])
        assert record["vgg_weights"] == "random" and record["style"] == "wave.jpg"
        assert image.text["Software"].startswith("meshstyle ")
    mtl = next(p for p in written if p.suffix == ".mtl").read_text()
    assert mtl.startswith("# written by meshstyle ") and "vgg_weights: random" in mtl.splitlines()[0]


def test_obj_round_trip_keeps_geometry_lines_and_mtl(tmp_path):
    mesh = TexturedMesh.load(SPOT)
    written = invert_textures(mesh, pad=False).save(tmp_path / "out.obj")
    obj, mtl, png = written[0], written[1], written[2]
    assert [p.name for p in written] == ["out.obj", "out.mtl", "out.png"]
    assert geometry_lines(obj.read_bytes()) == geometry_lines(SPOT.read_bytes())
    in_lines = SPOT.read_bytes().splitlines()
    out_lines = obj.read_bytes().splitlines()
    assert [a for a, b in zip(in_lines, out_lines) if a != b] == [b"mtllib cow.mtl"]
    assert b"mtllib out.mtl" in out_lines
    mtl_in = (SPOT.parent / "cow.mtl").read_text().splitlines()
    mtl_out = mtl.read_text().splitlines()
    assert mtl_out[0].startswith("# written by meshstyle")
    assert mtl_out[1:] == [("map_Kd out.png" if line.startswith("map_Kd") else line) for line in mtl_in]
    with Image.open(png) as image, Image.open(SPOT.parent / "cow_texture.png") as original:
        assert image.size == original.size and image.format == "PNG"
    back = TexturedMesh.load(obj)
    assert faces(back) == faces(mesh)
    assert np.array_equal(back.texture(back.stylizable[0]), 255 - mesh.texture(mesh.stylizable[0]))


def test_obj_with_generated_uvs_is_rewritten(tmp_path):
    mesh = TexturedMesh.load(NO_UV, bake_size=64)
    assert mesh.generated_uv
    written = mesh.save(tmp_path / "out.obj")
    text = written[0].read_text()
    source = scan_obj(text, "out.obj")
    assert source.counts["f"] == 1654 and source.counts["vt"] > 0 and source.counts["vn"] > 0
    back = TexturedMesh.load(written[0])
    assert faces(back) == 1654 and not back.generated_uv
    glb = mesh.save(tmp_path / "out.glb")
    assert_valid(glb[0])
    assert faces(TexturedMesh.load(glb[0])) == 1654


def _two_material_obj(tmp_path):
    Image.fromarray(np.full((8, 8, 3), 200, np.uint8)).save(tmp_path / "t.png")
    (tmp_path / "m.mtl").write_text("newmtl tex\nKd 1 1 1\nNs 250\nmap_Kd t.png\n\n"
                                    "newmtl grey # a comment\nKd 0.5 0.5 0.5  # sRGB grey\nNs 10\n")
    (tmp_path / "m.obj").write_text(
        "mtllib m.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nvn 0 0 1\n"
        "usemtl tex\nf 1/1/1 2/2/1 3/3/1\nusemtl grey\nf 2//1 4//1 3//1\n")
    return tmp_path / "m.obj"


def test_obj_to_glb_material_conversion(tmp_path):
    path = _two_material_obj(tmp_path)
    mesh = TexturedMesh.load(path)
    written = invert_textures(mesh).save(tmp_path / "out.glb")
    assert_valid(written[0])
    doc, blob = read_glb(written[0])
    materials = {m["name"]: m["pbrMetallicRoughness"] for m in doc["materials"]}
    assert all(m["metallicFactor"] == 0 for m in materials.values())
    assert materials["grey"]["baseColorFactor"][:3] == pytest.approx([0.2140411] * 3, abs=1e-6)
    assert materials["grey"]["roughnessFactor"] == pytest.approx(1 - np.sqrt(10 / 1000))
    assert materials["tex"]["roughnessFactor"] == pytest.approx(0.5)
    assert materials["tex"]["baseColorFactor"] == [1, 1, 1, 1] and "baseColorTexture" in materials["tex"]
    for m in doc["meshes"]:
        normals = m["primitives"][0]["attributes"]["NORMAL"]
        assert np.allclose(np.frombuffer(accessor_bytes(doc, blob, normals), np.float32).reshape(-1, 3), [0, 0, 1])
    assert faces(TexturedMesh.load(written[0])) == 2


def test_srgb_conversions_round_trip():
    values = np.linspace(0, 1, 101)
    assert np.allclose(linear_to_srgb(srgb_to_linear(values)), values)
    assert srgb_to_linear(0.5) == pytest.approx(0.2140411, abs=1e-6)


def test_glb_to_obj_warns_once_and_keeps_faces_and_normals(tmp_path, caplog):
    mesh = TexturedMesh.load(GLTF / "Fox.glb")
    with caplog.at_level(logging.WARNING, logger="meshstyle"):
        written = mesh.save(tmp_path / "fox.obj")
    warnings = [r.getMessage() for r in caplog.records if "OBJ cannot hold" in r.getMessage()]
    assert len(warnings) == 1 and "1 skins" in warnings[0] and "3 animations" in warnings[0]
    counts = scan_obj(written[0].read_text(), "fox.obj").counts
    assert counts["f"] == 576
    box = TexturedMesh.load(GLTF / "BoxTextured.glb").save(tmp_path / "box.obj")
    box_counts = scan_obj(box[0].read_text(), "box.obj").counts
    assert box_counts["vn"] == 24 and box_counts["f"] == 12
    back = TexturedMesh.load(box[0])
    normals = back.normals[back.stylizable[0]]
    # the node's rotation (z up -> y up) is applied to the normals too
    assert np.allclose(np.abs(normals).max(1), 1)


def test_mixed_glb_to_obj_keeps_every_face(tmp_path):
    scene = trimesh.Scene()
    scene.add_geometry(cube(), geom_name="box", node_name="box")
    ball = trimesh.creation.icosphere(subdivisions=1)
    ball.visual = trimesh.visual.ColorVisuals(ball, vertex_colors=np.tile([200, 30, 30, 255], (len(ball.vertices), 1)))
    scene.add_geometry(ball, geom_name="ball", node_name="ball",
                       transform=trimesh.transformations.translation_matrix([3, 0, 0]))
    scene.add_geometry(cube(), geom_name="box2", node_name="box2",
                       transform=trimesh.transformations.translation_matrix([0, 3, 0]))
    scene.export(tmp_path / "mixed.glb")
    mesh = TexturedMesh.load(tmp_path / "mixed.glb")
    written = invert_textures(mesh).save(tmp_path / "mixed.obj")
    scan_obj(written[0].read_text(), "mixed.obj")  # every f index in range
    back = TexturedMesh.load(written[0])
    assert faces(back) == faces(mesh) == 12 + 80 + 12
    glb = back.save(tmp_path / "again.glb")
    assert_valid(glb[0])
    assert faces(TexturedMesh.load(glb[0])) == faces(mesh)


def _gltf_with(tmp_path, edit, name="in.gltf"):
    doc, blob = read_glb(GLTF / "BoxTextured.glb")
    (tmp_path / "box.bin").write_bytes(blob)
    doc["buffers"][0]["uri"] = "box.bin"
    edit(doc)
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return path


def test_gltf_with_external_buffer_becomes_self_contained_glb(tmp_path):
    path = _gltf_with(tmp_path, lambda doc: None)
    written = invert_textures(TexturedMesh.load(path)).save(tmp_path / "out" / "box.glb")
    assert_valid(written[0])
    doc, _ = read_glb(written[0])
    assert all("uri" not in b for b in doc["buffers"]) and len(doc["buffers"]) == 1


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(extensionsRequired=["KHR_draco_mesh_compression"],
                        extensionsUsed=["KHR_draco_mesh_compression"]), "Draco"),
    (lambda d: d.update(extensionsUsed=["EXT_meshopt_compression"]), "meshopt"),
    (lambda d: d.update(extensionsRequired=["VENDOR_magic"], extensionsUsed=["VENDOR_magic"]), "cannot preserve"),
    (lambda d: d["buffers"][0].update(uri="../outside.bin"), "outside the asset's folder"),
    (lambda d: d["buffers"][0].update(uri="/etc/hostname"), "absolute path"),
    (lambda d: d["buffers"][0].update(uri="file:///etc/hostname"), "scheme"),
    (lambda d: d["images"][0].update(uri="../secret.png") or d["images"][0].pop("bufferView"), "outside"),
    (lambda d: d["buffers"][0].update(uri="missing.bin"), "not found"),
])
def test_bad_gltf_documents_are_one_line_errors(tmp_path, edit, message):
    (tmp_path / "sub").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "secret.png")
    (tmp_path / "outside.bin").write_bytes((GLTF / "BoxTextured.glb").read_bytes())
    path = _gltf_with(tmp_path / "sub", edit)
    with pytest.raises(MeshstyleError, match=message) as info:
        TexturedMesh.load(path)
    assert "\n" not in str(info.value)


def test_truncated_glb_is_an_error(tmp_path):
    data = (GLTF / "BoxTextured.glb").read_bytes()
    (tmp_path / "cut.glb").write_bytes(data[:len(data) // 2])
    with pytest.raises(MeshstyleError, match="truncated"):
        TexturedMesh.load(tmp_path / "cut.glb")
    bad = bytearray(data)
    struct.pack_into("<I", bad, 4, 1)
    (tmp_path / "v1.glb").write_bytes(bytes(bad))
    with pytest.raises(MeshstyleError, match="version"):
        TexturedMesh.load(tmp_path / "v1.glb")


def test_names_are_escaped_in_obj_and_mtl(tmp_path):
    scene = trimesh.Scene()
    box = cube()
    box.visual.material.name = "evil\nmap_Kd /etc/passwd"
    scene.add_geometry(box, geom_name="box\nv 1 2 3", node_name="n")
    mesh = TexturedMesh(scene)
    written = mesh.save(tmp_path / "out.obj")
    mtl = written[1].read_text().splitlines()
    assert not any(line.startswith("map_Kd /etc") for line in mtl)
    assert "newmtl evil_map_Kd_/etc/passwd" in mtl
    assert scan_obj(written[0].read_text(), "out.obj").counts["v"] == 24
    with pytest.raises(MeshstyleError, match="single line"):
        mesh.save(tmp_path / "bad\nname.obj")


def test_output_paths_match_written_files(tmp_path):
    mesh = invert_textures(TexturedMesh.load(SPOT))
    for ext in (".obj", ".glb"):
        planned = mesh.output_paths(tmp_path / f"cow{ext}")
        assert sorted(planned) == sorted(mesh.save(tmp_path / f"cow{ext}"))


def test_image_also_used_by_another_slot_keeps_its_pixels_there(tmp_path):
    def emissive(doc):
        doc["materials"][0]["emissiveTexture"] = {"index": 0}
        doc["materials"][0]["emissiveFactor"] = [1, 1, 1]

    path, doc_in = _box_document(tmp_path, emissive)
    mesh = invert_textures(TexturedMesh.load(path), pad=False)
    written = mesh.save(tmp_path / "out.glb")
    assert_valid(written[0], baseline=path)
    doc, blob = read_glb(written[0])
    _, blob_in = read_glb(path)
    material = doc["materials"][0]
    base = doc["textures"][material["pbrMetallicRoughness"]["baseColorTexture"]["index"]]["source"]
    glow = doc["textures"][material["emissiveTexture"]["index"]]["source"]
    assert len(doc["images"]) == 2 and base != glow
    old = np.asarray(image_of(doc_in, blob_in, 0).convert("RGB"))
    assert np.array_equal(np.asarray(image_of(doc, blob, glow).convert("RGB")), old)
    assert np.array_equal(np.asarray(image_of(doc, blob, base).convert("RGB")), 255 - old)


@pytest.mark.parametrize("edit", [
    lambda d: d["images"][0].update(bufferView="x"),
    lambda d: d["meshes"][0]["primitives"][0].update(material=9),
    lambda d: d["bufferViews"][0].update(buffer=4),
    lambda d: d.update(textures=None),
])
def test_malformed_gltf_json_is_a_one_line_error(tmp_path, edit):
    path, _ = _box_document(tmp_path, edit)
    with pytest.raises(MeshstyleError, match="cannot read mesh") as info:
        TexturedMesh.load(path)
    assert "\n" not in str(info.value)


def test_obj_with_uvs_but_no_material_keeps_its_lines(tmp_path):
    text = "v 0 0 0\nv 1 0 0\nv 0 1 0\nvt 0 0\nvt 1 0\nvt 0 1\nvn 0 0 1\nf 1/1/1 2/2/1 3/3/1\n"
    (tmp_path / "plain.obj").write_text(text)
    mesh = TexturedMesh.load(tmp_path / "plain.obj", bake_size=16)
    written = mesh.save(tmp_path / "out" / "plain.obj")
    assert written[0].read_text() == "mtllib plain.mtl\nusemtl meshstyle\n" + text
    assert "map_Kd plain.png" in written[1].read_text().splitlines()
    back = TexturedMesh.load(written[0])
    assert np.array_equal(back.texture(back.stylizable[0]), mesh.texture(mesh.stylizable[0]))


def test_gltf_uris_are_percent_decoded(tmp_path):
    def rename(doc):
        (tmp_path / "box data.bin").write_bytes((tmp_path / "box.bin").read_bytes())
        doc["buffers"][0]["uri"] = "box%20data.bin"

    mesh = TexturedMesh.load(_gltf_with(tmp_path, rename))
    assert faces(mesh) == 12 and mesh.resource_files()[1].name == "box data.bin"


def test_obj_materials_sharing_a_texture_write_it_once(tmp_path):
    Image.fromarray(np.full((8, 8, 3), 90, np.uint8)).save(tmp_path / "t.png")
    (tmp_path / "s.mtl").write_text("newmtl a\nmap_Kd t.png\n\nnewmtl b\nmap_Kd t.png\n")
    (tmp_path / "s.obj").write_text("mtllib s.mtl\nv 0 0 0\nv 1 0 0\nv 0 1 0\nv 1 1 0\nvt 0 0\nvt 0.5 0\nvt 0 0.5\n"
                                    "vt 1 1\nvt 0.5 1\nvt 1 0.5\nusemtl a\nf 1/1 2/2 3/3\nusemtl b\nf 2/4 4/5 3/6\n")
    mesh = invert_textures(TexturedMesh.load(tmp_path / "s.obj"))
    assert sorted(mesh.stylizable) == ["a", "b"]
    written = mesh.save(tmp_path / "out" / "s.obj")
    assert [p.name for p in written] == ["s.obj", "s.mtl", "s.png"]
    assert written[1].read_text().count("map_Kd s.png") == 2
    back = TexturedMesh.load(written[0])
    assert (back.texture("a") == 165).all()


def test_gltf_external_image_is_embedded(tmp_path):
    def external(doc):
        doc["images"][0] = {"uri": "logo%20file.png"}
        Image.fromarray(np.full((16, 16, 3), 40, np.uint8)).save(tmp_path / "logo file.png")

    path = _gltf_with(tmp_path, external)
    written = invert_textures(TexturedMesh.load(path), pad=False).save(tmp_path / "out.glb")
    assert_valid(written[0])
    doc, blob = read_glb(written[0])
    assert "uri" not in doc["images"][0] and doc["images"][0]["mimeType"] == "image/png"
    assert (np.asarray(image_of(doc, blob, 0).convert("RGB")) == 215).all()
