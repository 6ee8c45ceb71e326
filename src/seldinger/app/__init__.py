"""Application layer: the `seldinger` command line and the demo pipeline."""

__all__: list[str] = []
