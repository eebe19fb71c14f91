"""The base-colour image and UVs of one trimesh geometry, as loading and export both read them.

A leaf module (imports nothing of meshstyle) so :mod:`meshstyle.mesh.textured` and
:mod:`meshstyle.mesh.export` share these helpers without importing each other in a cycle.
"""

from __future__ import annotations

import numpy as np
import trimesh
from PIL import Image


def material_image(geom) -> Image.Image | None:
    """The base-colour texture of ``geom``'s material (PBR ``baseColorTexture``, else the simple
    material's ``image``), or ``None`` when it has no material or no texture."""
    material = getattr(geom.visual, "material", None)
    if material is None:
        return None
    image = getattr(material, "baseColorTexture", None)
    if image is None:
        image = getattr(material, "image", None)
    return image


def set_material_image(geom, image: Image.Image) -> None:
    """Make ``image`` the base-colour texture of ``geom``'s material and its colour factor white (the
    texture alone gives the colour; a PBR material keeps its alpha factor)."""
    material = geom.visual.material
    if isinstance(material, trimesh.visual.material.PBRMaterial):
        material.baseColorTexture = image
        material.baseColorFactor = np.array([255, 255, 255, material.baseColorFactor[3] if material.baseColorFactor is not None else 255], np.uint8)
    else:
        material.image = image
        material.diffuse = np.array([255, 255, 255, 255], np.uint8)


def has_uv(geom) -> bool:
    """Whether ``geom`` has one UV per vertex."""
    uv = getattr(geom.visual, "uv", None)
    return uv is not None and len(uv) == len(geom.vertices)
