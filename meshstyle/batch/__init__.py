"""Many jobs at once: ``meshstyle batch`` and :func:`stylize_batch`.

A folder or manifest becomes a list of validated jobs (:mod:`.plan`); finished jobs are skipped
(:mod:`.results`); the rest run on a local process pool (:mod:`.local`) or as Ray tasks (:mod:`.rayjobs`),
each through stylize's job functions (:mod:`.worker`); the driver records every job in
``OUTDIR/results.jsonl`` and writes ``OUTDIR/index.html`` (:mod:`.report`). Layers: cli -> batch -> stylize.
"""

from __future__ import annotations

import os
from dataclasses import fields

from .options import BatchOptions
from .plan import Job, plan_jobs
from .run import BatchResult, run_batch

__all__ = ["BatchOptions", "BatchResult", "Job", "plan_jobs", "run_batch", "stylize_batch"]


def stylize_batch(spec: str | os.PathLike, style: str | os.PathLike | list | None = None,
                  output_dir: str | os.PathLike = "out", *, quiet: bool = False, **options) -> BatchResult:
    """Restyle every mesh and image of a folder or manifest into ``output_dir`` (``meshstyle batch``).

    Args:
        spec: a folder (every .obj/.glb/.gltf and .jpg/.jpeg/.png under it) or a manifest (.csv, .jsonl;
            one row per job: ``input``, optionally ``style``, ``method``, ``output``, any option).
        style: style image path(s) or ``preset:N`` for rows that name none.
        output_dir: OUTDIR; outputs mirror the inputs' folders, plus ``results.jsonl`` and ``index.html``.
        quiet: no progress bar.
        **options: :class:`BatchOptions` fields (``backend``, ``workers``, ``force``, ``ray_address``,
            ``gpus_per_job``, ``ray_outputs``, ``retries``) and any option of ``mesh`` or ``image`` by
            name (``iterations=2``, ``views=2``, ``size=64``, ``threads=1``...); each job uses those
            of its own command.

    Returns:
        :class:`BatchResult` (``records``, ``counts``, ``exit_status`` 0 or 3, ``summary()``).

    Raises:
        MeshstyleError: a bad option or row (one line naming it), a bad style, an unusable OUTDIR, Ray
            missing for ``backend="ray"``. Failing jobs do not raise: they are ``error`` records.
    """
    names = {f.name for f in fields(BatchOptions)}
    batch = BatchOptions(**{k: v for k, v in options.items() if k in names})
    batch.validate()
    given = {k: v for k, v in options.items() if k not in names}
    styles = [] if style is None else [str(s) for s in (style if isinstance(style, list | tuple) else [style])]
    jobs = plan_jobs(spec, styles, output_dir, given)
    return run_batch(jobs, output_dir, batch, threads=given.get("threads"), quiet=quiet)
