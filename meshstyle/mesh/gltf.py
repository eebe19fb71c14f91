"""glTF 2.0 / GLB documents: read and check the user's document, then edit it (new base-colour image
bytes, provenance) without touching anything else.

Why the document is edited as its parsed JSON (``dict``) and not through ``pygltflib``'s dataclasses:
pygltflib drops fields it does not know (vendor fields on nodes, unknown top-level keys) and writes
defaults that were not in the input (``normalized: false``, ``alphaMode``). Editing the JSON keeps
every node, skin, animation, morph target, sampler, extension, extra and unknown field exactly as it
was; pygltflib builds *new* documents (OBJ -> GLB, see :mod:`meshstyle.mesh.export`). Data URIs of every
media type the spec allows are decoded here (:func:`decode_data_uri`). The GLB container (12-byte header, JSON chunk, BIN chunk) is read and written here.

Inputs refused with one line: JSON nested deeper than :data:`MAX_JSON_DEPTH` (checked before parsing);
a bufferView or accessor that does not fit its buffer (:func:`check_accessors`); a ``extensionsRequired`` entry other than those in
:data:`PRESERVABLE_REQUIRED`; Draco when required, meshopt always (its buffers are addressed by byte
offset and have no uncompressed fallback that trimesh reads); a buffer or image URI that is absolute,
has a scheme or leaves the input's folder. Passed through: Draco listed only in ``extensionsUsed``
(the uncompressed fallback accessors are read, the compressed bufferViews kept as they are).

Spec: https://registry.khronos.org/glTF/specs/2.0/glTF-2.0.html (GLB layout, section 4.4).
"""

from __future__ import annotations

import base64
import binascii
import copy
import json
import logging
import math
import re
import struct
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import MeshstyleError
from .resources import ConfinedResolver, check_image_bytes

GLB_MAGIC = b"glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942

#: Extensions that may be listed in ``extensionsRequired``: their JSON is kept as it is and they do not
#: change what a base-colour texel means for a surface point (``KHR_materials_*`` only shade;
#: ``KHR_texture_transform`` is applied to the UVs at load time; quantized attributes are decoded by
#: trimesh). Anything else required (Draco, meshopt, KTX2/BasisU, WebP-only images) is refused.
PRESERVABLE_REQUIRED = ("KHR_mesh_quantization", "KHR_texture_transform", "KHR_materials_")
COMPRESSION = {"KHR_draco_mesh_compression": "Draco", "EXT_meshopt_compression": "meshopt",
               "KHR_meshopt_compression": "meshopt"}

log = logging.getLogger("meshstyle")

#: Texture extensions that give an alternative image source; dropped from stylized textures.
ALTERNATE_SOURCES = ("EXT_texture_webp", "KHR_texture_basisu", "MSFT_texture_dds", "EXT_texture_avif")

_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}

#: Deepest nesting of JSON arrays and objects accepted (glTF documents nest about 6 deep; extras a few
#: more). Checked by a scan before parsing: Python's ``json`` recurses and fails near 1,000 levels.
MAX_JSON_DEPTH = 128
_JSON_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)

#: Media types of data URIs the glTF 2.0 spec allows (section 3.6.1.1 buffers, 3.8.4.1 images), and
#: ``image/webp`` for images of ``EXT_texture_webp``. Data URIs must be base64 encoded (spec 3.6.1.1).
DATA_URI_TYPES = {"buffer": ("application/octet-stream", "application/gltf-buffer"),
                  "image": ("image/png", "image/jpeg", "image/webp")}

#: Bytes per component (accessor.componentType) and components per element (accessor.type), spec 3.6.2.
_COMPONENT_BYTES = {5120: 1, 5121: 1, 5122: 2, 5123: 2, 5125: 4, 5126: 4}
_TYPE_COUNT = {"SCALAR": 1, "VEC2": 2, "VEC3": 3, "VEC4": 4, "MAT2": 4, "MAT3": 9, "MAT4": 16}


