"""meshstyle batch on Ray: a real 2-node cluster on this machine (loopback, own temp dirs, stopped after)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ASSETS, STYLE
from meshstyle import stylize_batch
from meshstyle.batch.rayjobs import stop_nodes
from meshstyle.batch.results import read_records, sha256_file

pytest.importorskip("ray", reason="Ray is not installed (pip install 'meshstyle[ray]'; the dev extra has it)")

RAY = str(Path(sys.executable).with_name("ray"))
TINY = {"views": 2, "vgg_weights": "random", "size": 64, "resolution": 64, "depth_levels": 1, "render_scales": 1,
        "threads": 1, "quiet": True}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head node and a second node, 1 CPU each, on 127.0.0.1, stopped at the end whatever happens (by
    process id: 'ray stop' would also stop other Ray clusters on a shared machine)."""
    root = tmp_path_factory.mktemp("ray")
    port = _free_port()
    common = ["--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--disable-usage-stats"]
    try:
        subprocess.run([RAY, "start", "--head", "--port", str(port), "--temp-dir", str(root / "head"),
                        "--include-dashboard", "false", *common], check=True, timeout=120, capture_output=True)
        subprocess.run([RAY, "start", "--address", f"127.0.0.1:{port}", "--temp-dir", str(root / "node2"), *common],
                       check=True, timeout=120, capture_output=True)
        yield f"127.0.0.1:{port}"
    finally:
        stop_nodes(root)


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
    remote = stylize_batch(library, STYLE, tmp_path / "ray", backend="ray", ray_address=cluster, iterations=2,
                           **TINY)
    assert local.exit_status == remote.exit_status == 0
    assert len(_outputs(tmp_path / "local")) >= 4
    assert _outputs(tmp_path / "ray") == _outputs(tmp_path / "local")
    assert len({r["worker"] for r in remote.records}) >= 1


def _ray_job_pids() -> list[int]:
    """Processes executing a batch job as a Ray task (Ray titles them 'ray::ray_job')."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
            if cmdline.startswith(b"ray::ray_job"):
                pids.append(int(entry))
    return pids


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
        result = stylize_batch(library, STYLE, tmp_path / "out", backend="ray", ray_address=cluster,
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
