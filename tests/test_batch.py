"""meshstyle batch on the local process pool: failures stay local, resume, manifests, the report, --threads."""

from __future__ import annotations

import csv
import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pygltflib
import pytest
import torch
from PIL import Image

from conftest import ASSETS, STYLE
from meshstyle import MeshstyleError, stylize_batch, stylize_image
from meshstyle.batch import plan_jobs
from meshstyle.batch.options import split_cores
from meshstyle.batch.raylocal import alive, descendants
from meshstyle.batch.results import read_records, sha256_file
from meshstyle.batch.run import dispatch_order
from meshstyle.cli import main
from meshstyle.stylize.feedforward import FeedForward, remember_embedding, shared_networks

BOX = ASSETS / "meshes" / "gltf" / "BoxTextured.glb"
#: the smallest jobs that still run the whole path: 2 views / 2 steps / one depth level, 64 px images
TINY = ["--views", "2", "--iterations", "2", "--vgg-weights", "random", "--size", "64", "--resolution", "64",
        "--depth-levels", "1", "--render-scales", "1", "--quiet"]


def _library(root: Path) -> Path:
    """A folder with a mesh, a photo in a subfolder and a corrupt GLB."""
    (root / "photos").mkdir(parents=True)
    shutil.copy(BOX, root / "box.glb")
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)).save(root / "photos" / "noise.png")
    (root / "broken.glb").write_bytes(b"glTF\x02\x00\x00\x00 this is not a GLB")
    return root


def _files(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() or p.name.startswith(".")}


@pytest.fixture(scope="module")
def first_batch(tmp_path_factory):
    """One batch over the library (2 workers x 1 thread): (library, outdir, exit status)."""
    root = tmp_path_factory.mktemp("batch")
    library, out = _library(root / "in"), root / "out"
    status = main(["batch", str(library), "--style", str(STYLE), "-o", str(out), "--workers", "2", *TINY])
    return library, out, status


def test_folder_with_a_corrupt_file_records_it_and_finishes_the_others(first_batch):
    library, out, status = first_batch
    assert status == 3
    records = {r["input"]: r for r in read_records(out)}
    assert {k: r["status"] for k, r in records.items()} == {"box.glb": "ok", "broken.glb": "error",
                                                           "photos/noise.png": "ok"}
    error = records["broken.glb"]["error"]
    assert "broken.glb" in error and "\n" not in error and records["broken.glb"]["outputs"] == []
    # exactly the ok jobs' files, each with its recorded hash; nothing for the bad one, no staging left
    written = {o["path"]: o["sha256"] for r in records.values() for o in r["outputs"]}
    assert {"box.glb", "box.glb.preview.png", "photos/noise.png"} <= set(written)
    assert not [p for p in written if p.startswith("broken")]
    assert _files(out) == set(written) | {"results.jsonl", "index.html"}
    assert all(sha256_file(out / path) == digest for path, digest in written.items())
    assert Image.open(out / "photos" / "noise.png").size == (64, 48)
    assert records["box.glb"]["provenance"]["inputs"][0]["path"] == str((library / "box.glb").resolve())


def test_rerun_skips_finished_jobs_and_a_changed_option_redoes_only_those_it_touches(first_batch, tmp_path):
    library, first_out, _ = first_batch
    out = tmp_path / "out"
    shutil.copytree(first_out, out)
    before = {p: sha256_file(out / p) for p in ("box.glb", "photos/noise.png")}
    assert main(["batch", str(library), "--style", str(STYLE), "-o", str(out), *TINY]) == 3
    second = read_records(out)[3:]
    assert {r["input"]: r["status"] for r in second} == {"box.glb": "skipped", "photos/noise.png": "skipped",
                                                         "broken.glb": "error"}
    # --size is an image option: the photo is redone at the new size, the mesh is not
    tiny = [a if a != "64" or TINY[i - 1] != "--size" else "32" for i, a in enumerate(TINY)]
    assert main(["batch", str(library), "--style", str(STYLE), "-o", str(out), *tiny]) == 3
    third = {r["input"]: r for r in read_records(out)[6:]}
    assert {k: r["status"] for k, r in third.items()} == {"box.glb": "skipped", "photos/noise.png": "ok",
                                                          "broken.glb": "error"}
    assert sha256_file(out / "box.glb") == before["box.glb"]
    assert Image.open(out / "photos" / "noise.png").size == (32, 24)
    assert third["photos/noise.png"]["provenance"]["options"]["size"] == "32"


