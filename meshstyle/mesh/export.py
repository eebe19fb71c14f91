"""Export a :class:`~meshstyle.mesh.textured.TexturedMesh`: the user's asset with new texture pixels.

Same format (GLB/glTF -> GLB, OBJ -> OBJ): the input document is *edited*.

- glTF: the JSON document is kept as parsed; only the image data of changed base-colour textures is
  replaced (and their materials' ``baseColorFactor`` RGB set to 1 so the texture shows as stylized).
  Nodes, skins, animations, morph targets, samplers, extensions, extras and unknown fields are kept;
  buffers are packed into the GLB's one binary chunk (accessor bytes unchanged). A ``.gltf`` input with
  external files becomes a self-contained GLB.
- OBJ: the OBJ bytes are kept except ``mtllib`` lines (they name the new MTL file); the MTL differs
  from the input only in the ``map_Kd`` lines of changed materials and a provenance comment. An OBJ
  with UVs but no material gets two lines in front (``mtllib``, ``usemtl meshstyle``). If UVs were
  generated (xatlas), the OBJ is written anew from the geometry (normals kept). Other maps in the MTL
  (``bump``, ``map_Ks``...) keep their names, relative to the input's folder: copy those files along
  when the output goes elsewhere.

Cross format, converted explicitly:

- OBJ -> GLB: one mesh per part, normals kept, ``metallicFactor`` 0, ``roughnessFactor`` from ``Ns``
  as Blender maps it (``1 - sqrt(Ns / 1000)``), ``baseColorFactor`` from ``Kd`` converted from sRGB to
  linear (glTF factors are linear; MTL colours are display sRGB). Textured parts get factor 1.
- GLB -> OBJ: every placed part with its node transform applied (positions and normals), each part
  with its own ``vt``/``vn`` so untextured parts never index another part's UVs; one warning names
  what OBJ cannot hold (skins, animations, morph targets, PBR maps, samplers, extensions).
  ``Kd`` is the base colour converted from linear to sRGB.

Textures: one file per source image (two materials sharing an image write it once; their parts'
UV islands are merged into it), padded into the UV gutters, same size and format as the input image
unless ``texture_format`` says otherwise (``png``, ``jpeg``, ``webp``; WebP in GLB uses the
``EXT_texture_webp`` extension). A texture that was not changed keeps its input bytes. Pixel values are
written as they are (8-bit sRGB, as glTF and OBJ viewers read base-colour images).

Provenance: ``asset.generator``/``asset.extras.meshstyle`` (glTF), a ``tEXt`` chunk (PNG), a JPEG
comment or WebP EXIF description, and a comment line in MTL. Output bytes are deterministic: the
same mesh, textures and options give the same sha256.
"""

from __future__ import annotations

import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pygltflib as pg
import trimesh
from PIL import Image, PngImagePlugin

from ..core.atomic import atomic_path
from ..core.errors import MeshstyleError
from . import gltf as gltf_io
from . import obj as obj_io
from .material import has_uv as _has_uv
from .material import material_image as _material_image
from .padding import island_mask, pad_texture

if TYPE_CHECKING:  # annotations only: textured imports this module to save
    from .textured import TexturedMesh

log = logging.getLogger("meshstyle")

TEXTURE_FORMATS = {"png": "PNG", "jpeg": "JPEG", "jpg": "JPEG", "webp": "WEBP"}
EXTENSION = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp"}
NEW_MATERIAL = "meshstyle"  # material (and MTL key) made for an OBJ that had none
MESH_OUTPUTS = (".glb", ".obj")


def check_mesh_output(path: str | os.PathLike) -> Path:
    """Validate an output mesh path by its extension; raises MeshstyleError otherwise."""
    path = Path(path)
    if path.suffix.lower() not in MESH_OUTPUTS:
        raise MeshstyleError(f"unsupported output mesh extension {path.suffix or '(none)'!r} for {path}; use .glb or .obj")
    return path


@dataclass
class TextureGroup:
    """Stylizable parts that share one source image (``key``), and what is known of that image."""

    key: tuple
    members: list[str]
    source_bytes: bytes | None
    source_format: str
    image_index: int | None = None
    map_kd: str | None = None

    def changed(self, mesh: TexturedMesh) -> bool:
        return any(m in mesh.changed or m in mesh.baked for m in self.members)


