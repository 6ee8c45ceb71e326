"""The trajectory pictures of a search as files: axial overview, needle views, skin map."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seldinger.anatomy import Anatomy
from seldinger.errors import BadInputError
from seldinger.export.trajectory_views import (
    render_needle_views,
    render_paths_axial,
    render_skin_risk_map,
)
from seldinger.export.views import picture_window
from seldinger.imaging import Volume
from seldinger.planning.trajectory import Trajectory, TrajectorySearch

__all__ = ["FIGURE_MASKS", "NEEDLE_VIEWS", "trajectory_figure_names", "write_trajectory_figures"]

#: Structures outlined on the trajectory pictures, in legend order (those the anatomy has).
FIGURE_MASKS = ("bones", "mediastinum", "vessels", "airways")
#: Needle views drawn (``needle_1.png`` … for the best paths).
NEEDLE_VIEWS = 3


def trajectory_figure_names(n_paths: int, n_needle_views: int = NEEDLE_VIEWS) -> list[str]:
    """File names :func:`write_trajectory_figures` writes for ``n_paths`` ranked paths."""
    needles = [f"needle_{n}.png" for n in range(1, min(n_paths, n_needle_views) + 1)]
    return ["paths_axial.png", *needles, "skin_risk_map.png"]


def write_trajectory_figures(
    ct: Volume,
    search: TrajectorySearch,
    paths: Sequence[Trajectory],
    out_dir: Path,
    anatomy: Anatomy,
    lesion: Volume | None = None,
    n_needle_views: int = NEEDLE_VIEWS,
) -> list[Path]:
    """Draw the ranked paths: axial overview, needle views of the best, skin risk map.

    Parameters
    ----------
    ct : Volume
        The CT (HU) the paths were planned on.
    search : TrajectorySearch
        The search (its candidates, risk scores and refusal reasons feed the skin map).
    paths : sequence of Trajectory
        The paths to show, best first (e.g. ``search.top(5)``); at least one.
    out_dir : Path
        Existing folder; files named by :func:`trajectory_figure_names` are written into
        it (refused if present).
    anatomy : Anatomy
        Structures outlined (:data:`FIGURE_MASKS`, those present).
    lesion : Volume, optional
        The target lesion's mask, outlined too.
    n_needle_views : int
        Needle views drawn, for the best paths.

    Returns
    -------
    list of Path
        The PNGs written, in the order of :func:`trajectory_figure_names`.
    """
    if not paths:
        raise BadInputError("paths is empty; pass at least one Trajectory (search.top(n)).")
    masks = {name: anatomy[name] for name in FIGURE_MASKS if name in anatomy}
    if lesion is not None:
        masks["lesion"] = lesion
    entries = np.array([p.entry_lps_mm for p in paths])
    targets = np.array([p.target_lps_mm for p in paths])
    names = trajectory_figure_names(len(paths), n_needle_views)
    # The lung window for a lung target, else soft tissue (liver, mediastinum, kidney).
    window = picture_window(ct, lesion, targets[0])
    written = [
        render_paths_axial(
            ct,
            entries,
            targets,
            out_dir / names[0],
            masks=masks,
            window=window,
        )
    ]
    for n, path in enumerate(paths[:n_needle_views], start=1):
        written.append(
            render_needle_views(
                ct,
                path.entry_lps_mm,
                path.target_lps_mm,
                out_dir / f"needle_{n}.png",
                masks=masks,
                safety_radius_mm=search.constraints.vessel_distance_mm,
                window=window,
            )
        )
    written.append(
        render_skin_risk_map(
            search.candidates_lps_mm,
            search.risk_score,
            out_dir / names[-1],
            centre_lps_mm=search.target_lps_mm,
            best_entries_lps_mm=entries,
            blocked_reason=search.reason_labels(),
        )
    )
    return written
