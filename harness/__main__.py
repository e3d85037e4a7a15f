"""``python -m harness``: the same as the ``egress-harness`` command."""

import sys

from harness.cli import main

sys.exit(main())