@dataclass
class GltfSource:
    """What export needs from the input document.

    Attributes:
        doc: the parsed JSON, unmodified.
        buffers: bytes of every buffer (GLB BIN chunk or the resolved URI).
        images: bytes of every image (from its bufferView or URI), by image index.
        image_format: Pillow format name of every image ("PNG", "JPEG", ...).
        primitive: trimesh geometry name -> (mesh index, primitive index).
        base_image: trimesh geometry name -> image index of its material's base-colour texture.
    """

    doc: dict
    buffers: list[bytes]
    images: dict[int, bytes] = field(default_factory=dict)
    image_format: dict[int, str] = field(default_factory=dict)
    primitive: dict[str, tuple[int, int]] = field(default_factory=dict)
    base_image: dict[str, int] = field(default_factory=dict)

    def __deepcopy__(self, memo):  # read-only once loaded: copies of a TexturedMesh share it
        return self


def split_glb(data: bytes, name: str) -> tuple[dict, bytes | None]:
    """(JSON document, BIN chunk or None) of a GLB file.

    Raises:
        MeshstyleError: bad magic, version, lengths or JSON.
    """
    if len(data) < 20 or data[:4] != GLB_MAGIC:
        raise MeshstyleError(f"cannot read mesh {name}: not a GLB file (bad header)")
    version, length = struct.unpack_from("<II", data, 4)
    if version != 2:
        raise MeshstyleError(f"cannot read mesh {name}: GLB version {version} (only glTF 2.0 is supported)")
    if length > len(data):
        raise MeshstyleError(f"cannot read mesh {name}: truncated GLB ({len(data)} of {length} bytes)")
    offset, doc, blob = 12, None, None
    while offset + 8 <= length:
        size, kind = struct.unpack_from("<II", data, offset)
        chunk = data[offset + 8:offset + 8 + size]
        if len(chunk) != size:
            raise MeshstyleError(f"cannot read mesh {name}: truncated GLB chunk")
        if kind == CHUNK_JSON and doc is None:
            doc = parse_json(chunk, name)
        elif kind == CHUNK_BIN and blob is None:
            blob = bytes(chunk)
        offset += 8 + size
    if doc is None:
        raise MeshstyleError(f"cannot read mesh {name}: GLB without a JSON chunk")
    return doc, blob


def json_depth(data: bytes) -> int:
    """Deepest nesting of ``[``/``{`` in JSON text ``data``, brackets inside strings not counted.

    A linear scan without recursion (strings blanked by one regular expression, brackets counted with
    numpy), so a hostile document cannot exhaust the stack before it is refused.
    """
    brackets = _JSON_STRING.sub(b'""', bytes(data)).translate(None, bytes(set(range(256)) - set(b"[]{}")))
    if not brackets:
        return 0
    steps = np.frombuffer(brackets, np.uint8)
    return int(np.cumsum(np.where((steps == ord("[")) | (steps == ord("{")), 1, -1)).max())


