"""Shared fixtures and helpers: asset paths, small meshes and documents built in code, the CLI refusal check."""

from __future__ import annotations

import base64
import hashlib
import io
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image

from meshstyle.cli import main
from meshstyle.mesh.cameras import Camera, look_at

ASSETS = Path(__file__).resolve().parent.parent / "assets"
SPOT = ASSETS / "meshes" / "spot" / "cow.obj"
STYLE = ASSETS / "styles" / "starry_night_google.jpg"
CONTENT = ASSETS / "content" / "chelsea.png"

# quadrant colours: row 0 (top of the file) red, green; row 1 blue, white
QUADRANT_COLOURS = np.array([[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [255, 255, 255]]], np.uint8)
# the same as a 16x16 texture (8x8 texels per quadrant), so samples inside a quadrant are not blended
QUADRANT_TEXTURE = np.kron(QUADRANT_COLOURS, np.ones((8, 8, 1), np.uint8))


#: Test modules that run the pretrained networks of ``meshstyle[pretrained]`` in every test (marker
#: ``pretrained``; also ``slow``: loading and running the networks takes seconds per test). Tests elsewhere
#: whose parameters name a pretrained encoder get the marker too.
PRETRAINED_MODULES = {"test_pretrained", "test_feedforward", "test_mobilenet", "test_vgg16_onnx"}
PRETRAINED_NAMES = ("mobilenetv2-magenta", "vgg16")
#: Test modules of whole stylizations, batches, resumes, exports checked by the glTF validator, or other
#: programs (Ray, Chromium): seconds per test (marker ``slow``). ``pytest -m "not slow"`` runs the rest.
SLOW_MODULES = {"test_stylize2d", "test_stylize3d", "test_batch", "test_batch_ray", "test_checkpoint",
                "test_hostile", "test_hostile2", "test_export", "test_multiview", "test_color_match", "test_cli",
                "test_parts"}
#: Single slow tests in otherwise quick modules (several seconds each, measured with --durations).
SLOW_TESTS = {"test_lbfgs_on_a_bf16_objective_converges_like_fp32", "test_bf16_gradient_points_where_the_fp32_gradient_does",
              "test_load_weights_from_state_dict_file", "test_layer_names_follow_the_paper",
              "test_image_strength_orders_the_change_too", "test_seam_weight_lowers_the_jump_where_parts_meet_in_a_run",
              "test_texture_synthesis_has_no_edge_lines", "test_strength_orders_the_texture_change"}


def pytest_collection_modifyitems(config, items):
    """Mark tests ``pretrained`` and ``slow`` by the tables above (markers registered in pyproject.toml)."""
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module in PRETRAINED_MODULES or any(name in item.name for name in PRETRAINED_NAMES):
            item.add_marker(pytest.mark.pretrained)
            item.add_marker(pytest.mark.slow)
        if module in SLOW_MODULES or item.originalname in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)


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


# ------------------------------------------------------------------ helpers shared by several test modules
# (test modules import these from conftest, never from each other)

def camera(eye, target=(0, 0, 0), fov=40.0):
    eye = np.asarray(eye, float)
    return Camera(eye, look_at(eye, np.asarray(target, float)), fov)


def colour_at(image, row, col):
    return tuple(np.round(image[:, row, col].numpy() * 255).astype(int))


def quadrant_checks(image, size):
    """Upper-left of the picture shows the top-left texel (red), and so on."""
    a, b = size // 2 - size // 8, size // 2 + size // 8
    assert colour_at(image, a, a) == tuple(QUADRANT_COLOURS[0, 0])
    assert colour_at(image, a, b) == tuple(QUADRANT_COLOURS[0, 1])
    assert colour_at(image, b, a) == tuple(QUADRANT_COLOURS[1, 0])
    assert colour_at(image, b, b) == tuple(QUADRANT_COLOURS[1, 1])


