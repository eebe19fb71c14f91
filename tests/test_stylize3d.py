"""Mesh stylization with seeded random VGG weights and tiny settings."""

import numpy as np
import pytest
import torch

from conftest import multi_primitive_scene
from meshstyle.cli import main
from meshstyle.core.errors import MeshstyleError
from meshstyle.engine.texture import PyramidTexture
from meshstyle.mesh.textured import TexturedMesh
from meshstyle.stylize.mesh import _batch, stylize_mesh

TINY = dict(views=4, resolution=64, depth_levels=2, batch_views=4, iterations=12, vgg_weights="random",
            texture_size=128, seed=0)


def test_spot_end_to_end_style_loss_falls_and_outputs_reload(tmp_path, spot_path, style_path):
    # one render scale, so every step's loss is on the same renders (at 64 px the coarsest of three scales
    # has 16 px renders, whose relu3 cells, the default nnfm layers, never lie wholly on the object)
    result = stylize_mesh(spot_path, style_path, **{**TINY, "render_scales": 1, "iterations": 24})
    assert result.random_weights
    first, last = result.history[0]["style"], result.history[-1]["style"]
    assert last <= 0.7 * first, (first, last)
    source = TexturedMesh.load(spot_path)
    for ext in (".glb", ".obj"):
        result.mesh.save(tmp_path / f"cow{ext}")
        back = TexturedMesh.load(tmp_path / f"cow{ext}")
        a, b = source.scene.geometry[source.stylizable[0]], back.scene.geometry[back.stylizable[0]]
        assert np.abs(a.vertices - b.vertices).max() < 1e-6 and np.array_equal(a.faces, b.faces)
        new, old = back.texture(back.stylizable[0]), source.texture(source.stylizable[0])
        assert new.shape == old.shape and np.abs(new.astype(int) - old).mean() > 5


def test_input_mesh_is_not_modified(spot_path, style_path):
    mesh = TexturedMesh.load(spot_path)
    before = mesh.texture(mesh.stylizable[0]).copy()
    stylize_mesh(mesh, style_path, **{**TINY, "iterations": 1})
    assert np.array_equal(mesh.texture(mesh.stylizable[0]), before)


def test_multi_primitive_scene_untextured_part_unchanged(tmp_path, style_path):
    multi_primitive_scene().export(tmp_path / "scene.glb")
    mesh = TexturedMesh.load(tmp_path / "scene.glb")
    result = stylize_mesh(mesh, style_path, **{**TINY, "iterations": 3, "texture_size": 16})
    result.mesh.save(tmp_path / "out.glb")
    back = TexturedMesh.load(tmp_path / "out.glb")
    a, b = mesh.scene.geometry["ball"], back.scene.geometry["ball"]
    assert np.array_equal(a.vertices, b.vertices) and np.array_equal(a.faces, b.faces)
    assert np.array_equal(a.visual.vertex_colors, b.visual.vertex_colors)
    assert not np.array_equal(back.texture("box"), mesh.texture("box"))


def test_pyramid_texture_sums_to_init_and_stays_in_range():
    init = torch.rand(3, 32, 48)
    pyramid = PyramidTexture(init, levels=4)
    assert len(pyramid.levels) == 4 and pyramid.levels[3].shape[-2:] == (4, 6)
    assert len(PyramidTexture(torch.rand(3, 8, 8), levels=4).levels) == 2  # coarsest level >= 4 texels
    assert torch.allclose(pyramid(), init, atol=1e-5)
    assert float(pyramid.regularizer().detach()) == 0.0
    with torch.no_grad():
        pyramid.levels[2].add_(5.0)
    assert float(pyramid.regularizer().detach()) == pytest.approx(25 * 2 ** -2)
    pyramid.project_()
    assert float(pyramid().detach().max()) <= 1.0 + 1e-6


def test_view_batches_cover_every_view_each_epoch():
    seen = sorted(v for step in range(3) for v in _batch(step, 7, 3, seed=1))
    assert set(seen) == set(range(7))
    assert _batch(5, 7, 3, seed=1) == _batch(5, 7, 3, seed=1)


def test_checkpoint_and_resume(tmp_path, spot_path, style_path):
    ckpt = tmp_path / "run.ckpt"
    options = {**TINY, "iterations": 4, "checkpoint_every": 2, "checkpoint": str(ckpt)}
    full = stylize_mesh(spot_path, style_path, **options)
    assert ckpt.exists()
    resumed = stylize_mesh(spot_path, style_path, **{**options, "iterations": 6, "resume": str(ckpt)})
    assert len(full.history) == 4 and len(resumed.history) == 2
    with pytest.raises(MeshstyleError, match=r"other options \(--views 4 -> 5\)"):
        stylize_mesh(spot_path, style_path, **{**options, "views": 5, "resume": str(ckpt)})


