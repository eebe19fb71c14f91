"""``python -m meshstyle.cli``: the same as the ``meshstyle`` command."""

import sys

from . import main

sys.exit(main())