@dataclass
class Plan:
    """How ``save`` will write: ``mode`` (edit-gltf, build-glb, edit-obj, write-obj), the texture
    groups with their output format and file, and every output path (mesh file first)."""

    mode: str
    path: Path
    groups: list[TextureGroup]
    formats: list[str]
    texture_files: list[Path]
    mtl_files: dict[str, Path]


def _image_format(data: bytes) -> str:
    with Image.open(io.BytesIO(data)) as img:
        return img.format or "PNG"


def texture_groups(mesh: TexturedMesh) -> list[TextureGroup]:
    """Stylizable parts grouped by source image, in ``mesh.stylizable`` order."""
    groups: dict[tuple, TextureGroup] = {}
    origin = mesh.origin
    for name in mesh.stylizable:
        group = None
        if name not in mesh.baked and isinstance(origin, gltf_io.GltfSource) and name in origin.base_image:
            index = origin.base_image[name]
            group = TextureGroup(("image", index), [], origin.images[index], origin.image_format[index], index)
        elif name not in mesh.baked and isinstance(origin, obj_io.ObjSource):
            material = origin.materials.get(mesh.material_name.get(name) or "")
            if material is not None and material.map_kd in origin.textures:
                data = origin.textures[material.map_kd]
                group = TextureGroup(("map_Kd", material.map_kd), [], data, _image_format(data),
                                     map_kd=material.map_kd)
        if group is None:
            group = TextureGroup(("part", name), [], None, "PNG")
        group.source_format = {"MPO": "JPEG"}.get(group.source_format, group.source_format)
        groups.setdefault(group.key, group).members.append(name)
    return list(groups.values())


def _edit_obj_possible(mesh: TexturedMesh, groups: list[TextureGroup]) -> bool:
    origin = mesh.origin
    if not isinstance(origin, obj_io.ObjSource) or mesh.generated_uv:
        return False
    if not origin.mtllibs:  # no materials at all: one new material for the whole file
        return not origin.used_materials and len(groups) == 1
    return all(mesh.material_name.get(m) in origin.used_materials for g in groups for m in g.members)


def plan_outputs(mesh: TexturedMesh, path: str | os.PathLike, texture_format: str | None = None) -> list[Path]:
    """Every file :func:`save_mesh` would write (mesh file first)."""
    plan = _plan(mesh, path, texture_format)
    return [plan.path, *plan.mtl_files.values(), *plan.texture_files]


def _plan(mesh: TexturedMesh, path: str | os.PathLike, texture_format: str | None) -> Plan:
    path = check_mesh_output(path)
    obj_io.single_line(path.stem, "output file name")
    if texture_format is not None and texture_format.lower() not in TEXTURE_FORMATS:
        raise MeshstyleError(f"unknown texture format {texture_format!r}; use png, jpeg or webp")
    groups = texture_groups(mesh)
    formats = []
    for g in groups:
        fmt = TEXTURE_FORMATS[texture_format.lower()] if texture_format else g.source_format
        formats.append(fmt if fmt in EXTENSION else "PNG")
    stem, folder = path.stem, path.parent
    if path.suffix.lower() == ".glb":
        is_edit = (isinstance(mesh.origin, gltf_io.GltfSource) and not mesh.baked
                   and all(g.image_index is not None for g in groups))
        mode = "edit-gltf" if is_edit else "build-glb"
        names = [f"{stem}_texture" if len(groups) == 1 else f"{stem}_texture_{i}" for i in range(len(groups))]
        mtl_files: dict[str, Path] = {}
    else:
        mode = "edit-obj" if _edit_obj_possible(mesh, groups) else "write-obj"
        names = [stem if len(groups) == 1 else f"{stem}_{i}" for i in range(len(groups))]
        libraries = (mesh.origin.mtllibs or [NEW_MATERIAL]) if mode == "edit-obj" else [NEW_MATERIAL]
        mtl_files = {lib: folder / (f"{stem}.mtl" if i == 0 else f"{stem}_{i}.mtl") for i, lib in enumerate(libraries)}
    files = [folder / (n + EXTENSION[f]) for n, f in zip(names, formats)]
    return Plan(mode, path, groups, formats, files, mtl_files)


