"""Calling native decoders (ITK, GDCM, the Rust and C plugins of pylibjpeg) without their noise.

Native code reports problems on its own: ITK's MetaIO writes to ``std::cerr``, a Rust
decoder that panics prints the panic on file descriptor 2 and raises pyo3's
``PanicException``, which derives from :class:`BaseException`, not :class:`Exception`.
On the command line either would break the rule that an error is one line. While a
decoder runs, :func:`native_stderr` sends descriptor 2 to a temporary file and hands its
lines back (they are logged at DEBUG and may end up in the error message);
:func:`is_decoder_failure` tells a decoder's exception from a real interrupt.

The redirection is process-wide for the few milliseconds a decoder runs: another thread
writing to stderr at that moment has its text logged at DEBUG instead of shown.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["is_decoder_failure", "last_line", "native_stderr"]

logger = logging.getLogger(__name__)

#: Most bytes of native stderr kept per call.
MAX_CAPTURED_BYTES = 1 << 16


def is_decoder_failure(err: BaseException) -> bool:
    """True for an Exception, or a Rust panic surfacing as pyo3's PanicException."""
    return isinstance(err, Exception) or type(err).__name__ == "PanicException"


def last_line(lines: list[str]) -> str:
    """The last non-blank captured line (ITK and GDCM put the reason last)."""
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return ""


@contextmanager
def native_stderr() -> Iterator[list[str]]:
    """Capture what native code writes to file descriptor 2 during the block.

    Yields a list that is filled, when the block ends, with the captured lines (nothing is
    captured where descriptor 2 cannot be duplicated, e.g. in an embedded interpreter).
    """
    lines: list[str] = []
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError, AttributeError):
        yield lines
        return
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield lines
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read(MAX_CAPTURED_BYTES).decode("utf-8", errors="replace")
            lines.extend(text.splitlines())
            for line in lines:
                logger.debug("native decoder: %s", line)
