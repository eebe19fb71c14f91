"""The batch driver: plan, skip what is done, run the rest on a backend, record, report.

The driver owns OUTDIR's ``results.jsonl`` (workers never append to it) and writes ``index.html`` at the
end. SIGTERM is handled like Ctrl-C: the pool stops, jobs in flight are lost (none half-written: outputs
are renamed into place only when complete), finished jobs stay recorded and are skipped by the next run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from tqdm import tqdm

from ..core.imageio import load_image
from ..core.outputs import OutputPlan
from ..stylize.options import is_preset
from .local import run_local
from .options import BatchOptions, split_cores
from .plan import Job
from .rayjobs import import_ray, run_ray
from .report import INDEX, write_index
from .results import (
    RESULTS,
    ResultsFile,
    fingerprint,
    finished,
    job_options,
    latest,
    meshstyle_version,
    read_records,
    sha256_file,
)
from .worker import error_line, peak_rss_mb

log = logging.getLogger("meshstyle")
STAGING = ".meshstyle-"


@dataclass
class BatchResult:
    """What a batch did.

    Attributes:
        records: this run's record of every job (ok, skipped or error), in job order.
        outdir: the output folder; ``results`` and ``index``: its results.jsonl and index.html.
        workers, threads: processes (or concurrent Ray tasks at most) and torch threads per job.
        seconds: wall time of the run; ``driver_rss_mb``: the driver's peak resident memory.
    """

    records: list[dict[str, Any]]
    outdir: Path
    workers: int = 1
    threads: int = 1
    seconds: float = 0.0
    driver_rss_mb: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def results(self) -> Path:
        return self.outdir / RESULTS

    @property
    def index(self) -> Path:
        return self.outdir / INDEX

    @property
    def failed(self) -> int:
        """Number of jobs that failed."""
        return self.counts.get("error", 0)

    @property
    def exit_status(self) -> int:
        """0 when every job succeeded (or was already done), 3 when some failed."""
        return 3 if self.failed else 0

    def summary(self) -> str:
        """One line: how many jobs did what, and where the list is."""
        text = (f"{len(self.records)} jobs: {self.counts.get('ok', 0)} done, {self.counts.get('skipped', 0)} "
                f"skipped (already done), {self.failed} failed")
        return text + (f"; see {self.results} and {self.index}" if self.failed else f"; report: {self.index}")


def clean_staging(outdir: Path) -> None:
    """Remove staging folders (``.meshstyle-*``) that killed jobs left under OUTDIR."""
    for root, dirs, _ in os.walk(outdir):
        for name in list(dirs):
            if name.startswith(STAGING):
                shutil.rmtree(Path(root) / name, ignore_errors=True)
                dirs.remove(name)


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """Within the block SIGTERM raises KeyboardInterrupt in the main thread (so the pool is stopped)."""
    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _commit_returned(record: dict[str, Any], job: Job, outdir: Path) -> None:
    """Write the output bytes a Ray worker returned (``record["files"]``) through one output plan."""
    files = record.pop("files", None)
    if files is None or record["status"] != "ok":
        return
    plan = OutputPlan([job.input, *[s for s in job.styles if not is_preset(s)],
                       *[i["path"] for i in record["provenance"].get("inputs", [])]])
    writers = {}
    for rel, data in files.items():
        path = plan.add(outdir / rel)
        writers[path] = lambda tmp, data=data: tmp.write_bytes(data)
    plan.check()
    plan.commit(writers)


class _Recorder:
    """Completes each finished job's record (writes returned bytes, hashes outputs, adds the provenance),
    appends it to results.jsonl and advances the progress bar."""

    def __init__(self, outdir: Path, hashes: dict[int, list[str]], total: int, quiet: bool):
        self.outdir, self.hashes = outdir, hashes
        self.run_id = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        self.records: dict[int, dict[str, Any]] = {}
        self.failures = 0
        self.results = ResultsFile(outdir)
        self.bar = tqdm(total=total, desc="batch", unit="job", disable=quiet, file=sys.stderr, dynamic_ncols=True)

    def _complete(self, job: Job, record: dict[str, Any]) -> None:
        try:
            _commit_returned(record, job, self.outdir)
            for item in record["outputs"]:
                item["sha256"] = sha256_file(self.outdir / item["path"])
            inputs = [(i["path"], i["sha256"]) for i in record["provenance"]["inputs"]]
            hashes = self.hashes[id(job)]
            record["provenance"].update(
                version=meshstyle_version(), options=job_options(job),
                styles=[{"path": s, "sha256": h} for s, h in zip(job.styles, hashes)],
                fingerprint=fingerprint(job, hashes, inputs))
        except Exception as exc:  # writing the returned bytes failed: the job failed
            record.update(status="error", error=error_line(exc), outputs=[])

    def done(self, job: Job, record: dict[str, Any]) -> None:
        """Record ``job``'s outcome (its record from a worker, or a skipped one)."""
        if record["status"] == "ok":
            self._complete(job, record)
        record.pop("files", None)
        record["run"] = self.run_id
        self.results.append(record)
        self.records[id(job)] = record
        self.failures += record["status"] == "error"
        self.bar.set_postfix(failed=self.failures, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
        self.results.close()


def dispatch_order(jobs: list[Job]) -> list[Job]:
    """The order jobs are handed to the workers: longest first (Graham's LPT rule, 1969), estimated as
    meshes before images (a mesh job renders views, fits and writes a preview sheet: 5-20x an image job
    at the same settings), larger input files first, folder order among equals. Handing the long jobs
    out first leaves the short ones to fill the workers at the end, instead of one long job running alone
    while the other workers idle."""
    def size(job: Job) -> int:
        try:
            return os.path.getsize(job.input)
        except OSError:
            return 0

    return sorted(jobs, key=lambda job: (job.command != "mesh", -size(job), job.row))


def _prepare_outdir(jobs: list[Job], outdir: Path) -> None:
    plan = OutputPlan([job.input for job in jobs])
    plan.add(outdir / RESULTS)
    plan.add(outdir / INDEX)
    plan.check()  # OUTDIR writable, with room
    outdir.mkdir(parents=True, exist_ok=True)
    clean_staging(outdir)


def run_batch(jobs: list[Job], outdir: str | os.PathLike, options: BatchOptions, threads: int | None = None,
              quiet: bool = False, on_start=None) -> BatchResult:
    """Run ``jobs`` (from :func:`~meshstyle.batch.plan.plan_jobs`) into ``outdir``; see the module docstring.

    Args:
        threads: torch threads per job (``--threads``; default: cores divided among the workers).
        quiet: no progress bar.
        on_start: called when the backend is ready to take jobs (benchmarks time from there).

    Returns:
        :class:`BatchResult`; its ``exit_status`` is 0 or 3.

    Raises:
        MeshstyleError: a bad batch option, Ray missing or unreachable, OUTDIR unusable.
        KeyboardInterrupt: Ctrl-C or SIGTERM (finished jobs are recorded).
    """
    options.validate()
    if options.backend == "ray":
        import_ray()  # a missing Ray is a bad command line: say so before anything else
    start, outdir = time.perf_counter(), Path(outdir).resolve()
    _prepare_outdir(jobs, outdir)
    style_hash = {s: sha256_file(s) for s in sorted({s for job in jobs for s in job.styles if not is_preset(s)})}
    hashes = {id(job): [style_hash.get(s, s) for s in job.styles] for job in jobs}
    previous = latest(read_records(outdir))
    recorder, todo = _Recorder(outdir, hashes, len(jobs), quiet), []
    workers = 1
    try:
        for job in jobs:
            old = previous.get(job.key)
            if not options.force and finished(job, old, outdir, hashes[id(job)]):
                recorder.done(job, {**old, "status": "skipped", "seconds": 0.0, "error": None, "row": job.row})
            else:
                todo.append(job)
        workers, threads = split_cores(len(todo) or 1, options.workers, threads)
        styles = {s: load_image(s) for s in sorted({s for job in todo for s in job.styles if not is_preset(s)})}
        by_key = {job.key: job for job in todo}
        if todo:
            with _sigterm_as_interrupt():
                order = dispatch_order(todo)
                stream = (run_local(order, styles, workers, threads, str(outdir), on_start)
                          if options.backend == "local" else
                          run_ray(order, styles, threads, options, str(outdir), on_start))
                try:
                    for record in stream:
                        recorder.done(by_key[record["input"]], record)
                finally:
                    stream.close()  # an interrupt between records stops the backend now, not at exit
    finally:
        recorder.close()
        clean_staging(outdir)
        done = [recorder.records[id(job)] for job in jobs if id(job) in recorder.records]
        write_index(outdir, done, {job.key: job.input for job in jobs})
    counts = {s: sum(r["status"] == s for r in done) for s in ("ok", "skipped", "error")}
    return BatchResult(done, outdir, workers, threads or 1, time.perf_counter() - start, peak_rss_mb(), counts)