def _pixels(mesh: TexturedMesh, name: str, mode: str, size: tuple[int, int] | None = None) -> np.ndarray:
    image = _material_image(mesh.scene.geometry[name]).convert(mode)
    if size is not None and image.size != size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    return np.array(image)


def group_pixels(mesh: TexturedMesh, group: TextureGroup) -> np.ndarray:
    """(H, W, 3 or 4) uint8 texture of a group: the first changed part's texture, with each other
    part's UV islands copied in from its own texture, then padded into the gutters."""
    images = {m: _material_image(mesh.scene.geometry[m]) for m in group.members}
    mode = "RGBA" if any(i.mode in ("RGBA", "LA", "PA") for i in images.values()) else "RGB"
    first = next((m for m in group.members if m in mesh.changed), group.members[0])
    base = _pixels(mesh, first, mode)
    if len(group.members) == 1:
        return base
    size = (base.shape[1], base.shape[0])
    covered = island_mask(mesh.corner_uv(first), base.shape[:2])
    for m in group.members:
        if m == first:
            continue
        mask = island_mask(mesh.corner_uv(m), base.shape[:2]) & ~covered
        base[mask] = _pixels(mesh, m, mode, size)[mask]
        covered |= mask
    return pad_texture(base, covered)


def _version() -> str:
    """The installed meshstyle version (package metadata; the mesh layer does not import the package
    root, which pulls in the engine)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("meshstyle")
    except PackageNotFoundError:
        return "unknown"


def provenance_record(provenance: dict | None) -> dict:
    """The provenance dict with ``tool`` and ``version`` filled in, values as single-line strings or
    JSON scalars, keys sorted."""
    record = {"tool": "meshstyle", "version": _version()}
    for key, value in (provenance or {}).items():
        if not isinstance(value, bool | int | float) and value is not None:
            value = "".join(c if c.isprintable() else "?" for c in str(value))
        record[str(key)] = value
    return {k: record[k] for k in sorted(record)}


def provenance_line(record: dict) -> str:
    rest = "; ".join(f"{k}: {json.dumps(v) if not isinstance(v, str) else v}" for k, v in record.items()
                     if k not in ("tool", "version"))
    line = f"written by {record['tool']} {record['version']}" + (f"; {rest}" if rest else "")
    return "".join(c if c.isprintable() else "?" for c in line)


def encode_texture(pixels: np.ndarray, fmt: str, jpeg_quality: int, record: dict) -> bytes:
    """Encode (H, W, 3|4) uint8 pixels as PNG (provenance in ``tEXt`` chunks ``Software`` and
    ``Comment``), JPEG (quality ``jpeg_quality``, provenance as the JPEG comment; alpha dropped with a
    warning) or lossy WebP (EXIF ImageDescription). Deterministic."""
    image = Image.fromarray(pixels)
    text = json.dumps(record, sort_keys=True)
    buf = io.BytesIO()
    if fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Software", f"{record['tool']} {record['version']}")
        info.add_text("Comment", text)
        image.save(buf, format="PNG", pnginfo=info)
    elif fmt == "JPEG":
        if image.mode == "RGBA":
            log.warning("JPEG has no alpha channel: the texture's alpha is dropped")
            image = image.convert("RGB")
        image.save(buf, format="JPEG", quality=jpeg_quality, comment=text.encode("utf-8"))
    else:
        exif = Image.Exif()
        exif[0x010E] = text
        image.save(buf, format="WEBP", quality=jpeg_quality, method=4, exif=exif)
    return buf.getvalue()


def _texture_bytes(mesh: TexturedMesh, plan: Plan, jpeg_quality: int, record: dict) -> list[tuple[bytes, bool]]:
    """(bytes, is_new) per group: the input bytes when unchanged and in the same format."""
    out = []
    for group, fmt in zip(plan.groups, plan.formats):
        if not group.changed(mesh) and group.source_bytes is not None and fmt == group.source_format:
            out.append((group.source_bytes, False))
        else:
            out.append((encode_texture(group_pixels(mesh, group), fmt, jpeg_quality, record), True))
    return out


def save_mesh(mesh: TexturedMesh, path: str | os.PathLike, *, texture_format: str | None = None,
              jpeg_quality: int = 95, provenance: dict | None = None) -> list[Path]:
    """Write ``mesh`` to ``path`` (``.glb`` or ``.obj``) as described in the module docstring.

    Args:
        texture_format: ``None`` keeps each input image's format; ``"png"``, ``"jpeg"`` or ``"webp"``.
        jpeg_quality: 1..100, for JPEG and WebP textures.
        provenance: extra facts to record (e.g. ``style``, ``vgg_weights``); ``tool`` and ``version``
            are filled in.

    Files: GLB also writes each texture on its own (``OUT_texture.EXT``, ``OUT_texture_N.EXT``);
    OBJ writes ``OUT.mtl`` (``OUT_N.mtl`` for further MTL libraries) and ``OUT.EXT``/``OUT_N.EXT``.
    Every file is written atomically, the mesh file last.

    Returns:
        The paths written, mesh file first.

    Raises:
        MeshstyleError: unsupported extension or texture format, quality out of range, an output
            name that is not single-line printable text.
    """
    if not 1 <= int(jpeg_quality) <= 100:
        raise MeshstyleError(f"jpeg_quality must be in 1..100, got {jpeg_quality}")
    plan = _plan(mesh, path, texture_format)
    record = provenance_record(provenance)
    textures = _texture_bytes(mesh, plan, int(jpeg_quality), record)
    files: list[tuple[Path, bytes]] = [(p, data) for p, (data, _) in zip(plan.texture_files, textures)]
    if plan.mode == "edit-gltf":
        files.append((plan.path, _edit_gltf(mesh, plan, textures, record)))
    elif plan.mode == "build-glb":
        if isinstance(mesh.origin, gltf_io.GltfSource):
            lost = gltf_io.lost_in_obj(mesh.origin.doc)
            log.warning("%s: a texture was baked or mapped in a way the document cannot express, so the GLB "
                        "is rebuilt from geometry%s", mesh.source,
                        f"; not kept: {'; '.join(lost)}" if lost else "")
        files.append((plan.path, build_glb(mesh, plan, textures, record)))
    elif plan.mode == "edit-obj":
        files += _edit_obj(mesh, plan, record)
    else:
        files += _write_obj(mesh, plan, record)
    for target, data in files:
        with atomic_path(target) as tmp:
            tmp.write_bytes(data)
    return [plan.path, *plan.mtl_files.values(), *plan.texture_files]


# ---------------------------------------------------------------- glTF


def _edit_gltf(mesh: TexturedMesh, plan: Plan, textures, record: dict) -> bytes:
    origin: gltf_io.GltfSource = mesh.origin
    new_images, white, stylized = {}, set(), set()
    for group, fmt, (data, is_new) in zip(plan.groups, plan.formats, textures):
        if not is_new:
            continue
        new_images[group.image_index] = (data, fmt)
        for member in group.members:
            mi, pi = origin.primitive[member]
            material = origin.doc["meshes"][mi]["primitives"][pi]["material"]
            stylized.add(material)
            if member in mesh.changed:
                white.add(material)
    webp = any(f == "WEBP" for f in plan.formats)
    return gltf_io.edit_document(origin, new_images, record, white, webp=webp, stylized_materials=stylized)


def srgb_to_linear(c: np.ndarray) -> np.ndarray:
    """sRGB display values in [0, 1] -> linear (IEC 61966-2-1)."""
    c = np.clip(np.asarray(c, np.float64), 0, 1)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(c: np.ndarray) -> np.ndarray:
    """Linear values in [0, 1] -> sRGB display values (IEC 61966-2-1)."""
    c = np.clip(np.asarray(c, np.float64), 0, 1)
    return np.where(c <= 0.0031308, c * 12.92, 1.055 * c ** (1 / 2.4) - 0.055)


def _material_facts(mesh: TexturedMesh, name: str) -> dict:
    """Colour facts of a part's material: ``srgb`` (3,), ``alpha``, ``roughness`` (glTF sense), ``ns``."""
    geom = mesh.scene.geometry[name]
    material = getattr(geom.visual, "material", None)
    facts = {"srgb": np.full(3, 0.8), "alpha": 1.0, "roughness": 1.0, "ns": None}
    origin = mesh.origin
    mtl = origin.materials.get(mesh.material_name.get(name) or "") if isinstance(origin, obj_io.ObjSource) else None
    if isinstance(material, trimesh.visual.material.PBRMaterial):
        factor = np.asarray(material.baseColorFactor if material.baseColorFactor is not None else [255] * 4, float) / 255
        facts.update(srgb=linear_to_srgb(factor[:3]), alpha=float(factor[3]))
        if material.roughnessFactor is not None:
            facts["roughness"] = float(material.roughnessFactor)
    elif material is not None:
        diffuse = np.asarray(getattr(material, "diffuse", [204, 204, 204, 255]), float) / 255
        facts.update(srgb=diffuse[:3], alpha=float(diffuse[3]) if len(diffuse) > 3 else 1.0)
    elif geom.visual.kind in ("vertex", "face"):
        colours = geom.visual.vertex_colors if geom.visual.kind == "vertex" else geom.visual.face_colors
        facts["srgb"] = np.asarray(colours, float)[:, :3].mean(0) / 255
    if mtl is not None:
        if mtl.kd is not None and name not in mesh.changed and name not in mesh.baked:
            facts["srgb"] = np.clip(np.asarray(mtl.kd, float), 0, 1)
        if mtl.d is not None:
            facts["alpha"] = float(np.clip(mtl.d, 0, 1))
        facts["ns"] = mtl.ns
        facts["roughness"] = 1.0 - np.sqrt(np.clip(mtl.ns if mtl.ns is not None else 0.0, 0, 1000) / 1000)
    if facts["ns"] is None:
        facts["ns"] = float((1.0 - facts["roughness"]) ** 2 * 1000)
    return facts


