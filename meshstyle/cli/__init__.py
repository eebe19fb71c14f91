"""The ``meshstyle`` command. It parses and validates arguments, calls the Python API and writes files;
no math lives here. Errors in the user's input print one line and exit with status 2."""

from __future__ import annotations

import argparse
import logging
import sys

from .. import __version__
from ..core.errors import MeshstyleError
from ..engine.features import is_random_weights
from ..engine.options import (
    DEFAULT_CONTENT_LAYERS,
    DEFAULT_STYLE_LAYERS,
    DEVICES,
    STYLE_LOSSES,
    EngineOptions,
)

log = logging.getLogger("meshstyle")
RANDOM_LABEL = "made with RANDOM (untrained) VGG weights: a test output, not a real stylization"

EPILOG_WEIGHTS = """VGG weights: by default torchvision's ImageNet VGG-19 is downloaded once and cached. Offline,
pass --vgg-weights PATH (a torchvision vgg19 state dict) or set MESHSTYLE_VGG_WEIGHTS=PATH.
--vgg-weights random runs with seeded untrained weights (for tests; outputs are labelled)."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit status 2) instead of usage dumps."""

    def error(self, message):
        self.exit(2, f"meshstyle: error: {message} (see '{self.prog} --help')\n")


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _non_negative_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _blend_list(text):
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers like 0.7,0.3, got {text!r}") from None


def engine_flags(defaults: EngineOptions) -> argparse.ArgumentParser:
    """Flags shared by every stylization command (mirrors :class:`~meshstyle.engine.options.EngineOptions`)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("optimization")
    g.add_argument("--iterations", type=_positive_int, default=defaults.iterations,
                   help="optimization steps (per scale for images) (default: %(default)s)")
    g.add_argument("--optimizer", choices=("lbfgs", "adam"), default=defaults.optimizer,
                   help="L-BFGS converges in fewer steps on one image; Adam suits minibatches of views (default: %(default)s)")
    g.add_argument("--lr", type=float, default=None, help="learning rate (default: 1 for L-BFGS, 0.02 for Adam)")
    g.add_argument("--ema", type=float, default=None, metavar="DECAY",
                   help="average the iterates with this decay (e.g. 0.9) to remove optimizer noise")
    g.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same output (default: 0)")
    g.add_argument("--device", choices=DEVICES, default="auto", help="compute device (default: auto: CUDA, MPS, else CPU)")
    g = p.add_argument_group("losses")
    g.add_argument("--content-weight", type=_non_negative_float, default=defaults.content_weight,
                   help="weight of the content loss (default: %(default)s)")
    g.add_argument("--style-weight", type=_non_negative_float, default=defaults.style_weight,
                   help="weight of the style loss (default: %(default)s)")
    g.add_argument("--tv-weight", type=_non_negative_float, default=defaults.tv_weight,
                   help="weight of the total-variation smoothness prior (default: %(default)s)")
    g.add_argument("--content-layers", default=DEFAULT_CONTENT_LAYERS, metavar="LAYERS",
                   help="VGG layers for content, 'name[:weight],...' (default: %(default)s)")
    g.add_argument("--style-layers", default=DEFAULT_STYLE_LAYERS, metavar="LAYERS",
                   help="VGG layers for style, 'name[:weight],...' (default: %(default)s)")
    g.add_argument("--style-loss", choices=STYLE_LOSSES, default=defaults.style_loss,
                   help="style statistic: Gram matrices (Gatys), channel mean/std (AdaIN) or sliced "
                        "Wasserstein (Heitz 2021) (default: %(default)s)")
    g = p.add_argument_group("network")
    g.add_argument("--vgg-weights", default=None, metavar="imagenet|PATH|random[:SEED]",
                   help="VGG weights (default: $MESHSTYLE_VGG_WEIGHTS, else imagenet)")
    g.add_argument("--arch", choices=("vgg19", "vgg16"), default="vgg19", help="VGG architecture (default: vgg19)")
    g.add_argument("--pooling", choices=("max", "average"), default="max", help="VGG pooling (default: max)")
    g = p.add_argument_group("output")
    g.add_argument("--quiet", "-q", action="store_true", help="no progress bar, only errors")
    return p


def engine_options(args) -> EngineOptions:
    """EngineOptions from parsed arguments."""
    return EngineOptions(
        iterations=args.iterations, optimizer=args.optimizer, lr=args.lr, content_weight=args.content_weight,
        style_weight=args.style_weight, tv_weight=args.tv_weight, content_layers=args.content_layers,
        style_layers=args.style_layers, style_loss=args.style_loss, vgg_weights=args.vgg_weights,
        arch=args.arch, pooling=args.pooling, seed=args.seed, device=args.device, ema=args.ema)


def image_flags() -> argparse.ArgumentParser:
    """Flags of the 2D commands."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("image")
    g.add_argument("-o", "--output", required=True, help="output image (.png, .jpg, .webp)")
    g.add_argument("--init", default=None, help="start from 'content', 'noise' or an image file")
    g.add_argument("--scales", type=_positive_int, default=None,
                   help="coarse-to-fine scales, halving the size each time (default: coarsest long edge >= 128 px)")
    g.add_argument("--save-every", type=_positive_int, default=0, metavar="N",
                   help="also write the current result to the output every N steps")
    return p


