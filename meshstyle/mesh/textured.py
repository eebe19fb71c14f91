"""Textured meshes: load OBJ (+MTL) and glTF/GLB with trimesh, unwrap when UVs are missing, replace
textures, and export.

A :class:`TexturedMesh` wraps a ``trimesh.Scene`` as loaded (``process=False``: vertex order, face
order and per-corner UVs are kept; trimesh splits vertices at UV seams so every corner keeps its own
UV). Geometries with UVs and a base-colour texture are *stylizable*; the others (colour-only
materials, say) are carried through unchanged and still occlude in renders. Node transforms are
applied when geometry is placed in the world (:meth:`TexturedMesh.instances`) and kept as they are
on export. UV and texture conventions: see :mod:`meshstyle.core.uv`.

Loading checks the input as untrusted (:mod:`meshstyle.mesh.resources`, :mod:`meshstyle.mesh.obj`,
:mod:`meshstyle.mesh.gltf`): every resource stays inside the asset's folder and is a regular file,
coordinates are finite, face indices in range, textures decode. What export needs of the input document
is kept in :attr:`TexturedMesh.origin`; export (:mod:`meshstyle.mesh.export`) edits that document
instead of rebuilding it.
"""

from __future__ import annotations

import copy
import io
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import trimesh
from PIL import Image

from ..core.errors import MeshstyleError
from . import gltf as gltf_io
from . import obj as obj_io
from .export import MESH_OUTPUTS, check_mesh_output, plan_outputs, save_mesh  # noqa: F401 (MESH_OUTPUTS, check_mesh_output: re-exported)
from .material import has_uv as _has_uv
from .material import material_image as _material_image
from .material import set_material_image as _set_material_image
from .padding import island_mask, pad_texture
from .rasterize import bake_corner_colors
from .resources import ConfinedResolver, check_image_bytes, read_regular_file
from .unwrap import unwrap

log = logging.getLogger("meshstyle")

MESH_INPUTS = (".obj", ".glb", ".gltf")
MAX_TEXTURE = 8192
#: UVs farther than this from the texture square warn: the float32 texture lookup then keeps less than a
#: thousandth of a tile (float32 spacing at 1e4 is 0.001, about half a texel of a 512 px texture), so the
#: texels such a corner samples are arbitrary (finite but meaningless UVs, e.g. 1e30).
UV_WARNING = 1e4
BAKE_SIZE = 1024


@dataclass
class Instance:
    """One placed geometry: ``vertices`` (V, 3) in world units (node transform applied), ``faces``
    (F, 3), ``corner_uv`` (F, 3, 2) or ``None``, and whether its texture is ``stylizable``."""

    geometry: str
    vertices: np.ndarray
    faces: np.ndarray
    corner_uv: np.ndarray | None
    stylizable: bool


def corner_base_colors(geom) -> np.ndarray:
    """(F, 3, 3) per-corner RGB in [0, 255] from vertex colours or the material's main colour."""
    visual = geom.visual
    if visual.kind == "vertex":
        return np.asarray(visual.vertex_colors, np.float64)[:, :3][geom.faces]
    if visual.kind == "face":
        return np.repeat(np.asarray(visual.face_colors, np.float64)[:, None, :3], 3, axis=1)
    material = getattr(visual, "material", None)
    rgb = np.asarray(getattr(material, "main_color", [200, 200, 200, 255]), np.float64)[:3] if material is not None else np.full(3, 200.0)
    return np.broadcast_to(rgb, (len(geom.faces), 3, 3)).copy()