def _unit_normals(normals: np.ndarray) -> np.ndarray:
    normals = np.asarray(normals, np.float64)
    length = np.linalg.norm(normals, axis=1, keepdims=True)
    out = np.where(length > 1e-12, normals / np.maximum(length, 1e-12), [0.0, 0.0, 1.0])
    return out


class _GlbWriter:
    """A new pygltflib document and its binary buffer: :meth:`view` appends a 4-byte aligned buffer
    view, :meth:`accessor` an array (float32 or uint32) behind one."""

    def __init__(self):
        self.blob = bytearray()
        self.doc = pg.GLTF2(asset=pg.Asset(generator="meshstyle"), scene=0)

    def view(self, data: bytes, target: int | None = None) -> int:
        """Index of a new buffer view holding ``data`` (``target``: 34962 vertex data, 34963 indices)."""
        self.blob.extend(b"\0" * (-len(self.blob) % 4))
        self.doc.bufferViews.append(pg.BufferView(buffer=0, byteOffset=len(self.blob), byteLength=len(data),
                                                 target=target))
        self.blob.extend(data)
        return len(self.doc.bufferViews) - 1

    def accessor(self, arr: np.ndarray, kind: str, target: int, bounds: bool = False) -> int:
        """Index of a new accessor of ``arr`` (N, ...) as glTF type ``kind`` (min/max when ``bounds``)."""
        ctype = pg.UNSIGNED_INT if arr.dtype == np.uint32 else pg.FLOAT
        index = self.view(np.ascontiguousarray(arr).tobytes(), target)
        acc = pg.Accessor(bufferView=index, componentType=ctype, count=len(arr), type=kind)
        if bounds:
            acc.min, acc.max = arr.min(0).tolist(), arr.max(0).tolist()
        self.doc.accessors.append(acc)
        return len(self.doc.accessors) - 1


