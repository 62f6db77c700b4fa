"""Errors a user can act on.

The CLI prints a GoalpostError as a message (and its hint) without a traceback; anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations


class GoalpostError(Exception):
    """A problem the user can fix: bad input, missing setup, unreachable database."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(GoalpostError):
    """The client registry or a command's arguments are invalid."""

    exit_code = 2


class NotFoundError(GoalpostError):
    """A named client, source or object does not exist."""

    exit_code = 3


class WarehouseError(GoalpostError):
    """The database cannot be reached or set up."""

    exit_code = 4
