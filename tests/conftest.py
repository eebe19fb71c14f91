"""Shared fixtures: asset paths and small meshes built in code."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SPOT = ASSETS / "meshes" / "spot" / "cow.obj"
STYLE = ASSETS / "styles" / "starry_night_google.jpg"
CONTENT = ASSETS / "content" / "chelsea.png"

# quadrant colours: row 0 (top of the file) red, green; row 1 blue, white
QUADRANT_COLOURS = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], np.uint8)
# the same as a 16x16 texture (8x8 texels per quadrant), so samples inside a quadrant are not blended
QUADRANT_TEXTURE = np.kron(QUADRANT_COLOURS, np.ones((8, 8, 1), np.uint8))


@pytest.fixture(autouse=True)
def _meshstyle_logs_propagate():
    """The CLI turns propagation off; tests want caplog to see warnings."""
    logging.getLogger("meshstyle").propagate = True
    yield


def textured(mesh: trimesh.Trimesh, uv: np.ndarray, texture: np.ndarray) -> trimesh.Trimesh:
    mesh.visual = trimesh.visual.TextureVisuals(
        uv=uv, material=trimesh.visual.material.SimpleMaterial(image=Image.fromarray(texture), diffuse=[255] * 4))
    return mesh


def quad(size: float = 1.0, texture: np.ndarray = QUADRANT_TEXTURE, z: float = 0.0) -> trimesh.Trimesh:
    """A square in the plane z (facing +z) from -size to size, UV (0,0) at its bottom-left corner."""
    v = np.array([[-size, -size, z], [size, -size, z], [size, size, z], [-size, size, z]], float)
    f = np.array([[0, 1, 2], [0, 2, 3]])
    uv = np.array([[0, 0], [1, 0], [1, 1], [0, 1]], float)
    return textured(trimesh.Trimesh(v, f, process=False), uv, texture)


def cube(texture: np.ndarray = QUADRANT_TEXTURE) -> trimesh.Trimesh:
    """A unit cube (-1..1) whose six faces each map the whole texture, upright when seen from outside
    (for the top and bottom faces 'up' is -z and +z)."""
    faces_axes = [  # (normal, right, up)
        ((0, 0, 1), (1, 0, 0), (0, 1, 0)), ((0, 0, -1), (-1, 0, 0), (0, 1, 0)),
        ((1, 0, 0), (0, 0, -1), (0, 1, 0)), ((-1, 0, 0), (0, 0, 1), (0, 1, 0)),
        ((0, 1, 0), (1, 0, 0), (0, 0, -1)), ((0, -1, 0), (1, 0, 0), (0, 0, 1)),
    ]
    verts, faces, uvs = [], [], []
    for n, r, u in faces_axes:
        n, r, u = map(np.array, (n, r, u))
        base = len(verts)
        for su, sv in [(0, 0), (1, 0), (1, 1), (0, 1)]:
            verts.append(n + (2 * su - 1) * r + (2 * sv - 1) * u)
            uvs.append([su, sv])
        faces += [[base, base + 1, base + 2], [base, base + 2, base + 3]]
    return textured(trimesh.Trimesh(np.array(verts, float), np.array(faces), process=False), np.array(uvs, float), texture)


def checker(size: int = 64, cells: int = 8) -> np.ndarray:
    """A (size, size, 3) uint8 black/white checkerboard."""
    idx = (np.arange(size) * cells // size)
    board = (idx[:, None] + idx[None, :]) % 2
    return np.repeat((board * 255).astype(np.uint8)[..., None], 3, axis=2)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a test module (``pytestmark = pytest.mark.usefixtures("one_torch_thread")``):
    on a CPU shared with other busy processes, 2 OpenMP threads made the pretrained networks 4-6x slower
    (they wait on each other); results do not depend on it."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def spot_path():
    return SPOT


@pytest.fixture
def style_path():
    return STYLE


@pytest.fixture
def content_path():
    return CONTENT
