"""The local backend: a :class:`concurrent.futures.ProcessPoolExecutor` of ``workers`` processes.

Processes are spawned (not forked: torch's thread pools do not survive a fork), each with ``threads``
torch threads and the batch's decoded style images, sent once per process. A process that dies (killed,
out of memory) breaks the pool; the jobs it took down are run again once in a new pool, and a job that
takes a second pool down is recorded as an error. A process whose driver dies (even by SIGKILL) ends its job
within half a second, leaving no staging folder (it would otherwise run on and write unrecorded outputs).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from .plan import Job
from .worker import base_record, error_line, init_local_worker, local_job

#: Times a job may be in a pool that broke before it is recorded as an error.
POOL_RETRIES = 1


def _stop(pool: ProcessPoolExecutor) -> None:
    """Cancel queued jobs and end the pool's processes now (jobs in flight are lost, nothing half-written)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())  # shutdown forgets them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=30)
        if process.is_alive():
            process.kill()


def run_local(jobs: list[Job], styles: dict[str, Any], workers: int, threads: int, outdir: str,
              on_start: Callable[[], None] | None = None) -> Iterator[dict[str, Any]]:
    """Yield each job's record as it finishes (in completion order).

    Args:
        styles: style path -> tensor (3, H, W) in [0, 1], decoded once by the driver.
        workers, threads: processes, and torch threads in each.
        on_start: called once the pool exists (tests and benchmarks time from here).
    """
    context = multiprocessing.get_context("spawn")
    queue, tries = list(jobs), {id(job): 0 for job in jobs}
    while queue:
        pool = ProcessPoolExecutor(max_workers=min(workers, len(queue)), mp_context=context,
                                   initializer=init_local_worker, initargs=(threads, styles, os.getpid()))
        if on_start is not None:
            on_start()
        retry: list[Job] = []
        try:
            pending = {pool.submit(local_job, job, threads, outdir): job for job in queue}
            while pending:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    job = pending.pop(future)
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        tries[id(job)] += 1
                        if tries[id(job)] > POOL_RETRIES:
                            record = base_record(job)
                            record.update(status="error", error="its worker process died (killed, or out of memory?)")
                            yield record
                        else:
                            retry.append(job)
                    except Exception as exc:  # the record could not come back (e.g. not picklable)
                        record = base_record(job)
                        record.update(status="error", error=error_line(exc))
                        yield record
        except BaseException:
            _stop(pool)
            raise
        pool.shutdown(wait=True)
        queue = sorted(retry, key=lambda j: j.row)
