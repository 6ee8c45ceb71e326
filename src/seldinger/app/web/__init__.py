"""The browser workstation of ``seldinger serve``: routes, token check and static files."""
