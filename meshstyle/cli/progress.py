"""Progress reporting: turns the engine's per-step :class:`~meshstyle.engine.optimize.StepInfo` into a tqdm bar."""

from __future__ import annotations

import sys

from tqdm import tqdm

from ..engine.optimize import StepInfo


class ProgressBar:
    """A callable for the engine's ``callback``: one tqdm bar (created at the first step) over all steps of all scales, with the
    loss terms as postfix and tqdm's time-left estimate. Disabled when ``quiet``."""

    def __init__(self, description: str = "stylizing", quiet: bool = False, unit: str = "step"):
        self.description, self.quiet, self.unit, self.bar = description, quiet, unit, None

    def _open(self, total: int) -> tqdm:
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.description, unit=self.unit, disable=self.quiet,
                            file=sys.stderr, dynamic_ncols=True, leave=True)
        return self.bar

    def __call__(self, info: StepInfo) -> None:
        total = info.total_steps or info.scales * info.iterations
        bar = self._open(total)
        bar.total = max(bar.total, total)
        postfix = {k: f"{v:.4g}" for k, v in info.losses.items() if k != "total"}
        if info.scales > 1:
            postfix = {"scale": f"{info.scale + 1}/{info.scales}", **postfix}
        bar.set_postfix(postfix, refresh=False)
        bar.update(1)

    def tick(self, total: int) -> None:
        """Advance a plain counter bar (no losses) by one, out of ``total``."""
        self._open(total).update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
