"""Hostile and careless inputs (issue: hardening). Each case: exit status 2, one line naming the problem,
no traceback, no new files, inputs unchanged."""

from __future__ import annotations

import os
import pickle
import shutil
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import ASSETS, TINY_MESH, refused
from meshstyle.cli import main

SPOT_DIR = ASSETS / "meshes" / "spot"


@pytest.fixture
def work(work):
    """conftest's folder (a small style image, a copy of the spot cow) with a content image ``c.png``."""
    Image.fromarray(np.full((40, 40, 3), 128, np.uint8)).save(work / "c.png")
    return work


def refused_by_parser(work, argv, capsys, *needles):
    with pytest.raises(SystemExit) as info:
        main([str(a) for a in argv])
    assert info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("meshstyle: error: ")
    for needle in needles:
        assert needle in err[0], err[0]


def test_pickled_checkpoint_runs_no_code(work, capsys):
    marker = work / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    ckpt = work / "evil.ckpt"
    ckpt.write_bytes(pickle.dumps({"step": 1, "textures": Payload()}))
    with warnings.catch_warnings(record=True) as caught:  # a warning would print lines beside the error
        warnings.simplefilter("always")
        refused(work, ["mesh", work / "spot/cow.obj", "--style", work / "s.png", "-o", work / "out.glb",
                       "--resume", ckpt, *TINY_MESH], capsys, "not a meshstyle checkpoint")
    assert not marker.exists()
    assert not [w for w in caught if "pickle" in str(w.message)], [str(w.message) for w in caught]


def test_checkpoint_of_another_style_is_refused(work, capsys):
    args = ["mesh", work / "spot/cow.obj", "-o", work / "out.glb", *TINY_MESH, "--checkpoint-every", "1"]
    assert main([str(a) for a in [*args[:2], "--style", work / "s.png", *args[2:]]]) == 0
    Image.fromarray(np.zeros((40, 40, 3), np.uint8)).save(work / "other.png")
    refused(work, [*args[:2], "--style", work / "other.png", *args[2:], "--resume", work / "out.ckpt"], capsys,
            "another style image")


def test_output_beside_the_input_never_replaces_its_texture(work, capsys):
    # spot's texture is spot/cow_texture.png: a GLB named cow.glb would write its texture there
    refused(work, ["mesh", work / "spot/cow.obj", "--style", work / "s.png", "-o", work / "spot/cow.glb",
                   *TINY_MESH], capsys, "overwrite the input")


def test_output_equal_to_an_input(work, capsys):
    refused(work, ["image", work / "c.png", "--style", work / "s.png", "-o", work / "s.png", "--vgg-weights",
                   "random"], capsys, "overwrite the input")


def test_preview_equal_to_the_output(work, capsys):
    refused(work, ["mesh", work / "spot/cow.obj", "--style", work / "s.png", "-o", work / "o.glb", "--preview",
                   work / "o.glb", *TINY_MESH], capsys)


@pytest.mark.parametrize("flag,value,needle", [
    ("--lr", "1e308", "--lr"), ("--distance", "inf", "finite"), ("--style-scale", "inf", "finite"),
    ("--seed", "-1", "--seed"), ("--seed", str(2**64), "--seed"), ("--depth-levels", "0", "--depth-levels"),
    ("--vgg-weights", "random:abc", "random:SEED"), ("--content-weight", "nan", "finite"),
])


def test_out_of_range_values_are_refused_by_the_table(work, capsys, flag, value, needle):
    command = "image" if flag in ("--style-scale", "--content-weight") else "mesh"
    inputs = [work / "c.png"] if command == "image" else [work / "spot/cow.obj"]
    refused_by_parser(work, [command, *inputs, "--style", work / "s.png", "-o", work / "o.png"
                             if command == "image" else work / "o.glb", f"{flag}={value}"], capsys, needle)


