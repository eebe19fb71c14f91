"""Working textures of a mesh part: the downsampled start a job optimizes, and the full-resolution
export of its change. Shared by the optimization (:mod:`~meshstyle.stylize.mesh`) and the
feed-forward fit (:mod:`~meshstyle.stylize.feedforward_mesh`); imports no other job module.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..core.errors import MeshstyleError
from ..core.imageio import long_edge_size, resize_tensor, rgb8_to_tensor, tensor_to_rgb8
from ..mesh.padding import island_mask, pad_texture
from ..mesh.textured import TexturedMesh

#: Long edge in texels of the optimization's working texture when no ``texture_size`` is given (smaller
#: originals keep theirs). On the spot cow at the default 256 px renders, 1024 doubles the share of texel-level
#: energy against 512 (the texels the style paints, not an upsampled 512 change) for 11% more CPU per step and
#: 0.17-0.21 GB more peak memory (scripts/bench_texture_size.py; README, Benchmarks).
WORKING_EDGE = 1024
#: The same for the feed-forward fit (``method="feedforward"``): kept at 512, its time at 1024 not measured.
FIT_EDGE = 512
#: GB of peak memory per million working texels (RGB): the pyramid levels, their gradients and Adam's two
#: moments, the mip pyramid of every step and its gradients. Measured on the spot cow (scripts/bench_texture_size.py,
#: ImageNet VGG-16, 24 views at 256 px, two runs): peak RSS 1.32 / 1.49-1.53 / 2.09-2.21 GB at 512 / 1024 / 2048
#: texels, 0.18-0.23 GB more per million texels from 1024 to 2048 (the larger figure here).
MEMORY_PER_MTEXEL = 0.23
#: Most working texels of one run, all restyled parts together: one 4096 x 4096 texture, 4.3-5.1 GB peak on the
#: spot cow (extrapolated from the sizes above, not measured), a fifth of the 24 GB development machine.
MAX_WORKING_TEXELS = 4096 * 4096


def working_edges(mesh: TexturedMesh, size: int | None, auto: int = WORKING_EDGE) -> dict[str, int]:
    """Per stylizable part of ``mesh``, the long edge in texels of its working texture: ``size`` where its
    original is at least that large, else the original's (a part with a smaller texture keeps its size); with
    ``size`` None, the original's, at most ``auto`` (:data:`WORKING_EDGE`; the feed-forward fit: :data:`FIT_EDGE`).

    Raises:
        MeshstyleError: ``size`` larger than every original (the output keeps the original's size, so a
            larger working texture only costs memory), or the working textures together over
            :data:`MAX_WORKING_TEXELS`.
    """
    shapes = {name: mesh.texture_shape(name) for name in mesh.stylizable}
    largest = max((max(shape) for shape in shapes.values()), default=0)
    if size is None:
        return {name: min(auto, max(shape)) for name, shape in shapes.items()}
    if size > largest:
        raise MeshstyleError(f"--texture-size {size} is larger than the original texture ({largest} texels on its "
                             f"long edge); give at most {largest} (the output keeps the original's size)")
    edges = {name: min(size, max(shape)) for name, shape in shapes.items()}
    texels = sum(int(np.prod(long_edge_size(w, h, edges[name]))) for name, (h, w) in shapes.items())
    if texels > MAX_WORKING_TEXELS:
        raise MeshstyleError(
            f"--texture-size {size} would optimize {texels / 1e6:.1f} M texels over {len(shapes)} part(s), about "
            f"{texels / 1e6 * MEMORY_PER_MTEXEL:.0f} GB more memory; at most {MAX_WORKING_TEXELS / 1e6:.1f} M "
            f"(one {round(MAX_WORKING_TEXELS ** 0.5)} texture) fit the measured bound: give a smaller --texture-size")
    return edges


def working_texture(mesh: TexturedMesh, name: str, size: int | None, auto: int = WORKING_EDGE
                    ) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """(full-resolution original, working-size start, full-resolution island mask) of part ``name``;
    textures (3, H, W) in [0, 1], the start's long edge from :func:`working_edges` (``size`` texels, at
    most the original's; None: the original's, at most ``auto``). At the original's size the
    start is the padded original itself (no resampling). The original is padded beyond its UV islands
    before the antialiased downsampling (no background blends into island borders). Used by the
    optimization and the feed-forward fit alike.

    Raises:
        MeshstyleError: a ``size`` :func:`working_edges` refuses.
    """
    rgb = mesh.texture(name)
    islands = island_mask(mesh.corner_uv(name), rgb.shape[:2])
    full = rgb8_to_tensor(pad_texture(rgb, islands))
    edge = working_edges(mesh, size, auto)[name]
    start = resize_tensor(full, long_edge_size(rgb.shape[1], rgb.shape[0], edge), mode="bilinear", antialias=True)
    return full, start, islands


def export_texture(full: torch.Tensor, start: torch.Tensor, current: torch.Tensor, islands: np.ndarray) -> np.ndarray:
    """Full-resolution RGB8 (H, W, 3): ``full + up(pad(current - start))`` clamped to [0, 1].

    Args:
        full: (3, H, W) original; start, current: (3, h, w) working texture before and after.
        islands: (h, w) bool texels inside the UV islands (the change is padded outward from them).
    """
    delta = (current - start).detach().cpu().float()
    if islands.any() and not islands.all():
        delta = torch.from_numpy(pad_texture(delta.permute(1, 2, 0).numpy(), islands)).permute(2, 0, 1)
    if tuple(delta.shape[-2:]) != tuple(full.shape[-2:]):
        delta = F.interpolate(delta[None], size=full.shape[-2:], mode="bilinear", align_corners=False)[0]
    return tensor_to_rgb8((full + delta).clamp(0, 1))