class TexturedMesh:
    """A scene of meshes with per-corner UVs and base-colour textures (see module docstring).

    Build with :meth:`load` or from a ``trimesh.Scene``/``trimesh.Trimesh``.

    Attributes:
        scene: the underlying ``trimesh.Scene``.
        stylizable: names of geometries (keys of ``scene.geometry``) whose texture can be stylized.
        source: the file it was loaded from, if any.
        origin: what export needs of the input document (a :class:`~meshstyle.mesh.gltf.GltfSource`
            or :class:`~meshstyle.mesh.obj.ObjSource`), or ``None`` for a scene built in code.
        material_name: geometry name -> its material's name as loaded (before any bake).
        normals: geometry name -> (V, 3) vertex normals as loaded, for geometries whose file had them.
        generated_uv: geometries whose UVs were made here (xatlas); their OBJ lines are rewritten.
        baked: geometries whose texture was baked here from colours (no texture in the input).
        changed: geometries whose texture was replaced with :meth:`set_texture`.
    """

    def __init__(self, scene: trimesh.Scene | trimesh.Trimesh, source: Path | None = None,
                 bake_size: int = BAKE_SIZE, origin=None):
        if isinstance(scene, trimesh.Trimesh):
            scene = trimesh.Scene(scene)
        self.scene = scene
        self.source = source
        self.origin = origin
        self.resources: list[Path] = []
        self.generated_uv: set[str] = set()
        self.baked: set[str] = set()
        self.changed: set[str] = set()
        meshes = {k: g for k, g in scene.geometry.items() if isinstance(g, trimesh.Trimesh) and len(g.faces)}
        where = f" in {source}" if source else ""
        if not meshes:
            raise MeshstyleError(f"no triangle faces{where} (a point cloud or an empty file?)")
        for name, geom in meshes.items():
            _check_geometry(name, geom, where)
        self.material_name = {k: _material_name(k, g, origin) for k, g in meshes.items()}
        # normals that came with the file (trimesh caches them; it never computes them unasked here)
        self.normals = {k: np.asarray(g._cache.cache["vertex_normals"], np.float64) for k, g in meshes.items()
                        if g._cache.cache.get("vertex_normals") is not None}
        for name, geom in meshes.items():
            if _has_uv(geom) and _material_image(geom) is None:
                log.warning("%s: material of %r has UVs but no texture (missing texture file?); "
                            "falling back to its base colour", source or "mesh", name)
            self._check_degenerate(name, geom)
            _warn_far_uv(name, geom, where)
            self._limit_texture(name, geom)
        self.stylizable = [k for k, g in meshes.items() if _has_uv(g) and _material_image(g) is not None]
        if not self.stylizable:
            for name, geom in meshes.items():
                self._bake_base_color(name, geom, bake_size)
            self.stylizable = list(meshes)

    @classmethod
    def load(cls, path: str | os.PathLike, bake_size: int = BAKE_SIZE,
             allow_missing_textures: bool = False) -> TexturedMesh:
        """Load an OBJ (with its MTL and ``map_Kd`` texture) or a glTF/GLB file.

        Meshes without UVs are unwrapped with xatlas and their base colour (vertex colours or material
        colour) is baked into a ``bake_size`` texture; textures larger than 8192 px are downscaled.
        Only regular files inside the mesh file's folder are read (see :mod:`meshstyle.mesh.resources`).

        Args:
            allow_missing_textures: a missing MTL or texture file is a warning naming the file (the
                part falls back to its base colour) instead of an error.

        Raises:
            MeshstyleError: missing, unreadable, non-regular or corrupt file; unsupported extension; a
                resource outside the folder, missing (unless allowed) or not decodable; non-finite
                coordinates, face indices out of range, no faces, only degenerate faces; glTF
                compression or required extensions that cannot be kept; a failed unwrap.
        """
        path = Path(path)
        if not os.path.lexists(path):
            raise MeshstyleError(f"mesh not found: {path}")
        suffix = path.suffix.lower()
        if suffix not in MESH_INPUTS:
            raise MeshstyleError(f"unsupported mesh format {path.suffix or '(none)'!r} for {path}; use .obj, .glb or .gltf")
        data = read_regular_file(path, "mesh")
        resolver = ConfinedResolver(path.parent, path.name)
        if suffix == ".obj":
            text = obj_io.decode_obj(data, str(path))
            origin = obj_io.scan_obj(text, str(path))
            origin.data = data
            _read_materials(origin, resolver, path, allow_missing_textures)
            file_obj, file_type = io.StringIO(text), "obj"
        else:
            origin = gltf_io.read_gltf(data, str(path), suffix == ".glb", resolver)
            file_obj, file_type = io.BytesIO(data), suffix[1:]
        try:
            scene = trimesh.load(file_obj, file_type=file_type, force="scene", process=False, resolver=resolver)
        except MeshstyleError:
            raise
        except Exception as exc:
            resolver.raise_problems()
            raise MeshstyleError(f"cannot read mesh {path}: {type(exc).__name__}: {exc}".rstrip(": ")) from None
        resolver.raise_problems()
        if isinstance(origin, gltf_io.GltfSource):
            _apply_texture_transforms(scene, origin, path)
        else:
            _apply_mtl(scene, origin)
        mesh = cls(scene, source=path, bake_size=bake_size, origin=origin)
        mesh.resources = sorted({resolver.path_of(name) for name in resolver.data})
        return mesh

    def copy(self) -> TexturedMesh:
        """A deep copy (textures included)."""
        return copy.deepcopy(self)

    @staticmethod
    def _check_degenerate(name, geom) -> None:
        areas = geom.area_faces
        bad = int((areas <= 1e-14 * max(1.0, float(areas.max(initial=0)))).sum())
        if bad == len(areas):
            raise MeshstyleError(f"every face of {name!r} is degenerate (zero area)")
        if bad:
            log.warning("%r has %d degenerate (zero-area) faces; they are never visible", name, bad)

    @staticmethod
    def _limit_texture(name, geom) -> None:
        image = _material_image(geom)
        if image is not None and max(image.size) > MAX_TEXTURE:
            scale = MAX_TEXTURE / max(image.size)
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            log.warning("texture of %r is %dx%d; downscaled to %dx%d", name, *image.size, *size)
            _set_material_image(geom, image.resize(size, Image.Resampling.LANCZOS))

    def _bake_base_color(self, name, geom, size) -> None:
        corner_rgb = corner_base_colors(geom)
        if not _has_uv(geom):
            merged = geom.copy()
            merged.merge_vertices(merge_tex=True, merge_norm=True)
            vmap, faces, uv = unwrap(merged.vertices, merged.faces)
            new = trimesh.Trimesh(vertices=merged.vertices[vmap], faces=faces, process=False)
            log.warning("%r has no UVs: unwrapped with xatlas (%d faces)", name, len(faces))
        else:
            new = trimesh.Trimesh(vertices=geom.vertices, faces=geom.faces, process=False)
            uv = np.asarray(geom.visual.uv, np.float64)
        texture = bake_corner_colors(uv[new.faces], corner_rgb, (size, size))
        texture = pad_texture(texture, island_mask(uv[new.faces], (size, size)))
        material = trimesh.visual.material.SimpleMaterial(image=Image.fromarray(texture), diffuse=[255, 255, 255, 255],
                                                          name=f"{name}_baked")
        new.visual = trimesh.visual.TextureVisuals(uv=uv, material=material)
        if not _has_uv(geom):
            self.generated_uv.add(name)
            if name in self.normals:
                normals = np.asarray(merged.vertex_normals, np.float64)[vmap]
                self.normals[name] = normals
        self.baked.add(name)
        self.scene.geometry[name] = new
        log.warning("%r had no texture: baked its base colour into a new %dx%d texture", name, size, size)

    def texture(self, name: str) -> np.ndarray:
        """The base-colour texture of geometry ``name`` as (H, W, 3) uint8 RGB (row 0 = top)."""
        image = _material_image(self.scene.geometry[name])
        return np.asarray(image.convert("RGB"))

    def texture_shape(self, name: str) -> tuple[int, int]:
        """(H, W) texels of the base-colour texture of geometry ``name`` (without decoding it)."""
        image = _material_image(self.scene.geometry[name])
        return image.height, image.width

    def set_texture(self, name: str, rgb: np.ndarray, pad: bool = True) -> None:
        """Replace the texture of ``name`` with ``rgb`` (H, W, 3) uint8. The original alpha channel, if
        any, is kept (resized). With ``pad``, texels outside the UV islands are filled from the
        nearest island texel (see :mod:`meshstyle.mesh.padding`). Material colour factors are set to white
        so viewers show the texture as it is."""
        geom = self.scene.geometry[name]
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        if pad:
            rgb = pad_texture(rgb, island_mask(self.corner_uv(name), rgb.shape[:2]))
        image = Image.fromarray(rgb, "RGB")
        old = _material_image(geom)
        if old is not None and old.mode in ("RGBA", "LA", "PA") or (old is not None and "transparency" in old.info):
            alpha = old.convert("RGBA").getchannel("A").resize(image.size, Image.Resampling.BILINEAR)
            image.putalpha(alpha)
        _set_material_image(geom, image)
        self.changed.add(name)

    def corner_uv(self, name: str) -> np.ndarray:
        """(F, 3, 2) UVs of the corners of every face of geometry ``name``."""
        geom = self.scene.geometry[name]
        return np.asarray(geom.visual.uv, np.float64)[geom.faces]

    def instances(self) -> list[Instance]:
        """Every placed triangle mesh of the scene, in world coordinates."""
        out = []
        for node in self.scene.graph.nodes_geometry:
            transform, name = self.scene.graph[node]
            geom = self.scene.geometry.get(name)
            if not isinstance(geom, trimesh.Trimesh) or not len(geom.faces):
                continue
            stylizable = name in self.stylizable
            out.append(Instance(name, trimesh.transform_points(geom.vertices, transform), np.asarray(geom.faces),
                                self.corner_uv(name) if stylizable else None, stylizable))
        return out

    def points(self) -> np.ndarray:
        """Every placed vertex in world coordinates, (P, 3)."""
        return np.concatenate([inst.vertices for inst in self.instances()])

    def bounding_sphere(self) -> tuple[np.ndarray, float]:
        """Centre (3,) and radius of a sphere around every placed vertex (bounding-box centre)."""
        points = self.points()
        lo, hi = points.min(0), points.max(0)
        center = (lo + hi) / 2
        return center, float(np.linalg.norm(points - center, axis=1).max())

    def save(self, path: str | os.PathLike, *, texture_format: str | None = None, jpeg_quality: int = 95,
             provenance: dict | None = None) -> list[Path]:
        """Export to ``.glb`` or ``.obj`` (+ ``.mtl`` + texture files) by editing the input document.

        See :func:`meshstyle.mesh.export.save_mesh` for what is kept, the file names and the options.

        Returns:
            The paths written, mesh file first.

        Raises:
            MeshstyleError: unsupported extension or texture format, or an unsafe output name.
        """
        return save_mesh(self, path, texture_format=texture_format, jpeg_quality=jpeg_quality,
                         provenance=provenance)

    def resource_files(self) -> list[Path]:
        """Every file this mesh was read from: the mesh file first, then its MTL files, textures and
        glTF buffers/images (absolute paths inside the mesh's folder). An export must replace none."""
        return ([self.source] if self.source is not None else []) + list(self.resources)

    def output_paths(self, path: str | os.PathLike, *, texture_format: str | None = None) -> list[Path]:
        """Every file :meth:`save` would write for ``path`` (mesh file first), without writing."""
        return plan_outputs(self, path, texture_format=texture_format)


