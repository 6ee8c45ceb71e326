"""One error base for Seldinger, and the exit code each kind of error gives on the command line.

Every error the library raises on purpose derives from :class:`SeldingerError` *and* from
the matching built-in exception, so that a caller's ``except ValueError`` keeps working
while the command line maps each error to one documented :class:`ExitCode`:

=====  ==================  ========================================================
code   name                meaning
=====  ==================  ========================================================
0      ``OK``              done
2      ``USAGE``           the command line itself is wrong (option, value, missing argument)
3      ``BAD_INPUT``       an input cannot be used: damaged or ambiguous file, wrong grid,
                           invalid plan, value out of range
4      ``INFEASIBLE``      the inputs are fine but no plan meets the rules (no safe path,
                           no placement or loading reaches the goals)
5      ``IO``              a file is missing, exists already (no ``--force``), or cannot be
                           written
6      ``PEER``            a network peer (tracker, PACS, robot) is down, refuses, or breaks
                           the protocol
130    ``INTERRUPTED``     stopped by Ctrl-C
=====  ==================  ========================================================

Anything else that escapes (exit status 1 with a traceback) is a bug.

Examples
--------
>>> class ToyError(BadInputError):
...     pass
>>> err = ToyError("margin_mm must be >= 0; got -1.")
>>> isinstance(err, ValueError), exit_code_of(err) is ExitCode.BAD_INPUT
(True, True)
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any

__all__ = [
    "BadInputError",
    "ExitCode",
    "InfeasiblePlanError",
    "MissingFileError",
    "OutputExistsError",
    "PeerError",
    "SeldingerError",
    "SeldingerIOError",
    "exit_code_of",
]


class ExitCode(IntEnum):
    """Exit status of the ``seldinger`` command line (the table in this module's docstring)."""

    OK = 0
    USAGE = 2
    BAD_INPUT = 3
    INFEASIBLE = 4
    IO = 5
    PEER = 6
    INTERRUPTED = 130


class SeldingerError(Exception):
    """Base of every error Seldinger raises on purpose; the message names the fix.

    Subclasses also derive from the matching built-in exception and set :attr:`exit_code`.
    """

    #: Exit status the command line gives for this error.
    exit_code: ExitCode = ExitCode.BAD_INPUT

    def details(self) -> dict[str, Any]:
        """JSON-ready facts beside the message (``--json`` prints them with the error)."""
        return {}


class BadInputError(SeldingerError, ValueError):
    """An input (file, value, plan) cannot be used as given."""

    exit_code = ExitCode.BAD_INPUT


class InfeasiblePlanError(SeldingerError, ValueError):
    """The inputs are valid but no plan meets the rules; the message says what to relax."""

    exit_code = ExitCode.INFEASIBLE


class SeldingerIOError(SeldingerError, OSError):
    """A file or folder is missing or cannot be written."""

    exit_code = ExitCode.IO


class MissingFileError(SeldingerIOError, FileNotFoundError):
    """An input file or folder does not exist."""

    exit_code = ExitCode.IO


class OutputExistsError(SeldingerError, FileExistsError):
    """An output exists already and ``force`` (``--force``) was not given."""

    exit_code = ExitCode.IO


class PeerError(SeldingerError, ConnectionError):
    """A network peer (tracker, PACS, robot) is unreachable, refuses, or breaks the protocol."""

    exit_code = ExitCode.PEER


def exit_code_of(error: BaseException) -> ExitCode:
    """The :class:`ExitCode` for ``error`` (``BAD_INPUT`` for a bare :class:`SeldingerError`)."""
    if isinstance(error, SeldingerError):
        return error.exit_code
    raise TypeError(
        f"exit_code_of takes a SeldingerError; got {type(error).__name__}: an error that is not "
        "a SeldingerError is a bug and keeps its traceback."
    )