def test_manifest_rows_apply_their_own_options(tmp_path):
    library = _library(tmp_path / "in")
    manifest = library / "jobs.csv"
    with manifest.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["input", "output", "seed", "iterations", "views"])
        writer.writerow(["box.glb", "meshes/box_seed5.glb", "5", "3", "3"])
        writer.writerow(["photos/noise.png", "", "7", "1", ""])
    out = tmp_path / "out"
    result = stylize_batch(manifest, STYLE, out, quiet=True, workers=1, vgg_weights="random", size=64,
                           resolution=64, depth_levels=1, render_scales=1, views=2, iterations=2)
    assert result.exit_status == 0 and result.counts == {"ok": 2, "skipped": 0, "error": 0}
    records = {r["input"]: r for r in read_records(out)}
    mesh, photo = records["box.glb"]["provenance"], records["photos/noise.png"]["provenance"]
    assert (mesh["options"]["seed"], mesh["options"]["iterations"], mesh["options"]["views"]) == (5, 3, 3)
    assert (photo["options"]["seed"], photo["options"]["iterations"], photo["options"]["size"]) == (7, 1, 64)
    # the output files carry the row's seed too (glTF asset.extras written by the exporter)
    extras = pygltflib.GLTF2().load(str(out / "meshes" / "box_seed5.glb")).asset.extras
    assert str(extras["meshstyle"]["seed"]) == "5" and mesh["written"]["seed"] == 5 and photo["written"]["seed"] == 7


def test_a_bad_manifest_row_is_a_one_line_error_before_any_job(tmp_path, capsys):
    library = _library(tmp_path / "in")
    manifest = library / "jobs.jsonl"
    manifest.write_text(json.dumps({"input": "box.glb"}) + "\n" + json.dumps({"input": "photos/noise.png",
                                                                             "iterations": 0}) + "\n")
    out = tmp_path / "out"
    assert main(["batch", str(manifest), "--style", str(STYLE), "-o", str(out)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(errors) == 1 and "jobs.jsonl row 2: --iterations must be" in errors[0]
    assert not out.exists()
    manifest.write_text(json.dumps({"input": "../../etc/passwd"}) + "\n")
    assert main(["batch", str(manifest), "--style", str(STYLE), "-o", str(out)]) == 2
    assert "outside" in capsys.readouterr().err and not out.exists()


def test_workers_and_threads_share_the_cores():
    assert split_cores(jobs=8, workers=None, threads=None, cores=2) == (2, 1)
    assert split_cores(jobs=1, workers=None, threads=None, cores=2) == (1, 2)
    assert split_cores(jobs=8, workers=None, threads=2, cores=4) == (2, 2)
    assert split_cores(jobs=8, workers=1, threads=None, cores=4) == (1, 4)


def test_threads_option_sets_torch_threads_of_a_run():
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        stylize_image(torch.rand(3, 24, 24), torch.rand(3, 24, 24), iterations=1, size=24, vgg_weights="random",
                      threads=1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_index_html_shows_every_thumbnail_in_chromium(first_batch, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does)")
    _, out, _ = first_batch
    page = (out / "index.html").read_text()
    assert "http://" not in page and "https://" not in page  # self-contained: nothing to fetch
    expected = page.count("<img ")
    assert expected == 3  # the mesh's sheet, the photo before and after; the broken mesh has none
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=5000", "--dump-dom", (out / "index.html").as_uri()],
        capture_output=True, text=True, timeout=120, check=True).stdout
    assert re.search(r'data-images="(\d+)/(\d+)"', dom).groups() == (str(expected), str(expected))
    assert "broken" not in re.findall(r'<img[^>]*class="([^"]*)"', dom)


def test_ray_backend_without_ray_says_how_to_install_it(tmp_path, monkeypatch):
    library = _library(tmp_path / "in")
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as on a machine without it
    with pytest.raises(MeshstyleError, match=r"pip install 'meshstyle\[ray\]'"):
        stylize_batch(library, STYLE, tmp_path / "out", backend="ray", quiet=True)
    assert not (tmp_path / "out").exists()


def test_sigterm_of_the_driver_keeps_finished_jobs_and_the_rerun_does_the_rest(tmp_path):
    library = tmp_path / "in"
    library.mkdir()
    rng = np.random.default_rng(2)
    for i in range(3):
        Image.fromarray(rng.integers(0, 255, (48, 48, 3), dtype=np.uint8)).save(library / f"p{i}.png")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "meshstyle.cli", "batch", str(library), "--style", str(STYLE), "-o", str(out),
               "--workers", "1", "--threads", "1", "--size", "48", "--iterations", "40", "--vgg-weights", "random",
               "--quiet"]
    driver = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while not read_records(out) and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.2)
        assert driver.poll() is None, driver.stderr.read()
        driver.send_signal(signal.SIGTERM)
        status, err = driver.wait(timeout=120), driver.stderr.read()
    finally:
        if driver.poll() is None:
            driver.kill()
    assert status == 130 and "resumes" in err and "Traceback" not in err
    first = read_records(out)
    assert 1 <= len(first) < 3 and all(r["status"] == "ok" for r in first)
    listed = {o["path"] for r in first for o in r["outputs"]}
    assert _files(out) == listed | {"results.jsonl", "index.html"}  # nothing half-written, no staging
    assert subprocess.run(command, capture_output=True, timeout=300).returncode == 0
    second = read_records(out)[len(first):]
    assert sorted(r["input"] for r in second) == ["p0.png", "p1.png", "p2.png"]
    assert {r["input"] for r in second if r["status"] == "skipped"} == {r["input"] for r in first}


