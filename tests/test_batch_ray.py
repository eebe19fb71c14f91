"""meshstyle batch on Ray: a real 2-node cluster on this machine (loopback only, own temp dir, stopped after),
and the one-machine cluster the batch starts itself."""

from __future__ import annotations

import ipaddress
import os
import shutil
import signal
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ASSETS, STYLE
from meshstyle import stylize_batch
from meshstyle.batch import BatchOptions, plan_jobs, run_batch
from meshstyle.batch.raylocal import alive, descendants, find_processes, loopback, start_nodes, stop_nodes
from meshstyle.batch.results import read_records, sha256_file

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'meshstyle[ray]'; the dev extra has it)")

TINY = {"views": 2, "vgg_weights": "random", "size": 64, "resolution": 64, "depth_levels": 1, "render_scales": 1,
        "threads": 1, "quiet": True}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head node and a second node, 1 CPU each, on 127.0.0.1: (address, root folder of its files). Stopped at
    the end whatever happens, by process id ('ray stop' would also stop other Ray clusters of the machine)."""
    root = tmp_path_factory.mktemp("ray")
    try:
        with loopback(ray):  # this driver keeps 127.0.0.1 too (Ray would rewrite it to the outward address)
            yield start_nodes(root, nodes=2, cpus=1), root
    finally:
        stop_nodes(root)
    assert not find_processes(lambda cmdline: str(root).encode() in cmdline)


def _listening(pids: set[int]) -> list[tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int, int]]:
    """(address, port, pid) of every listening TCP socket of ``pids`` (from /proc/net/tcp and tcp6)."""
    owner = {}
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:["):
                    owner[link[8:-1]] = pid
        except OSError:
            continue
    found = []
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in owner:  # 0A: LISTEN
                continue
            host, port = fields[1].split(":")
            raw = bytes.fromhex(host)
            raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))  # the kernel's word order
            found.append((ipaddress.ip_address(raw), int(port, 16), owner[fields[9]]))
    return found


def _loopback(address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    return address.is_loopback or (mapped is not None and mapped.is_loopback)


def _library(root: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copy(ASSETS / "meshes" / "gltf" / "BoxTextured.glb", root / "box.glb")
    rng = np.random.default_rng(1)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)).save(root / f"photo{i}.png")
    return root


def _outputs(out: Path) -> dict[str, str]:
    return {p.relative_to(out).as_posix(): sha256_file(p) for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in ("results.jsonl", "index.html")}


def test_ray_cluster_batch_equals_the_local_pool_byte_for_byte(cluster, tmp_path):
    library = _library(tmp_path / "in")
    local = stylize_batch(library, STYLE, tmp_path / "local", workers=2, iterations=2, **TINY)
    remote = stylize_batch(library, STYLE, tmp_path / "ray", backend="ray", ray_address=cluster[0], iterations=2,
                           **TINY)
    assert local.exit_status == remote.exit_status == 0
    assert len(_outputs(tmp_path / "local")) >= 4
    assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "local")
    assert len({r["worker"] for r in remote.records}) >= 1
    # every server of the cluster (GCS, raylets, agents, the workers that ran the jobs) on loopback only
    pids = descendants(find_processes(lambda cmdline: str(cluster[1]).encode() in cmdline))
    listening = _listening(pids)
    assert len({pid for _, _, pid in listening}) >= 4 and all(_loopback(a) for a, _, _ in listening), listening


def test_the_cluster_the_batch_starts_itself_listens_on_loopback_only(tmp_path):
    library = _library(tmp_path / "in")
    options = {"iterations": 2, **{k: v for k, v in TINY.items() if k != "quiet"}}
    jobs = plan_jobs(library, [str(STYLE)], tmp_path / "out", options)
    seen, before = [], descendants({os.getpid()})  # (the module's cluster holder may be a child too)
    auth = os.environ.get("RAY_AUTH_MODE")
    result = run_batch(jobs, tmp_path / "out", BatchOptions(backend="ray"), threads=1, quiet=True,
                       on_start=lambda: seen.extend(_listening(descendants({os.getpid()}) - before)))
    assert result.exit_status == 0 and result.counts["ok"] == 3
    assert os.environ.get("RAY_AUTH_MODE") == auth  # Ray's token mode for its own cluster does not stay on
    assert len({pid for _, _, pid in seen}) >= 3 and all(_loopback(a) for a, _, _ in seen), seen
    deadline = time.monotonic() + 30  # the cluster is gone (Ray ends its processes as it shuts down)
    while [p for p in descendants({os.getpid()}) - before if alive(p)] and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in descendants({os.getpid()}) - before if alive(p)]
    assert not left


@pytest.mark.pretrained
def test_feedforward_on_ray_with_style_targets_from_the_object_store_equals_the_local_pool(cluster, tmp_path):
    library = _library(tmp_path / "in")
    options = {"method": "feedforward", "views": 2, "resolution": 64, "rounds": 1, "iterations": 5, "size": 64,
               "threads": 1, "quiet": True}
    local = stylize_batch(library, STYLE, tmp_path / "local", workers=2, **options)
    remote = stylize_batch(library, STYLE, tmp_path / "ray", backend="ray", ray_address=cluster[0], **options)
    assert local.exit_status == remote.exit_status == 0 and remote.counts["ok"] == 3
    assert len(_outputs(tmp_path / "local")) >= 4
    assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "local")


def _ray_job_pids() -> list[int]:
    """Processes executing a batch job as a Ray task (Ray titles them 'ray::ray_job')."""
    return sorted(find_processes(lambda cmdline: cmdline.startswith(b"ray::ray_job")))


def test_killing_a_worker_mid_job_leaves_a_complete_result_set(cluster, tmp_path):
    library = _library(tmp_path / "in")
    killed: list[int] = []
    stop = threading.Event()

    def killer():
        deadline = time.monotonic() + 300
        while not killed and not stop.is_set() and time.monotonic() < deadline:
            pids = _ray_job_pids()
            if pids:
                time.sleep(1.0)  # well inside the job: views cast, optimizing
                try:
                    os.kill(pids[0], signal.SIGKILL)
                    killed.append(pids[0])
                except ProcessLookupError:
                    continue
            time.sleep(0.1)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        result = stylize_batch(library, STYLE, tmp_path / "out", backend="ray", ray_address=cluster[0],
                               ray_outputs="shared", retries=2, iterations=30, **TINY)
    finally:
        stop.set()
        thread.join(timeout=10)
    assert killed, "no Ray worker was seen running a job"
    records = read_records(tmp_path / "out")
    assert sorted(r["input"] for r in records) == ["box.glb", "photo0.png", "photo1.png"]  # one row each
    assert result.exit_status == 0 and all(r["status"] == "ok" for r in records)
    listed = {o["path"]: o["sha256"] for r in records for o in r["outputs"]}
    assert _outputs(tmp_path / "out") == listed  # every file complete and recorded, nothing else
    assert not [p for p in (tmp_path / "out").rglob(".*")]  # no staging folder of the killed attempt
