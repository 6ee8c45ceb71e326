"""Figures of the stent workflow: lumen area along the airway, and a designed stent.

The CT of lidc-idri-0001 (when a figure is made from it) is LIDC-IDRI data, CC BY 3.0:
Armato SG III et al., Med Phys 38:915-931 (2011); keep that attribution beside the picture.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from seldinger.files import atomic_path
from seldinger.stents import LumenSurvey

__all__ = ["lumen_profile_figure", "stent_rendering"]


def lumen_profile_figure(
    survey: LumenSurvey, path: str | os.PathLike[str], *, force: bool = True, title: str = ""
) -> Path:
    """Lumen area against distance along the airway (or oesophagus), stenoses marked.

    One panel per measured tube; the x axis is the path length from the upper end of the
    trachea (mm), so a bronchus continues where the trachea ends. Junction stations (near a
    branch point, not analysed) are grey; each stenosis is shaded between its ends with its
    reference area dashed and its % by area written above.

    Parameters
    ----------
    survey : LumenSurvey
        From :func:`seldinger.stents.measure_airway` or :func:`seldinger.stents.measure_tube`.
    path : str or PathLike
        PNG to write (atomically).
    force : bool
        Replace an existing file.
    title : str
        Figure title.

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    profiles = [p for p in survey.profiles if np.isfinite(p.sections.area_mm2).any()]
    n = max(len(profiles), 1)
    cols = 1 if n == 1 else 2
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(6.0 * cols, 2.6 * rows), squeeze=False)
    for ax in axes.ravel()[len(profiles) :]:
        ax.axis("off")
    for ax, profile in zip(axes.ravel(), profiles, strict=False):
        x = profile.path_mm
        area = profile.sections.area_mm2
        junction = profile.junction if len(profile.junction) else np.zeros(len(x), bool)
        ax.plot(x, np.where(junction, np.nan, area), color="tab:blue", lw=1.4, label="area")
        ax.plot(x, np.where(junction, area, np.nan), color="0.6", lw=1.0, label="junction")
        occluded = profile.sections.occluded
        if occluded.any():
            ax.plot(x[occluded], area[occluded], "x", color="black", label="no lumen")
        for stenosis in survey.stenoses:
            if stenosis.label != profile.label:
                continue
            ax.axvspan(stenosis.start_path_mm, stenosis.end_path_mm, color="tab:red", alpha=0.25)
            ax.hlines(
                stenosis.reference_area_mm2,
                stenosis.start_path_mm - 15,
                stenosis.end_path_mm + 15,
                colors="tab:red",
                linestyles="dashed",
                lw=1.0,
            )
            text = "occluded" if stenosis.occluded else f"{stenosis.stenosis_area_percent:.0f} %"
            ax.annotate(
                f"{text}, {stenosis.length_mm:.0f} mm",
                (0.5 * (stenosis.start_path_mm + stenosis.end_path_mm), stenosis.min_area_mm2),
                textcoords="offset points",
                xytext=(0, -12),
                ha="center",
                color="tab:red",
                fontsize=8,
            )
        if survey.carina_path_mm is not None:
            ax.axvline(survey.carina_path_mm, color="0.3", lw=0.8, ls=":")
        ax.set_title(profile.label.replace("_", " "), fontsize=9)
        ax.set_xlabel("distance from the upper end of the trachea (mm)", fontsize=8)
        ax.set_ylabel("lumen area (mm²)", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out = Path(path)
    with atomic_path(out, force=force) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return out


def stent_rendering(
    vertices_lps_mm: npt.NDArray[np.float64],
    faces: npt.NDArray[np.int64],
    path: str | os.PathLike[str],
    *,
    force: bool = True,
    title: str = "",
    extra: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], str]] | None = None,
) -> Path:
    """Two views (anterior, and from the patient's left) of a mesh, shaded, LPS mm.

    Parameters
    ----------
    vertices_lps_mm : ndarray, shape (V, 3)
        Mesh vertices, LPS mm.
    faces : ndarray, shape (F, 3)
        Triangles.
    path : str or PathLike
        PNG to write (atomically).
    force : bool
        Replace an existing file.
    title : str
        Figure title.
    extra : list of (vertices, faces, colour), optional
        More meshes drawn beside (e.g. the mould halves).

    Returns
    -------
    Path
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mpl_toolkits.mplot3d.art3d import (  # type: ignore[import-untyped,unused-ignore]
        Poly3DCollection,
    )

    meshes = [(vertices_lps_mm, faces, "#d9a066"), *list(extra or [])]
    # LPS axes as they are: seen from the front (camera at -y) the patient's right is on the
    # image's left (radiological convention); from the patient's left (camera at +x),
    # anterior is on the left.
    views: list[tuple[str, dict[str, Any]]] = [
        ("anterior (R | L)", {"elev": 0.0, "azim": -90.0}),
        ("left lateral (A | P)", {"elev": 0.0, "azim": 0.0}),
    ]
    fig = plt.figure(figsize=(10, 6))
    light = np.array([0.4, -0.6, 0.7])
    light /= np.linalg.norm(light)
    for index, (name, view) in enumerate(views):
        ax: Any = fig.add_subplot(1, 2, index + 1, projection="3d")
        for verts, tri, colour in meshes:
            triangles = verts[tri]
            normals = np.cross(triangles[:, 1] - triangles[:, 0], triangles[:, 2] - triangles[:, 0])
            normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
            shade = 0.35 + 0.65 * np.abs(normals @ light)
            base = np.array(matplotlib.colors.to_rgb(colour))
            collection = Poly3DCollection(
                triangles, facecolors=np.clip(shade[:, None] * base, 0, 1), linewidths=0
            )
            ax.add_collection3d(collection)
        everything = np.concatenate([m[0] for m in meshes])
        lo, hi = everything.min(axis=0), everything.max(axis=0)
        centre, half = 0.5 * (lo + hi), 0.5 * float((hi - lo).max())
        ax.set_xlim(centre[0] - half, centre[0] + half)
        ax.set_ylim(centre[1] - half, centre[1] + half)
        ax.set_zlim(centre[2] - half, centre[2] + half)
        ax.view_init(**view)
        ax.set_box_aspect((1, 1, 1))
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("x (LPS mm)", fontsize=7)
        ax.set_ylabel("y (LPS mm)", fontsize=7)
        ax.set_zlabel("z (LPS mm)", fontsize=7)
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=10)
    out = Path(path)
    with atomic_path(out, force=force) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    plt.close(fig)
    return out
