"""``--texture-size``: the optimized texture at the original's full size, and its limits.

A closed cube (seen from every camera) and a small quad inside it (seen by none) share one 1024 texture:
the cube's faces on the left of the atlas, the hidden quad's island on the right. A run at
``--texture-size 1024`` keeps the texture's size, changes the cube's island and leaves every texel whose
nearest island texel belongs to the hidden quad (its island and the gutter padded from it) byte-identical.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import trimesh
from PIL import Image
from scipy import ndimage

from conftest import cube, refused, textured
from meshstyle.cli import main
from meshstyle.core.errors import MeshstyleError
from meshstyle.mesh.padding import island_mask, pad_texture
from meshstyle.mesh.textured import TexturedMesh
from meshstyle.stylize import textures
from meshstyle.stylize.textures import WORKING_EDGE, working_edges, working_texture

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIZE = 1024
CUBE_UV = ((0.05, 0.05), (0.45, 0.95))      # (u, v) min and max of every cube face's island
HIDDEN_UV = ((0.6, 0.35), (0.9, 0.65))      # the hidden quad's island, 150 texels from the cube's


def _boxed_mesh(folder, size: int = SIZE) -> tuple:
    """OBJ path of the cube with the hidden quad, and its (size, size, 3) texture as written (random
    colours, padded beyond the islands as the export pads them)."""
    box = cube()
    (u0, v0), (u1, v1) = CUBE_UV
    box_uv = np.asarray(box.visual.uv) * [u1 - u0, v1 - v0] + [u0, v0]
    (h0, w0), (h1, w1) = HIDDEN_UV
    inner_v = np.array([[-0.3, -0.3, 0], [0.3, -0.3, 0], [0.3, 0.3, 0], [-0.3, 0.3, 0]], float)
    inner_uv = np.array([[h0, w0], [h1, w0], [h1, w1], [h0, w1]], float)
    n = len(box.vertices)
    mesh = trimesh.Trimesh(np.concatenate([box.vertices, inner_v]),
                           np.concatenate([box.faces, np.array([[0, 1, 2], [0, 2, 3]]) + n]), process=False)
    rgb = np.random.default_rng(0).integers(0, 256, (size, size, 3), dtype=np.uint8)
    textured(mesh, np.concatenate([box_uv, inner_uv]), rgb).export(folder / "box.obj")
    loaded = TexturedMesh.load(folder / "box.obj")
    name = loaded.stylizable[0]
    rgb = pad_texture(rgb, island_mask(loaded.corner_uv(name), (size, size)))
    texture_file = next(p for p in folder.iterdir() if p.suffix == ".png")
    Image.fromarray(rgb).save(texture_file)
    return folder / "box.obj", rgb, loaded.corner_uv(name)


def _hidden_region(corner_uv: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(texels whose nearest island texel lies in the hidden quad's island, the cube's island texels)."""
    islands = island_mask(corner_uv, (SIZE, SIZE))
    labels, count = ndimage.label(islands)
    assert count == 2
    _, (iy, ix) = ndimage.distance_transform_edt(~islands, return_indices=True)
    row = round((1 - (HIDDEN_UV[0][1] + HIDDEN_UV[1][1]) / 2) * SIZE)
    col = round((HIDDEN_UV[0][0] + HIDDEN_UV[1][0]) / 2 * SIZE)
    hidden = labels[iy, ix] == labels[row, col]
    return hidden, islands & ~hidden