_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


def build_glb(mesh: TexturedMesh, plan: Plan, textures, record: dict) -> bytes:
    """A new GLB document (pygltflib) for a mesh whose input was not glTF, or whose texture was baked:
    one mesh per part, one node per placement (deterministic names), normals kept."""
    out = _GlbWriter()
    out.doc.samplers.append(pg.Sampler(magFilter=pg.LINEAR, minFilter=pg.LINEAR_MIPMAP_LINEAR, wrapS=pg.REPEAT,
                                      wrapT=pg.REPEAT))
    texture_of = {}
    for i, (group, fmt, (data, _)) in enumerate(zip(plan.groups, plan.formats, textures)):
        out.doc.images.append(pg.Image(bufferView=out.view(data), mimeType=_MIME[fmt]))
        out.doc.textures.append(pg.Texture(sampler=0, source=i))
        for member in group.members:
            texture_of[member] = (i, data)
    mesh_of = {}
    for name, geom in mesh.scene.geometry.items():
        if isinstance(geom, trimesh.Trimesh) and len(geom.faces):
            mesh_of[name] = _glb_part(out, mesh, name, geom, texture_of.get(name))
    _glb_nodes(out, mesh, mesh_of)
    out.doc.buffers.append(pg.Buffer(byteLength=len(out.blob)))
    data = json.loads(out.doc.to_json())
    if any(f == "WEBP" for f in plan.formats):
        for tex in data.get("textures", []):
            tex["extensions"] = {"EXT_texture_webp": {"source": tex.pop("source")}}
        data["extensionsUsed"] = data["extensionsRequired"] = ["EXT_texture_webp"]
    data["asset"].pop("generator", None)
    gltf_io.stamp_asset(data, record)
    return gltf_io.join_glb(data, bytes(out.blob))


