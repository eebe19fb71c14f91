"""Progress reporting: turns the engine's per-step :class:`~meshstyle.engine.optimize.StepInfo` into a tqdm bar."""

from __future__ import annotations

import sys

from tqdm import tqdm

from ..engine.optimize import StepInfo

#: tqdm's layout without its own time-left field (its average rate over all steps promises too little when
#: the first steps are the cheap coarse ones): the estimate, when there is one, is the ``left`` postfix.
BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]"


def clock(seconds: float) -> str:
    """``seconds`` as ``M:SS`` (``H:MM:SS`` from one hour)."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class ProgressBar:
    """A callable for the engine's ``callback``: one tqdm bar over all steps of all scales, with the loss
    terms as postfix. A step with ``iteration`` 0 only opens the bar (a job shows it before its first
    step). Disabled when ``quiet``.

    Time left (``left``) is estimated from the steps of the final stage only: the last scale of a
    coarse-to-fine run, after the last of ``StepInfo.stage_starts``; earlier steps are cheaper, so no
    estimate is shown before that stage has run two steps."""

    def __init__(self, description: str = "stylizing", quiet: bool = False, unit: str = "step"):
        self.description, self.quiet, self.unit, self.bar = description, quiet, unit, None
        self._stage: tuple[int, int] | None = None
        self._stage_origin = (0.0, 0)

    def _open(self, total: int) -> tqdm:
        if self.bar is None:
            self.bar = tqdm(total=total, desc=self.description, unit=self.unit, disable=self.quiet,
                            file=sys.stderr, dynamic_ncols=True, leave=True, miniters=1, bar_format=BAR_FORMAT)
        return self.bar

    def __call__(self, info: StepInfo) -> None:
        total = info.total_steps or info.scales * info.iterations
        bar = self._open(total)
        bar.total = max(bar.total, total)
        if info.iteration == 0:
            bar.refresh()
            return
        postfix = {k: f"{v:.4g}" for k, v in info.losses.items() if k != "total"}
        if info.scales > 1:
            postfix = {"scale": f"{info.scale + 1}/{info.scales}", **postfix}
        left = self.seconds_left(info)
        if left is not None:
            postfix["left"] = clock(left)
        bar.set_postfix(postfix, refresh=False)
        bar.update(1)

    def seconds_left(self, info: StepInfo) -> float | None:
        """Seconds left by the rate of this stage's steps after its first, or None outside the final stage
        (or before it has run two steps)."""
        done = info.iteration
        start = max((b for b in info.stage_starts if b < done), default=0)
        stage = (info.scale, start)
        if stage != self._stage:  # the first step of a stage: time is counted from its end
            self._stage, self._stage_origin = stage, (info.elapsed, done)
            return None
        final = info.scale == info.scales - 1 and all(b < done for b in info.stage_starts)
        t0, n0 = self._stage_origin
        if not final or done - n0 < 1:
            return None
        return (info.elapsed - t0) / (done - n0) * (info.iterations - done)

    def tick(self, total: int) -> None:
        """Advance a plain counter bar (no losses) by one, out of ``total``."""
        self._open(total).update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
