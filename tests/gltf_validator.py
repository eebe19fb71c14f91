"""Run the Khronos glTF-Validator (npm package ``gltf-validator``) on GLB files from the tests.

On first use the suite installs it into ``build/gltf-validator`` (git-ignored) with npm, as ``.ci/run``
does, so the README's test command validates on a fresh machine too::

    npm install --no-audit --no-fund --prefix build/gltf-validator gltf-validator

Only without ``node`` or ``npm`` (or when that install fails, offline say) are the checks skipped with a
message, unless the environment variable ``CI`` is set: then they fail, so CI never passes without
validating.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "build" / "gltf-validator" / "node_modules" / "gltf-validator"
SCRIPT = Path(__file__).resolve().parent / "gltf_validate.js"
INSTALL = "npm install --no-audit --no-fund --prefix build/gltf-validator gltf-validator"


_install_failure: list[str] = []  # why the first-use install failed (tried once per session)


def _install() -> str | None:
    """Install the validator with npm unless it is there (a file lock keeps concurrent test runs from
    installing twice); returns why it is not available, or None."""
    if (MODULE / "package.json").exists():
        return None
    if _install_failure:
        return _install_failure[0]
    npm = shutil.which("npm")
    if npm is None:
        _install_failure.append("npm is not on PATH")
        return _install_failure[0]
    prefix = MODULE.parents[1]
    prefix.mkdir(parents=True, exist_ok=True)
    with open(prefix.parent / "gltf-validator.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (MODULE / "package.json").exists():
            proc = subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(prefix),
                                   "gltf-validator"], capture_output=True, text=True, timeout=600)
            if proc.returncode != 0 or not (MODULE / "package.json").exists():
                _install_failure.append(f"npm install failed: {proc.stderr.strip()[-300:]}")
                return _install_failure[0]
    return None


def _unavailable(reason: str):
    message = f"glTF-Validator not available ({reason}); install with: {INSTALL}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def validate(*paths: str | os.PathLike) -> dict[Path, dict]:
    """The validator's ``issues`` object (numErrors, numWarnings, messages with code and severity:
    0 error, 1 warning, 2 info, 3 hint) for every file."""
    node = shutil.which("node")
    if node is None:
        _unavailable("node is not on PATH")
    why = _install()
    if why is not None:
        _unavailable(why)
    proc = subprocess.run([node, str(SCRIPT), str(MODULE), *map(str, paths)], capture_output=True, text=True,
                          timeout=120)
    if proc.returncode != 0:
        raise AssertionError(f"glTF-Validator failed to run: {proc.stderr.strip()}")
    return {Path(k): v for k, v in json.loads(proc.stdout).items()}


def codes(issues: dict, severity: int) -> set[str]:
    return {m["code"] for m in issues["messages"] if m["severity"] == severity}


def assert_valid(path: str | os.PathLike, baseline: str | os.PathLike | None = None) -> dict:
    """0 errors in ``path``, and no warning code that ``baseline`` (the input file) did not have."""
    targets = [path] + ([baseline] if baseline is not None else [])
    reports = validate(*targets)
    issues = reports[Path(path)]
    errors = [m for m in issues["messages"] if m["severity"] == 0]
    assert not errors, f"{path}: glTF-Validator errors: {errors[:5]}"
    allowed = codes(reports[Path(baseline)], 1) if baseline is not None else set()
    new = codes(issues, 1) - allowed
    assert not new, f"{path}: new glTF-Validator warnings {sorted(new)}: " + str(
        [m for m in issues["messages"] if m["code"] in new][:5])
    return issues
