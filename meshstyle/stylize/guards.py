"""Checks on what an optimization produced before anything is written."""

from __future__ import annotations

import math

import torch

from ..core.errors import MeshstyleError


def ensure_finite(history: list[dict[str, float]], *tensors: torch.Tensor) -> None:
    """Refuse a run whose losses or result became non-finite (NaN or infinity).

    Args:
        history: per-step loss terms of the run; entries that are not numbers (a feed-forward run's
            summary) are skipped.
        tensors: results to check (textures, images).

    Raises:
        MeshstyleError: naming the first bad step, with the options to lower.
    """
    for step, terms in enumerate(history, 1):
        bad = {k: v for k, v in terms.items() if isinstance(v, int | float) and not math.isfinite(v)}
        if bad:
            name, value = next(iter(bad.items()))
            raise MeshstyleError(f"the optimization diverged: the {name} loss became {value} at step {step}; "
                                 f"lower --lr or the loss weights and run again (nothing was written)")
    for tensor in tensors:
        if not bool(torch.isfinite(tensor).all()):
            raise MeshstyleError("the optimization diverged: the result holds non-finite values; lower --lr "
                                 "or the loss weights and run again (nothing was written)")
