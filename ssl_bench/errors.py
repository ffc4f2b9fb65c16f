"""Errors meant for the user as they are: one line that says what is wrong and what to do.

The command-line apps print them without a traceback as ``<prog>: <kind>: <message>`` and exit with
code 2, before any work when the check can be made up front. Everything else is a bug or an
environment failure and keeps its traceback (exit code 1).
"""

from __future__ import annotations


class UserError(Exception):
    """An input that cannot run; ``kind`` prefixes the message (``config error: ...``)."""

    kind = "error"


class ConfigError(UserError, ValueError):
    """A config key or value that cannot run."""

    kind = "config error"


class DataError(UserError):
    """A dataset or corpus that is missing, empty or unreadable."""

    kind = "data error"


class RunFolderError(UserError):
    """The run folder cannot be used as asked: locked by another process, already holding a run,
    not writable, or holding a checkpoint that cannot be resumed."""

    kind = "run folder"