def parse_json(data: bytes, name: str) -> dict:
    """The glTF JSON document in ``data``.

    Raises:
        MeshstyleError: nested deeper than :data:`MAX_JSON_DEPTH`, not UTF-8 JSON, or not glTF 2.0.
    """
    depth = json_depth(data)
    if depth > MAX_JSON_DEPTH:
        raise MeshstyleError(f"cannot read mesh {name}: glTF JSON nested {depth} levels deep "
                             f"(more than {MAX_JSON_DEPTH}; a malformed or hostile file?)")
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MeshstyleError(f"cannot read mesh {name}: invalid glTF JSON ({exc})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("asset"), dict):
        raise MeshstyleError(f"cannot read mesh {name}: not a glTF 2.0 document (no asset)")
    if not str(doc["asset"].get("version", "")).startswith("2."):
        raise MeshstyleError(f"cannot read mesh {name}: glTF version {doc['asset'].get('version')!r}; "
                             "only 2.0 is supported")
    return doc


def join_glb(doc: dict, blob: bytes) -> bytes:
    """A GLB file from a JSON document and its BIN chunk (no BIN chunk when ``blob`` is empty)."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")
    text += b" " * (-len(text) % 4)
    chunks = struct.pack("<II", len(text), CHUNK_JSON) + text
    if blob:
        blob = blob + b"\0" * (-len(blob) % 4)
        chunks += struct.pack("<II", len(blob), CHUNK_BIN) + blob
    return GLB_MAGIC + struct.pack("<II", 2, 12 + len(chunks)) + chunks


def decode_data_uri(uri: str, what: str, kind: str) -> bytes:
    """The bytes of a base64 data URI ``data:MEDIA-TYPE;base64,DATA`` (RFC 2397) of a glTF buffer or
    image (``kind`` ``"buffer"`` or ``"image"``), its media type one of :data:`DATA_URI_TYPES` (glTF 2.0
    spec, sections 3.6.1.1 and 3.8.4.1). The decoded bytes are smaller than the text already read, so no
    size limit beyond the file's applies; images then pass the pixel limit like any other.

    Raises:
        MeshstyleError: no comma, not base64, a media type the spec does not allow, or invalid base64.
    """
    header, comma, payload = uri[5:].partition(",")
    params = [p.strip().lower() for p in header.split(";")]
    media = params[0] or "(none)"
    if not comma:
        raise MeshstyleError(f"{what} has an invalid data URI (no comma before the data)")
    if "base64" not in params[1:]:
        raise MeshstyleError(f"{what} has a data URI that is not base64 encoded (glTF requires ;base64)")
    if media not in DATA_URI_TYPES[kind]:
        raise MeshstyleError(f"{what} has a data URI of media type {media[:60]!r}; glTF allows "
                             f"{', '.join(DATA_URI_TYPES[kind])}")
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise MeshstyleError(f"{what} has an invalid data URI (its base64 data does not decode)") from None


def _uri_bytes(uri: str, resolver: ConfinedResolver, what: str, kind: str) -> bytes:
    if uri[:5].lower() == "data:":
        return decode_data_uri(uri, what, kind)
    from urllib.parse import unquote

    name = unquote(uri)
    if not resolver.path_of(name).exists():  # path_of raises for absolute, scheme, outside the folder
        raise MeshstyleError(f"{what} file not found: {name}")
    return resolver.read(name)


def _mesh_names(doc: dict) -> dict[str, tuple[int, int]]:
    """trimesh's geometry name of every primitive it loads (trimesh.exchange.gltf: ``unique_name`` of
    the mesh name over primitives of mode points, lines, triangles and strips, in document order)."""
    from trimesh.util import unique_name

    names: dict[str, tuple[int, int]] = {}
    counts: dict = {}
    for mi, mesh in enumerate(doc.get("meshes", [])):
        for pi, prim in enumerate(mesh.get("primitives", [])):
            name = unique_name(mesh.get("name", "GLTF"), names, counts=counts)
            if prim.get("mode", 4) in (0, 1, 4, 5):
                names[name] = (mi, pi)
    return names


def read_gltf(data: bytes, name: str, binary: bool, resolver: ConfinedResolver) -> GltfSource:
    """Parse and check a glTF/GLB document before trimesh loads its geometry.

    Raises:
        MeshstyleError: malformed container or JSON (also wrong types or indices out of range), a
            required extension that cannot be preserved, compressed geometry (Draco, meshopt), a buffer
            or image URI outside the asset's folder or missing, an image that does not decode or
            exceeds the pixel limit.
    """
    try:
        return _read_gltf(data, name, binary, resolver)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise MeshstyleError(f"cannot read mesh {name}: malformed glTF document "
                             f"({type(exc).__name__}: {exc})".replace("\n", " ")) from None


def _read_gltf(data: bytes, name: str, binary: bool, resolver: ConfinedResolver) -> GltfSource:
    if binary:
        doc, blob = split_glb(data, name)
    else:
        doc, blob = parse_json(data, name), None
    for ext in list(doc.get("extensionsRequired", [])) + list(doc.get("extensionsUsed", [])):
        if ext in COMPRESSION and (ext in doc.get("extensionsRequired", []) or COMPRESSION[ext] == "meshopt"):
            raise MeshstyleError(f"{name} uses {COMPRESSION[ext]}-compressed geometry ({ext}), which meshstyle "
                                 "cannot decode; decompress it first (e.g. gltf-transform copy)")
    for ext in doc.get("extensionsRequired", []):
        if not str(ext).startswith(PRESERVABLE_REQUIRED):
            raise MeshstyleError(f"{name} requires the glTF extension {ext}, which meshstyle cannot preserve")
    buffers = []
    for i, buf in enumerate(doc.get("buffers", [])):
        if "uri" in buf:
            buffers.append(_uri_bytes(str(buf["uri"]), resolver, f"buffer {i} of {name}", "buffer"))
        elif i == 0 and blob is not None:
            buffers.append(blob)
        else:
            raise MeshstyleError(f"cannot read mesh {name}: buffer {i} has no data")
        if len(buffers[-1]) < int(buf.get("byteLength", 0)):
            raise MeshstyleError(f"cannot read mesh {name}: buffer {i} is shorter than its byteLength "
                                 "(truncated file?)")
    check_accessors(doc, buffers, name)
    source = GltfSource(doc=doc, buffers=buffers)
    views = doc.get("bufferViews", [])
    for i, image in enumerate(doc.get("images", [])):
        what = f"image {i} of {name}"
        if "uri" in image:
            raw = _uri_bytes(str(image["uri"]), resolver, what, "image")
        elif "bufferView" in image and 0 <= int(image["bufferView"]) < len(views):
            raw = view_bytes(doc, buffers, int(image["bufferView"]))
        else:
            raise MeshstyleError(f"cannot read mesh {name}: {what} has neither a URI nor a bufferView")
        decoded = check_image_bytes(raw, f"{image.get('name', i)!s} ({what})")
        source.images[i] = raw
        source.image_format[i] = decoded.format or "PNG"
    source.primitive = _mesh_names(doc)
    for geom, (mi, pi) in source.primitive.items():
        image = base_color_image(doc, mi, pi)
        if image is not None:
            source.base_image[geom] = image
    return source


def check_accessors(doc: dict, buffers: list[bytes], name: str) -> None:
    """Check that every bufferView lies inside its buffer and every accessor inside its bufferView
    (glTF 2.0 spec 3.6.2: ``byteOffset + stride * (count - 1) + element size <= byteLength``), with a
    known component type and element type, so trimesh never fails on an assertion.

    Raises:
        MeshstyleError: one line naming the accessor or bufferView and what is wrong with it.
    """
    views = doc.get("bufferViews", [])
    for i, view in enumerate(views):
        buffer, start, length = int(view["buffer"]), int(view.get("byteOffset", 0)), int(view["byteLength"])
        if not 0 <= buffer < len(buffers):
            raise MeshstyleError(f"cannot read mesh {name}: bufferView {i} names buffer {buffer}, which does not exist")
        if start < 0 or length < 0 or start + length > len(buffers[buffer]):
            raise MeshstyleError(f"cannot read mesh {name}: bufferView {i} (bytes {start}..{start + length}) lies "
                                 f"outside buffer {buffer} ({len(buffers[buffer])} bytes)")
    for i, acc in enumerate(doc.get("accessors", [])):
        what = f"cannot read mesh {name}: accessor {i}"
        component, kind, count = acc.get("componentType"), acc.get("type"), acc.get("count")
        if component not in _COMPONENT_BYTES:
            raise MeshstyleError(f"{what} has an unknown componentType {component!r}")
        if kind not in _TYPE_COUNT:
            raise MeshstyleError(f"{what} has an unknown type {str(kind)[:40]!r}")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise MeshstyleError(f"{what} has an invalid count {str(count)[:40]!r} (must be a whole number >= 1)")
        if "bufferView" not in acc:
            continue  # all zeros (or sparse values only): nothing to read
        index = acc["bufferView"]
        if not isinstance(index, int) or not 0 <= index < len(views):
            raise MeshstyleError(f"{what} names bufferView {str(index)[:40]}, which does not exist")
        element = _COMPONENT_BYTES[component] * _TYPE_COUNT[kind]
        stride = int(views[index].get("byteStride") or element)
        offset = int(acc.get("byteOffset", 0))
        if stride < element or offset < 0:
            raise MeshstyleError(f"{what} has byteStride {stride} or byteOffset {offset} that cannot hold "
                                 f"its {element}-byte elements")
        need = offset + stride * (count - 1) + element
        have = int(views[index]["byteLength"])
        if need > have:
            raise MeshstyleError(f"{what} needs {need} bytes ({count} x {kind}) but its bufferView {index} "
                                 f"has only {have}")


def view_bytes(doc: dict, buffers: list[bytes], index: int) -> bytes:
    view = doc["bufferViews"][index]
    start = int(view.get("byteOffset", 0))
    return buffers[int(view["buffer"])][start:start + int(view["byteLength"])]


def base_color_info(doc: dict, mi: int, pi: int) -> dict | None:
    """The ``baseColorTexture`` object of primitive ``pi`` of mesh ``mi``'s material, if any."""
    prim = doc["meshes"][mi]["primitives"][pi]
    if "material" not in prim:
        return None
    material = doc.get("materials", [])[prim["material"]]
    return material.get("pbrMetallicRoughness", {}).get("baseColorTexture")