def multi_primitive_scene() -> trimesh.Scene:
    """A textured cube and an untextured red sphere (vertex colours) under a translated node."""
    scene = trimesh.Scene()
    scene.add_geometry(cube(), geom_name="box", node_name="box")
    sphere = trimesh.creation.icosphere(subdivisions=2, radius=0.5)
    sphere.visual = trimesh.visual.ColorVisuals(sphere, vertex_colors=np.tile([200, 30, 30, 255], (len(sphere.vertices), 1)))
    scene.add_geometry(sphere, geom_name="ball", node_name="ball", transform=trimesh.transformations.translation_matrix([3, 0, 0]))
    return scene


TINY_MESH = ["--views", "1", "--resolution", "32", "--depth-levels", "1", "--iterations", "1",
             "--vgg-weights", "random", "--texture-size", "32", "--style-scales", "1", "-q"]


def snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def refused(work: Path, argv: list[str], capsys, *needles: str) -> str:
    """Run the CLI; assert exit 2, one 'meshstyle: error:' line containing ``needles``, nothing changed."""
    before = snapshot(work)
    code = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 if not isinstance(code, SystemExit) else code.code == 2
    assert len(err) == 1 and err[0].startswith("meshstyle: error: "), err
    assert "Traceback" not in err[0]
    for needle in needles:
        assert needle in err[0], err[0]
    assert snapshot(work) == before
    return err[0]


def png_bytes(rgb: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(rgb).save(out, "PNG")
    return out.getvalue()


def quad_gltf(image_uri: str | None = None, buffer_media: str = "application/octet-stream",
              uv_scale: float = 1.0) -> dict:
    """A textured square as a .gltf document with its buffer (and image) embedded as data URIs."""
    pos = np.array([[-1, -1, 0], [1, -1, 0], [1, 1, 0], [-1, 1, 0]], np.float32)
    uv = np.array([[0, 1], [1, 1], [1, 0], [0, 0]], np.float32) * uv_scale
    idx = np.array([0, 1, 2, 0, 2, 3], np.uint16)
    blob = pos.tobytes() + uv.tobytes() + idx.tobytes()
    if image_uri is None:
        image_uri = "data:image/png;base64," + base64.b64encode(png_bytes(checker(16, 4))).decode()
    return {
        "asset": {"version": "2.0"}, "scene": 0, "scenes": [{"nodes": [0]}], "nodes": [{"mesh": 0}],
        "meshes": [{"primitives": [{"attributes": {"POSITION": 0, "TEXCOORD_0": 1}, "indices": 2, "material": 0}]}],
        "materials": [{"pbrMetallicRoughness": {"baseColorTexture": {"index": 0}}}],
        "textures": [{"source": 0}], "images": [{"uri": image_uri}],
        "buffers": [{"byteLength": len(blob),
                     "uri": f"data:{buffer_media};base64," + base64.b64encode(blob).decode()}],
        "bufferViews": [{"buffer": 0, "byteOffset": 0, "byteLength": 48},
                        {"buffer": 0, "byteOffset": 48, "byteLength": 32},
                        {"buffer": 0, "byteOffset": 80, "byteLength": 12}],
        "accessors": [{"bufferView": 0, "componentType": 5126, "count": 4, "type": "VEC3",
                       "min": [-1, -1, 0], "max": [1, 1, 0]},
                      {"bufferView": 1, "componentType": 5126, "count": 4, "type": "VEC2"},
                      {"bufferView": 2, "componentType": 5123, "count": 6, "type": "SCALAR"}]}


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
def work(tmp_path):
    """A folder with a small style image ``s.png`` and a copy of the spot cow (``spot/``); a module may
    override it, requesting this one, to add files."""
    Image.fromarray((np.random.default_rng(0).random((40, 40, 3)) * 255).astype(np.uint8)).save(tmp_path / "s.png")
    shutil.copytree(SPOT.parent, tmp_path / "spot")
    return tmp_path


@pytest.fixture
def spot_path():
    return SPOT


@pytest.fixture
def style_path():
    return STYLE


@pytest.fixture
def content_path():
    return CONTENT
