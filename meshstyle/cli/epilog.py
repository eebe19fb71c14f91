"""Help text shared by the commands' ``--help`` (a leaf module: the command modules and
:func:`meshstyle.cli.build_parser` import it without importing each other)."""

EPILOG_WEIGHTS = """Networks: --encoder auto uses torchvision's ImageNet VGG-19 when its weights are on this machine
(--encoder vgg19 downloads them once; offline: --vgg-weights PATH or MESHSTYLE_VGG_WEIGHTS=PATH), else
ImageNet VGG-16 from meshstyle[pretrained], else the pretrained mobilenetv2-magenta, so offline runs are
real stylizations (a log line names the encoder when it is not VGG-19). --vgg-weights random runs
untrained VGG weights (tests only; outputs are labelled).
--method feedforward uses pretrained feed-forward networks instead of optimization (seconds, not minutes)."""
