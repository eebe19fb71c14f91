"""Throughput of ``meshstyle batch``: jobs per minute on the local pool (1 and 2 workers) and on a 2-node Ray
cluster on this machine, Ray's overhead per job against the local pool, and the driver's memory.

The library is 8 sample assets (5 meshes: spot, bob, Fox, BoxTextured, the glTF cow; 3 photos) restyled
by the feed-forward method at low resolution (meshes: 4 views at 128 px, 1 round; photos: 256 px), so a
job takes seconds. Each configuration runs in its own process (``OMP_NUM_THREADS`` = threads per worker)
into a fresh OUTDIR, timed from the moment the backend takes jobs to the last record. The Ray cluster is
two nodes of 1 CPU on 127.0.0.1 (:func:`meshstyle.batch.raylocal.start_nodes`: loopback only, its own temp
dir, stopped at the end by process id). Prints one JSON line per configuration, then a summary line:

    python scripts/bench_batch.py [--configs local1x1,local1x2,local2x1,ray2] [--keep DIR]

``overhead_per_job_s`` is (wall x concurrent jobs - sum of the jobs' own seconds) / jobs: time a backend
spends around each job (process start, imports, transfer, scheduling); Ray's overhead is the difference
of the two backends' figures at the same concurrency.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from meshstyle.batch.raylocal import SWITCH, start_nodes, stop_nodes  # noqa: E402
ASSETS = ROOT / "assets"
STYLE = ASSETS / "styles" / "starry_night_google.jpg"
LIBRARY = ["meshes/spot/cow.obj", "meshes/spot/cow.mtl", "meshes/spot/cow_texture.png", "meshes/bob/bob_tri.obj",
           "meshes/bob/bob_tri.mtl", "meshes/bob/bob_diffuse.png", "meshes/gltf/Fox.glb",
           "meshes/gltf/BoxTextured.glb", "meshes/gltf/cow.glb", "content/coffee.png", "content/astronaut.png",
           "content/chelsea.png"]
OPTIONS = {"method": "feedforward", "views": 4, "resolution": 128, "rounds": 1, "iterations": 10, "size": 256}
CONFIGS = {"local1x1": ("local", 1, 1), "local1x2": ("local", 1, 2), "local2x1": ("local", 2, 1),
           "ray2": ("ray", 2, 1)}


def make_library(folder: Path) -> Path:
    """Copy the 8 assets (with their MTLs and textures) into ``folder``."""
    for rel in LIBRARY:
        target = folder / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ASSETS / rel, target)
    return folder


def run_one(name: str, library: Path, out: Path, address: str | None) -> dict:
    """One configuration in this process; returns its measures."""
    from meshstyle.batch import BatchOptions, plan_jobs, run_batch

    backend, workers, threads = CONFIGS[name]
    jobs = plan_jobs(library, [str(STYLE)], out, dict(OPTIONS))
    started: list[float] = []
    options = BatchOptions(backend=backend, workers=workers if backend == "local" else None,
                           ray_address=address)
    result = run_batch(jobs, out, options, threads=threads, quiet=True,
                       on_start=lambda: started.append(time.perf_counter()))
    wall = time.perf_counter() - started[0]
    job_seconds = sum(r["seconds"] for r in result.records)
    return {"config": name, "backend": backend, "workers": workers, "threads": threads, "jobs": len(jobs),
            "ok": result.counts.get("ok", 0), "wall_s": round(wall, 2),
            "jobs_per_minute": round(60 * len(jobs) / wall, 2), "sum_job_s": round(job_seconds, 2),
            "overhead_per_job_s": round((wall * workers - job_seconds) / len(jobs), 2),
            "driver_peak_rss_mb": result.driver_rss_mb,
            "worker_peak_rss_mb": max((r["peak_rss_mb"] or 0) for r in result.records)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--configs", default=",".join(CONFIGS), help="comma-separated: " + ", ".join(CONFIGS))
    parser.add_argument("--keep", default=None, help="write libraries and outputs here (default: a temp dir)")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--work", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--address", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # a child: one configuration
        work = Path(args.work)
        print(json.dumps(run_one(args.one, work / "library", work / f"out_{args.one}", args.address)), flush=True)
        return
    work = Path(args.keep or tempfile.mkdtemp(prefix="bench_batch-"))
    make_library(work / "library")
    names = [n for n in args.configs.split(",") if n]
    address, rows = None, {}
    try:
        for name in names:
            if CONFIGS[name][0] == "ray" and address is None:
                address = start_nodes(work / "ray", nodes=2, cpus=1)
            env = {**os.environ, "OMP_NUM_THREADS": str(CONFIGS[name][2]), SWITCH: "0"}
            shutil.rmtree(work / f"out_{name}", ignore_errors=True)
            command = [sys.executable, __file__, "--one", name, "--work", str(work)]
            if CONFIGS[name][0] == "ray":
                command += ["--address", address]
            line = subprocess.run(command, env=env, check=True, capture_output=True, text=True,
                                  timeout=3600).stdout.strip().splitlines()[-1]
            rows[name] = json.loads(line)
            print(line, flush=True)
    finally:
        if address is not None:
            stop_nodes(work / "ray")  # by process id: other Ray clusters on the machine stay up
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    summary = {}
    if "local1x1" in rows and "local2x1" in rows:
        summary["speedup_2_workers_vs_1x1"] = round(rows["local2x1"]["jobs_per_minute"]
                                                    / rows["local1x1"]["jobs_per_minute"], 2)
    if "local1x2" in rows and "local2x1" in rows:
        summary["speedup_2_workers_vs_1x2"] = round(rows["local2x1"]["jobs_per_minute"]
                                                    / rows["local1x2"]["jobs_per_minute"], 2)
    if "ray2" in rows and "local2x1" in rows:
        summary["ray_overhead_per_job_s"] = round(rows["ray2"]["overhead_per_job_s"]
                                                  - rows["local2x1"]["overhead_per_job_s"], 2)
    print(json.dumps({"summary": summary}))


if __name__ == "__main__":
    main()
