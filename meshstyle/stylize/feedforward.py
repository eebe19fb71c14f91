"""Feed-forward networks and the feed-forward image job (pretrained networks, no VGG).

- :class:`FeedForward`: the loaded networks of a run and the style parsing shared by every feed-forward job.
- :func:`stylize_image_feedforward`: one pass of Ghiasi et al.'s arbitrary network (any painting) or
  Dumoulin et al.'s 26-style network (``"preset:N"``), see :mod:`meshstyle.engine.feedforward`.

The mesh job is :mod:`meshstyle.stylize.feedforward_mesh`, its quality measures
:mod:`meshstyle.stylize.mesh_quality`, the preset contact sheet :mod:`meshstyle.stylize.preset_sheet`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..core.errors import MeshstyleError
from ..core.imageio import load_image, long_edge_size, resize_tensor
from ..engine import color
from ..engine.feedforward import (
    DEFAULT_VARIANT,
    ArbitraryStylizer,
    PresetStylizer,
    StylePredictor,
    apply_strength,
    blend_embeddings,
    preset_weights,
)
from ..engine.options import normalize_blend, resolve_device
from .options import PRESET_PREFIX, is_preset
from .results import ImageResult

StyleInput = str | os.PathLike | torch.Tensor


@dataclass
class ParsedStyle:
    """A parsed style: either preset weights (26,) or an embedding (100,)."""

    preset: torch.Tensor | None = None
    embedding: torch.Tensor | None = None
    models: tuple[str, ...] = ()


def _preset_index(item: str) -> int:
    text = item.strip()[len(PRESET_PREFIX):]
    try:
        return int(text)
    except ValueError:
        raise MeshstyleError(f"bad preset style {item!r}; write preset:N with N in 0..25") from None


def read_image(item: StyleInput, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    if isinstance(item, torch.Tensor):
        img = item.detach().float()
        img = img[0] if img.dim() == 4 else img
        if img.dim() != 3 or img.shape[0] != 3:
            raise MeshstyleError(f"image tensors must be (3, H, W), got {tuple(item.shape)}")
        if size is not None:
            img = resize_tensor(img, long_edge_size(img.shape[2], img.shape[1], size) if isinstance(size, int)
                                else size)
        return img.clamp(0, 1)
    return load_image(item, size)


class FeedForward:
    """The loaded networks of a run (lazily): predictor, arbitrary transformer, preset transformer.

    ``variant``: int8 handling of the two Magenta graphs, ``"folded"`` (default) or ``"exact"`` (see
    :func:`meshstyle.engine.pretrained.load_model`).
    """

    def __init__(self, device: torch.device | str = "cpu", cache_dir: str | os.PathLike | None = None,
                 variant: str = DEFAULT_VARIANT):
        self.device = torch.device(device)
        self.cache_dir = cache_dir
        self.variant = variant
        self._nets: dict[str, torch.nn.Module] = {}

    def _net(self, name: str, cls) -> torch.nn.Module:
        if name not in self._nets:
            self._nets[name] = cls(cache_dir=self.cache_dir, variant=self.variant).to(self.device)
        return self._nets[name]

    @property
    def predictor(self) -> StylePredictor:
        return self._net("predict", StylePredictor)

    @property
    def arbitrary(self) -> ArbitraryStylizer:
        return self._net("arbitrary", ArbitraryStylizer)

    @property
    def preset(self) -> PresetStylizer:
        return self._net("preset", PresetStylizer)

    def parse_style(self, style: StyleInput | Sequence[StyleInput], blend: Sequence[float] | None = None,
                    recolour: torch.Tensor | None = None) -> ParsedStyle:
        """Turn ``style`` (a path, a tensor (3, H, W), ``"preset:N"``, or a list of one kind) and the blend
        weights into preset weights (26,) or one embedding (100,). ``recolour``: a content image whose
        colour statistics the style images get first (``--preserve-color histogram``)."""
        items = list(style) if isinstance(style, list | tuple) else [style]
        if not items:
            raise MeshstyleError("give at least one style")
        weights = normalize_blend(list(blend) if blend is not None else None, len(items))
        presets = [is_preset(i) for i in items]
        if any(presets) and not all(presets):
            raise MeshstyleError("cannot blend preset:N styles with style images; use one kind")
        if all(presets):
            w = torch.zeros(26)
            for item, b in zip(items, weights):
                w = w + b * preset_weights(_preset_index(item))
            return ParsedStyle(preset=preset_weights(w).to(self.device), models=("multistyle26",))
        images = [read_image(i) for i in items]
        if recolour is not None:
            images = [color.match_color_histogram(img, recolour) for img in images]
            with torch.no_grad():
                emb = torch.cat([self.predictor(img[None].to(self.device)) for img in images])
        else:  # the same painting gives the same embedding: computed once per process (or handed in)
            emb = torch.cat([self.embed(img)[None] for img in images])
        return ParsedStyle(embedding=blend_embeddings(emb, weights),
                      models=("arbitrary_predict", "arbitrary_transform"))

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        """The style embedding (100,) the predictor gives the painting ``image`` (3, H, W) in [0, 1]; remembered
        by the image's bytes, so a painting is predicted once per process (:func:`remember_embedding`)."""
        key = (image_digest(image), str(self.device), self.variant)
        if key not in _EMBEDDINGS:
            with torch.no_grad():
                _EMBEDDINGS[key] = self.predictor(image[None].to(self.device))[0]
        return _EMBEDDINGS[key]

    def stylize(self, images: torch.Tensor, style: ParsedStyle, strength: float = 1.0,
                content_embedding: torch.Tensor | None = None, batch: int = 4,
                progress: Callable[[int], None] | None = None) -> torch.Tensor:
        """Stylize (N, 3, H, W) in [0, 1] with ``style``; ``strength`` < 1 moves the embedding toward
        ``content_embedding`` ((N, 100) or (100,); default: each image's own embedding) and fades the
        network's reconstruction error back in (:meth:`ArbitraryStylizer.with_strength`: strength 0 is
        the input itself) or, for presets, mixes pixels with the input. No gradient; ``batch`` images per
        network call; ``progress`` is called with the number of images each call finished."""
        outs = []
        with torch.no_grad():
            for k in range(0, images.shape[0], batch):
                x = images[k:k + batch].to(self.device)
                if style.preset is not None:
                    y = self.preset(x, style.preset)
                    if strength < 1.0:
                        y = apply_strength(y, x, strength)  # presets: pixel mix
                else:
                    emb, own = style.embedding[None], None
                    if 0.0 < strength < 1.0:
                        if content_embedding is None:
                            own = self.predictor(x)
                        else:
                            own = content_embedding.reshape(-1, 100).to(self.device)
                            own = own if own.shape[0] == 1 else own[k:k + batch]
                    y = self.arbitrary.with_strength(x, emb, own, strength)
                outs.append(y.clamp(0, 1))
                if progress is not None:
                    progress(x.shape[0])
        return torch.cat(outs)


