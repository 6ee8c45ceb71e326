"""``seldinger serve``: the browser workstation (issue 21)."""

from __future__ import annotations

__all__ = ["serve"]


def serve() -> None:
    """The browser workstation: review and adjust a plan, follow the needle live."""
    raise NotImplementedError("seldinger serve is being built (issue 21)")