def _material_name(name: str, geom, origin) -> str | None:
    """The material of a geometry as the input names it. trimesh's OBJ loader names each geometry after
    its ``usemtl`` material when there are several (and after the file when there is one); its material
    objects keep the raw ``newmtl`` line, comments included, so the ``usemtl`` name is preferred."""
    material = getattr(getattr(geom.visual, "material", None), "name", None)
    if isinstance(origin, obj_io.ObjSource):
        if name in origin.used_materials:
            return name
        if material not in origin.used_materials and len(origin.used_materials) == 1:
            return origin.used_materials[0]
    return material


def _check_geometry(name: str, geom, where: str) -> None:
    """Finite coordinates and UVs, face indices in range (trimesh keeps out-of-range indices of glTF
    accessors as they are with ``process=False``)."""
    vertices = np.asarray(geom.vertices)
    if not np.isfinite(vertices).all():
        raise MeshstyleError(f"mesh {name!r}{where} has non-finite vertex coordinates (NaN or infinity)")
    faces = np.asarray(geom.faces)
    if faces.size and (faces.min() < 0 or faces.max() >= len(vertices)):
        raise MeshstyleError(f"mesh {name!r}{where} has face indices out of range (0..{len(vertices) - 1})")
    uv = getattr(geom.visual, "uv", None)
    if uv is not None and not np.isfinite(np.asarray(uv, np.float64)).all():
        raise MeshstyleError(f"mesh {name!r}{where} has non-finite UV coordinates")