#: (image digest, device, variant) -> embedding (100,): the style targets of the feed-forward method.
_EMBEDDINGS: dict[tuple[str, str, str], torch.Tensor] = {}
#: (device, cache folder, variant) -> the process's loaded networks.
_SHARED: dict[tuple[str, str, str], FeedForward] = {}


def image_digest(image: torch.Tensor) -> str:
    """sha256 of a float image tensor's shape and bytes (the key of a remembered style embedding)."""
    data = image.detach().float().contiguous().cpu().numpy()
    return hashlib.sha256(repr(data.shape).encode() + data.tobytes()).hexdigest()


def remember_embedding(image: torch.Tensor, embedding: torch.Tensor, device: torch.device | str = "cpu",
                       variant: str = DEFAULT_VARIANT) -> None:
    """Hand this process the embedding (100,) of the painting ``image`` (3, H, W) in [0, 1], computed
    elsewhere by :meth:`FeedForward.embed` with the same device and variant (a batch computes each style's
    embedding once and sends it to every job): :meth:`FeedForward.embed` then returns it unchanged."""
    _EMBEDDINGS[(image_digest(image), str(torch.device(device)), variant)] = embedding.to(device)


def shared_networks(device: torch.device | str = "cpu", cache_dir: str | os.PathLike | None = None,
                    variant: str = DEFAULT_VARIANT) -> FeedForward:
    """The process's :class:`FeedForward` for ``device``, ``cache_dir`` and ``variant``: each network is
    loaded (ONNX converted to torch, 0.3-0.7 s) once per process, not once per job. The networks are
    frozen (eval mode, no parameter gradients), so jobs cannot change them for the next."""
    key = (str(torch.device(device)), str(cache_dir), variant)
    if key not in _SHARED:
        _SHARED[key] = FeedForward(device, cache_dir, variant)
    return _SHARED[key]