def base_color_image(doc: dict, mi: int, pi: int) -> int | None:
    info = base_color_info(doc, mi, pi)
    if info is None:
        return None
    texture = doc.get("textures", [])[info["index"]]
    return texture.get("source")


def texture_transform(info: dict) -> np.ndarray | None:
    """3x3 matrix of a KHR_texture_transform on a texture-info object, or None (spec: the extension's
    README, ``T * R * S`` applied to glTF UVs, v down)."""
    ext = info.get("extensions", {}).get("KHR_texture_transform")
    if not ext:
        return None
    ox, oy = ext.get("offset", [0, 0])
    sx, sy = ext.get("scale", [1, 1])
    r = float(ext.get("rotation", 0))
    c, s = math.cos(r), math.sin(r)
    translation = np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]], float)
    rotation = np.array([[c, s, 0], [-s, c, 0], [0, 0, 1]], float)
    scale = np.array([[sx, 0, 0], [0, sy, 0], [0, 0, 1]], float)
    return translation @ rotation @ scale


def _repack(doc: dict, buffers: list[bytes], view_data: dict[int, bytes]) -> bytes:
    """Lay every bufferView into one new buffer (index 0), in view order, 8-byte aligned, using
    ``view_data`` for views whose content is replaced. Accessor offsets are relative to their view, so
    accessor bytes stay identical; view indices do not change."""
    blob = bytearray()
    for i, view in enumerate(doc.get("bufferViews", [])):
        data = view_data[i] if i in view_data else view_bytes(doc, buffers, i)
        blob += b"\0" * (-len(blob) % 8)
        view["buffer"] = 0
        view["byteOffset"] = len(blob)
        view["byteLength"] = len(data)
        blob += data
    return bytes(blob)


