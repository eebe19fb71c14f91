"""The Ray backend: each job is a Ray task (https://docs.ray.io, ``pip install 'meshstyle[ray]'``).

A task reserves ``num_cpus`` = torch threads per job and ``num_gpus`` = ``--gpus-per-job``, and is retried
``--retries`` times when its worker process dies (Ray's ``max_retries``; a job that fails by itself is an
error record, not retried). The decoded style images go into the object store once (``ray.put``) and
every task gets them by reference. Results stream back with ``ray.wait``; the driver alone writes the
results file. Input files are read by the workers at the driver's paths (shared storage, or one
machine); outputs come back as bytes for the driver to write (``--ray-outputs driver``), or the workers
write them into OUTDIR through the same output planner (``shared``).

Without ``--ray-address`` a single-node cluster is started for the batch (on 127.0.0.1) and stopped after.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ..core.errors import MeshstyleError
from .options import BatchOptions, cpu_count
from .plan import Job
from .worker import base_record, ray_job

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
    kwargs = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
    try:
        if options.ray_address:
            ray.init(address=options.ray_address, **kwargs)
        else:
            ray.init(num_cpus=cpu_count(), _node_ip_address="127.0.0.1", **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise MeshstyleError(f"cannot join the Ray cluster at {options.ray_address or 'a new local one'}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    try:
        refs = {path: ray.put(image) for path, image in styles.items()}
        task = ray.remote(ray_job).options(num_cpus=threads, num_gpus=options.gpus_per_job,
                                           max_retries=options.retries, retry_exceptions=False)
        mode = "return" if options.ray_outputs == "driver" else "shared"
        if on_start is not None:
            on_start()
        pending = {task.remote(job, threads, mode, outdir, *[refs.get(s, s) for s in job.styles]): job
                   for job in jobs}
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
    finally:
        ray.shutdown()


def _children(pids: set[int]) -> set[int]:
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = set(pids)
    while True:
        more = {pid for pid, parent in parents.items() if parent in found} - found
        if not more:
            return found
        found |= more


def stop_nodes(temp_dir: str | os.PathLike, timeout: float = 30.0) -> list[int]:
    """Stop the Ray nodes started on this machine with ``ray start --temp-dir`` under ``temp_dir``: every
    process whose command line names that folder, and their descendants (workers), by process id (SIGTERM,
    then SIGKILL after ``timeout`` s). Unlike ``ray stop`` it leaves other Ray clusters on the machine
    alone. Linux only (reads /proc). Returns the process ids signalled."""
    marker = str(Path(temp_dir).resolve()).encode()
    roots = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            try:
                if marker in Path(f"/proc/{entry}/cmdline").read_bytes():
                    roots.add(int(entry))
            except OSError:
                continue
    pids = sorted(_children(roots))
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
            time.sleep(0.2)
    return pids
