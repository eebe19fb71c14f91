"""Reading and writing images.

Images inside meshstyle are float tensors of shape (3, H, W) with RGB values in [0, 1]; a batch is
(N, 3, H, W). Reading accepts every mode Pillow decodes (grayscale, palette, RGBA, CMYK, 16-bit
PNG) and applies the EXIF orientation tag. Writing picks the format from the extension (PNG, JPEG,
WebP) and is atomic.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from .atomic import atomic_path
from .errors import MeshstyleError
from .files import check_regular_file

#: Largest image (pixels) meshstyle decodes: 8192 x 8192.
MAX_PIXELS = 8192 * 8192

#: Output extensions and the Pillow format and save options used for them.
IMAGE_FORMATS = {
    ".png": ("PNG", {"optimize": False}),
    ".jpg": ("JPEG", {"quality": 95, "subsampling": 0}),
    ".jpeg": ("JPEG", {"quality": 95, "subsampling": 0}),
    ".webp": ("WEBP", {"quality": 95}),
}


def pil_to_array(img: Image.Image) -> np.ndarray:
    """Convert a Pillow image of any mode to a float32 array (H, W, 3) in [0, 1].

    Alpha is composited over white (a transparent style or content pixel reads as paper). 16-bit and
    32-bit integer grayscale modes are scaled by their full range, not clipped to 8 bits.
    """
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        arr = np.asarray(img, dtype=np.float32) / 65535.0
        return np.repeat(arr[..., None], 3, axis=2).clip(0, 1)
    if img.mode == "I":
        arr = np.asarray(img, dtype=np.float32)
        scale = 65535.0 if arr.max() > 255 else 255.0
        return np.repeat((arr / scale)[..., None], 3, axis=2).clip(0, 1)
    if img.mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        return np.repeat(arr[..., None], 3, axis=2).clip(0, 1)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open and fully decode an image file, upright according to its EXIF orientation.

    Images larger than :data:`MAX_PIXELS` are refused before decoding (decompression bombs).

    Raises:
        MeshstyleError: the file is missing, not a regular file, not an image, too large, or truncated
            or corrupt.
    """
    path = Path(path)
    check_regular_file(path, "image")
    try:
        with Image.open(path) as img:
            if img.width * img.height > MAX_PIXELS:
                raise MeshstyleError(f"image {path} is {img.width}x{img.height} px, more than the "
                                     f"{MAX_PIXELS // 10**6} megapixels meshstyle reads")
            img.load()
            return ImageOps.exif_transpose(img)
    except UnidentifiedImageError:
        raise MeshstyleError(f"not an image file (or an unsupported format): {path}") from None
    except Image.DecompressionBombError:
        raise MeshstyleError(f"image {path} is too large to decode safely (a decompression bomb?)") from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise MeshstyleError(f"cannot decode image {path}: {exc}") from None


def load_image(path: str | os.PathLike, size: int | tuple[int, int] | None = None) -> torch.Tensor:
    """Read an image as a tensor (3, H, W), RGB in [0, 1].

    Args:
        path: any file Pillow can decode.
        size: ``None`` keeps the size; an int resizes so that the long edge has that many pixels;
            a (width, height) tuple resizes to exactly that size. Resampling is Lanczos.

    Raises:
        MeshstyleError: see :func:`open_image`.
    """
    img = open_image(path)
    if size is not None:
        img = resize_pil(img, size)
    return torch.from_numpy(pil_to_array(img)).permute(2, 0, 1).contiguous()


def long_edge_size(width: int, height: int, long_edge: int) -> tuple[int, int]:
    """(width, height) scaled so that the longer side is ``long_edge`` px, each side at least 1."""
    scale = long_edge / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_pil(img: Image.Image, size: int | tuple[int, int]) -> Image.Image:
    """Resize to a long edge (int) or to an exact (width, height), Lanczos."""
    if isinstance(size, int):
        size = long_edge_size(img.width, img.height, size)
    if img.mode not in ("RGB", "RGBA", "L"):
        img = Image.fromarray((pil_to_array(img) * 255 + 0.5).astype(np.uint8))
    return img.resize(size, Image.Resampling.LANCZOS)


def rgb8_to_tensor(rgb: np.ndarray) -> torch.Tensor:
    """(H, W, 3) uint8 RGB array -> (3, H, W) float32 tensor in [0, 1]."""
    return torch.from_numpy(np.asarray(rgb, np.float32) / 255.0).permute(2, 0, 1).contiguous()


def tensor_to_rgb8(image: torch.Tensor) -> np.ndarray:
    """(3, H, W) or (1, 3, H, W) in [0, 1] -> (H, W, 3) uint8 array (values clipped, rounded)."""
    if image.dim() == 4:
        image = image[0]
    arr = image.detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy()
    return (arr * 255.0 + 0.5).astype(np.uint8)


def tensor_to_pil(image: torch.Tensor) -> Image.Image:
    """Convert (3, H, W) or (1, 3, H, W) in [0, 1] to an 8-bit RGB Pillow image (values clipped)."""
    return Image.fromarray(tensor_to_rgb8(image), "RGB")


def resize_tensor(image: torch.Tensor, size: tuple[int, int], mode: str = "bicubic",
                  antialias: bool = True) -> torch.Tensor:
    """Resize (3, H, W) to ``size`` = (width, height) with ``torch.nn.functional.interpolate``;
    values are clipped to [0, 1]. The same size returns the image unchanged."""
    w, h = size
    if tuple(image.shape[-2:]) == (h, w):
        return image
    out = torch.nn.functional.interpolate(image[None], size=(h, w), mode=mode, antialias=antialias,
                                          align_corners=False)[0]
    return out.clamp(0, 1)


def check_image_output(path: str | os.PathLike) -> Path:
    """Validate an output image path by its extension.

    Raises:
        MeshstyleError: the extension is not one of .png, .jpg, .jpeg, .webp.
    """
    path = Path(path)
    if path.suffix.lower() not in IMAGE_FORMATS:
        raise MeshstyleError(
            f"unsupported output image extension {path.suffix or '(none)'!r} for {path}; "
            f"use one of {', '.join(IMAGE_FORMATS)}"
        )
    if path.is_dir():
        raise MeshstyleError(f"output path is a folder: {path}")
    return path


def save_pil(img: Image.Image, path: str | os.PathLike, description: str | None = None) -> None:
    """Save a Pillow image atomically, format chosen from the extension (see :data:`IMAGE_FORMATS`).

    ``description`` is stored as PNG text (key ``Description``) or as the EXIF ImageDescription of
    JPEG/WebP files, e.g. to label outputs made with random VGG weights.
    """
    path = check_image_output(path)
    fmt, options = IMAGE_FORMATS[path.suffix.lower()]
    options = dict(options)
    if description:
        if fmt == "PNG":
            info = PngImagePlugin.PngInfo()
            info.add_text("Description", description)
            options["pnginfo"] = info
        else:
            exif = Image.Exif()
            exif[0x010E] = description
            options["exif"] = exif
    with atomic_path(path) as tmp:
        img.save(tmp, format=fmt, **options)


def save_image(image: torch.Tensor, path: str | os.PathLike, description: str | None = None) -> None:
    """Save a tensor (3, H, W) or (1, 3, H, W) in [0, 1] atomically; format from the extension."""
    save_pil(tensor_to_pil(image), path, description)