def _texture_infos(node):
    """Every texture-info object (``{"index": ...}`` under a key ending in ``Texture``) in a material,
    core and extensions, as (key, object)."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(value, dict) and key.endswith("Texture") and "index" in value:
                yield key, value
            else:
                yield from _texture_infos(value)
    elif isinstance(node, list):
        for value in node:
            yield from _texture_infos(value)


def _split_shared_images(doc: dict, new_images: dict, stylized_materials: set[int]) -> dict:
    """An image that is replaced but also seen by another slot (a normal map, or a material that is not
    stylized) keeps its old bytes there: the stylized materials' base-colour slots get a new texture and
    image instead. Returns ``new_images`` with such images moved to their new indices."""
    textures = doc.get("textures", [])
    refs = [(mi, key, info) for mi, m in enumerate(doc.get("materials", [])) for key, info in _texture_infos(m)]
    out = dict(new_images)
    for image, value in new_images.items():
        users = [r for r in refs if textures[r[2]["index"]].get("source") == image]
        mine = [r for r in users if r[0] in stylized_materials and r[1] == "baseColorTexture"]
        if len(mine) == len(users):
            continue
        doc["images"].append({k: v for k, v in doc["images"][image].items() if k not in ("uri", "bufferView")})
        copies: dict[int, int] = {}
        for _, _, info in mine:
            if info["index"] not in copies:
                textures.append(copy.deepcopy(textures[info["index"]]) | {"source": len(doc["images"]) - 1})
                copies[info["index"]] = len(textures) - 1
            info["index"] = copies[info["index"]]
        del out[image]
        out[len(doc["images"]) - 1] = value
    return out


def edit_document(source: GltfSource, new_images: dict[int, tuple[bytes, str]], provenance: dict | None,
                  white_materials: set[int], webp: bool = False,
                  stylized_materials: set[int] | None = None) -> bytes:
    """A GLB: the source document with new bytes for some images and nothing else changed but
    provenance, buffer layout and (for ``white_materials``) the base-colour factor's RGB.

    Args:
        new_images: image index -> (encoded bytes, Pillow format name).
        provenance: written to ``asset.generator`` and ``asset.extras.meshstyle``.
        white_materials: material indices whose ``baseColorFactor`` RGB becomes 1 (the stylized
            texture is shown as it is; alpha kept).
        webp: new images are WebP; their textures then use ``EXT_texture_webp`` (required).
        stylized_materials: materials whose base colour shows the new images (default
            ``white_materials``); an image also used elsewhere is split off for them.
    """
    doc = copy.deepcopy(source.doc)
    new_images = _split_shared_images(doc, new_images, white_materials if stylized_materials is None
                                      else stylized_materials)
    _drop_alternate_sources(doc, new_images)
    blob = _repack(doc, source.buffers, _embed_images(doc, source, new_images))
    buffers = doc.get("buffers") or [{}]
    first = {k: v for k, v in buffers[0].items() if k != "uri"}
    first["byteLength"] = len(blob)
    doc["buffers"] = [first] if blob else []
    if not blob:
        doc.pop("buffers", None)
    for m in white_materials:
        pbr = doc["materials"][m].setdefault("pbrMetallicRoughness", {})
        if "baseColorFactor" in pbr:
            pbr["baseColorFactor"] = [1.0, 1.0, 1.0, pbr["baseColorFactor"][3]]
    if webp and new_images:
        _require_webp(doc, new_images)
    stamp_asset(doc, provenance)
    return join_glb(doc, blob)


def _drop_alternate_sources(doc: dict, new_images: dict) -> None:
    """Remove the WebP/KTX2/DDS alternatives of textures whose image is replaced (with a warning)."""
    for tex in doc.get("textures", []):
        if tex.get("source") in new_images:
            for ext in ALTERNATE_SOURCES:
                if ext in tex.get("extensions", {}):
                    del tex["extensions"][ext]
                    log.warning("dropped the %s alternative of a stylized texture: viewers would show the "
                                "unstylized image", ext)


def _view_users(doc: dict) -> dict[int, int]:
    """Buffer view index -> how many images (1 each) and accessors (2 each, sparse parts too) read it."""
    users: dict[int, int] = {}
    for image in doc.get("images", []):
        if "bufferView" in image:
            users[image["bufferView"]] = users.get(image["bufferView"], 0) + 1
    for acc in doc.get("accessors", []):
        for v in [acc.get("bufferView")] + [acc.get("sparse", {}).get(k, {}).get("bufferView")
                                            for k in ("indices", "values")]:
            if v is not None:
                users[v] = users.get(v, 0) + 2
    return users


def _embed_images(doc: dict, source: GltfSource, new_images: dict[int, tuple[bytes, str]]) -> dict[int, bytes]:
    """Put every new image, and every image that was a URI, in a buffer view (its own view when it was the
    only user of one, else a new view); returns view index -> bytes for :func:`_repack`."""
    view_data: dict[int, bytes] = {}
    views = doc.setdefault("bufferViews", [])
    users = _view_users(doc)
    for i, image in enumerate(doc.get("images", [])):
        if i not in new_images and "bufferView" in image:
            continue
        data, fmt = new_images[i] if i in new_images else (source.images[i], source.image_format.get(i, "PNG"))
        if "bufferView" in image and users.get(image["bufferView"]) == 1:
            view_data[image["bufferView"]] = data
        else:
            views.append({"buffer": 0, "byteLength": len(data)})
            view_data[len(views) - 1] = data
            image["bufferView"] = len(views) - 1
        image.pop("uri", None)
        image["mimeType"] = _MIME.get(fmt, "image/png")
    return view_data


def _require_webp(doc: dict, new_images: dict) -> None:
    """The textures of the new images read them through ``EXT_texture_webp``, declared used and required."""
    for tex in doc.get("textures", []):
        if tex.get("source") in new_images:
            tex.setdefault("extensions", {})["EXT_texture_webp"] = {"source": tex.pop("source")}
    for key in ("extensionsUsed", "extensionsRequired"):
        if "EXT_texture_webp" not in doc.setdefault(key, []):
            doc[key].append("EXT_texture_webp")


def stamp_asset(doc: dict, provenance: dict | None) -> None:
    """Record ``provenance`` in ``asset.generator`` ("meshstyle VERSION") and ``asset.extras.meshstyle``;
    the previous generator is kept in ``asset.extras.meshstyle.source_generator``."""
    if not provenance:
        return
    asset = doc.setdefault("asset", {"version": "2.0"})
    record = {k: provenance[k] for k in sorted(provenance)}
    if asset.get("generator"):
        record["source_generator"] = asset["generator"]
    asset["generator"] = f"{provenance.get('tool', 'meshstyle')} {provenance.get('version', '')}".strip()
    extras = asset.get("extras")
    if not isinstance(extras, dict):
        extras = {} if extras is None else {"source_extras": extras}
    extras["meshstyle"] = record
    asset["extras"] = extras


def lost_in_obj(doc: dict) -> list[str]:
    """What an OBJ cannot hold of this document, for one warning line (GLB -> OBJ)."""
    lost = []
    for key, label in (("skins", "skins"), ("animations", "animations"), ("cameras", "cameras")):
        if doc.get(key):
            lost.append(f"{len(doc[key])} {label}")
    if any(p.get("targets") for m in doc.get("meshes", []) for p in m.get("primitives", [])):
        lost.append("morph targets")
    maps = set()
    for material in doc.get("materials", []):
        for key in ("normalTexture", "occlusionTexture", "emissiveTexture"):
            if key in material:
                maps.add(key.replace("Texture", " map"))
        if "metallicRoughnessTexture" in material.get("pbrMetallicRoughness", {}):
            maps.add("metallic-roughness map")
        if material.get("extensions"):
            maps.update(material["extensions"])
    if maps:
        lost.append("PBR maps and material extensions (" + ", ".join(sorted(maps)) + ")")
    if any(s.get(k, 10497) != 10497 for s in doc.get("samplers", []) for k in ("wrapS", "wrapT")):
        lost.append("texture wrap modes")
    if doc.get("extensionsUsed"):
        lost.append("extensions " + ", ".join(sorted(doc["extensionsUsed"])))
    return lost