@pytest.mark.slow
def test_a_1024_texture_run_keeps_the_size_and_the_texels_no_view_sees(tmp_path):
    obj, before, corner_uv = _boxed_mesh(tmp_path)
    Image.fromarray((np.random.default_rng(1).random((48, 48, 3)) * 255).astype(np.uint8)).save(tmp_path / "s.png")
    code = main(["mesh", str(obj), "--style", str(tmp_path / "s.png"), "-o", str(tmp_path / "out" / "box.obj"),
                 "--texture-size", "1024", "--views", "4", "--resolution", "64", "--depth-levels", "1",
                 "--render-scales", "1", "--iterations", "3", "--vgg-weights", "random", "--style-scales", "1",
                 "--threads", "1", "-q", "--no-color-match"])  # the colour step recolours every texel
    assert code == 0
    written = [p for p in (tmp_path / "out").iterdir() if p.suffix == ".png"]
    assert len(written) == 1
    after = np.asarray(Image.open(written[0]).convert("RGB"))
    assert after.shape == (SIZE, SIZE, 3)
    hidden, seen = _hidden_region(corner_uv)
    assert hidden.sum() > 0.2 * SIZE * SIZE                      # the hidden island and its share of gutter
    assert np.array_equal(after[hidden], before[hidden])
    changed = np.any(after != before, axis=-1)
    assert changed[seen].mean() > 0.5                            # the style reached the cube's texels


def test_at_the_original_size_the_working_texture_is_the_original_itself(tmp_path):
    obj, before, _ = _boxed_mesh(tmp_path, 128)
    mesh = TexturedMesh.load(obj)
    name = mesh.stylizable[0]
    full, start, _ = working_texture(mesh, name, 128)
    assert start is full and tuple(full.shape) == (3, 128, 128)
    assert np.array_equal(np.round(full.permute(1, 2, 0).numpy() * 255).astype(np.uint8), before)
    _, half, _ = working_texture(mesh, name, 64)
    assert tuple(half.shape) == (3, 64, 64)
    assert torch.allclose(half.mean((1, 2)), full.mean((1, 2)), atol=0.02)  # antialiased, not subsampled


def test_a_texture_size_above_the_original_is_refused_in_one_line(tmp_path, capsys):
    obj, _, _ = _boxed_mesh(tmp_path, 64)
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(tmp_path / "s.png")
    refused(tmp_path, ["mesh", obj, "--style", tmp_path / "s.png", "-o", tmp_path / "out.glb",
                       "--texture-size", "128", "--vgg-weights", "random", "-q"], capsys,
            "--texture-size 128", "larger than the original texture (64 texels")


def _two_parts(folder) -> TexturedMesh:
    """A GLB of two quads, textures 256 x 128 (wide) and 64 x 64."""
    from conftest import quad

    scene = trimesh.Scene()
    scene.add_geometry(quad(texture=np.zeros((128, 256, 3), np.uint8)), geom_name="big")
    scene.add_geometry(quad(texture=np.zeros((64, 64, 3), np.uint8), z=1.0), geom_name="small")
    scene.export(folder / "two.glb")
    return TexturedMesh.load(folder / "two.glb")


def test_working_edges_per_part_and_the_memory_bound(tmp_path, monkeypatch):
    mesh = _two_parts(tmp_path)
    assert working_edges(mesh, None) == {"big": min(WORKING_EDGE, 256), "small": 64}
    assert working_edges(mesh, 128) == {"big": 128, "small": 64}   # a smaller texture keeps its own size
    assert working_edges(mesh, 256) == {"big": 256, "small": 64}
    with pytest.raises(MeshstyleError, match="larger than the original texture .256 texels"):
        working_edges(mesh, 512)
    # 256 x 128 + 64 x 64 = 36864 working texels: refused under a bound of 36863, taken at 36864
    monkeypatch.setattr(textures, "MAX_WORKING_TEXELS", 256 * 128 + 64 * 64 - 1)
    with pytest.raises(MeshstyleError, match="would optimize 0.0 M texels over 2 part"):
        working_edges(mesh, 256)
    assert working_edges(mesh, 128) == {"big": 128, "small": 64}   # 128 x 64 + 64 x 64 fits
    monkeypatch.setattr(textures, "MAX_WORKING_TEXELS", 256 * 128 + 64 * 64)
    assert working_edges(mesh, 256) == {"big": 256, "small": 64}
