"""Region masks for 2D style transfer (issue 27: ``meshstyle image photo.jpg --mask regions.png --style 1=a.jpg
--style 2=b.jpg``): each region of a mask gets its own style, label 0 keeps the content.

**The mask file** (read like every other image, :func:`~meshstyle.core.imageio.open_image`: a regular file, at
most 67 megapixels, fully decoded, EXIF orientation applied) is either

* a *label image*: one channel (Pillow modes ``1``, ``L``, ``P``, ``I``, ``I;16``; ``LA``/``PA``: the first
  channel), each pixel's value (a ``P`` image: its palette index) is its label 0, 1, 2, ...; or
* a *colour-keyed image* (``RGB``; ``RGBA``: alpha ignored): each distinct colour is a region. Colours are
  numbered in ascending order of their hex code ``#rrggbb``; black ``#000000``, when present, is label 0 (the
  background) and the others are 1, 2, ...; without black the lowest colour is 1. A style can name a region
  by that number or by its colour: ``--style '#ff0000=a.jpg'``. Save colour masks losslessly (PNG): JPEG
  noise makes thousands of colours, which is refused (more than :data:`MAX_REGIONS`).

**Styles**: ``--style LABEL=painting`` (the ``NAME=path`` items of the mesh command's per-part styles, parsed
by the same :func:`~meshstyle.stylize.parts.split_part_styles`) gives region LABEL its style; several items
for one label are blended equally; plain ``--style painting`` items (blended by ``--style-blend``) go to every
non-zero label without one of its own. Label 0 is the background: it has no style term and the output keeps
the content's pixels there exactly (:meth:`Regions.keep_background`).

**The loss** (Gatys et al., "Controlling Perceptual Factors in Neural Style Transfer", CVPR 2017, spatial
control with guided Gram matrices): the mask is resized to the output size (nearest neighbour; a mask of
another size is resized with a log line), each region's indicator map is box-downsampled to every
coarse-to-fine scale (soft at region borders) and then, by the style statistic, to every layer's grid
(:func:`~meshstyle.engine.losses.resize_weight`), where it is the weight ``w_r`` of that region's statistic:
for Gram matrices ``G_r = sum_p w_r(p) f_p f_p^T / sum_p w_r(p)`` (Gatys 2017 multiply the features by the
guide, ``(F o T_r)(F o T_r)^T``; with binary guides the two differ only by the normalization, which here
makes the value independent of the region's size). The style loss is
``sum_r share_r * distance(G_r, target_r)`` where ``target_r`` is the Gram matrix of region r's style image(s)
and ``share_r`` is the region's share of the image's pixels (Gatys 2017's region weights ``lambda_r``; as the
mesh command weighs per-part styles), so per pixel the balance of style and content is that of a run
without a mask. One encoder pass serves every region. The other style statistics (``--style-loss``) take the
same weights. The content loss stays over the whole image.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import MeshstyleError
from ..core.imageio import open_image, resize_tensor
from ..engine.losses import ObjectCells, resize_weight
from ..engine.objective import Objective
from ..engine.options import EngineOptions, normalize_blend
from ..engine.runplan import RunPlan
from .parts import split_part_styles

log = logging.getLogger("meshstyle")

#: At most this many distinct labels or colours in a mask (a JPEG-compressed colour mask has thousands).
MAX_REGIONS = 255
LABEL_MODES = ("1", "L", "P", "I", "I;16", "I;16B", "I;16L", "I;16N", "LA", "PA")
COLOUR_MODES = ("RGB", "RGBA")
MaskInput = str | os.PathLike | torch.Tensor


def colour_labels(rgb: np.ndarray) -> tuple[np.ndarray, dict[int, str]]:
    """Labels of a colour-keyed mask ``rgb`` (H, W, 3) uint8: each distinct colour a label, in ascending order of
    ``#rrggbb`` (black, if present, is 0; else the first colour is 1).

    Returns:
        labels (H, W) int64 and ``{label: "#rrggbb"}``.

    Raises:
        MeshstyleError: more than :data:`MAX_REGIONS` colours.
    """
    rgb = np.asarray(rgb, np.int64)
    code = (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]
    colours, inverse = np.unique(code, return_inverse=True)
    if len(colours) > MAX_REGIONS:
        raise MeshstyleError(f"the colour mask has {len(colours)} distinct colours (at most {MAX_REGIONS}): paint "
                             f"regions in flat colours and save the mask losslessly (PNG, not JPEG)")
    first = 0 if colours[0] == 0 else 1
    names = {i + first: f"#{int(c):06x}" for i, c in enumerate(colours)}
    return inverse.reshape(code.shape).astype(np.int64) + first, names


def _from_pil(img, where: str) -> tuple[np.ndarray, dict[int, str] | None]:
    """(labels (H, W) int64, colour names or None) of a decoded Pillow image (see the module docstring)."""
    if img.mode in COLOUR_MODES:
        return colour_labels(np.asarray(img.convert("RGB")))
    if img.mode not in LABEL_MODES:
        raise MeshstyleError(f"mask {where} is a {img.mode} image: a mask is a label image (one channel: L, P, I) "
                             f"or a colour image (RGB) with one flat colour per region")
    if img.mode in ("LA", "PA"):
        img = img.getchannel(0)
    labels = np.asarray(img).astype(np.int64)
    if labels.min() < 0:
        raise MeshstyleError(f"mask {where} has negative labels; labels are 0, 1, 2, ...")
    return labels, None


def read_mask(mask: MaskInput) -> tuple[torch.Tensor, dict[int, str] | None]:
    """A mask as labels (H, W) int64 and, for a colour-keyed mask, ``{label: "#rrggbb"}`` (else None).

    Args:
        mask: an image file (label or colour-keyed, see the module docstring) or a tensor (H, W) of integer
            (or bool) labels >= 0.

    Raises:
        MeshstyleError: an unreadable or non-image file, an unsupported image mode, negative labels, a
            tensor that is not (H, W) integers, more than :data:`MAX_REGIONS` colours.
    """
    if isinstance(mask, torch.Tensor):
        if mask.dim() != 2 or mask.is_floating_point() or mask.is_complex():
            raise MeshstyleError(f"a mask tensor must be (H, W) integer labels, got {tuple(mask.shape)} "
                                 f"{str(mask.dtype).replace('torch.', '')}")
        labels = mask.detach().cpu().long()
        if labels.numel() == 0 or int(labels.min()) < 0:
            raise MeshstyleError("a mask tensor must be non-empty with labels >= 0")
        return labels, None
    labels, names = _from_pil(open_image(mask), str(mask))
    return torch.from_numpy(labels), names


def label_of(key: str, names: dict[int, str] | None, item: str) -> int:
    """The label a style key names: a number, or ``#rrggbb`` in a colour-keyed mask (``names``).

    Raises:
        MeshstyleError: a key that is neither, a colour key with a label mask, or a colour the mask lacks.
    """
    if key.startswith("#"):
        if names is None:
            raise MeshstyleError(f"--style {item}: a colour key needs a colour (RGB) mask; this mask is a label "
                                 f"image, so name regions by their label number")
        found = [label for label, name in names.items() if name == key.lower()]
        if not found:
            raise MeshstyleError(f"--style {item}: the mask has no colour {key}; its colours are "
                                 f"{_listing(names)}")
        return found[0]
    if not key.isdigit():
        raise MeshstyleError(f"--style {item}: with --mask, the key before '=' is a label number or a #rrggbb "
                             f"colour of the mask")
    return int(key)


def _listing(names: dict[int, str]) -> str:
    return ", ".join(f"{name} (label {label})" for label, name in sorted(names.items()))


def _labels_text(present: list[int], names: dict[int, str] | None) -> str:
    return _listing({k: names[k] for k in present}) if names else ", ".join(map(str, present))


@dataclass
class Regions:
    """The regions of a mask and their styles.

    Attributes:
        labels: (H, W) int64 labels as read from the mask (its own size).
        keys: the non-zero labels present in the mask, ascending: one style region each.
        counts: style items per region (in ``items`` order).
        items: every region's style items (paths or tensors), flattened, region by region.
        blend: blend weight of each item: each region's weights sum to ``1 / len(keys)`` (pooled as the
            mesh command pools per-part styles, e.g. for ``--color-match``).
    """

    labels: torch.Tensor
    keys: list[int]
    counts: list[int]
    items: list
    blend: list[float]

    def at(self, size: tuple[int, int]) -> torch.Tensor:
        """Labels (H, W) int64 at ``size`` = (width, height), nearest neighbour (pixel centres)."""
        w, h = size
        if tuple(self.labels.shape) == (h, w):
            return self.labels
        resized = F.interpolate(self.labels[None, None].double(), size=(h, w), mode="nearest-exact")
        return resized[0, 0].round().long()

    def indicators(self, size: tuple[int, int]) -> torch.Tensor:
        """(K, H, W) float {0, 1}: region k's pixels (label ``keys[k]``) at ``size`` = (width, height)."""
        labels = self.at(size)
        return torch.stack([(labels == k).float() for k in self.keys])

    def keep_background(self, image: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
        """``image`` (3, H, W) with the label-0 pixels (mask resized to its size, nearest) replaced by those of
        ``content`` (3, h, w; resized bicubically to (H, W) when its size differs)."""
        size = (image.shape[2], image.shape[1])
        background = self.at(size) == 0
        if not bool(background.any()):
            return image
        return torch.where(background[None], resize_tensor(content, size).to(image), image)

    def objective(self, plan: RunPlan, size: tuple[int, int]) -> MaskedObjective:
        """The :class:`MaskedObjective` of an output of ``size`` = (width, height), logging a resized mask."""
        h, w = self.labels.shape
        if (w, h) != tuple(size):
            stretch = abs(np.log((w / h) / (size[0] / size[1])))
            (log.warning if stretch > 0.01 else log.info)(
                "the mask (%dx%d px) is resized to the output (%dx%d px), nearest neighbour%s", w, h, *size,
                "; its aspect ratio differs from the content's" if stretch > 0.01 else "")
        return MaskedObjective(plan, self.indicators(size), self.counts)


def _region_items(present: list[int], names, plain: list, keyed: list[tuple[str, str]]) -> dict[int, list]:
    """Style items of each non-zero label in ``present`` (see the module docstring).

    Raises:
        MeshstyleError: a key naming label 0 or a label the mask lacks, a label without a style, a plain style
            that no label takes, or a mask with only label 0.
    """
    own: dict[int, list] = {}
    for key, path in keyed:
        item = f"{key}={path}"
        label = label_of(key, names, item)
        if label == 0:
            raise MeshstyleError(f"--style {item}: label 0 is the background, which keeps the content; "
                                 f"it takes no style")
        if label not in present:
            raise MeshstyleError(f"--style {item}: the mask has no label {label}; its labels are "
                                 f"{_labels_text(present, names)}")
        own.setdefault(label, []).append(path)
    regions = [label for label in present if label != 0]
    if not regions:
        raise MeshstyleError("the mask has only label 0 (the background, which keeps the content): no region "
                             "to restyle")
    for label in regions:
        if not own.get(label, plain):
            shown = names[label] if names else str(label)
            raise MeshstyleError(f"label {label}{f' ({shown})' if names else ''} of the mask has no style: give "
                                 f"--style {shown}=PAINTING or a --style without a label (label 0 keeps the content)")
    if plain and all(label in own for label in regions):
        shown = "tensor" if isinstance(plain[0], torch.Tensor) else plain[0]
        raise MeshstyleError(f"--style {shown}: every region of the mask has its own style, so a style without a "
                             f"label is used by none")
    return {label: own.get(label, plain) for label in regions}


def style_regions(style, mask: MaskInput | None, options: EngineOptions, init=None
                  ) -> tuple[list, list[float], Regions | None]:
    """The style items, their blend weights and the :class:`Regions` (None without a mask) of a 2D run.

    Without a mask: the items as given and ``normalize_blend(style_blend)``. With one: every region's items
    flattened, each region's blend (``style_blend`` for the plain styles, equal for labelled ones) divided by
    the number of regions.

    Raises:
        MeshstyleError: a ``LABEL=path`` style without a mask; with a mask: the feed-forward method or
            ``init="feedforward"``, a bad mask (:func:`read_mask`), a label or style mismatch
            (:func:`_region_items`), ``style_blend`` that does not fit the styles without a label.
    """
    items = list(style) if isinstance(style, list | tuple) else [style]
    plain, keyed = split_part_styles(items)
    if mask is None:
        if keyed:
            raise MeshstyleError(f"--style {keyed[0][0]}={keyed[0][1]}: a style for one region of the image "
                                 f"(LABEL=PAINTING) needs --mask")
        return items, normalize_blend(options.style_blend, len(items)), None
    if options.method == "feedforward" or (isinstance(init, str) and init == "feedforward"):
        raise MeshstyleError("--mask needs --method optimize (and not --init feedforward): the feed-forward "
                             "networks take one style for the whole image")
    labels, names = read_mask(mask)
    present = sorted(int(v) for v in torch.unique(labels))
    if options.style_blend is not None and not plain:
        raise MeshstyleError("--style-blend weighs the styles without a label, and every style has one")
    per_label = _region_items(present, names, plain, keyed)
    keys = sorted(per_label)
    flat, blend = [], []
    for label in keys:
        group = per_label[label]
        own = group is not plain
        weights = [1 / len(group)] * len(group) if own else normalize_blend(options.style_blend, len(plain))
        flat += group
        blend += [b / len(keys) for b in weights]
    return flat, blend, Regions(labels, keys, [len(per_label[k]) for k in keys], flat, blend)


class MaskedObjective(Objective):
    """:class:`~meshstyle.engine.objective.Objective` whose style term is the share-weighted sum of guided
    style statistics of mask regions (module docstring; Gatys et al. CVPR 2017).

    Args:
        plan: the run's :class:`~meshstyle.engine.runplan.RunPlan`, as for :class:`Objective`.
        indicators: (K, H, W) float in [0, 1], region k's pixels at the output size.
        counts: style images per region, in the order :meth:`set_style` receives them.

    A 2D run calls it like the plain objective, with ``style_weight`` the :class:`ObjectCells` (or the (1, 1,
    H', W') map) of the image inside its mirrored frame; each region's weight is its indicator, area-resized to
    the image's box inside that frame (soft at borders at coarser scales), 0 on the frame.
    """

    def __init__(self, plan: RunPlan, indicators: torch.Tensor, counts: list[int]):
        super().__init__(plan)
        self.indicators, self.counts = indicators, list(counts)
        self.region_targets: list[dict] = []
        self._weights: dict[tuple[int, ...], list[tuple[torch.Tensor, float]]] = {}

    @torch.no_grad()
    def set_style(self, images: list[torch.Tensor], blend: list[float], own: dict[str, torch.Tensor] | None = None,
                  strength: float = 1.0) -> None:
        """Per region, the targets of its images (3, H, W) in [0, 1] (``counts`` of them, in order), mixed by
        its share of ``blend`` renormalized to sum 1; ``own`` and ``strength`` as for :class:`Objective` (the
        whole content's own features, for every region)."""
        self.region_targets, start = [], 0
        for n in self.counts:
            part = blend[start:start + n]
            super().set_style(images[start:start + n], [b / sum(part) for b in part], own, strength)
            self.region_targets.append(dict(self.style.targets))
            start += n

    def region_weights(self, frame: torch.Tensor) -> list[tuple[torch.Tensor, float]]:
        """Per region, its weight map (1, 1, H', W') inside ``frame`` (1, 1, H', W') {0, 1} (the image's box)
        and its share of the image's pixels."""
        key = tuple(frame.shape)
        if key not in self._weights:
            rows = torch.nonzero(frame[0, 0].any(1)).squeeze(1)
            cols = torch.nonzero(frame[0, 0].any(0)).squeeze(1)
            top, left = int(rows[0]), int(cols[0])
            h, w = int(rows[-1]) + 1 - top, int(cols[-1]) + 1 - left
            soft = resize_weight(self.indicators[:, None], (h, w)).to(frame)   # (K, 1, h, w) box filter
            placed = frame.new_zeros(len(self.counts), 1, *frame.shape[-2:])
            placed[..., top:top + h, left:left + w] = soft
            self._weights[key] = [(placed[k:k + 1], float(placed[k].sum()) / (h * w)) for k in range(len(placed))]
        return self._weights[key]

    def forward(self, renders: torch.Tensor, *, style_weight=None, content_targets=None,
                content_weight=None) -> dict[str, torch.Tensor]:
        """Terms ``{"style", "content"}`` of renders (N, 3, H', W') as :meth:`Objective.forward`; the style term
        sums every region's statistic, each weighted by its share of the image."""
        feats = self.encoder(renders)
        out = {}
        if self.style is not None and self.options.style_weight > 0:
            frame = style_weight.active if isinstance(style_weight, ObjectCells) else style_weight
            if frame is None:
                frame = renders.new_ones(1, 1, *renders.shape[-2:])
            style = renders.new_zeros(())
            for targets, (weight, share) in zip(self.region_targets, self.region_weights(frame.float())):
                self.style.targets = targets
                style = style + share * self.style(feats, weight)
            out["style"] = self.options.style_weight * style
        if self.content is not None and content_targets is not None and self.options.content_weight > 0:
            out["content"] = self.options.content_weight * self.content(feats, content_targets, content_weight)
        return out
