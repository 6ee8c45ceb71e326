"""Peak resident memory of this process, for the benchmarks (Linux /proc; ru_maxrss elsewhere)."""

from __future__ import annotations

import contextlib
import resource
from pathlib import Path


def rss_kb(field: str) -> int:
    """``VmRSS`` (now) or ``VmHWM`` (high-water mark) in kB; ru_maxrss where /proc is absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)


def reset_peak() -> None:
    """Reset the high-water mark to the current resident set (Linux only; no-op elsewhere)."""
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")
