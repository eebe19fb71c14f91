"""Checkpoints (issue 25, items 1-3): a resume is refused on changed inputs, options or damaged files (one
line, exit 2, nothing written) and, when accepted, equals the uninterrupted run for every encoder and
optimizer."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import TINY_MESH, checker, cube, refused
from meshstyle.cli import main
from meshstyle.mesh.textured import TexturedMesh
from meshstyle.stylize.mesh import stylize_mesh

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def first_run(work) -> list:
    """Run the tiny mesh job once with checkpoints; returns its argv (without --resume)."""
    argv = ["mesh", work / "spot/cow.obj", "--style", work / "s.png", "-o", work / "out.glb", *TINY_MESH,
            "--checkpoint-every", "1"]
    assert main([str(a) for a in argv]) == 0
    assert (work / "out.ckpt").is_file()
    return argv


def test_checkpoint_loads_with_weights_only_and_records_inputs(work):
    first_run(work)
    state = torch.load(work / "out.ckpt", weights_only=True)
    inputs = state["fingerprint"]["inputs"]
    assert set(inputs) == {"mesh file", "file cow.mtl", "file cow_texture.png", "style image 1"}
    assert all(len(v) == 64 for v in inputs.values())
    assert isinstance(state["checksum"], str) and set(state["extra"]["rng"]) >= {"torch.global"}


@pytest.mark.parametrize("change,needle", [
    ("texture", "file cow_texture.png changed"),
    ("uvs", "mesh file changed"),
    ("mtl", "file cow.mtl changed"),
])
def test_resume_on_a_changed_asset_is_refused(work, capsys, change, needle):
    argv = first_run(work)
    spot = work / "spot"
    if change == "texture":
        rgb = np.asarray(Image.open(spot / "cow_texture.png").convert("RGB")).copy()
        rgb[0, 0] = 255 - rgb[0, 0]
        Image.fromarray(rgb).save(spot / "cow_texture.png")
    elif change == "uvs":  # swap the first two texture coordinates: same counts, other mapping
        lines = (spot / "cow.obj").read_text().splitlines(keepends=True)
        vt = [i for i, line in enumerate(lines) if line.startswith("vt ")]
        lines[vt[0]], lines[vt[1]] = lines[vt[1]], lines[vt[0]]
        (spot / "cow.obj").write_text("".join(lines))
    else:
        (spot / "cow.mtl").write_text((spot / "cow.mtl").read_text() + "\n# edited\n")
    refused(work, [*argv, "--resume", work / "out.ckpt"], capsys, needle, "resume with the same files")


def test_resume_with_other_options_names_them(work, capsys):
    argv = first_run(work)
    refused(work, [*argv, "--seed", "5", "--resume", work / "out.ckpt"], capsys, "other options", "--seed 0 -> 5")


def test_flipped_bytes_in_tensor_data_are_refused(work, capsys):
    argv = first_run(work)
    data = bytearray((work / "out.ckpt").read_bytes())
    with zipfile.ZipFile(work / "out.ckpt") as archive:  # torch stores tensors uncompressed: find the largest
        entry = max(archive.infolist(), key=lambda i: i.file_size)
        payload = archive.read(entry)
    start = bytes(data).find(payload)
    assert start > 0 and len(payload) > 400
    for k in range(200):
        data[start + 100 + k] ^= 0x7F
    (work / "out.ckpt").write_bytes(bytes(data))
    torch.load(work / "out.ckpt", weights_only=True)  # torch itself notices nothing
    refused(work, [*argv, "--resume", work / "out.ckpt"], capsys, "damaged", "checksum")


def test_truncated_checkpoint_is_refused_in_our_words(work, capsys):
    argv = first_run(work)
    data = (work / "out.ckpt").read_bytes()
    (work / "out.ckpt").write_bytes(data[:len(data) // 2])
    line = refused(work, [*argv, "--resume", work / "out.ckpt"], capsys, "truncated or damaged")
    assert "central directory" not in line and "PytorchStreamReader" not in line


# item 3: resume equals the uninterrupted run ----------------------------------------------------------

def _mesh_run(mesh, style, encoder, optimizer, **extra):
    kwargs = dict(views=2, iterations=6, resolution=48, depth_levels=1, texture_size=32, style_scales=(1.0,),
                  encoder=encoder, optimizer=optimizer, seed=3)
    if encoder == "vgg19":
        kwargs["vgg_weights"] = "random"
    return stylize_mesh(mesh, style, **kwargs, **extra)


def _check_resume(tmp_path, monkeypatch, encoder: str, optimizer: str, inside_a_step: bool) -> None:
    """Interrupt a run (Ctrl-C after step 3, or inside step 5 after its first render drew its jitter),
    resume it from its checkpoint, and compare texture and losses with the uninterrupted run."""
    mesh = TexturedMesh(cube(checker(32, 4)))
    style = torch.rand(3, 40, 40, generator=torch.Generator().manual_seed(1))
    full = _mesh_run(mesh, style, encoder, optimizer)
    ckpt = str(tmp_path / "run.ckpt")
    if not inside_a_step:
        def stop(info):
            if info.iteration == 3:
                raise KeyboardInterrupt
        part = _mesh_run(mesh, style, encoder, optimizer, checkpoint=ckpt, checkpoint_every=100, callback=stop)
    else:
        from meshstyle.engine import objective

        real, calls = objective.Objective.forward, []

        def interrupted(self, *args, **kwargs):  # 2 views per step: call 10 is step 5's second render
            calls.append(1)
            if len(calls) == 4 * 2 + 2:
                raise KeyboardInterrupt
            return real(self, *args, **kwargs)

        monkeypatch.setattr(objective.Objective, "forward", interrupted)
        part = _mesh_run(mesh, style, encoder, optimizer, checkpoint=ckpt, checkpoint_every=100)
        monkeypatch.undo()
    assert part.interrupted and 0 < len(part.history) < 6
    resumed = _mesh_run(mesh, style, encoder, optimizer, checkpoint=ckpt, checkpoint_every=100, resume=ckpt)
    name = mesh.stylizable[0]
    before, after = full.mesh.texture(name).astype(int), resumed.mesh.texture(name).astype(int)
    assert np.abs(before - mesh.texture(name).astype(int)).max() > 10  # the run changed the texture
    assert np.array_equal(before, after)
    assert [h["total"] for h in full.history[len(part.history):]] == [h["total"] for h in resumed.history]


@pytest.mark.parametrize("encoder", ["mobilenetv2-magenta", "vgg19"])
@pytest.mark.parametrize("optimizer", ["adam", "lbfgs"])
def test_resumed_run_equals_the_uninterrupted_one(tmp_path, monkeypatch, encoder, optimizer):
    _check_resume(tmp_path, monkeypatch, encoder, optimizer, inside_a_step=False)


def test_resume_after_ctrl_c_inside_a_step_equals_the_uninterrupted_run(tmp_path, monkeypatch):
    """The jitter drawn by the interrupted step's first render is rolled back with its parameters."""
    _check_resume(tmp_path, monkeypatch, "mobilenetv2-magenta", "adam", inside_a_step=True)
