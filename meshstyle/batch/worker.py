"""What a worker process does with one job: run it through stylize's job functions and describe the result.

Runs in a local pool process or a Ray task. Nothing here raises for a bad job: every failure becomes an
``error`` record with one line. With ``mode="shared"`` the job writes into OUTDIR itself (through the
output planner: all its files appear together or none); with ``mode="return"`` it writes into a private
temporary folder and hands the bytes back for the driver to write.
"""

from __future__ import annotations

import logging
import os
import resource
import shutil
import socket
import sys
import tempfile
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from ..core.errors import one_line
from ..engine.options import resolve_device
from ..stylize.feedforward import remember_embedding, shared_networks
from ..stylize.jobs import image_job, mesh_job
from .plan import Job
from .results import sha256_file

log = logging.getLogger("meshstyle")


class _Collect(logging.Handler):
    """Keeps the job's warnings (they go into its record instead of the worker's stderr)."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(one_line(record.getMessage()))


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, MiB (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (2**20 if sys.platform == "darwin" else 1024), 1)


def error_line(exc: BaseException) -> str:
    """One line for a failed job: the MeshstyleError's message, or the exception's type and message."""
    from ..core.errors import MeshstyleError

    text = str(exc) if isinstance(exc, MeshstyleError) else f"{type(exc).__name__}: {exc}"
    return one_line(text or type(exc).__name__)


def base_record(job: Job) -> dict[str, Any]:
    """The fields every record of ``job`` has, status unset."""
    return {"input": job.key, "row": job.row, "command": job.command, "status": None, "error": None,
            "outputs": [], "seconds": 0.0, "peak_rss_mb": None, "encoder": None, "method": job.options.method,
            "warnings": [], "worker": f"{socket.gethostname()}:{os.getpid()}", "provenance": {}}


def _run(job: Job, styles: list, names: list[str], output: str, preview: str | None):
    if job.command == "mesh":
        return mesh_job(job.input, styles, output, options=job.options, mesh_options=job.job_options,
                        preview=preview, style_names=names)
    return image_job("image", job.input, styles, output, options=job.options, image_options=job.job_options,
                     style_names=names)


def execute(job: Job, styles: list, threads: int, mode: str, outdir: str) -> dict[str, Any]:
    """Run ``job`` with ``styles`` (tensors (3, H, W) in [0, 1] or ``preset:N``, in ``job.styles`` order)
    on ``threads`` torch threads; returns its record (module :mod:`~meshstyle.batch.results`), with the
    output ``files`` as {path relative to OUTDIR: bytes} when ``mode == "return"``."""
    record = base_record(job)
    names = [s if isinstance(s, str) else Path(p).name for s, p in zip(styles, job.styles)]
    collect = _Collect()
    log.addHandler(collect)
    level, propagate = log.level, log.propagate
    log.setLevel(logging.WARNING)
    log.propagate = False
    start = time.perf_counter()
    stage = tempfile.mkdtemp(prefix="meshstyle-job-") if mode == "return" else None
    try:
        options = replace(job.options, threads=threads)
        job = replace(job, options=options)
        output, preview = job.output, job.preview
        if stage is not None:  # the same relative layout in a private folder
            output = str(Path(stage) / job.output_rel)
            preview = str(Path(output).parent / Path(job.preview).name) if job.preview else None
        outcome = _run(job, styles, names, output, preview)
        root = Path(stage) if stage is not None else Path(outdir)
        record["outputs"] = [{"path": Path(os.path.relpath(p, root)).as_posix(), "bytes": Path(p).stat().st_size}
                             for p in outcome.written]
        if stage is not None:
            record["files"] = {item["path"]: (root / item["path"]).read_bytes() for item in record["outputs"]}
        record.update(status="ok", encoder=outcome.encoder)
        record["provenance"] = {"written": outcome.provenance,
                                "inputs": [{"path": str(p), "sha256": sha256_file(p)} for p in outcome.inputs
                                           if str(p) not in job.styles]}
    except Exception as exc:  # a failed job is a record, never a crash of the batch
        record.update(status="error", error=error_line(exc))
    finally:
        log.removeHandler(collect)
        log.setLevel(level)
        log.propagate = propagate
        if stage is not None:
            shutil.rmtree(stage, ignore_errors=True)
    record["seconds"] = round(time.perf_counter() - start, 3)
    record["peak_rss_mb"] = peak_rss_mb()
    record["warnings"] = collect.lines
    return record


# --- local process pool -------------------------------------------------------------------------------------

_STYLES: dict[str, Any] = {}
_TERMINATING: list[bool] = []
_RUNNING: list[bool] = []


def _terminate(signum, frame) -> None:
    _TERMINATING.append(True)
    if not _RUNNING:  # between jobs: nothing to clean up, and no interpreter shutdown to wait for
        os._exit(143)
    raise SystemExit(143)  # unwinds the job: its staging folders are removed


#: Seconds between two looks of a pool process at its driver.
WATCH_SECONDS = 0.5


def _watch_driver(driver: int) -> None:
    """SIGTERM this process once ``driver`` is no longer its parent (the driver died, even by SIGKILL): the
    job in flight unwinds (its staging folder is removed) instead of running on unrecorded."""
    import signal

    while os.getppid() == driver:
        time.sleep(WATCH_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)


def init_local_worker(threads: int, styles: dict[str, Any], driver: int | None = None) -> None:
    """Initializer of a local pool process: ``threads`` torch threads, the decoded styles, Ctrl-C left to
    the driver (which stops the pool), SIGTERM turned into an exit that runs cleanups (no staging left),
    and an end when the ``driver`` process (its parent's id) dies."""
    import signal

    os.environ["OMP_NUM_THREADS"] = str(threads)
    torch.set_num_threads(threads)
    _STYLES.clear()
    _STYLES.update(styles)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _terminate)
    if driver is not None:
        threading.Thread(target=_watch_driver, args=(driver,), daemon=True, name="watch-driver").start()