@pytest.mark.parametrize("layers", ["pool6", "relu5_5", "relu6_1", "relu1_1:-1", "relu1_1:abc,relu2_1\nx"])
def test_bad_layer_names_one_line(work, capsys, layers):
    refused(work, ["texture", "--style", work / "s.png", "-o", work / "o.png", "--style-layers", layers,
                   "--vgg-weights", "random", "--iterations", "1", "--size", "32", "-q"], capsys)


def test_decompression_bomb_style_image(work, capsys):
    Image.new("1", (9000, 9000)).save(work / "bomb.png")
    refused(work, ["image", work / "c.png", "--style", work / "bomb.png", "-o", work / "o.png", "--vgg-weights",
                   "random"], capsys, "megapixels")


def test_fifo_as_style_does_not_hang(work, capsys):
    os.mkfifo(work / "fifo.png")
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("err", refused(
        work, ["image", work / "c.png", "--style", work / "fifo.png", "-o", work / "o.png", "--vgg-weights",
               "random"], capsys, "not a regular file")))
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "reading a FIFO hung"
    assert "err" in result


def test_out_of_memory_is_one_line(work, capsys, monkeypatch):
    from meshstyle.stylize import image

    def oom(*args, **kwargs):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory")

    monkeypatch.setattr(image, "stylize_image", oom)
    refused(work, ["image", work / "c.png", "--style", work / "s.png", "-o", work / "o.png", "--vgg-weights",
                   "random"], capsys, "out of memory", "--size")


def test_output_folder_problems_are_found_before_the_run(work, capsys, monkeypatch):
    (work / "folder.png").mkdir()
    refused(work, ["image", work / "c.png", "--style", work / "s.png", "-o", work / "folder.png",
                   "--vgg-weights", "random"], capsys, "folder")
    from meshstyle.core import outputs

    monkeypatch.setattr(outputs.os, "access", lambda *a: False)
    refused(work, ["image", work / "c.png", "--style", work / "s.png", "-o", work / "o.png",
                   "--vgg-weights", "random"], capsys, "not writable")
    monkeypatch.undo()
    monkeypatch.setattr(outputs.shutil, "disk_usage", lambda p: shutil._ntuple_diskusage(10, 10, 1024))
    refused(work, ["image", work / "c.png", "--style", work / "s.png", "-o", work / "o.png",
                   "--vgg-weights", "random"], capsys, "free")


def test_outputs_are_written_as_a_set(work, capsys, monkeypatch):
    from meshstyle.mesh import preview

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(preview, "before_after_sheet", broken)
    # one line, exit 2; the GLB (written first) is not renamed into place and no temporary file stays
    refused(work, ["mesh", work / "spot/cow.obj", "--style", work / "s.png", "-o", work / "out.glb",
                   "--preview", work / "sheet.png", *TINY_MESH], capsys, "cannot write", "disk full")
    assert not [p for p in work.iterdir() if p.name.startswith(".meshstyle-")]


def test_diverged_run_writes_nothing(work, capsys, monkeypatch):
    from meshstyle.engine import objective

    real = objective.Objective.forward

    def nan_forward(self, *args, **kwargs):
        return {k: v * float("nan") for k, v in real(self, *args, **kwargs).items()}

    monkeypatch.setattr(objective.Objective, "forward", nan_forward)
    refused(work, ["image", work / "c.png", "--style", work / "s.png", "-o", work / "o.png", "--vgg-weights",
                   "random", "--iterations", "2", "--size", "32", "-q"], capsys, "diverged")


def test_negative_elevation_band_parses(work):
    from meshstyle.cli import build_parser

    args = build_parser().parse_args(["mesh", "m.obj", "--style", "s.png", "-o", "o.glb", "--elevation", "-30,75"])
    assert args.elevation == (-30.0, 75.0)


def test_checkpoint_holds_only_tensors_and_plain_data(work):
    args = ["mesh", work / "spot/cow.obj", "--style", work / "s.png", "-o", work / "out.glb", *TINY_MESH,
            "--checkpoint-every", "1"]
    assert main([str(a) for a in args]) == 0
    state = torch.load(work / "out.ckpt", weights_only=True)
    assert state["format"].startswith("meshstyle-checkpoint")
