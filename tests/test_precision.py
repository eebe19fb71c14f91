"""Encoder precision: which one ``auto`` picks, and bf16 features and gradients against float32."""

import math

import pytest
import torch

from meshstyle.core.errors import MeshstyleError
from meshstyle.engine import precision
from meshstyle.engine.features import VGGEncoder
from meshstyle.engine.objective import Objective, total
from meshstyle.engine.optimize import run
from meshstyle.engine.options import EngineOptions
from meshstyle.engine.runplan import make_plan
from meshstyle.engine.texture import PlainTexture

CPU = torch.device("cpu")


@pytest.mark.parametrize("amx", [True, False])
def test_auto_picks_bf16_for_vgg_on_amx_cpus_only(amx, monkeypatch):
    monkeypatch.setattr(precision, "cpu_has_amx", lambda: amx)
    assert precision.resolve_precision("auto", "vgg19", CPU) == ("bf16" if amx else "fp32")
    assert precision.resolve_precision("auto", "vgg16", CPU) == ("bf16" if amx else "fp32")
    # measured slower in bf16: never picked automatically
    assert precision.resolve_precision("auto", "mobilenetv2-magenta", CPU) == "fp32"
    assert precision.resolve_precision("fp32", "vgg19", CPU) == "fp32"
    assert precision.resolve_precision("bf16", "mobilenetv2-magenta", CPU) == "bf16"


def test_unknown_or_unsupported_precision_is_a_clear_error():
    with pytest.raises(MeshstyleError, match="unknown precision 'fp16'"):
        precision.resolve_precision("fp16", "vgg19", CPU)
    with pytest.raises(MeshstyleError, match="not mps"):
        precision.resolve_precision("bf16", "vgg19", torch.device("mps"))
    with pytest.raises(MeshstyleError, match="fp32 or bf16"):
        VGGEncoder(["relu1_1"], weights="random", precision="auto")


def test_bf16_features_are_float32_and_within_bfloat16_rounding_of_fp32():
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    layers = ["relu1_1", "relu3_1", "relu4_2"]
    full = VGGEncoder(layers, weights="random:2")(image)
    half = VGGEncoder(layers, weights="random:2", precision="bf16")(image)
    for name in layers:
        assert half[name].dtype == torch.float32 and half[name].shape == full[name].shape
        rel = float((half[name] - full[name]).norm() / full[name].norm())
        # bfloat16 keeps 8 significant bits (relative rounding 2^-9 = 0.2 %) per operation; ten layers deep
        # the error grows to a few percent, and it is never exactly zero (the cast did happen)
        assert 0 < rel < 0.05, (name, rel)


def _style_problem(prec: str, size: int = 48):
    gen = torch.Generator().manual_seed(0)
    options = EngineOptions(vgg_weights="random", style_weight=10.0, precision=prec, device="cpu")
    objective = Objective(make_plan(options))
    objective.set_style([torch.rand(3, size, size, generator=gen)], [1.0])
    content = torch.rand(1, 3, size, size, generator=gen)
    return objective, content, objective.content_targets(content)


def test_bf16_gradient_points_where_the_fp32_gradient_does():
    grads = {}
    for prec in ("fp32", "bf16"):
        objective, content, targets = _style_problem(prec)
        assert objective.encoder.precision == prec
        image = content.clone().requires_grad_(True)
        total(objective(image, content_targets=targets))["total"].backward()
        grads[prec] = image.grad.flatten()
    cosine = float(torch.nn.functional.cosine_similarity(grads["fp32"], grads["bf16"], dim=0))
    assert cosine > 0.97, cosine  # measured 0.98 (an unrelated direction: about 0)


def test_lbfgs_on_a_bf16_objective_converges_like_fp32():
    """L-BFGS keeps float32 parameters and history; only the encoder rounds. Over 30 steps its loss,
    recomputed in float32, falls as far as the float32 run's (within 10 %) and ends finite."""
    finals = {}
    reference, _, _ = _style_problem("fp32")
    for prec in ("fp32", "bf16"):
        objective, content, targets = _style_problem(prec)
        param = PlainTexture(content[0])
        result = run(param, lambda step, o=objective, p=param, t=targets: total(o(p()[None], content_targets=t)),
                     30, optimizer="lbfgs")
        with torch.no_grad():
            finals[prec] = float(total(reference(param()[None], content_targets=targets))["total"])
        first = result.history[0]["total"]
        assert math.isfinite(finals[prec]) and finals[prec] < 0.3 * first, (prec, first, finals[prec])
    assert finals["bf16"] < 1.1 * finals["fp32"], finals


def test_mesh_tiling_uses_the_call_cost_of_the_precision():
    """bf16 makes VGG's pixels cheaper but not its per-input cost: fewer tile cuts pay (more pixels per cut
    saved needed); encoders without a bf16 figure keep their float32 one."""
    from meshstyle.engine import encoders

    assert encoders.call_cost_pixels("vgg19", "bf16") > 2 * encoders.call_cost_pixels("vgg19", "fp32")
    mobilenet = "mobilenetv2-magenta"
    assert encoders.call_cost_pixels(mobilenet, "bf16") == encoders.call_cost_pixels(mobilenet, "fp32")
    with pytest.raises(MeshstyleError, match="unknown encoder"):
        encoders.call_cost_pixels("resnet", "bf16")


def test_auto_says_when_it_picks_bf16(monkeypatch, caplog):
    monkeypatch.setattr(precision, "cpu_has_amx", lambda: True)
    with caplog.at_level("INFO", logger="meshstyle"):
        objective = Objective(make_plan(EngineOptions(vgg_weights="random", style_layers="relu1_1",
                                                      content_layers="relu1_1", device="cpu")))
    assert objective.encoder.precision == "bf16"
    assert any("bfloat16" in r.getMessage() and "--precision fp32" in r.getMessage() for r in caplog.records)


def test_mobilenet_bf16_runs_under_autocast_and_hands_out_float32():
    pytest.importorskip("onnx2torch")
    from meshstyle.engine.mobilenet import MobileNetEncoder

    layers = ["stem_relu6", "block6_expand_relu6"]
    image = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    full = MobileNetEncoder(layers, jitter=0.0)(image)
    half = MobileNetEncoder(layers, jitter=0.0, precision="bf16")(image)
    for name in layers:
        assert half[name].dtype == torch.float32
        rel = float((half[name] - full[name]).norm() / full[name].norm())
        assert 0 < rel < 0.05, (name, rel)


@pytest.mark.parametrize("native", [True, False])
def test_auto_on_cuda_needs_native_bfloat16(native, monkeypatch):
    calls = []

    def supported(including_emulation=True):
        calls.append(including_emulation)
        return native or including_emulation

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", supported)
    assert precision.resolve_precision("auto", "vgg19", torch.device("cuda")) == ("bf16" if native else "fp32")
    assert calls == [False]