def _out_size(img: torch.Tensor, size: int | tuple[int, int] | None) -> tuple[int, int]:
    """(width, height) for a long edge ``size`` or an exact ``(w, h)``; None keeps the image size."""
    w, h = img.shape[2], img.shape[1]
    if size is None:
        return w, h
    if isinstance(size, int):
        return long_edge_size(w, h, size)
    return int(size[0]), int(size[1])


def stylize_image_feedforward(content: StyleInput, style: StyleInput | Sequence[StyleInput], *,
                              size: int | tuple[int, int] | None = 512,
                              style_blend: Sequence[float] | None = None,
                              strength: float = 1.0, preserve_color: str = "none", device: str | torch.device = "auto",
                              cache_dir: str | os.PathLike | None = None,
                              networks: FeedForward | None = None) -> ImageResult:
    """Feed-forward style transfer of one image in one network pass (no optimization, no VGG).

    Args:
        content: path or tensor (3, H, W) in [0, 1].
        style: a painting (path or tensor) for Ghiasi et al.'s arbitrary network, ``"preset:N"`` (N in
            0..25) for Dumoulin et al.'s 26 styles, or a list of one kind mixed by ``style_blend``
            (embeddings or CIN weights are blended, Ghiasi §4.3 / Dumoulin §5).
        size: output long edge in px, or (width, height); ``None`` keeps the content size. The network
            runs fully convolutionally at that size (tiles above ~1536^2 px).
        strength: in [0, 1]; arbitrary styles interpolate the embedding toward the content's own
            embedding (Ghiasi §4) and add the network's reconstruction error back, scaled by
            ``1 - strength`` (:meth:`~meshstyle.engine.feedforward.ArbitraryStylizer.with_strength`),
            so 0 returns the content and 1 the full style; presets mix pixels with the content.
        preserve_color: ``"luminance"`` keeps the content's chroma (YIQ), ``"histogram"`` recolours the
            style images to the content's colour statistics before prediction (presets: the output is
            recoloured), see :mod:`meshstyle.engine.color`.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``, or a resolved :class:`torch.device`. cache_dir: model
            cache folder.
        networks: loaded :class:`FeedForward` to reuse across calls.

    Returns:
        :class:`~meshstyle.stylize.image.ImageResult` with ``image`` (3, H, W) in [0, 1] and an empty
        history (``random_weights`` False: the networks are pretrained).

    Raises:
        MeshstyleError: unreadable inputs, bad options, or the ``pretrained`` extra missing.
    """
    if preserve_color not in color.MODES:
        raise MeshstyleError(f"--preserve-color must be one of {', '.join(color.MODES)}, "
                             f"got {preserve_color!r}")
    if not 0.0 <= strength <= 1.0:
        raise MeshstyleError(f"--strength must be in [0, 1], got {strength}")
    nets = networks or shared_networks(resolve_device(device), cache_dir)
    base = read_image(content)
    img = resize_tensor(base, _out_size(base, size), mode="bicubic")
    items = list(style) if isinstance(style, list | tuple) else [style]
    recolour = img if preserve_color == "histogram" and not all(is_preset(i) for i in items) else None
    parsed = nets.parse_style(items, style_blend, recolour=recolour)
    out = nets.stylize(img[None], parsed, strength)[0].cpu()
    if preserve_color == "luminance":
        out = color.combine_luminance(out, img)
    elif preserve_color == "histogram" and parsed.preset is not None:
        out = color.match_color_histogram(out, img)
    return ImageResult(image=out.clamp(0, 1))
