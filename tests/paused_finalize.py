"""`python -m tests.paused_finalize SECONDS ARGS...`: the worker's `finalize` with a pause after each step.

Finalize prints a line after each batch and step (`steps.finalize._step`); the crash-safety tests
kill it right after a given line, so each line must be followed by a moment in which nothing else
happens. The pause lives here, around the worker's own entry point, not in the production code.
"""

from __future__ import annotations

import sys
import time

from steps import finalize
from worker import __main__ as worker


def main(argv: list[str]) -> int:
    pause_s, command = float(argv[0]), argv[1:]
    announce = finalize._step

    def announce_then_pause(message: str) -> None:
        announce(message)
        time.sleep(pause_s)

    finalize._step = announce_then_pause
    return worker.main(["finalize", *command])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