def _glb_part(out: _GlbWriter, mesh: TexturedMesh, name: str, geom, texture: tuple[int, bytes] | None) -> int:
    """Add part ``name`` as a glTF mesh with its material (``texture``: (texture index, encoded image)
    or None for a colour-only part); returns the mesh index."""
    facts = _material_facts(mesh, name)
    pbr = pg.PbrMetallicRoughness(metallicFactor=0.0, roughnessFactor=float(np.clip(facts["roughness"], 0, 1)))
    alpha_mode = "BLEND" if facts["alpha"] < 1 else "OPAQUE"
    attributes = pg.Attributes(POSITION=out.accessor(np.asarray(geom.vertices, np.float32), "VEC3", 34962, True))
    if name in mesh.normals and len(mesh.normals[name]) == len(geom.vertices):
        attributes.NORMAL = out.accessor(_unit_normals(mesh.normals[name]).astype(np.float32), "VEC3", 34962)
    if texture is not None:
        index, data = texture
        pbr.baseColorTexture = pg.TextureInfo(index=index)
        pbr.baseColorFactor = [1.0, 1.0, 1.0, facts["alpha"]]
        with Image.open(io.BytesIO(data)) as img:
            if img.mode in ("RGBA", "LA", "PA") and img.getchannel("A").getextrema()[0] < 255:
                alpha_mode = "BLEND"
        uv = np.asarray(geom.visual.uv, np.float64)
        attributes.TEXCOORD_0 = out.accessor(np.stack([uv[:, 0], 1 - uv[:, 1]], 1).astype(np.float32), "VEC2", 34962)
    else:
        pbr.baseColorFactor = [*srgb_to_linear(facts["srgb"]).tolist(), facts["alpha"]]
        if geom.visual.kind == "vertex":
            colours = np.asarray(geom.visual.vertex_colors, np.float64) / 255
            linear = np.concatenate([srgb_to_linear(colours[:, :3]), colours[:, 3:4]], 1)
            attributes.COLOR_0 = out.accessor(linear.astype(np.float32), "VEC4", 34962)
    out.doc.materials.append(pg.Material(name=obj_io.safe_name(mesh.material_name.get(name) or name, "material"),
                                        pbrMetallicRoughness=pbr, alphaMode=alpha_mode))
    indices = out.accessor(np.asarray(geom.faces, np.uint32).reshape(-1), "SCALAR", 34963)
    out.doc.meshes.append(pg.Mesh(name=str(name), primitives=[
        pg.Primitive(attributes=attributes, indices=indices, material=len(out.doc.materials) - 1)]))
    return len(out.doc.meshes) - 1


def _glb_nodes(out: _GlbWriter, mesh: TexturedMesh, mesh_of: dict[str, int]) -> None:
    """One node per placement of a written part (the second placement of ``name`` is ``name_2``...), and
    the scene holding them all."""
    used: dict[str, int] = {}
    for node in mesh.scene.graph.nodes_geometry:
        transform, name = mesh.scene.graph[node]
        if name not in mesh_of:
            continue
        used[name] = used.get(name, 0) + 1
        node_name = str(name) if used[name] == 1 else f"{name}_{used[name]}"
        item = pg.Node(name=node_name, mesh=mesh_of[name])
        if not np.allclose(transform, np.eye(4)):
            item.matrix = np.asarray(transform, np.float64).T.reshape(-1).tolist()
        out.doc.nodes.append(item)
    out.doc.scenes.append(pg.Scene(nodes=list(range(len(out.doc.nodes)))))