@pytest.mark.parametrize("ema,scaled", [(0.0, {}), (0.5, {}), (0.0, {"resolution": 64, "render_scales": 2})])
def test_ctrl_c_then_resume_equals_the_uninterrupted_run(tmp_path, spot_path, style_path, ema, scaled):
    # with --ema the checkpoint carries the moving average, so the resumed export equals the full run's;
    # with two render scales (step 0 coarse, 1-3 full) the resumed run starts in the full scale
    ckpt = tmp_path / "run.ckpt"
    options = {**TINY, "views": 2, "batch_views": 1, "iterations": 4, "checkpoint_every": 100, "checkpoint": str(ckpt),
               "ema": ema, **scaled}
    full = stylize_mesh(spot_path, style_path, **options)

    def stop(info):
        if info.iteration == 2:
            raise KeyboardInterrupt

    part = stylize_mesh(spot_path, style_path, **options, callback=stop)
    assert part.interrupted and len(part.history) == 2 and ckpt.exists()
    resumed = stylize_mesh(spot_path, style_path, **{**options, "resume": str(ckpt)})
    assert part.history + resumed.history == full.history
    a, b = (r.mesh.texture(r.mesh.stylizable[0]) for r in (full, resumed))
    assert np.array_equal(a, b)


def test_mesh_command_end_to_end(tmp_path, spot_path, style_path, capsys):
    out, sheet = tmp_path / "cow.obj", tmp_path / "turntable.gif"
    code = main(["mesh", str(spot_path), "--style", str(style_path), "-o", str(out), "--preview", str(sheet),
                 "--views", "2", "--resolution", "32", "--depth-levels", "1", "--iterations", "2",
                 "--texture-size", "64", "--vgg-weights", "random", "--quiet"])
    assert code == 0
    assert out.exists() and out.with_suffix(".mtl").exists() and out.with_suffix(".png").exists() and sheet.exists()
    # the provenance names what ran, including the encoder's resolved precision (auto is never written)
    header = out.with_suffix(".mtl").read_text().splitlines()[0]
    assert "encoder: vgg19" in header and "vgg_weights: random" in header
    assert "precision: fp32" in header or "precision: bf16" in header


@pytest.mark.parametrize("args, message", [
    (["--views", "0"], "--views"),
    (["--style-weight", "-2"], "style-weight"),
    (["--angle-threshold", "120"], "angle-threshold"),
    (["--style", "missing.jpg"], "not found"),
    (["--style", "__file__"], "not an image"),
    (["--input", "points.obj"], "no triangle faces"),
    (["--output", "out.fbx"], "extension"),
])
def test_mesh_command_bad_input(tmp_path, spot_path, style_path, capsys, args, message):
    (tmp_path / "points.obj").write_text("v 0 0 0\nv 1 0 0\n")
    values = {"--input": str(spot_path), "--output": str(tmp_path / "out.glb"), "--style": str(style_path)}
    extra = []
    for flag, value in zip(args[::2], args[1::2]):
        value = __file__ if value == "__file__" else str(tmp_path / value) if value.endswith((".jpg", ".obj", ".fbx")) else value
        if flag in values:
            values[flag] = value
        else:
            extra += [flag, value]
    argv = ["mesh", values["--input"], "--style", values["--style"], "-o", values["--output"], "--vgg-weights", "random",
            "--quiet", *extra]
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.strip()]) == 1
    assert not any(p.suffix in (".glb", ".fbx", ".png") for p in tmp_path.iterdir())


def test_public_api_mirrors_the_cli():
    import meshstyle

    for name in ("stylize_mesh", "stylize_image", "synthesize_texture", "reconstruct_content", "TexturedMesh"):
        assert callable(getattr(meshstyle, name))
    # every mesh option of the API is a flag of the CLI
    from meshstyle.cli import build_parser

    help_text = build_parser()._subparsers._group_actions[0].choices["mesh"].format_help()
    for field in meshstyle.MeshOptions.__dataclass_fields__:
        if field not in ("depth_aware", "checkpoint"):
            assert "--" + field.replace("_", "-") in help_text, field
    assert "--no-depth-aware" in help_text


