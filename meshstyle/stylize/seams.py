"""Seam coupling for the optimization method: a term that changes the two sides of UV seams and of the
edges where parts meet alike.

A mesh's texture is cut where its UV islands end (UV seams) and where one part's texture meets another's
(part boundaries). Each texel is its own parameter, so the two sides of such an edge are optimized
independently, coupled only through the VGG receptive fields of the renders; the style's strokes then stop
at the edge (measured on the spot cow cut into two parts, 300 steps: colour jump across the cut 1.59x the
jump across ordinary edges, against 1.02x in the input; ``scripts/eval_part_seams.py``). The term
``seam_weight * mean(((T_a(p) - T_b(q)) - (S_a(p) - S_b(q)))^2)`` over sample pairs ``(p, q)`` showing the
same surface point on the two sides (:func:`~meshstyle.stylize.mesh_quality.edge_pairs`, half a texel inside
each face: the edge's own texels), ``S`` the starting textures, pulls the two sides' *changes* together, as
the feed-forward fit does with its seam rows: a seam the input shows (a label's edge, a cube whose faces
hold different pictures) keeps its jump, and the restyling adds none. On the cut cow
(150 steps, 12 views): part-boundary jump 1.53 / 1.22 / 0.99x the ordinary edges' and UV-seam jump 1.80 /
1.34 / 1.21x at ``seam_weight`` 0 / 10 / 100 (the ordinary edges' own jump unchanged, 0.077); 100 is the
default (1.01 / 1.20 in the form above, which keeps the input's jumps; the input: 1.02 / 0.06).
"""

from __future__ import annotations

import numpy as np
import torch

from ..mesh.textured import TexturedMesh
from .mesh_quality import EdgePairs, edge_pairs, sample_sides

#: Points per edge and their distance inside each face (texels of the working texture).
SEAM_SAMPLES, SEAM_INSET_TEXELS = 4, 0.5


class SeamTerm:
    """Mean squared colour difference (0-1 scale) across the UV seams and part boundaries of a mesh.

    Args:
        mesh: the mesh whose stylizable parts are optimized.
        starts: per part of ``mesh.stylizable``, the starting working texture (3, H, W) in [0, 1]; the jump it
            shows across each edge is the one kept.

    Call with the part textures (3, H, W) in [0, 1] (differentiable); returns a scalar: the mean squared
    difference between each pair's colour jump and the starting textures' jump (0 at the start, and for a
    mesh without seams or boundaries).
    """

    def __init__(self, mesh: TexturedMesh, starts: list[torch.Tensor]):
        pairs = edge_pairs(mesh, SEAM_SAMPLES, SEAM_INSET_TEXELS, [tuple(s.shape[-2:]) for s in starts])
        joined = [pairs["seam"], pairs["boundary"]]
        self.pairs = EdgePairs(*(np.concatenate([getattr(p, f) for p in joined])
                                 for f in ("part1", "uv1", "part2", "uv2")))
        with torch.no_grad():
            self.start_jump = self._jump(starts) if len(self.pairs) else None

    def __len__(self) -> int:
        return len(self.pairs)

    def _jump(self, textures: list[torch.Tensor]) -> torch.Tensor:
        p = self.pairs
        return sample_sides(textures, p.part1, p.uv1) - sample_sides(textures, p.part2, p.uv2)

    def __call__(self, textures: list[torch.Tensor]) -> torch.Tensor:
        if not len(self.pairs):
            return textures[0].new_zeros(())
        return (self._jump(textures) - self.start_jump.to(textures[0])).pow(2).mean()
