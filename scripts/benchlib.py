"""Helpers shared by the benchmark scripts: VGG forward+backward timing and peak memory."""

from __future__ import annotations

import ast
import resource
import time

import torch


class _Mark(torch.autograd.Function):
    """Identity whose backward records the time the gradient passes through it."""

    @staticmethod
    def forward(ctx, x, log, tag):
        ctx.log, ctx.tag = log, tag
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        ctx.log.append((ctx.tag, time.perf_counter()))
        return grad, None, None


class VGGTimer:
    """Wraps an encoder's forward so that the seconds spent in VGG forward and backward are summed.

    Backward time is measured from the first gradient reaching any VGG output to the gradient leaving
    the VGG input (autograd runs it in one stretch on CPU).
    """

    def __init__(self, encoder: torch.nn.Module):
        self.encoder, self.forward_s, self.backward_s = encoder, 0.0, 0.0
        self._log: list = []
        original = encoder.forward

        def timed(images):
            start = time.perf_counter()
            out = original(_Mark.apply(images, self._log, "in") if images.requires_grad else images)
            self.forward_s += time.perf_counter() - start
            return {k: _Mark.apply(v, self._log, "out") for k, v in out.items()}

        encoder.forward = timed

    def collect(self) -> None:
        """Add up the backward stretches recorded since the last call."""
        first_out = None
        for tag, t in self._log:
            if tag == "out" and first_out is None:
                first_out = t
            elif tag == "in" and first_out is not None:
                self.backward_s += t - first_out
                first_out = None
        self._log.clear()

    @property
    def total(self) -> float:
        return self.forward_s + self.backward_s


def option_sets(items: list[str]) -> dict:
    """``["key=value", ...]`` (the scripts' repeatable ``--set``) as stylize options; values are Python
    literals (``lr=0.04``, ``style_layers='relu1_1,relu2_1'``)."""
    return {key: ast.literal_eval(value) for key, value in (item.split("=", 1) for item in items)}


def peak_rss_mb(children: bool = False) -> float:
    """Peak resident memory of this process (or of its finished children) in MiB."""
    who = resource.RUSAGE_CHILDREN if children else resource.RUSAGE_SELF
    return resource.getrusage(who).ru_maxrss / 1024.0


class StepTimer:
    """Engine callback measuring seconds per step and the VGG share over steps 2..N (step 1 warms up).

    Use :meth:`patch` on a module that builds an ``Objective`` (stylize2d, stylize3d) so that its
    encoder gets a :class:`VGGTimer`.
    """

    def __init__(self):
        self.timers: list[VGGTimer] = []
        self.marks: list[tuple[float, float]] = []  # (wall clock, VGG seconds) after each step

    def patch(self, module) -> None:
        base = module.Objective
        timers = self.timers

        class TimedObjective(base):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                timers.append(VGGTimer(self.encoder))

        module.Objective = TimedObjective

    def __call__(self, info) -> None:
        for timer in self.timers:
            timer.collect()
        self.marks.append((time.perf_counter(), sum(t.total for t in self.timers)))

    def summary(self) -> dict[str, float]:
        (t0, v0), (t1, v1) = self.marks[0], self.marks[-1]
        steps = len(self.marks) - 1
        per_step = (t1 - t0) / steps
        vgg = (v1 - v0) / steps
        return {"s_per_step": round(per_step, 4), "vgg_s_per_step": round(vgg, 4),
                "other_s_per_step": round(per_step - vgg, 4), "outside_vgg_share": round(1 - vgg / per_step, 4)}
