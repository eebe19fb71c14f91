"""Textured meshes: load OBJ (+MTL) and glTF/GLB with trimesh, unwrap when UVs are missing, replace
textures, and export.

A :class:`TexturedMesh` wraps a ``trimesh.Scene`` as loaded (``process=False``: vertex order, face
order and per-corner UVs are kept; trimesh splits vertices at UV seams so every corner keeps its own
UV). Geometries with UVs and a base-colour texture are *stylizable*; the others (colour-only
materials, say) are carried through unchanged and still occlude in renders. Node transforms are
applied when geometry is placed in the world (:meth:`TexturedMesh.instances`) and kept as they are
on export. UV and texture conventions: see :mod:`meshstyle.core.uv`.
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

from ..core.atomic import atomic_path
from ..core.errors import MeshstyleError
from .padding import island_mask, pad_texture
from .rasterize import bake_corner_colors
from .unwrap import unwrap

log = logging.getLogger("meshstyle")

MESH_INPUTS = (".obj", ".glb", ".gltf")
MESH_OUTPUTS = (".glb", ".obj")
MAX_TEXTURE = 8192
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


def _material_image(geom) -> Image.Image | None:
    material = getattr(geom.visual, "material", None)
    if material is None:
        return None
    image = getattr(material, "baseColorTexture", None)
    if image is None:
        image = getattr(material, "image", None)
    return image


def _has_uv(geom) -> bool:
    uv = getattr(geom.visual, "uv", None)
    return uv is not None and len(uv) == len(geom.vertices)


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
    """

    def __init__(self, scene: trimesh.Scene | trimesh.Trimesh, source: Path | None = None,
                 bake_size: int = BAKE_SIZE):
        if isinstance(scene, trimesh.Trimesh):
            scene = trimesh.Scene(scene)
        self.scene = scene
        self.source = source
        meshes = {k: g for k, g in scene.geometry.items() if isinstance(g, trimesh.Trimesh) and len(g.faces)}
        where = f" in {source}" if source else ""
        if not meshes:
            raise MeshstyleError(f"no triangle faces{where} (a point cloud or an empty file?)")
        for name, geom in meshes.items():
            if _has_uv(geom) and _material_image(geom) is None:
                log.warning("%s: material of %r has UVs but no texture (missing texture file?); "
                            "falling back to its base colour", source or "mesh", name)
            self._check_degenerate(name, geom)
            self._limit_texture(name, geom)
        self.stylizable = [k for k, g in meshes.items() if _has_uv(g) and _material_image(g) is not None]
        if not self.stylizable:
            for name, geom in meshes.items():
                self._bake_base_color(name, geom, bake_size)
            self.stylizable = list(meshes)

    @classmethod
    def load(cls, path: str | os.PathLike, bake_size: int = BAKE_SIZE) -> TexturedMesh:
        """Load an OBJ (with its MTL and ``map_Kd`` texture) or a glTF/GLB file.

        Meshes without UVs are unwrapped with xatlas and their base colour (vertex colours or material
        colour) is baked into a ``bake_size`` texture; textures larger than 8192 px are downscaled.

        Raises:
            MeshstyleError: missing, unreadable or corrupt file, unsupported extension, no faces,
                only degenerate faces, or a failed unwrap.
        """
        path = Path(path)
        if not path.exists():
            raise MeshstyleError(f"mesh not found: {path}")
        if path.suffix.lower() not in MESH_INPUTS:
            raise MeshstyleError(f"unsupported mesh format {path.suffix or '(none)'!r} for {path}; use .obj, .glb or .gltf")
        try:
            scene = trimesh.load(path, force="scene", process=False)
        except Exception as exc:
            raise MeshstyleError(f"cannot read mesh {path}: {type(exc).__name__}: {exc}".rstrip(": ")) from None
        return cls(scene, source=path, bake_size=bake_size)

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
        self.scene.geometry[name] = new
        log.warning("%r had no texture: baked its base colour into a new %dx%d texture", name, size, size)

    def texture(self, name: str) -> np.ndarray:
        """The base-colour texture of geometry ``name`` as (H, W, 3) uint8 RGB (row 0 = top)."""
        image = _material_image(self.scene.geometry[name])
        return np.asarray(image.convert("RGB"))

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

    def save(self, path: str | os.PathLike) -> list[Path]:
        """Export to ``.glb`` (textures embedded as PNG) or ``.obj`` (+ ``.mtl`` + ``.png``).

        Positions, faces, face order and UVs are written as loaded. Every stylizable texture is also
        written on its own as PNG (``OUT.png`` for OBJ, ``OUT_texture.png`` for GLB; ``_N`` suffixes
        when there are several). All files are written atomically, the mesh file last.

        Returns:
            The paths written, mesh file first.

        Raises:
            MeshstyleError: unsupported extension.
        """
        return save_mesh(self, path)


def _set_material_image(geom, image: Image.Image) -> None:
    material = geom.visual.material
    if isinstance(material, trimesh.visual.material.PBRMaterial):
        material.baseColorTexture = image
        material.baseColorFactor = np.array([255, 255, 255, material.baseColorFactor[3] if material.baseColorFactor is not None else 255], np.uint8)
    else:
        material.image = image
        material.diffuse = np.array([255, 255, 255, 255], np.uint8)


def check_mesh_output(path: str | os.PathLike) -> Path:
    """Validate an output mesh path by its extension; raises MeshstyleError otherwise."""
    path = Path(path)
    if path.suffix.lower() not in MESH_OUTPUTS:
        raise MeshstyleError(f"unsupported output mesh extension {path.suffix or '(none)'!r} for {path}; use .glb or .obj")
    return path


def _png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _write_all(files: list[tuple[Path, bytes]]) -> None:
    for path, data in files:
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)


def save_mesh(mesh: TexturedMesh, path: str | os.PathLike) -> list[Path]:
    """See :meth:`TexturedMesh.save`."""
    path = check_mesh_output(path)
    stem = path.with_suffix("")
    textures = [_material_image(mesh.scene.geometry[n]) for n in mesh.stylizable]
    files: list[tuple[Path, bytes]] = []
    if path.suffix.lower() == ".glb":
        names = [Path(f"{stem}_texture.png")] if len(textures) == 1 else [Path(f"{stem}_texture_{i}.png") for i in range(len(textures))]
        files += [(n, _png_bytes(t)) for n, t in zip(names, textures)]
        files.append((path, mesh.scene.export(file_type="glb")))
    else:
        from trimesh.exchange.obj import export_obj

        text, extra = export_obj(mesh.scene, include_normals=False, include_texture=True, return_texture=True,
                                 mtl_name=f"{path.stem}.mtl", header="meshstyle")
        mtl = extra.pop(f"{path.stem}.mtl").decode("utf-8")
        images = sorted(extra)
        for i, old in enumerate(images):
            new = f"{path.stem}.png" if len(images) == 1 else f"{path.stem}_{i}.png"
            mtl = mtl.replace(f"map_Kd {old}", f"map_Kd {new}")
            files.append((path.parent / new, extra[old]))
        files.append((path.parent / f"{path.stem}.mtl", mtl.encode("utf-8")))
        files.append((path, text.encode("utf-8")))
    _write_all(files)
    return [path] + [p for p, _ in files if p != path]
