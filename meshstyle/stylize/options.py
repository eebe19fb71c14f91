"""Options of the 2D and mesh jobs, declared once in the option table (:mod:`meshstyle.core.optiontable`).

:class:`ImageOptions` (``image``, ``texture``, ``reconstruct``) and :class:`MeshOptions` (``mesh``) sit
beside the engine's :class:`~meshstyle.engine.options.EngineOptions`. The per-command engine defaults
(:data:`ENGINE_DEFAULTS`) are the same for the Python API and the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..core.errors import MeshstyleError
from ..core.optiontable import check, option
from ..engine.color import COLOUR_SPACES, MODES
from ..engine.options import EngineOptions

#: Engine defaults per command; the API functions and the CLI both start from these.
ENGINE_DEFAULTS = {
    "image": EngineOptions(),
    "texture": EngineOptions(),
    "reconstruct": EngineOptions(),
    "mesh": EngineOptions(optimizer="adam", iterations=600, style_loss="nnfm"),
}

IMAGE_COMMANDS = frozenset({"image", "texture", "reconstruct"})
#: A style written ``preset:N`` names one of the 26 feed-forward styles (Dumoulin et al. 2017), not a file.
PRESET_PREFIX = "preset:"
MIN_SIZE, MAX_SIZE = 16, 8192


def parse_size(spec: str | int | tuple[int, int], allow_pair: bool = True) -> int | tuple[int, int]:
    """``"512"`` -> 512 (long edge, px); ``"640x480"`` -> (640, 480) (width, height).

    Raises:
        MeshstyleError: not a positive size, or a size outside 16..8192 px.
    """
    if isinstance(spec, bool):
        raise MeshstyleError(f"bad size {spec!r}; write a long edge like 512 or WxH like 640x480")
    if isinstance(spec, int | tuple | list):
        values = [spec] if isinstance(spec, int) else list(spec)
        if not values or len(values) > 2 or any(isinstance(v, bool) or not isinstance(v, int) for v in values):
            raise MeshstyleError(f"bad size {spec!r}; write a long edge like 512 or WxH like 640x480")
    else:
        parts = str(spec).strip().lower().split("x")
        if len(parts) not in (1, 2) or (len(parts) == 2 and not allow_pair):
            raise MeshstyleError(f"bad size {spec!r}; write a long edge like 512"
                                 + (" or WxH like 640x480" if allow_pair else ""))
        try:
            values = [int(p) for p in parts]
        except ValueError:
            raise MeshstyleError(f"bad size {spec!r}; write a long edge like 512 or WxH like 640x480") from None
    for v in values:
        if not MIN_SIZE <= v <= MAX_SIZE:
            raise MeshstyleError(f"size {spec!r} out of range; each side must be {MIN_SIZE}..{MAX_SIZE} px")
    return values[0] if len(values) == 1 else (values[0], values[1])


def color_match_on(options: EngineOptions, preserve_color: str) -> bool:
    """Whether ARF's colour step runs (``color_match``; Zhang et al. 2022): as given, or when automatic
    (``None``) with the ``nnfm`` style loss of the optimization method (ARF pairs them) unless
    ``preserve_color`` (``"none"``, ``"luminance"`` or ``"histogram"``) keeps the content's colours.

    Raises:
        MeshstyleError: ``color_match=True`` with ``preserve_color`` or with the feed-forward method.
    """
    if options.color_match is None:
        return options.style_loss == "nnfm" and options.method == "optimize" and preserve_color == "none"
    if options.color_match and preserve_color != "none":
        raise MeshstyleError("--color-match gives the content the style's colours and --preserve-color keeps "
                             "the content's: use one of them")
    if options.color_match and options.method == "feedforward":
        raise MeshstyleError("--color-match applies to the optimization method; the feed-forward networks "
                             "choose their own colours")
    return options.color_match


def is_preset(style) -> bool:
    """True for a ``preset:N`` style (case and surrounding spaces ignored), which is no file."""
    return isinstance(style, str) and style.strip().lower().startswith(PRESET_PREFIX)


def check_style_kinds(styles: list, method: str) -> None:
    """Refuse ``preset:N`` styles unless ``method`` is ``"feedforward"``.

    Raises:
        MeshstyleError: a preset style with the optimization method.
    """
    if method != "feedforward" and any(is_preset(s) for s in styles):
        raise MeshstyleError("--style preset:N needs --method feedforward (the presets are networks, not images)")


def _size_problem(value) -> str | None:
    try:
        parse_size(value)
    except MeshstyleError as exc:
        return str(exc).split(";")[0].replace("bad size", "is not a size:")
    return None


def _init_problem(value) -> str | None:
    if isinstance(value, str) and not value.strip():
        return "must be content, noise or an image file"
    return None


@dataclass
class ImageOptions:
    """Options of the 2D commands (one field per flag; help, range and default in each declaration)."""

    size: str | int | tuple[int, int] = option(
        "512", "output long edge in px, or WxH (texture: a square side or WxH)", kind="custom",
        check=_size_problem, commands=IMAGE_COMMANDS, group="image", metavar="PX|WxH")
    style_scale: float = option(1.0, "style image size relative to the output; smaller gives smaller strokes",
                                kind="float", low=0, low_open=True, high=16,
                                commands=frozenset({"image", "texture"}), group="image")
    init: object = option(None, "start from 'content', 'noise', 'feedforward' (the pretrained network's "
                          "result) or an image file (auto: content for image, noise otherwise)", kind="custom",
                          none=True, check=_init_problem, commands=IMAGE_COMMANDS, group="image")
    preserve_color: str = option("none", "keep the content's colours: luminance-only transfer or style colour "
                                 "histogram matching", choices=MODES,
                                 commands=frozenset({"image"}), group="image")
    scales: int | None = option(None, "coarse-to-fine scales, halving the size each time (auto: coarsest long "
                                "edge >= 128 px; reconstruct: 1)", kind="int", low=1, high=8, none=True,
                                commands=IMAGE_COMMANDS, group="image")
    layer: str | None = option(None, "network layer to reconstruct from (auto: the encoder's content layer, "
                               "relu4_2 for VGG)", none=True, commands=frozenset({"reconstruct"}), group="image")
    save_every: int = option(0, "also write the current result to the output every N steps (0: never)",
                             kind="int", low=0, high=1_000_000, commands=IMAGE_COMMANDS, group="image",
                             metavar="N")

    def validate(self) -> None:
        """Raise :class:`MeshstyleError` (one line) for any bad value."""
        check(self)


def _elevation_problem(value) -> str | None:
    return None if value[0] <= value[1] else "must be MIN,MAX with MIN <= MAX (write --elevation=-30,75)"


MESH = frozenset({"mesh"})


def _parts_problem(value) -> str | None:
    """Why ``value`` is no part list (``"a,b*"`` or a sequence of non-empty names), or None."""
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list | tuple) or not items or any(not isinstance(v, str) or not v.strip() for v in items):
        return "must be part names or globs separated by commas"
    return None


@dataclass
class MeshOptions:
    """Options of mesh stylization (one field per flag; help, range and default in each declaration).

    Cameras: see :func:`~meshstyle.mesh.cameras.orbit_cameras` (each camera moves along its axis until
    the object just fills its view, then its distance is multiplied by ``distance``). Depth levels:
    see :mod:`meshstyle.mesh.weights`.
    """

    parts: tuple[str, ...] | None = option(
        None, "restyle only these parts: names or globs of their geometry or material names, comma-separated "
        "(auto: every textured part; --list-parts shows them); the others keep their texture bytes and still "
        "occlude", kind="custom", none=True, check=_parts_problem, commands=MESH, group="parts",
        metavar="NAME,...")
    exclude_parts: tuple[str, ...] | None = option(
        None, "leave these parts as they are (names or globs, comma-separated)", kind="custom", none=True,
        check=_parts_problem, commands=MESH, group="parts", metavar="NAME,...")
    views: int = option(24, "cameras around the object", kind="int", low=1, high=1024, commands=MESH, group="views")
    resolution: int = option(256, "render size of the finest depth level (farthest surfaces), px (feedforward: "
                             "384 unless given)", kind="int", low=16, high=4096, commands=MESH, group="views")
    depth_levels: int = option(3, "at most this many depth levels; each renders surfaces twice as far at twice "
                               "the resolution", kind="int", low=1, high=5,
                               commands=MESH, group="views")
    batch_views: int = option(2, "views per optimization step", kind="int", low=1, high=1024, commands=MESH,
                              group="views")
    render_scales: int = option(3, "coarse-to-fine: the first third of the steps render at 1/4 then 1/2 of "
                                "--resolution (with 3; 2: all at 1/2) with the style image scaled alike, so "
                                "patterns keep their size on the surface and are laid out before their detail "
                                "(1: off; fewer when the coarsest depth level would be too small for the "
                                "encoder)", kind="int", low=1,
                                high=4, commands=MESH, group="views")
    fov: float = option(40.0, "vertical field of view, degrees", kind="float", low=1, high=170, commands=MESH,
                        group="views")
    distance: float = option(1.0, "camera distance factor; 1 is where the object just fills each view",
                             kind="float", low=1, high=100, commands=MESH, group="views")
    elevation: tuple[float, float] = option(
        (-75.0, 75.0), "camera elevation band MIN,MAX in degrees (negative MIN: write --elevation=-30,75); "
        "the default sees the underside too",
        kind="floats", low=-90, high=90, count=2, check=_elevation_problem, commands=MESH, group="views",
        metavar="MIN,MAX")
    supersample: int = option(1, "rays per pixel side", kind="int", low=1, high=4, commands=MESH, group="views")
    levels: int = option(4, "texture pyramid levels (StyleMesh: 4)", kind="int", low=1, high=8, commands=MESH,
                         group="texture and style")
    texture_colours: str = option("style", "colour basis of the optimized texture change: style (principal "
                                  "colour axes of the style image: its colours move fastest, others 10x "
                                  "slower), decorrelated (those of natural images: chroma moves less than "
                                  "luma) or rgb (rainbow grain)", choices=COLOUR_SPACES, commands=MESH,
                                  group="texture and style")
    preserve_color: str = option("none", "keep the asset's colours: luminance (only the texture's luminance "
                                 "changes, judged on luminance renders against the style's luminance matched to the "
                                 "asset's) or histogram (the style's colours matched to the asset's before "
                                 "optimizing); feedforward: the fitted texture keeps the asset's chroma "
                                 "(luminance) or, for preset:N styles, its colour statistics (histogram)",
                                 choices=MODES, commands=MESH,
                                 group="texture and style")
    texture_size: int | None = option(
        None, "optimized texture long edge, texels, up to the original's (auto: the original, at most 1024; "
        "feedforward: 512; a part with a smaller texture keeps its size); the output keeps the original "
        "resolution, a smaller change is upsampled and added to it", kind="int", low=16, high=8192, none=True,
        commands=MESH, group="texture and style")
    depth_reference_percentile: float = option(
        5.0, "percentile of visible depth seen at the coarsest depth level (moved by under half an octave so "
        "that most of the surface sits at level centres); surfaces twice as far get twice the resolution", kind="float", low=0, low_open=True, high=99.9, commands=MESH, group="texture and style")
    level_blend: float = option(0.25, "octaves over which a pixel passes from one depth level to the next (1: "
                                "StyleMesh's linear blend)", kind="float", low=0, low_open=True, high=1,
                                commands=MESH, group="texture and style")
    crop_tiles: int = option(4, "cut each depth level's render into at most this many tiles around its "
                             "weighted pixels, where a cut saves more pixels than one more encoder call costs "
                             "(1: one crop per level)", kind="int", low=1, high=16, commands=MESH, group="views")
    weighting: str = option("gradient", "angle/depth weights on render gradients with statistics over object "
                            "cells (StyleMesh), or inside the statistics", choices=("gradient", "gram"),
                            commands=MESH, group="texture and style")
    lr_decay: float = option(0.1, "Adam's learning rate is multiplied by this at each --lr-milestones fraction of "
                             "the run (1: constant)", kind="float", low=0, low_open=True, high=1, commands=MESH,
                             group="texture and style")
    lr_milestones: tuple[float, ...] = option((0.8,), "fractions of the run where Adam's learning rate decays",
                                              kind="floats", low=0, low_open=True, high=0.999, commands=MESH,
                                              group="texture and style", metavar="F1,F2,...")
    angle_threshold: float = option(60.0, "pixels seen more obliquely than this many degrees do not count for "
                                    "style", kind="float", low=0, low_open=True, high=90, commands=MESH,
                                    group="texture and style")
    depth_aware: bool = option(True, "judge every pixel at full resolution, whatever its depth", kind="bool",
                               switch_off=True, commands=MESH, group="texture and style")
    style_size: int | None = option(None, "style image long edge at scale 1, px (auto: --resolution)", kind="int",
                                    low=16, high=8192, none=True, commands=MESH, group="texture and style")
    style_scales: tuple[float, ...] = option((0.5,), "style image sizes relative to --style-size whose "
                                             "statistics are averaged (one at half size: rounder, more even "
                                             "pattern elements than 1,0.5 in the circle test)",
                                             kind="floats", low=0, low_open=True, high=4, commands=MESH,
                                             group="texture and style", metavar="S1,S2,...")
    pyramid_weight: float = option(1.0, "regularizer pushing detail toward coarse texture levels", kind="float",
                                   low=0, high=1e9, commands=MESH, group="texture and style")
    seam_weight: float = option(100.0, "optimization: weight of the term that changes the two sides of UV seams "
                                "and of the edges where parts meet alike, so restyling adds no seam (0: off)", kind="float", low=0, high=1e9,
                                commands=MESH, group="texture and style")
    init: str = option("original", "starting texture: the original, or 'feedforward' (the pretrained networks' "
                       "fitted texture, then optimized)", choices=("original", "feedforward"), commands=MESH,
                       group="texture and style")
    rounds: int = option(3, "feedforward: render, stylize and fit rounds (more rounds agree better across views)",
                         kind="int", low=1, high=20, commands=MESH, group="texture and style")
    texture_format: str | None = option(None, "format of the written textures (auto: as the input's)", none=True,
                                        choices=("png", "jpeg", "webp"), commands=MESH, group="results")
    jpeg_quality: int = option(95, "quality of JPEG/WebP textures, 1..100", kind="int", low=1, high=100,
                               commands=MESH, group="results")
    allow_missing_textures: bool = option(False, "load a mesh whose MTL or texture files are missing (their parts "
                                          "keep their base colour, with a warning) instead of stopping",
                                          kind="bool", commands=MESH, group="results")
    checkpoint_every: int = option(0, "save the optimization state every N steps (0: never)", kind="int", low=0,
                                   high=1_000_000, commands=MESH, group="results", metavar="N")
    checkpoint: str | None = option(None, "checkpoint file (auto: OUTPUT's stem + .ckpt)", none=True,
                                    commands=MESH, group="results", metavar="CKPT")
    resume: str | None = option(None, "continue from a checkpoint of the same command", none=True,
                                commands=MESH, group="results", metavar="CKPT")

    def validate(self) -> None:
        """Raise :class:`MeshstyleError` (one line) for any bad value."""
        check(self)
        if self.resolution >> (self.depth_levels - 1) < 16:
            raise MeshstyleError(f"--resolution {self.resolution} is too small for {self.depth_levels} depth "
                                 f"levels (the coarsest must be >= 16 px)")


def split_overrides(overrides: dict, *tables: type) -> list[dict]:
    """Split keyword overrides by the option table that has each name; the last dict gets the rest
    (normally :class:`~meshstyle.engine.options.EngineOptions` fields).

    Raises:
        MeshstyleError: a name that no table has.
    """
    parts: list[dict] = [{} for _ in tables]
    for key, value in overrides.items():
        for part, table in zip(parts, tables):
            if key in table.__dataclass_fields__:
                part[key] = value
                break
        else:
            raise MeshstyleError(f"unknown option {key!r}")
    return parts


def merged(base, overrides: dict):
    """``base`` (a dataclass instance) with ``overrides`` applied."""
    return replace(base, **overrides) if overrides else base