def _warn_far_uv(name: str, geom, where: str) -> None:
    """Warn when a part's UVs reach beyond +-:data:`UV_WARNING` (tiling there is meaningless)."""
    uv = getattr(geom.visual, "uv", None)
    if uv is None or not len(uv):
        return
    far = float(np.abs(np.asarray(uv, np.float64)).max())
    if far > UV_WARNING:
        log.warning("UV coordinates of %r%s reach %.3g, far outside the texture's tiling range (beyond %g a "
                    "texture lookup is meaningless); those corners show arbitrary texels", name, where, far,
                    UV_WARNING)


def _read_materials(origin: obj_io.ObjSource, resolver: ConfinedResolver, path: Path, allow_missing: bool) -> None:
    """Read the OBJ's MTL files and check the ``map_Kd`` texture of every material (confined, regular
    files, decodable); fill ``origin.mtl`` and ``origin.materials``."""
    def missing(what: str, name: str) -> None:
        if not allow_missing:
            raise MeshstyleError(f"{what} {name!r} named in {path} not found "
                                 "(allow_missing_textures=True / --allow-missing-textures to go on without it)")
        log.warning("%s %r named in %s not found; using the base colour", what, name, path)

    for library in origin.mtllibs:
        target = resolver.path_of(library)
        if not target.exists():
            missing("MTL file", library)
            continue
        data = resolver.read(library)
        origin.mtl[library] = data
        text = obj_io.decode_obj(data, library)
        for name, material in obj_io.parse_mtl(text, library).items():
            origin.materials.setdefault(name, material)
    for material in origin.materials.values():
        if not material.map_kd:
            continue
        target = resolver.path_of(material.map_kd)
        if not target.exists():
            missing("texture file", material.map_kd)
            continue
        data = resolver.read(material.map_kd)
        check_image_bytes(data, material.map_kd)
        origin.textures[material.map_kd] = data


