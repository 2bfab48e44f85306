"""Errors the command line turns into exit statuses, in a module that imports no torch.

``kglnet`` catches these for every command; defining them beside the code that raises them
(checkpoint.py, train.py) would make the data and report commands import torch (about 2.5 s on
a 2-core CPU) just to name them. Those modules re-export them.
"""

from __future__ import annotations

import os
from pathlib import Path


class CheckpointError(ValueError):
    """A checkpoint file that cannot be used; the message names the file and the problem."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class TrainingDiverged(RuntimeError):
    """A non-finite loss; the last good checkpoint is left untouched."""


class TrainingStopped(RuntimeError):
    """Stopped on request (a signal) at a step boundary, after last.pt was written; ``signum``."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.signum = signum