# ---------------------------------------------------------------- OBJ


def _edit_obj(mesh: TexturedMesh, plan: Plan, record: dict) -> list[tuple[Path, bytes]]:
    origin: obj_io.ObjSource = mesh.origin
    comment = provenance_line(record)
    new_maps: dict[str, str] = {}
    for group, file in zip(plan.groups, plan.texture_files):
        for member in group.members:
            new_maps[mesh.material_name[member] if origin.mtllibs else NEW_MATERIAL] = file.name
    files = []
    defined = set()
    for library, target in plan.mtl_files.items():
        if library in origin.mtl:
            text = origin.mtl[library].decode("utf-8", "surrogateescape")
            mine = {m: f for m, f in new_maps.items()
                    if m in origin.materials and origin.materials[m].library == library}
            defined.update(mine)
            files.append((target, obj_io.edit_mtl(text, mine, comment).encode("utf-8", "surrogateescape")))
        else:
            files.append((target, None))
    missing = [m for m in new_maps if m not in defined]
    if missing:  # MTL file missing (allowed) or material not defined: write the blocks anew
        extra = obj_io.write_mtl([{"name": m, "kd": (1, 1, 1), "map_kd": new_maps[m]} for m in missing], None)
        for i, (target, data) in enumerate(files):
            if data is None or i == 0:
                body = (data or f"# {comment}\n".encode()) + extra.encode("utf-8")
                files[i] = (target, body)
                break
    files = [(t, d if d is not None else f"# {comment}\n".encode()) for t, d in files]
    names = {lib: target.name for lib, target in plan.mtl_files.items()}
    data = obj_io.replace_mtllib(origin.data, names)
    if not origin.mtllibs:  # prepend the material; every other line stays as it was
        data = f"mtllib {names[NEW_MATERIAL]}\nusemtl {NEW_MATERIAL}\n".encode() + data
    files.append((plan.path, data))
    return files


def _write_obj(mesh: TexturedMesh, plan: Plan, record: dict) -> list[tuple[Path, bytes]]:
    if isinstance(mesh.origin, gltf_io.GltfSource):
        lost = gltf_io.lost_in_obj(mesh.origin.doc)
        if lost:
            log.warning("OBJ cannot hold %s of %s; they are not in %s", "; ".join(lost), mesh.source, plan.path)
    texture_file = {m: f.name for g, f in zip(plan.groups, plan.texture_files) for m in g.members}
    materials: dict[str, dict] = {}
    material_of: dict[str, str] = {}
    for name, geom in mesh.scene.geometry.items():
        if not isinstance(geom, trimesh.Trimesh) or not len(geom.faces):
            continue
        facts = _material_facts(mesh, name)
        entry = {"kd": (1.0, 1.0, 1.0) if name in texture_file else tuple(np.round(facts["srgb"], 6)),
                 "d": facts["alpha"], "ns": facts["ns"], "map_kd": texture_file.get(name)}
        base = obj_io.safe_name(mesh.material_name.get(name) or name, "material")
        label, k = base, 1
        while label in materials and {k2: v for k2, v in materials[label].items() if k2 != "name"} != entry:
            k += 1
            label = f"{base}_{k}"
        materials[label] = {"name": label, **entry}
        material_of[name] = label
    parts = []
    for node in mesh.scene.graph.nodes_geometry:
        transform, name = mesh.scene.graph[node]
        if name not in material_of:
            continue
        geom = mesh.scene.geometry[name]
        normals = mesh.normals.get(name)
        if normals is not None and len(normals) == len(geom.vertices):
            normals = _unit_normals(normals @ np.linalg.inv(np.asarray(transform)[:3, :3]))
        else:
            normals = None
        uv = np.asarray(geom.visual.uv, np.float64) if _has_uv(geom) else None
        parts.append(obj_io.ObjPart(name=str(name), vertices=trimesh.transform_points(geom.vertices, transform),
                                    faces=np.asarray(geom.faces), uv=uv, normals=normals, material=material_of[name]))
    comment = provenance_line(record)
    mtl_path = next(iter(plan.mtl_files.values()))
    text = obj_io.write_obj(parts, mtl_path.name, comment)
    return [(mtl_path, obj_io.write_mtl(list(materials.values()), comment).encode("utf-8")),
            (plan.path, text.encode("utf-8"))]
