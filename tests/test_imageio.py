"""Reading every common image mode, EXIF orientation, atomic writes and clear errors."""

import numpy as np
import pytest
from PIL import Image

from meshstyle.core.errors import MeshstyleError
from meshstyle.core.imageio import load_image, save_image


def _rgb(w=6, h=4):
    arr = np.zeros((h, w, 3), np.uint8)
    arr[..., 0] = 200
    arr[:, : w // 2, 1] = 100
    return arr


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16", "LA", "1"])
def test_modes_load_as_rgb(tmp_path, mode):
    img = Image.fromarray(_rgb())
    if mode == "I;16":
        img = Image.fromarray((np.arange(24).reshape(4, 6) * 2000).astype(np.uint16))
    else:
        img = img.convert(mode)
    path = tmp_path / ("x.jpg" if mode == "CMYK" else "x.png")
    img.save(path)
    t = load_image(path)
    assert t.shape == (3, 4, 6) and 0 <= float(t.min()) and float(t.max()) <= 1


def test_sixteen_bit_values_are_scaled_not_clipped(tmp_path):
    arr = np.full((2, 2), 32768, np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.png")
    t = load_image(tmp_path / "g16.png")
    assert abs(float(t.mean()) - 32768 / 65535) < 1e-4


def test_rgba_is_composited_over_white(tmp_path):
    arr = np.zeros((2, 2, 4), np.uint8)  # fully transparent black
    Image.fromarray(arr, "RGBA").save(tmp_path / "a.png")
    assert float(load_image(tmp_path / "a.png").min()) == 1.0


def test_exif_orientation_is_applied(tmp_path):
    img = Image.fromarray(_rgb(6, 4))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    img.save(tmp_path / "r.jpg", exif=exif)
    assert load_image(tmp_path / "r.jpg").shape == (3, 6, 4)


def test_resize_long_edge(tmp_path):
    Image.fromarray(_rgb(60, 40)).save(tmp_path / "x.png")
    assert load_image(tmp_path / "x.png", 30).shape == (3, 20, 30)
    assert load_image(tmp_path / "x.png", (10, 12)).shape == (3, 12, 10)


def test_bad_files_are_clear_errors(tmp_path):
    with pytest.raises(MeshstyleError, match="not found"):
        load_image(tmp_path / "missing.png")
    (tmp_path / "text.png").write_text("hello")
    with pytest.raises(MeshstyleError, match="not an image"):
        load_image(tmp_path / "text.png")
    Image.fromarray(_rgb(64, 64)).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(MeshstyleError):
        load_image(tmp_path / "cut.png")


@pytest.mark.parametrize("ext", [".png", ".jpg", ".webp"])
def test_save_round_trip_and_no_temp_files(tmp_path, ext):
    import torch

    ramp = torch.linspace(0, 1, 10)
    img = torch.stack([ramp.expand(8, 10), ramp.flip(0).expand(8, 10), torch.full((8, 10), 0.5)])
    save_image(img, tmp_path / f"out{ext}", description="label")
    back = load_image(tmp_path / f"out{ext}")
    assert back.shape == (3, 8, 10)
    tolerance = 0.5 / 255 + 1e-6 if ext == ".png" else 0.1
    assert float((back - img).abs().max()) <= tolerance
    assert [p.name for p in tmp_path.iterdir()] == [f"out{ext}"]


def test_unknown_output_extension(tmp_path):
    import torch

    with pytest.raises(MeshstyleError, match="extension"):
        save_image(torch.rand(3, 4, 4), tmp_path / "out.bmpx")
