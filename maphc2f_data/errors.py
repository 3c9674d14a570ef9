"""Errors that mean "the user asked for something we cannot do".

The CLI turns a :class:`UserError` into a one-line message and exit code 2;
any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """Bad input: wrong layout, missing file, corrupt data, invalid option.

    The message must name the cause and the offending path or value.
    """


class SourceLayoutError(UserError, FileNotFoundError):
    """A dataset root does not have the layout its reader expects."""


class CorruptImageError(UserError, ValueError):
    """An image or mask file cannot be decoded."""


class CheckpointError(UserError, FileNotFoundError):
    """A model checkpoint is missing or does not match the model."""
