"""The printable template plate: holes where planned, watertight, placed on the skin."""

from __future__ import annotations

import numpy as np
import pytest

from seldinger.export.template import HOLE_DIAMETER_MM, template_plate, write_template_stl


def test_plate_has_its_holes_on_the_needle_lines_and_is_watertight(tmp_path) -> None:  # type: ignore[no-untyped-def]
    frame = np.array([[10.0, 20.0, 30.0], [1, 0, 0], [0, 0, 1], [0, 1, 0]], dtype=float)
    holes = [(0.0, 0.0), (5.0, 0.0), (0.0, -10.0)]
    # Needles run +P; the skin lies at P -20 on one needle and -22 on the other: the plate
    # must stay outside both, so its skin side is at -22.
    entries = np.array([[10.0, -20.0, 30.0], [15.0, -22.0, 30.0]])
    mesh = template_plate(frame, holes, entries, thickness_mm=8.0)
    assert mesh.is_watertight
    lo, hi = mesh.bounds
    assert lo[1] == pytest.approx(-30.0, abs=0.3) and hi[1] == pytest.approx(-22.0, abs=0.3)
    # Each hole: a wall of vertices at the hole radius around the needle line (the line
    # along +P through the hole centre), none nearer to it.
    verts = np.asarray(mesh.vertices)
    for hx, hy in holes:
        radial = np.hypot(verts[:, 0] - (10.0 + hx), verts[:, 2] - (30.0 + hy))
        assert radial.min() >= HOLE_DIAMETER_MM / 2 - 0.2
        assert np.count_nonzero(radial <= HOLE_DIAMETER_MM / 2 + 0.2) >= 8
    out = write_template_stl(tmp_path / "t.stl", mesh)
    assert out.stat().st_size > 84
    with pytest.raises(FileExistsError):
        write_template_stl(out, mesh)
    assert HOLE_DIAMETER_MM > 1.27


def test_bad_template_inputs() -> None:
    with pytest.raises(ValueError, match="frame_lps"):
        template_plate(np.zeros((3, 3)), [(0, 0)], np.zeros((1, 3)))
    with pytest.raises(ValueError, match="holes_mm"):
        template_plate(np.eye(4)[:, :3], [], np.zeros((1, 3)))
