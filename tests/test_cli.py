"""The meshstyle command end to end, and every bad-input case: one line, exit status 2, no output."""

import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from meshstyle.cli import main
from meshstyle.core.imageio import load_image

FAST = ["--vgg-weights", "random", "--iterations", "3", "--quiet"]


def run_cli(args, capsys):
    """Exit status and stderr of the command; argparse errors exit through SystemExit."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


def test_image_command(tmp_path, content_path, style_path, capsys):
    out = tmp_path / "out.png"
    code, _ = run_cli(["image", content_path, "--style", style_path, "--size", 64, "-o", out, *FAST], capsys)
    assert code == 0 and load_image(out).shape == (3, 43, 64)
    assert "RANDOM" in Image.open(out).info["Description"]


def test_image_command_blend_and_color_options(tmp_path, content_path, style_path, capsys):
    out = tmp_path / "out.jpg"
    code, _ = run_cli(["image", content_path, "--style", style_path, "--style", content_path, "--style-blend", "0.7,0.3",
                       "--preserve-color", "histogram", "--style-loss", "meanstd", "--size", 48, "-o", out, *FAST], capsys)
    assert code == 0 and out.exists()


def test_texture_command(tmp_path, style_path, capsys):
    out = tmp_path / "tex.webp"
    code, _ = run_cli(["texture", "--style", style_path, "--size", "40x24", "-o", out, "--style-loss", "sw", *FAST], capsys)
    assert code == 0 and load_image(out).shape == (3, 24, 40)


def test_reconstruct_command(tmp_path, content_path, capsys):
    out = tmp_path / "rec.png"
    code, _ = run_cli(["reconstruct", content_path, "--layer", "relu3_1", "--size", 48, "-o", out, *FAST], capsys)
    assert code == 0 and out.exists()


@pytest.mark.parametrize("save_every", [1, 0])
def test_save_every_writes_intermediate_results(tmp_path, content_path, style_path, capsys, monkeypatch,
                                                save_every):
    """A run that dies at step 3 of 4 (a crash in the progress callback, which runs before that step's
    save) has written the output only when --save-every asked for intermediate results."""
    from meshstyle.cli.progress import ProgressBar

    shown = ProgressBar.__call__

    def crash_at_step_3(self, info):
        if info.iteration == 3:
            raise RuntimeError("power cut")
        shown(self, info)

    monkeypatch.setattr(ProgressBar, "__call__", crash_at_step_3)
    out = tmp_path / "out.png"
    with pytest.raises(RuntimeError, match="power cut"):
        main([str(a) for a in ["image", content_path, "--style", style_path, "--size", 32, "-o", out,
                                "--save-every", save_every, "--vgg-weights", "random", "--iterations", 4, "-q"]])
    assert out.exists() == bool(save_every)
    if save_every:
        assert load_image(out).shape == (3, 21, 32) and "RANDOM" in Image.open(out).info["Description"]


def _bad_inputs(tmp_path, content_path, style_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    Image.fromarray(np.zeros((64, 64, 3), np.uint8) + 90).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "truncated.png").write_bytes(data[: len(data) // 2])
    out = tmp_path / "out.png"
    return {
        "missing content": ["image", tmp_path / "missing.png", "--style", style_path, "-o", out],
        "missing style": ["image", content_path, "--style", tmp_path / "nope.jpg", "-o", out],
        "not an image": ["image", text, "--style", style_path, "-o", out],
        "truncated": ["image", tmp_path / "truncated.png", "--style", style_path, "-o", out],
        "output is input": ["image", content_path, "--style", style_path, "-o", content_path],
        "unknown layer": ["image", content_path, "--style", style_path, "--style-layers", "relu9_1", "-o", out],
        "bad size": ["image", content_path, "--style", style_path, "--size", "big", "-o", out],
        "size zero": ["texture", "--style", style_path, "--size", "0x10", "-o", out],
        "bad extension": ["image", content_path, "--style", style_path, "-o", tmp_path / "out.xyz"],
        "negative weight": ["image", content_path, "--style", style_path, "--style-weight", "-1", "-o", out],
        "bad blend": ["image", content_path, "--style", style_path, "--style-blend", "0.5,0.5", "-o", out],
    }


CASES = ["missing content", "missing style", "not an image", "truncated", "output is input", "unknown layer",
         "bad size", "size zero", "bad extension", "negative weight", "bad blend"]


@pytest.mark.parametrize("case", CASES)
def test_bad_input_one_line_exit_2_no_output(tmp_path, content_path, style_path, capsys, case):
    args = _bad_inputs(tmp_path, content_path, style_path)[case]
    before = content_path.read_bytes()
    code, err = run_cli([*args, "--vgg-weights", "random", "--iterations", "1", "-q"], capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("meshstyle: error:") and "Traceback" not in err
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "out.xyz").exists()
    assert content_path.read_bytes() == before


def test_console_script_reports_error_without_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "meshstyle.cli", "image", str(tmp_path / "x.png"), "--style",
                           str(tmp_path / "y.png"), "-o", str(tmp_path / "o.png")], capture_output=True, text=True)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().startswith("meshstyle: error: image not found")


def test_help_teaches():
    proc = subprocess.run([sys.executable, "-m", "meshstyle.cli", "mesh", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for flag in ("--views", "--angle-threshold", "--no-depth-aware", "--preview", "--resume", "examples:"):
        assert flag in proc.stdout


def test_ctrl_c_writes_the_result_so_far(tmp_path, content_path, style_path, capsys, monkeypatch):
    from meshstyle.cli import progress

    calls = []

    def interrupt(self, info):
        calls.append(info.iteration)
        if info.iteration == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(progress.ProgressBar, "__call__", interrupt)
    out = tmp_path / "out.png"
    code, err = run_cli(["image", content_path, "--style", style_path, "--size", 32, "-o", out,
                         "--vgg-weights", "random", "--iterations", "50"], capsys)
    assert code == 130 and out.exists() and calls == [1, 2]
    assert "interrupted" in err


@pytest.mark.parametrize("name", ["sheet.png", "turntable.gif"])
def test_render_command(tmp_path, spot_path, capsys, name):
    out = tmp_path / name
    code, _ = run_cli(["render", spot_path, "-o", out, "--views", "4", "--size", "48", "-q"], capsys)
    assert code == 0
    img = Image.open(out)
    if name.endswith(".gif"):
        assert img.n_frames == 4 and img.size == (48, 48)
    else:
        assert img.size == (4 * 48, 48)


def _info(iteration, elapsed, iterations=10, stage_starts=(), scale=0, scales=1):
    from meshstyle.engine.optimize import StepInfo

    return StepInfo(scale, scales, iteration, iterations, {"style": 1.0}, elapsed, None, stage_starts)


def test_progress_estimate_comes_from_the_final_stage_only():
    """Coarse steps cost 1 s, final-stage steps 10 s: no estimate before the final stage has run two steps,
    then (steps left) x (rate of the final stage)."""
    from meshstyle.cli.progress import ProgressBar, clock

    bar = ProgressBar(quiet=True)
    elapsed, lefts = 0.0, []
    for step in range(1, 11):
        elapsed += 1.0 if step <= 4 else 10.0
        lefts.append(bar.seconds_left(_info(step, elapsed, stage_starts=(2, 4))))
    assert lefts[:5] == [None] * 5
    assert lefts[5:] == [pytest.approx(10.0 * (10 - s)) for s in range(6, 11)]
    assert clock(4 * 60 + 36) == "4:36" and clock(3725) == "1:02:05"


def test_progress_has_no_estimate_before_the_last_scale():
    from meshstyle.cli.progress import ProgressBar

    bar = ProgressBar(quiet=True)
    assert all(bar.seconds_left(_info(k, k, scales=2)) is None for k in range(1, 11))
    assert [bar.seconds_left(_info(k, 10 + 3 * k, scale=1, scales=2)) for k in range(1, 4)] == [None, 24.0, 21.0]


def test_progress_bar_opens_at_zero_and_counts_every_step(capsys):
    from meshstyle.cli.progress import ProgressBar

    bar = ProgressBar()
    bar(_info(0, 0.0, iterations=3))
    assert bar.bar.n == 0 and bar.bar.total == 3
    for k in (1, 2, 3):
        bar(_info(k, float(k), iterations=3))
        assert bar.bar.n == k
    bar.close()
    err = capsys.readouterr().err
    assert "0/3" in err.split("\r")[1] and "3/3" in err  # shown at 0 before the first step
    assert bar.bar.miniters == 1  # tqdm skips no update of a slow run (its dynamic miniters showed 0/3 -> 2/3)


def test_mesh_help_names_every_encoder_auto_may_pick_and_the_preset_styles(capsys):
    with pytest.raises(SystemExit):
        main(["mesh", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "VGG style loss" not in text
    assert all(name in text for name in ("VGG-19", "VGG-16", "mobilenetv2-magenta"))
    assert "preset:N (N in 0..25" in text