def build_parser() -> argparse.ArgumentParser:
    """The ``meshstyle`` argument parser with every subcommand."""
    from .mesh import add_mesh_commands

    parser = Parser(
        prog="meshstyle",
        description="Neural style transfer for 3D mesh textures (StyleMesh, CVPR 2022) and 2D images (Gatys et al.).",
        epilog="Run 'meshstyle COMMAND --help' for the options of a command.\n\n" + EPILOG_WEIGHTS,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"meshstyle {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    image_defaults = EngineOptions(iterations=300, optimizer="lbfgs")
    shared = [image_flags(), engine_flags(image_defaults)]
    fmt = argparse.RawDescriptionHelpFormatter

    p = sub.add_parser("image", parents=shared, formatter_class=fmt, help="style transfer of a photo",
                       description="Repaint CONTENT in the style of one or more paintings (Gatys et al. 2016).",
                       epilog="examples:\n  meshstyle image photo.jpg --style starry.jpg -o out.png\n"
                              "  meshstyle image photo.jpg --style a.jpg --style b.jpg --style-blend 0.7,0.3 -o out.png\n"
                              "  meshstyle image photo.jpg --style wave.jpg --preserve-color luminance -o out.png\n\n"
                              + EPILOG_WEIGHTS)
    p.add_argument("content", help="content image (any format Pillow reads)")
    p.add_argument("--style", action="append", required=True, help="style image; repeat to blend several")
    p.add_argument("--style-blend", type=_blend_list, default=None, metavar="W1,W2,...",
                   help="weights of the styles (default: equal)")
    p.add_argument("--size", default="512", help="output long edge in px, or WxH (default: 512)")
    p.add_argument("--style-scale", type=float, default=1.0,
                   help="style image size relative to the output; smaller gives smaller strokes (default: 1)")
    p.add_argument("--preserve-color", choices=("none", "luminance", "histogram"), default="none",
                   help="keep the content's colours: luminance-only transfer or style colour histogram matching")
    p.set_defaults(func=cmd_image)

    p = sub.add_parser("texture", parents=shared, formatter_class=fmt, help="texture synthesis from a painting",
                       description="Synthesize a new texture with the style statistics of STYLE (Gatys et al. 2015).",
                       epilog="example:\n  meshstyle texture --style wave.jpg --size 512x512 -o wave_texture.png\n\n" + EPILOG_WEIGHTS)
    p.add_argument("--style", action="append", required=True, help="style image; repeat to blend several")
    p.add_argument("--style-blend", type=_blend_list, default=None, metavar="W1,W2,...")
    p.add_argument("--size", default="512x512", help="output WxH or square side in px (default: 512x512)")
    p.add_argument("--style-scale", type=float, default=1.0, help="style image size relative to the output (default: 1)")
    p.set_defaults(func=cmd_texture)

    p = sub.add_parser("reconstruct", parents=shared, formatter_class=fmt, help="reconstruct a photo from one VGG layer",
                       description="Reconstruct CONTENT from its features at one VGG layer, starting from noise.",
                       epilog="example:\n  meshstyle reconstruct photo.jpg --layer relu3_1 -o recon.png\n\n" + EPILOG_WEIGHTS)
    p.add_argument("content", help="content image")
    p.add_argument("--layer", default="relu4_2", help="VGG layer to reconstruct from (default: relu4_2)")
    p.add_argument("--size", default="512", help="output long edge in px, or WxH (default: 512)")
    p.set_defaults(func=cmd_reconstruct)

    add_mesh_commands(sub, fmt)
    return parser


class _Formatter(logging.Formatter):
    def format(self, record):
        level = "" if record.levelno == logging.INFO else f"{record.levelname.lower()}: "
        return f"meshstyle: {level}{record.getMessage()}"


def setup_logging(quiet: bool) -> None:
    """Log lines go to stderr as 'meshstyle: [warning: ]message'; ``quiet`` keeps only errors."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    log.handlers[:] = [handler]
    log.setLevel(logging.ERROR if quiet else logging.INFO)
    log.propagate = False


def _image_run(args, api_call, inputs, size_pair: bool) -> int:
    from ..core.imageio import check_distinct, check_image_output, save_image
    from ..stylize.image import parse_size
    from .progress import ProgressBar

    out = check_image_output(args.output)
    check_distinct(out, inputs)
    size = parse_size(args.size)
    if isinstance(size, int) and size_pair:
        size = (size, size)
    options = engine_options(args).validated()
    bar = ProgressBar(quiet=args.quiet)
    label = RANDOM_LABEL if is_random_weights(options.vgg_weights) else None

    def on_checkpoint(image):
        save_image(image, out, label)

    try:
        result = api_call(size=size, options=options, callback=bar, scales=args.scales,
                          on_checkpoint=on_checkpoint, save_every=args.save_every)
    finally:
        bar.close()
    label = RANDOM_LABEL if result.random_weights else None
    save_image(result.image, out, label)
    if result.random_weights:
        log.warning("%s: %s", out, RANDOM_LABEL)
    if result.interrupted:
        log.warning("interrupted: wrote the result so far to %s", out)
        return 130
    log.info("wrote %s", out)
    return 0


def cmd_image(args) -> int:
    """``meshstyle image``: style transfer of one photo; returns the exit status."""
    from ..stylize.image import stylize_image

    def call(**kw):
        return stylize_image(args.content, args.style, style_blend=args.style_blend, style_scale=args.style_scale,
                             init=args.init or "content", preserve_color=args.preserve_color, **kw)
    return _image_run(args, call, [args.content, *args.style, args.init], size_pair=False)


def cmd_texture(args) -> int:
    """``meshstyle texture``: texture synthesis; returns the exit status."""
    from ..stylize.image import synthesize_texture

    def call(**kw):
        return synthesize_texture(args.style, style_blend=args.style_blend, style_scale=args.style_scale,
                                  init=args.init or "noise", **kw)
    return _image_run(args, call, [*args.style, args.init], size_pair=True)


def cmd_reconstruct(args) -> int:
    """``meshstyle reconstruct``: content reconstruction from one layer; returns the exit status."""
    from ..stylize.image import reconstruct_content

    def call(**kw):
        kw["scales"] = kw["scales"] or 1
        return reconstruct_content(args.content, layer=args.layer, init=args.init or "noise", **kw)
    return _image_run(args, call, [args.content, args.init], size_pair=False)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``meshstyle`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    setup_logging(getattr(args, "quiet", False))
    try:
        return args.func(args)
    except MeshstyleError as exc:
        print(f"meshstyle: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("meshstyle: interrupted before any result existed; nothing written", file=sys.stderr)
        return 130
    except MemoryError:
        print("meshstyle: error: out of memory; lower --size/--resolution or --batch-views", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
