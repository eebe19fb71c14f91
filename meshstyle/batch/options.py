"""Options of ``meshstyle batch`` itself (how jobs run), declared once in the option table.

The jobs' own options are those of ``mesh`` and ``image`` (:class:`~meshstyle.engine.options.EngineOptions`,
:class:`~meshstyle.stylize.options.ImageOptions`, :class:`~meshstyle.stylize.options.MeshOptions`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from ..core.errors import MeshstyleError
from ..core.optiontable import check, option

BATCH = frozenset({"batch"})
BACKENDS = ("local", "ray")
RAY_OUTPUTS = ("driver", "shared")


def _address_problem(value) -> str | None:
    if value == "auto":
        return None
    host, _, port = str(value).rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return "must be auto or HOST:PORT"
    return None


@dataclass
class BatchOptions:
    """How a batch runs its jobs (one field per flag; help, range and default in each declaration)."""

    backend: str = option("local", "where jobs run: local (a process pool on this machine) or ray (Ray tasks; "
                          "needs meshstyle[ray])", choices=BACKENDS, commands=BATCH, group="batch")
    workers: int | None = option(None, "local: worker processes (auto: cores / --threads, at most one per job)",
                                 kind="int", low=1, high=1024, none=True, commands=BATCH, group="batch")
    force: bool = option(False, "redo jobs whose outputs exist with the same inputs, options and version "
                         "(default: skip them)", kind="bool", commands=BATCH, group="batch")
    ray_address: str | None = option(None, "ray: join this cluster, auto (the one 'ray start' made on this node) "
                                     "or HOST:PORT (default: start a local one)", none=True,
                                     check=_address_problem, commands=BATCH, group="batch",
                                     metavar="auto|HOST:PORT")
    gpus_per_job: float = option(0.0, "ray: GPUs each job reserves", kind="float", low=0, high=64,
                                 commands=BATCH, group="batch")
    ray_outputs: str = option("driver", "ray: workers return output bytes to the driver, which writes them "
                              "(driver), or write them into OUTDIR themselves when it is shared storage "
                              "(shared)", choices=RAY_OUTPUTS, commands=BATCH, group="batch")
    retries: int = option(3, "ray: times a job is retried when its worker process dies", kind="int", low=0,
                          high=100, commands=BATCH, group="batch")

    def validate(self) -> None:
        """Raise :class:`MeshstyleError` (one line) for any bad value."""
        check(self)
        if self.backend == "local" and (self.ray_address is not None or self.gpus_per_job):
            raise MeshstyleError("--ray-address and --gpus-per-job need --backend ray")


def cpu_count() -> int:
    """CPU cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def split_cores(jobs: int, workers: int | None, threads: int | None, cores: int | None = None) -> tuple[int, int]:
    """(workers, torch threads per job) so that workers x threads <= cores where the user left them open.

    Given neither: one worker per core, at most one per job, and the cores divided among them. Given one,
    the other is cores divided by it (at least 1). Given both, they are kept as given.
    """
    cores = cores or cpu_count()
    if workers is None and threads is None:
        workers = max(1, min(cores, jobs))
        return workers, max(1, cores // workers)
    if workers is None:
        return max(1, min(jobs, cores // threads)), threads
    if threads is None:
        return workers, max(1, cores // workers)
    return workers, threads
