"""The error types users see.

Every error says what was wrong, what was expected and what to do. The CLI turns a
`UsageError` (and its subclasses) into exit code 2 with the message on stderr.
"""

from __future__ import annotations


class SnnbenchError(Exception):
    """Base class of every error snnbench raises on purpose."""


class UsageError(SnnbenchError):
    """Bad input from the user: an unknown name, a bad T, a missing dataset. Exit code 2."""


class UnknownNameError(UsageError, KeyError):
    """A name that is not registered; the message lists close matches and known names."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(SnnbenchError):
    """Two plugins registered the same name for the same kind."""


class InvalidSpecError(SnnbenchError):
    """A plugin registered something that is not a valid spec."""


class PluginError(UsageError):
    """A plugin could not be loaded or does not fulfil the hook contract."""


class DataMissingError(UsageError):
    """A dataset's files are not where the suite looked for them."""


class DataCorruptError(UsageError):
    """A dataset file exists but cannot be read as its format says; the message names it."""


class ConversionError(SnnbenchError):
    """A model cannot be converted to a spiking network; the message names the node."""


class TrainingDivergedError(SnnbenchError):
    """Training produced a non-finite loss."""