def test_sigkill_of_the_driver_loses_only_the_jobs_in_flight(tmp_path):
    library = tmp_path / "in"
    library.mkdir()
    rng = np.random.default_rng(3)
    names = [f"p{i}.png" for i in range(5)]
    for name in names:
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(library / name)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "meshstyle.cli", "batch", str(library), "--style", str(STYLE), "-o", str(out),
               "--workers", "2", "--threads", "1", "--size", "40", "--iterations", "20", "--vgg-weights", "random",
               "--quiet"]
    driver = subprocess.Popen(command, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while not read_records(out) and time.monotonic() < deadline and driver.poll() is None:
            time.sleep(0.05)
        workers = descendants({driver.pid}) - {driver.pid}
        assert driver.poll() is None and workers
        driver.kill()  # SIGKILL: no handler runs in the driver
        driver.wait(timeout=60)
    finally:
        if driver.poll() is None:
            driver.kill()
    deadline = time.monotonic() + 60  # its pool processes notice and end their jobs (no orphan runs on)
    while [p for p in workers if alive(p)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [p for p in workers if alive(p)]
    first = read_records(out)
    assert 1 <= len(first) < len(names) and all(r["status"] == "ok" for r in first)
    # nothing half-written and no staging folder of the output planner: besides the recorded outputs, only the
    # whole output of a job that was in flight, whose worker finished its atomic write as the driver died
    # (unrecorded, so the rerun redoes and records it)
    recorded = {o["path"] for r in first for o in r["outputs"]}
    unrecorded = _files(out) - recorded - {"results.jsonl"}
    assert unrecorded <= set(names) - {r["input"] for r in first}
    for path in unrecorded:
        with Image.open(out / path) as image:
            image.verify()
    with (out / "results.jsonl").open("ab") as results:  # a line torn by a kill in the middle of a write
        results.write(b'{"input": "p4.png", "status": "o')
    assert subprocess.run(command, capture_output=True, timeout=600).returncode == 0
    records = read_records(out)
    assert len(records) == len(first) + len(names)  # the torn line is skipped, the rerun's lines are whole
    second = records[len(first):]
    assert sorted(r["input"] for r in second) == names
    assert {r["input"] for r in second if r["status"] == "skipped"} == {r["input"] for r in first}
    ok = [r["input"] for r in records if r["status"] == "ok"]
    assert sorted(ok) == names  # every job exactly one ok row over both runs
    listed = {o["path"]: o["sha256"] for r in records if r["status"] == "ok" for o in r["outputs"]}
    assert _files(out) == set(listed) | {"results.jsonl", "index.html"}
    assert all(sha256_file(out / path) == digest for path, digest in listed.items())


def test_a_handed_in_style_embedding_is_not_predicted_again(tmp_path):
    nets = FeedForward("cpu", tmp_path)  # its predictor is never loaded below (that needs meshstyle[pretrained])
    image = torch.rand(3, 20, 30)
    embedding = torch.linspace(-1, 1, 100)
    remember_embedding(image, embedding)
    assert torch.equal(nets.embed(image), embedding) and "predict" not in nets._nets
    assert torch.equal(nets.embed(image.clone()), embedding)  # by the bytes, not the tensor object
    parsed = nets.parse_style([image, image.clone()], [0.25, 0.75])
    assert torch.allclose(parsed.embedding, embedding)  # a blend of one painting with itself
    assert shared_networks("cpu", tmp_path) is shared_networks("cpu", tmp_path)
    assert shared_networks("cpu", tmp_path) is not shared_networks("cpu", tmp_path / "other")


def test_jobs_are_handed_out_longest_first(tmp_path):
    library = _library(tmp_path / "in")  # box.glb, broken.glb (smaller), photos/noise.png
    rng = np.random.default_rng(4)
    Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(library / "a_small.png")
    jobs = plan_jobs(library, [str(STYLE)], tmp_path / "out", {})
    assert [j.key for j in jobs] == ["a_small.png", "box.glb", "broken.glb", "photos/noise.png"]  # folder order
    assert [j.key for j in dispatch_order(jobs)] == ["box.glb", "broken.glb", "photos/noise.png", "a_small.png"]
