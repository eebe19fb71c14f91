"""The ``batch`` command: many meshes and images with one command line (argument parsing only).

Its flags are those of ``mesh`` and ``image`` (from their option tables; each job uses those of its own
command, on top of that command's defaults) and of :class:`~meshstyle.batch.options.BatchOptions`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ..batch import plan_jobs, run_batch
from ..batch.options import BatchOptions
from ..batch.plan import option_fields
from ..core import optiontable
from ..engine.options import EngineOptions
from ..stylize.options import ENGINE_DEFAULTS, ImageOptions, MeshOptions
from .epilog import EPILOG_WEIGHTS

log = logging.getLogger("meshstyle")

DESCRIPTION = """Restyle every mesh and image of a folder, or the jobs of a manifest, into OUTDIR.

SPEC is a folder (every .obj/.glb/.gltf goes through 'mesh', every .jpg/.jpeg/.png through 'image';
outputs mirror the folders under OUTDIR) or a manifest (.csv or .jsonl: one row per job with 'input'
and optionally 'style', 'method', 'output' and any option by its flag name, e.g. 'iterations').
Options of both commands are accepted; each job uses those of its own command (--views for meshes,
--size for images) on top of that command's defaults. OUTDIR gets results.jsonl (one line per job)
and index.html (before/after thumbnails and the table). A failing job is recorded and the batch goes
on: exit status 0 when all jobs succeeded, 3 when some failed, 2 for a bad command line. Re-running
skips jobs whose outputs exist with the same inputs, options and version (--force redoes them)."""

EXAMPLES = """examples:
  meshstyle batch assets/ --style starry.jpg --method feedforward -o out/
  meshstyle batch jobs.csv --style starry.jpg -o out/ --workers 2
  meshstyle batch assets/ --style wave.jpg -o /shared/out --backend ray --ray-address auto

"""


def add_batch_command(sub) -> None:
    """Register ``batch`` on the CLI's subparsers."""
    parents = []
    # image's table last: where both commands have a flag (--init), the more permissive one parses and
    # each job's own table checks the value
    for table, command in ((EngineOptions, "mesh"), (MeshOptions, "mesh"), (EngineOptions, "image"),
                           (ImageOptions, "image")):
        parent = argparse.ArgumentParser(add_help=False, conflict_handler="resolve")
        optiontable.add_flags(parent, table, command, ENGINE_DEFAULTS[command] if table is EngineOptions else None)
        parents.append(parent)
    p = sub.add_parser("batch", parents=parents, conflict_handler="resolve", help="restyle a folder or manifest of "
                       "meshes and images (local process pool or Ray)", description=DESCRIPTION,
                       epilog=EXAMPLES + EPILOG_WEIGHTS, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("spec", metavar="SPEC", help="folder of meshes and images, or a manifest (.csv, .jsonl)")
    p.add_argument("--style", action="append", default=None,
                   help="style image (repeat to blend; preset:N with --method feedforward) for jobs whose "
                        "manifest row names none")
    p.add_argument("-o", "--output", required=True, metavar="OUTDIR", help="output folder")
    optiontable.add_flags(p, BatchOptions, "batch")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar, only errors")
    names = set(option_fields())
    for action in p._actions:  # an option not on the command line stays unset: each job's command's default
        if action.dest in names:
            action.default = argparse.SUPPRESS
    p.set_defaults(func=cmd_batch)


def cmd_batch(args) -> int:
    """``meshstyle batch``: plan and validate every job, run them, report; returns 0, 3 (some jobs failed)."""
    given = {name: getattr(args, name) for name in option_fields() if hasattr(args, name)}
    options = optiontable.from_args(BatchOptions, args)
    options.validate()
    jobs = plan_jobs(args.spec, args.style or [], args.output, given)
    log.info("%d jobs (%d meshes, %d images)", len(jobs), sum(j.command == "mesh" for j in jobs),
             sum(j.command == "image" for j in jobs))
    try:
        result = run_batch(jobs, args.output, options, threads=given.get("threads"), quiet=args.quiet)
    except KeyboardInterrupt:
        log.error("interrupted: finished jobs are in %s; the same command resumes with the others",
                  Path(args.output) / "results.jsonl")
        return 130
    line = f"meshstyle: {result.summary()}"
    if result.failed:
        log.error("%s", line.removeprefix("meshstyle: "))
    else:
        log.info("%s", line.removeprefix("meshstyle: "))
    return result.exit_status