def test_same_seed_same_texture(spot_path, style_path):
    runs = [stylize_mesh(spot_path, style_path, **{**TINY, "iterations": 3, "views": 2, "batch_views": 2}) for _ in range(2)]
    textures = [r.mesh.texture(r.mesh.stylizable[0]) for r in runs]
    assert np.array_equal(textures[0], textures[1])
    other = stylize_mesh(spot_path, style_path, **{**TINY, "iterations": 3, "views": 2, "batch_views": 2, "seed": 1})
    assert not np.array_equal(other.mesh.texture(other.mesh.stylizable[0]), textures[0])


@pytest.mark.parametrize("batch_views, warned", [(1, True), (2, False)])
def test_lbfgs_on_minibatches_of_views_is_warned(spot_path, style_path, caplog, batch_views, warned):
    with caplog.at_level("WARNING", logger="meshstyle"):
        stylize_mesh(spot_path, style_path, **{**TINY, "iterations": 1, "views": 2, "batch_views": batch_views,
                                               "optimizer": "lbfgs"})
    assert any("L-BFGS sees another batch of views" in r.getMessage() for r in caplog.records) == warned


def _bench_mesh_module():
    import importlib.util
    import sys
    from pathlib import Path

    scripts = Path(__file__).resolve().parent.parent / "scripts"
    sys.path.insert(0, str(scripts))  # bench_mesh imports its neighbour benchlib
    try:
        spec = importlib.util.spec_from_file_location("bench_mesh", scripts / "bench_mesh.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(scripts))
    return module


def _scene_obj(tmp_path, name: str) -> TexturedMesh:
    """'bar': a cube stretched 8x along z (seen from the side its depth spans 3 render levels);
    'pair': two cubes 10 units apart (a wide frame with two clusters of object pixels, so crop tiles pay)."""
    import trimesh

    from conftest import checker, cube, textured

    one = cube(checker(64, 8))
    if name == "bar":
        one.vertices = one.vertices * np.array([1.0, 1.0, 8.0])
        mesh = one
    else:
        n = len(one.vertices)
        mesh = textured(trimesh.Trimesh(np.concatenate([one.vertices - [5, 0, 0], one.vertices + [5, 0, 0]]),
                                        np.concatenate([one.faces, one.faces + n]), process=False),
                        np.concatenate([one.visual.uv, one.visual.uv]), checker(64, 8))
    mesh.export(tmp_path / f"{name}.obj")
    return TexturedMesh.load(tmp_path / f"{name}.obj")


@pytest.mark.parametrize("flags, scene, resolution, measured", [
    (["--weighting", "gram"], "bar", 128, "loss"),
    (["--level-blend", "1.0"], "bar", 128, "weighted_px_per_step"),
    (["--crop-tiles", "1"], "pair", 256, "fed_px_per_step"),
])
def test_each_bench_mesh_flag_changes_what_it_measures(tmp_path, flags, scene, resolution, measured):
    """scripts/bench_mesh.py sets its flags as MeshOptions fields (no module globals): a run with the flag
    differs from the run without it in the figure the flag is meant to move."""
    from dataclasses import replace

    bench = _bench_mesh_module()
    mesh = _scene_obj(tmp_path, scene)
    style = torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(0))
    figures = []
    for argv in ([], flags):
        mesh_options, engine = bench.run_options(bench.parse_args(argv))
        mesh_options = replace(mesh_options, views=2, batch_views=2, resolution=resolution, style_size=64,
                               elevation=(0.0, 0.0))
        engine = {**engine, "precision": "fp32", "style_layers": "relu1_1,relu2_1", "content_layers": "relu2_1"}
        result, loss = bench.measure(mesh, style, mesh_options, engine, 1)
        figures.append(result.history[0]["total"] if measured == "loss"
                       else bench.level_pixels(loss, 2)["all"][measured])
    assert engine["vgg_weights"] == "random" and figures[0] != figures[1], figures
    assert bench.stylize3d.MultiViewLoss.__name__ == "MultiViewLoss"  # the instrumentation was undone


def test_api_and_cli_refuse_a_diverged_mesh_run(tmp_path, spot_path, style_path, capsys, monkeypatch):
    """One finite check inside stylize_mesh: the API raises, the CLI prints one line and writes nothing."""
    from conftest import TINY_MESH, refused
    from meshstyle.engine import objective

    real = objective.Objective.forward
    monkeypatch.setattr(objective.Objective, "forward",
                        lambda self, *a, **k: {key: v * float("nan") for key, v in real(self, *a, **k).items()})
    with pytest.raises(MeshstyleError, match="diverged"):
        stylize_mesh(spot_path, style_path, **{**TINY, "iterations": 2})
    refused(tmp_path, ["mesh", spot_path, "--style", style_path, "-o", tmp_path / "out.glb", *TINY_MESH], capsys,
            "diverged")
    assert not (tmp_path / "out.glb").exists()
