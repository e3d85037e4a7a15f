"""Test helper (not a test): enter a netns lab, start a sleeper in a client namespace, print
``READY <pid>`` and wait to be interrupted. On SIGINT the backend tears the lab down; this
script then exits 130 with one line on stderr, like the CLI does.

Usage: python netns_sigint_child.py RUN_ID WORKDIR
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from harness.lab.netns import NetnsBackend
from harness.lab.plan import default_plan


def main(argv: list[str]) -> int:
    run_id, workdir = argv[0], Path(argv[1])
    plan = default_plan(run_id, clients=2)
    try:
        with NetnsBackend(plan, workdir) as lab:
            proc = lab.start(
                plan.clients[0], ["sleep", "600"], name="sleeper.exe", log=workdir / "s.log"
            )
            sys.stdout.write(f"READY {proc.pid}\n")
            sys.stdout.flush()
            time.sleep(600)
    except KeyboardInterrupt as exc:
        sys.stderr.write(f"egress-harness: {exc}; lab {run_id} torn down\n")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
