"""Colour preservation for style transfer (Gatys, Bethge, Hertzmann & Shechtman, Controlling Perceptual
Factors in Neural Style Transfer, CVPR 2017).

* Luminance-only transfer: style transfer runs on the luminance channel (YIQ), with the style's
  luminance matched to the content's mean and standard deviation; the result's luminance is then
  combined with the content's I and Q (chroma) channels.
* Colour histogram matching: the style image's colours are transformed linearly, ``x' = A (x - mu_s) +
  mu_c`` with ``A = Sigma_c^(1/2) Sigma_s^(-1/2)``, so their mean and covariance match the content's.
* The reverse, ARF's colour step (Zhang et al., "ARF: Artistic Radiance Fields", ECCV 2022): the content's
  colours matched to the style's before optimizing (:func:`match_colors_to_style`, ``--color-match``).

Images are (3, H, W) RGB in [0, 1].
"""

from __future__ import annotations

import torch

#: RGB -> YIQ (NTSC), rows Y, I, Q.
RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114],
                           [0.595716, -0.274453, -0.321263],
                           [0.211456, -0.522591, 0.311135]])
YIQ_TO_RGB = torch.linalg.inv(RGB_TO_YIQ)

MODES = ("none", "luminance", "histogram")


def rgb_to_yiq(image: torch.Tensor) -> torch.Tensor:
    """(3, H, W) RGB -> (3, H, W) YIQ (Y in [0, 1], I in about [-0.6, 0.6], Q in about [-0.52, 0.52])."""
    return torch.einsum("ij,jhw->ihw", RGB_TO_YIQ.to(image), image)


