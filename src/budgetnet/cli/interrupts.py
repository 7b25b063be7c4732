"""Ctrl-C as a request: the first one asks long work to stop at a safe point, a second one aborts."""

from __future__ import annotations

import signal
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the CLI imports torch only once a verb runs
    from budgetnet.train.loop import StopRequest

SAVE_MESSAGE = "stopping after this step to save a checkpoint (Ctrl-C again aborts without saving)"


class SigintToStop:
    """While active, the first Ctrl-C sets `stop.requested` (once `stop` is armed); a second one aborts."""

    def __init__(self, stop: StopRequest, message: str = SAVE_MESSAGE) -> None:
        self.stop, self.message = stop, message

    def __enter__(self) -> SigintToStop:
        self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        signal.signal(signal.SIGINT, self.previous)

    def _handle(self, signum: int, frame: object) -> None:
        if not self.stop.armed or self.stop.requested:
            raise KeyboardInterrupt  # nothing to save yet, or the user insists
        self.stop.requested = True
        print(f"\n{self.message}", file=sys.stderr, flush=True)
