"""VGG layer names, shapes and weight loading (from files the tests write; no download)."""

import urllib.error

import pytest
import torch
import torchvision

from meshstyle.core.errors import MeshstyleError
from meshstyle.engine import features
from meshstyle.engine.features import VGGEncoder, layer_names


def test_layer_names_follow_the_paper():
    names = layer_names("vgg19")
    assert len(names) == len(torchvision.models.vgg19().features)
    assert names[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert names.index("relu4_2") == 22 and names[-1] == "pool5" and "relu5_4" in names
    assert len(layer_names("vgg16")) == len(torchvision.models.vgg16().features)
    assert "relu5_4" not in layer_names("vgg16")


def test_relu4_2_shape_and_cut_after_deepest_layer():
    enc = VGGEncoder(["relu1_1", "relu4_2"], weights="random:1")
    out = enc(torch.rand(2, 3, 64, 64))
    assert out["relu4_2"].shape == (2, 512, 8, 8)
    assert out["relu1_1"].shape == (2, 64, 64, 64)
    assert len(enc.body) == 23  # conv1_1 .. relu4_2
    assert all(not p.requires_grad for p in enc.parameters())


def test_unknown_layer_is_a_clear_error():
    with pytest.raises(MeshstyleError, match="relu9_9"):
        VGGEncoder(["relu9_9"], weights="random")


def _reference_features(state, image, upto):
    model = torchvision.models.vgg19().features
    model.load_state_dict(state)
    x = (image - torch.tensor(features.IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(features.IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        return model[:upto](x)


@pytest.mark.parametrize("layout", ["features_only", "full_model"])
def test_load_weights_from_state_dict_file(tmp_path, layout):
    torch.manual_seed(3)
    model = torchvision.models.vgg19()
    state = model.state_dict() if layout == "full_model" else model.features.state_dict()
    if layout == "features_only":
        state = {f"features.{k}": v for k, v in state.items()}
    path = tmp_path / "vgg.pth"
    torch.save(state, path)
    image = torch.rand(1, 3, 32, 32)
    enc = VGGEncoder(["relu2_1"], weights=str(path))
    expected = _reference_features(model.features.state_dict(), image, 7)
    assert torch.allclose(enc(image)["relu2_1"], expected, atol=1e-5)
    assert not enc.random_weights


def test_weights_from_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(features.WEIGHTS_ENV, "random:7")
    enc = VGGEncoder(["relu1_1"])
    assert enc.random_weights and enc.weights_spec == "random:7"
    other = VGGEncoder(["relu1_1"], weights="random:8")
    x = torch.rand(1, 3, 16, 16)
    assert not torch.allclose(enc(x)["relu1_1"], other(x)["relu1_1"])


def test_imagenet_weights_load_from_torchvision_cache(tmp_path, monkeypatch):
    """The real 'imagenet' path: torchvision finds the file in its cache and does not download."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(5)
    conv = torch.nn.Conv2d(3, 64, 3, padding=1)
    cache = features.expected_cache_file("vgg19")
    cache.parent.mkdir(parents=True)
    torch.save({"features.0.weight": conv.weight.data, "features.0.bias": conv.bias.data}, cache)
    enc = VGGEncoder(["conv1_1"], weights="imagenet")
    assert torch.equal(enc.body[0].weight, conv.weight.data)


def test_failed_download_names_cache_flag_and_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(MeshstyleError) as info:
        VGGEncoder(["relu1_1"], weights="imagenet")
    message = str(info.value)
    assert str(features.expected_cache_file("vgg19")) in message
    assert "--vgg-weights" in message and features.WEIGHTS_ENV in message


def test_bad_weights_files(tmp_path):
    with pytest.raises(MeshstyleError, match="not found"):
        VGGEncoder(["relu1_1"], weights=str(tmp_path / "missing.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(MeshstyleError, match="cannot read"):
        VGGEncoder(["relu1_1"], weights=str(junk))
    empty = tmp_path / "empty.pth"
    torch.save({"classifier.0.weight": torch.zeros(1)}, empty)
    with pytest.raises(MeshstyleError, match="features"):
        VGGEncoder(["relu1_1"], weights=str(empty))


def test_average_pooling_option():
    enc = VGGEncoder(["pool1"], weights="random", pooling="average")
    assert isinstance(enc.body[-1], torch.nn.AvgPool2d)
