"""Reading an asset's files safely: the mesh file and the resources it names (MTL, textures, glTF buffers).

Assets are untrusted. Every read here

- stays inside the asset's folder: a name that is absolute, has a URI scheme, or resolves (after
  symbolic links) outside the folder is refused;
- opens regular files only: a FIFO, a socket or a device (``/dev/zero``) is refused before it is
  read, so nothing hangs and nothing endless is read;
- caps images at :data:`meshstyle.core.imageio.MAX_PIXELS` (the one limit for every image meshstyle
  reads, below Pillow's own decompression-bomb limit) and decodes them fully once, so a corrupt texture
  is a one-line error at load time.

:class:`ConfinedResolver` plugs these rules into trimesh's loaders (``trimesh.load(..., resolver=)``),
so they hold whatever trimesh version is installed.
"""

from __future__ import annotations

import io
import os
import stat
import urllib.parse
from pathlib import Path

import trimesh
from PIL import Image, UnidentifiedImageError

from ..core import imageio
from ..core.errors import MeshstyleError
from ..core.files import check_regular_file


def read_regular_file(path: str | os.PathLike, what: str = "file") -> bytes:
    """The bytes of ``path``, refusing anything but a regular file.

    Raises:
        MeshstyleError: missing, a folder, a FIFO/socket/device, or unreadable.
    """
    path = Path(path)
    check_regular_file(path, what)
    try:
        # O_NONBLOCK: should the file be swapped for a FIFO after the check, open() does not hang
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise MeshstyleError(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise MeshstyleError(f"{what} is not a regular file: {path}")
        return f.read()


def check_image_bytes(data: bytes, name: str) -> Image.Image:
    """Decode an image from ``data`` (fully, so truncation is caught) and return it.

    Raises:
        MeshstyleError: not an image, corrupt, or more pixels than :data:`meshstyle.core.imageio.MAX_PIXELS`.
    """
    limit = imageio.MAX_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
            if w * h > limit:
                raise MeshstyleError(f"texture {name} is {w}x{h} pixels, more than the limit of {limit} "
                                     "(a decompression bomb?)")
            img.load()
            out = img.copy()
            out.format = img.format  # copy() forgets the file format
            return out
    except MeshstyleError:
        raise
    except UnidentifiedImageError:
        raise MeshstyleError(f"texture {name} is not an image file (or an unsupported format)") from None
    except Image.DecompressionBombError:
        raise MeshstyleError(f"texture {name} has more pixels than the limit of {limit} "
                             "(a decompression bomb?)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MeshstyleError(f"cannot decode texture {name}: {exc}") from None


class ConfinedResolver(trimesh.resolvers.Resolver):
    """A trimesh resolver that reads only regular files inside ``root`` (see the module docstring).

    trimesh catches resolver errors and carries on without the resource, so every refusal is also
    recorded: :meth:`raise_problems` turns them into one :class:`MeshstyleError` after loading, and
    ``missing`` lists names of files that do not exist (an error unless missing textures are allowed).
    Everything read is kept in ``data`` (name -> bytes) so that export can reuse the exact bytes.
    """

    def __init__(self, root: str | os.PathLike, file_name: str | None = None):
        self.root = Path(root).resolve()
        self.file_name = file_name  # trimesh names OBJ geometry after it
        self.data: dict[str, bytes] = {}
        self.missing: list[str] = []
        self.problems: list[str] = []

    def path_of(self, name: str) -> Path:
        """Absolute path of resource ``name`` inside the root.

        Raises:
            MeshstyleError: ``name`` is absolute, a URI with a scheme, or escapes the root.
        """
        clean = name.strip()
        if not clean or "\x00" in clean:
            raise MeshstyleError(f"empty or invalid resource name {name!r}")
        if urllib.parse.urlsplit(clean).scheme and not (len(clean) > 1 and clean[1] == ":"):
            raise MeshstyleError(f"resource {clean!r} is a URI with a scheme; only files inside the "
                                 f"asset's folder {self.root} are read")
        if os.path.isabs(clean) or (len(clean) > 1 and clean[1] == ":") or clean.startswith("\\"):
            raise MeshstyleError(f"resource {clean!r} is an absolute path; only files inside the asset's "
                                 f"folder {self.root} are read")
        path = (self.root / clean).resolve()
        if not path.is_relative_to(self.root):
            raise MeshstyleError(f"resource {clean!r} is outside the asset's folder {self.root}")
        return path

    def get(self, name: str) -> bytes:
        clean = name.strip()
        for key in (clean, urllib.parse.unquote(clean)):  # glTF URIs are percent-encoded; trimesh passes them raw
            if key in self.data:
                return self.data[key]
        try:
            path = self.path_of(clean)
            if not path.exists():
                self.missing.append(clean)
                raise FileNotFoundError(clean)
            data = read_regular_file(path, "resource")
        except MeshstyleError as exc:
            self.problems.append(str(exc))
            raise OSError(str(exc)) from None
        self.data[clean] = data
        return data

    def read(self, name: str) -> bytes:
        """Like :meth:`get` but raising :class:`MeshstyleError` (naming the file) on any refusal."""
        try:
            return self.get(name)
        except OSError:
            self.raise_problems()
            raise MeshstyleError(f"resource {name.strip()!r} not found in {self.root}") from None

    def keys(self):
        return iter(self.data)

    def write(self, name, data):
        raise OSError("read-only resolver")

    def namespaced(self, namespace: str) -> ConfinedResolver:
        raise OSError("namespaced resources are not supported")

    def raise_problems(self) -> None:
        """Raise the first refusal recorded during loading, if any."""
        if self.problems:
            raise MeshstyleError(self.problems[0])