def _apply_mtl(scene: trimesh.Scene, origin: obj_io.ObjSource) -> None:
    """Give each OBJ part the colour, opacity and texture its MTL really states. trimesh's MTL parser
    keeps end-of-line comments (``Kd 1 1 1  # white`` fails and falls back to grey; ``newmtl a # b``
    never matches ``usemtl a``); :func:`meshstyle.mesh.obj.parse_mtl` strips them. ``Kd`` is sRGB, as
    are texture pixels, so it is stored as is (x 255). A ``map_Kd`` with ``-s``/``-o`` options samples
    its texture at ``uv * s + o`` (as Blender's and three.js's OBJ importers do): the part's UVs are
    changed to that here, as ``KHR_texture_transform`` is for glTF (the exported OBJ keeps its ``vt``
    lines and the MTL its options)."""
    for name, geom in scene.geometry.items():
        if not isinstance(geom, trimesh.Trimesh):
            continue
        found = origin.materials.get(_material_name(name, geom, origin) or "")
        material = getattr(geom.visual, "material", None)
        if found is None:
            if isinstance(material, trimesh.visual.material.SimpleMaterial):
                material.image = None  # trimesh's 2x2 grey placeholder for an unknown material
            continue
        matched = isinstance(material, trimesh.visual.material.SimpleMaterial) and material.name == found.name
        if not isinstance(material, trimesh.visual.material.SimpleMaterial):
            material = trimesh.visual.material.SimpleMaterial(name=found.name)
            geom.visual = trimesh.visual.TextureVisuals(uv=getattr(geom.visual, "uv", None), material=material)
        if not matched:
            material.name = found.name
            material.image = None
        if (not matched or material.image is None) and found.map_kd in origin.textures and _has_uv(geom):
            material.image = check_image_bytes(origin.textures[found.map_kd], found.map_kd)
        transform = obj_io.map_uv_transform(found.map_kd_parsed)
        if transform is not None and material.image is not None and _has_uv(geom):
            geom.visual.uv = np.asarray(geom.visual.uv, np.float64) * transform[0] + transform[1]  # map_Kd -s, -o
        rgb = np.clip(np.asarray(found.kd if found.kd is not None else (0.8, 0.8, 0.8)), 0, 1)
        alpha = float(np.clip(found.d, 0, 1)) if found.d is not None else 1.0
        material.diffuse = np.round(np.append(rgb, alpha) * 255).astype(np.uint8)


def _apply_texture_transforms(scene: trimesh.Scene, origin: gltf_io.GltfSource, path: Path) -> None:
    """Bring each geometry's UVs to where its base-colour texture is sampled: apply
    ``KHR_texture_transform`` (glTF v-down space) and refuse a base colour on ``TEXCOORD_1+``."""
    for geom_name, (mi, pi) in origin.primitive.items():
        info = gltf_io.base_color_info(origin.doc, mi, pi)
        geom = scene.geometry.get(geom_name)
        if info is None or geom is None or not _has_uv(geom):
            continue
        if info.get("texCoord", 0) != 0:
            raise MeshstyleError(f"{path}: the base-colour texture of {geom_name!r} uses TEXCOORD_{info['texCoord']}; "
                                 "only TEXCOORD_0 is supported")
        matrix = gltf_io.texture_transform(info)
        if matrix is not None:
            uv = np.asarray(geom.visual.uv, np.float64)
            gl = np.stack([uv[:, 0], 1.0 - uv[:, 1], np.ones(len(uv))], 1) @ matrix.T
            geom.visual.uv = np.stack([gl[:, 0], 1.0 - gl[:, 1]], 1)
