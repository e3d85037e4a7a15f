"""``python -m harness.lab.sinks``: run the sink process (:func:`harness.lab.sinks.main`)."""

import sys

from harness.lab.sinks.process import main

__all__: list[str] = []

if __name__ == "__main__":
    sys.exit(main())
