"""The Ray backend: each job is a Ray task (https://docs.ray.io, ``pip install 'meshstyle[ray]'``).

A task reserves ``num_cpus`` = torch threads per job and ``num_gpus`` = ``--gpus-per-job``, and is retried
``--retries`` times when its worker process dies (Ray's ``max_retries``; a job that fails by itself is an
error record, not retried). The decoded style images go into the object store once (``ray.put``) and
every task gets them by reference; so do the style targets of the feed-forward method (the predictor's
embedding of each painting, one task per style), which spares every worker loading the predictor. Results stream back with ``ray.wait``; the driver alone writes the
results file. Input files are read by the workers at the driver's paths (shared storage, or one
machine); outputs come back as bytes for the driver to write (``--ray-outputs driver``), or the workers
write them into OUTDIR through the same output planner (``shared``).

Without ``--ray-address`` a single-node cluster is started for the batch and stopped after: its node IP
is 127.0.0.1, so every server of it listens on loopback only (:func:`~meshstyle.batch.raylocal.loopback`),
and its files go to a temporary folder of its own, removed after.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

from ..core.errors import MeshstyleError
from .options import BatchOptions, cpu_count
from .plan import Job
from .raylocal import LOOPBACK, loopback, restored_auth_mode
from .worker import base_record, ray_job, style_target

INSTALL_HINT = "--backend ray needs Ray: pip install 'meshstyle[ray]'"


def import_ray():
    """The ``ray`` module.

    Raises:
        MeshstyleError: Ray is not installed (one line with the install command).
    """
    try:
        import ray
    except ImportError:
        raise MeshstyleError(INSTALL_HINT) from None
    return ray


def run_ray(jobs: list[Job], styles: dict[str, Any], threads: int, options: BatchOptions, outdir: str,
            on_start: Callable[[], None] | None = None) -> Iterator[dict[str, Any]]:
    """Yield each job's record as it finishes (in completion order); outputs in ``record["files"]`` when
    the driver writes them.

    Raises:
        MeshstyleError: Ray missing, or the cluster at ``ray_address`` cannot be joined.
    """
    ray = import_ray()
    temp = None if options.ray_address else tempfile.mkdtemp(prefix="meshstyle-ray-")
    with restored_auth_mode(ray):
        try:
            _init(ray, options.ray_address, temp)
            yield from _run_tasks(ray, jobs, styles, threads, options, outdir, on_start)
        finally:
            ray.shutdown()
            if temp is not None:
                shutil.rmtree(temp, ignore_errors=True)


def _init(ray, address: str | None, temp: str | None) -> None:
    """Join the cluster at ``address``, or start a one-machine cluster on loopback with its files in ``temp``."""
    kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            with loopback(ray):
                ray.init(num_cpus=cpu_count(), _node_ip_address=LOOPBACK, _temp_dir=temp, **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise MeshstyleError(f"cannot join the Ray cluster at {address or 'a new local one'}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _style_targets(ray, jobs: list[Job], refs: dict[str, Any], threads: int, gpus: float) -> dict[str, Any]:
    """Style path -> reference of its feed-forward embedding (:func:`~meshstyle.batch.worker.style_target`):
    one task per style that a feed-forward job uses (on the device of the first such job)."""
    devices = {}
    for job in jobs:
        if job.options.method == "feedforward":
            for path in job.styles:
                if path in refs:
                    devices.setdefault(path, job.options.device)
    task = ray.remote(style_target).options(num_cpus=threads, num_gpus=gpus)
    return {path: task.remote(refs[path], threads, device) for path, device in devices.items()}


def _run_tasks(ray, jobs: list[Job], styles: dict[str, Any], threads: int, options: BatchOptions, outdir: str,
               on_start: Callable[[], None] | None) -> Iterator[dict[str, Any]]:
    try:
        refs = {path: ray.put(image) for path, image in styles.items()}
        targets = _style_targets(ray, jobs, refs, threads, options.gpus_per_job)
        task = ray.remote(ray_job).options(num_cpus=threads, num_gpus=options.gpus_per_job,
                                           max_retries=options.retries, retry_exceptions=False)
        mode = "return" if options.ray_outputs == "driver" else "shared"
        if on_start is not None:
            on_start()
        pending = {task.remote(job, threads, mode, outdir, *[refs.get(s, s) for s in job.styles],
                               *[targets.get(s) for s in job.styles]): job for job in jobs}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            job = pending.pop(ready[0])
            try:
                yield ray.get(ready[0])
            except Exception as exc:  # the task's worker died more often than --retries allows
                record = base_record(job)
                record.update(status="error", error=f"its Ray worker died {options.retries + 1} times: "
                                                    f"{type(exc).__name__}")
                yield record
    except BaseException:
        for ref in list(locals().get("pending", {})):  # Ctrl-C: stop what still runs on a shared cluster
            ray.cancel(ref, force=True)
        raise