def yiq_to_rgb(image: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_yiq` (not clipped)."""
    return torch.einsum("ij,jhw->ihw", YIQ_TO_RGB.to(image), image)


def luminance(image: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
    """The Y channel replicated to (3, H, W); if ``like`` is given, Y is shifted and scaled to have
    ``like``'s luminance mean and standard deviation (Gatys et al. 2017, eq. 1)."""
    y = rgb_to_yiq(image)[0]
    if like is not None:
        y_ref = rgb_to_yiq(like)[0]
        y = (y - y.mean()) * (y_ref.std() / y.std().clamp_min(1e-6)) + y_ref.mean()
    return y.clamp(0, 1).expand(3, -1, -1).contiguous()


def combine_luminance(result: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """RGB image with the luminance of ``result`` and the I/Q chroma of ``content`` (same H, W)."""
    yiq = rgb_to_yiq(content)
    yiq[0] = rgb_to_yiq(result)[0]
    return yiq_to_rgb(yiq).clamp(0, 1)


def _sqrtm(cov: torch.Tensor, inverse: bool = False) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(cov)
    vals = vals.clamp_min(1e-8)
    power = -0.5 if inverse else 0.5
    return vecs @ torch.diag(vals ** power) @ vecs.T


def colour_statistics(pixels: list[torch.Tensor], weights: list[float] | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (3, 1) and covariance (3, 3), float64, of pooled RGB pixel sets, each (3, ...) in [0, 1]; set ``k``
    counts with weight ``weights[k]`` whatever its size (equal weights when ``None``)."""
    weights = [1.0] * len(pixels) if weights is None else weights
    flat = [p.reshape(3, -1).double() for p in pixels]
    w = torch.cat([torch.full((f.shape[1],), float(wt) / max(f.shape[1], 1), dtype=torch.float64)
                   for f, wt in zip(flat, weights)])
    w = w / w.sum().clamp_min(1e-12)
    joined = torch.cat(flat, dim=1)
    mean = (joined * w).sum(1, keepdim=True)
    cov = ((joined - mean) * w) @ (joined - mean).T
    return mean, cov


def linear_colour_map(source: tuple[torch.Tensor, torch.Tensor], target: tuple[torch.Tensor, torch.Tensor]
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(A, b)`` with ``x' = A x + b`` mapping colours of statistics ``source`` (mean, covariance from
    :func:`colour_statistics`) onto those of ``target``: ``A = Sigma_t^(1/2) Sigma_s^(-1/2)``, ``b = mu_t -
    A mu_s`` (Gatys et al. 2017's colour histogram matching; ARF's colour step, Zhang et al. 2022)."""
    eye = torch.eye(3, dtype=torch.float64) * 1e-5
    matrix = _sqrtm(target[1] + eye) @ _sqrtm(source[1] + eye, inverse=True)
    return matrix, target[0] - matrix @ source[0]


def partial_colour_map(transform: tuple[torch.Tensor, torch.Tensor], strength: float
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """The colour map ``(A, b)`` taken ``strength`` of the way from the identity: ``(s A + (1 - s) I, s b)``,
    so each colour moves to ``x + s (A x + b - x)`` (``strength`` in [0, 1]; 0 keeps every colour, 1 is
    ``transform``). ``--strength`` dials ARF's colour step with it."""
    matrix, offset = transform
    eye = torch.eye(3, dtype=matrix.dtype)
    return strength * matrix + (1 - strength) * eye, strength * offset


def apply_colour_map(image: torch.Tensor, transform: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """``A x + b`` on every pixel of ``image`` (3, ...) in [0, 1], clamped to [0, 1], in its dtype."""
    matrix, offset = transform
    out = matrix @ image.reshape(3, -1).double() + offset
    return out.reshape(image.shape).to(image.dtype).clamp(0, 1)


def match_color_histogram(style: torch.Tensor, content: torch.Tensor) -> torch.Tensor:
    """Style image (3, H_s, W_s) recoloured so its RGB mean and covariance equal the content's."""
    s = style.reshape(3, -1).double()
    c = content.reshape(3, -1).double()
    mu_s, mu_c = s.mean(1, keepdim=True), c.mean(1, keepdim=True)
    eye = torch.eye(3, dtype=torch.float64) * 1e-5
    cov_s = torch.cov(s) + eye
    cov_c = torch.cov(c) + eye
    transform = _sqrtm(cov_c) @ _sqrtm(cov_s, inverse=True)
    out = transform @ (s - mu_s) + mu_c
    return out.reshape(style.shape).to(style.dtype).clamp(0, 1)


def match_colors_to_style(content: torch.Tensor, styles: list[torch.Tensor],
                          weights: list[float] | None = None, strength: float = 1.0) -> torch.Tensor:
    """ARF's colour step (Zhang et al., ECCV 2022, ``--color-match``): the content (3, H, W) in [0, 1] recoloured so
    its RGB mean and covariance equal those of the style images (pooled with ``weights``), so the
    optimization starts from, and keeps as content, the painting's palette; ``strength`` < 1 goes that part
    of the way (:func:`partial_colour_map`)."""
    transform = linear_colour_map(colour_statistics([content]), colour_statistics(styles, weights))
    return apply_colour_map(content, partial_colour_map(transform, strength))


#: Square root of the RGB covariance of natural images (ImageNet), columns along its principal axes (luma,
#: then two chroma axes), as used by Olah, Mordvintsev & Schubert, "Feature Visualization" (Distill 2017).
COLOUR_CORRELATION_SQRT = torch.tensor([[0.26, 0.09, 0.02],
                                        [0.27, 0.00, -0.05],
                                        [0.27, -0.09, 0.03]])
COLOUR_SPACES = ("style", "decorrelated", "rgb")
#: Slowest colour axis of :func:`style_colour_basis`, relative to the fastest.
STYLE_BASIS_FLOOR = 0.1


def style_colour_basis(images: list[torch.Tensor], weights: list[float] | None = None,
                       floor: float = STYLE_BASIS_FLOOR) -> torch.Tensor:
    """(3, 3) colour basis from the style's own colours: columns along the principal axes of the RGB
    covariance of ``images`` (each (3, H, W) in [0, 1], pooled with ``weights``), each scaled by the
    square root of its variance, the largest column to unit norm; axes with less than ``floor`` of the
    largest standard deviation are raised to it, so every colour can still change, ``floor`` times as fast.

    The same construction as :data:`COLOUR_CORRELATION_SQRT` (Olah et al. 2017), with the style's
    statistics instead of ImageNet's: a texture change expressed in it moves fastest along the colours
    the painting varies in (red discs on white: white <-> red), and 1/``floor`` times slower toward
    colours it has none of (measured in the circle test: blue and black rims on red discs in the natural
    basis, see README). A grey style moves luma only, at full speed.
    """
    _, cov = colour_statistics(images, weights)
    vals, vecs = torch.linalg.eigh(cov)                 # ascending
    std = vals.clamp_min(0).sqrt().flip(0)
    vecs = vecs.flip(1)
    top = float(std[0])
    if top <= 0:
        return torch.eye(3)
    std = torch.clamp(std / top, min=floor)
    return (vecs * std).float()


class DecorrelatedTexture(torch.nn.Module):
    """A texture parameterization whose *change* is expressed along the principal colour axes of
    natural images: ``texture = start + C (inner() - start)`` with ``C`` = :data:`COLOUR_CORRELATION_SQRT`
    scaled so its luma column has unit norm (chroma columns then have norms 0.27 and 0.13).

    An optimizer that normalizes each parameter's step (Adam) moves every RGB channel of a texel by
    about the same amount, so texels that receive noisy gradients drift into independent colours (a
    rainbow grain, seen on meshes with the MobileNetV2 encoder). In the decorrelated basis the same step
    changes chroma 4-8x less than luma, as in natural images (Mordvintsev et al., "Differentiable Image
    Parameterizations", Distill 2018, who show that style transfer with non-VGG networks needs such a
    parameterization). The texture starts equal to ``start``.

    Args:
        inner: a texture module (e.g. :class:`~meshstyle.engine.texture.PyramidTexture`) initialized to
            ``start``; its first parameter must be its full-size (3, H, W) level (used by :meth:`project_`).
        start: (3, H, W) initial texture in [0, 1].
        basis: (3, 3) invertible colour basis, columns the colour axes (default
            :data:`COLOUR_CORRELATION_SQRT`; e.g. :func:`style_colour_basis`).
    """

    def __init__(self, inner: torch.nn.Module, start: torch.Tensor, basis: torch.Tensor | None = None):
        super().__init__()
        self.inner = inner
        basis = COLOUR_CORRELATION_SQRT if basis is None else basis
        matrix = basis / basis.norm(dim=0).max()
        self.register_buffer("matrix", matrix.to(start), persistent=False)
        self.register_buffer("inverse", torch.linalg.inv(matrix).to(start), persistent=False)
        self.register_buffer("start", start.detach().clone(), persistent=False)

    def forward(self) -> torch.Tensor:
        """The texture (3, H, W); equals ``start`` before any step."""
        return self.start + torch.einsum("ij,jhw->ihw", self.matrix, self.inner() - self.start)

    @torch.no_grad()
    def project_(self) -> None:
        """Keep the texture in [0, 1]: the excess, mapped back through ``C^-1``, leaves the finest level."""
        texture = self.forward()
        excess = texture - texture.clamp(0, 1)
        finest = next(iter(self.inner.parameters()))
        finest.sub_(torch.einsum("ij,jhw->ihw", self.inverse, excess))

    def regularizer(self) -> torch.Tensor:
        """The inner parameterization's regularizer."""
        return self.inner.regularizer()