def local_job(job: Job, threads: int, outdir: str) -> dict[str, Any]:
    """A local pool task: :func:`execute` with the styles the initializer received, writing into OUTDIR."""
    _RUNNING.append(True)
    try:
        return execute(job, [_STYLES.get(s, s) for s in job.styles], threads, "shared", outdir)
    finally:
        _RUNNING.clear()
        if _TERMINATING:  # the pool's loop would go on to the next job: leave now
            os._exit(143)


def style_target(image: torch.Tensor, threads: int, device: str) -> torch.Tensor | None:
    """A Ray task: the feed-forward style embedding (100,) of the painting ``image`` (3, H, W) in [0, 1]
    (:meth:`~meshstyle.stylize.feedforward.FeedForward.embed` on ``threads`` torch threads, as a job would
    compute it), computed once per style of a batch and sent to every job of that style by reference.
    None when it fails (no ``pretrained`` extra, a bad device): each job then fails with its own line."""
    torch.set_num_threads(threads)
    try:
        return shared_networks(resolve_device(device)).embed(image)
    except Exception:  # noqa: BLE001 - the jobs report it, one line each
        return None


def ray_job(job: Job, threads: int, mode: str, outdir: str, *styles_and_targets) -> dict[str, Any]:
    """A Ray task: :func:`execute` with the styles from the object store (Ray resolves the references):
    ``job.styles``' tensors (or ``preset:N``), then for each the embedding from :func:`style_target` or
    None; the embeddings are handed to the process's networks, so the job does not predict them again."""
    torch.set_num_threads(threads)
    count = len(job.styles)
    styles, targets = list(styles_and_targets[:count]), styles_and_targets[count:]
    for image, target in zip(styles, targets):
        if target is not None and isinstance(image, torch.Tensor):
            remember_embedding(image, target, resolve_device(job.options.device))
    return execute(job, styles, threads, mode, outdir)
