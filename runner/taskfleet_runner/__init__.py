"""The taskfleet task runner (see runner.py); `python -m taskfleet_runner` is `taskfleet runner`."""

from .runner import TaskRunner

__all__ = ["TaskRunner"]
