"""Automatic UV unwrapping with xatlas, run in a child process.

xatlas 0.0.11 can crash the interpreter (seen with a segmentation fault on an 81,920-face icosphere),
so :func:`unwrap` runs it in a separate Python process: a crash there becomes a
:class:`~meshstyle.core.errors.MeshstyleError` here instead of killing the caller.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from ..core.errors import MeshstyleError

#: The child process's program: it imports only numpy and xatlas (not meshstyle and torch, ~10 s), reads
#: vertices/faces from argv[1] (.npz, no pickles) and writes xatlas's result to argv[2].
WORKER = """
import sys
import numpy as np
import xatlas
data = np.load(sys.argv[1], allow_pickle=False)
vmapping, indices, uvs = xatlas.parametrize(data["vertices"].astype(np.float32), data["faces"].astype(np.uint32))
np.savez(sys.argv[2], vmapping=vmapping, indices=indices, uvs=uvs)
"""


def unwrap(vertices: np.ndarray, faces: np.ndarray, timeout: float = 600.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """UV-unwrap a triangle mesh with xatlas (charts packed into [0, 1]^2 without overlap).

    Args:
        vertices: (V, 3) float positions; faces: (F, 3) int vertex indices.
        timeout: seconds before giving up.

    Returns:
        ``vmapping`` (V', ) index of the original vertex of each new vertex, ``faces`` (F, 3) into the
        new vertices (same face order), ``uv`` (V', 2) in [0, 1], v up (OBJ convention).

    Raises:
        MeshstyleError: xatlas crashed, failed or timed out.
    """
    with tempfile.TemporaryDirectory(prefix="meshstyle-unwrap-") as tmp:
        src, dst = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(src, vertices=np.asarray(vertices, np.float32), faces=np.asarray(faces, np.uint32))
        try:
            proc = subprocess.run([sys.executable, "-c", WORKER, str(src), str(dst)], capture_output=True,
                                  text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise MeshstyleError(f"UV unwrapping with xatlas timed out after {timeout:.0f} s "
                                 f"({len(faces)} faces); give the mesh UVs in a 3D tool") from None
        if proc.returncode != 0:
            if proc.returncode < 0:
                what = f"crashed ({signal.Signals(-proc.returncode).name})"
            else:
                last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
                what = f"failed ({last})"
            raise MeshstyleError(f"UV unwrapping with xatlas {what} on a {len(faces)}-face mesh; "
                                 f"give the mesh UVs in a 3D tool or simplify it")
        out = np.load(dst, allow_pickle=False)
        return out["vmapping"].astype(np.int64), out["indices"].astype(np.int64), out["uvs"].astype(np.float64)
