"""Oblique reslicing at LPS positions, and the planes a needle defines.

Every position is an LPS point in mm; volumes are sampled through their own affines, so
their array axis order (LPS, RAS, PIR, oblique …) does not matter and several volumes on
different grids give the same pixels for the same plane.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import ndimage

from seldinger.errors import BadInputError
from seldinger.imaging.volume import Volume

__all__ = [
    "AIR_HU",
    "NEEDLE_VIEW_NAMES",
    "ObliquePlane",
    "needle_frame",
    "needle_view_planes",
    "oblique_plane",
    "skin_azimuth_deg",
]

#: HU of air: what a CT reslice shows outside the scanned volume.
AIR_HU = -1024.0
#: The planes of :func:`needle_view_planes` (panels of the needle views, left to right).
NEEDLE_VIEW_NAMES = ("in_plane", "orthogonal", "needles_eye")

LEFT_LPS = np.array([1.0, 0.0, 0.0])
POSTERIOR_LPS = np.array([0.0, 1.0, 0.0])
_S = np.array([0.0, 0.0, 1.0])
_MAX_PIXELS_PER_SIDE = 4097
# Dominant axis of a plane's normal -> (direction into the screen, screen-down reference):
# axial seen from the feet, coronal from the front, sagittal from the patient's left.
_STANDARD_VIEWS = {2: (_S, POSTERIOR_LPS), 1: (POSTERIOR_LPS, -_S), 0: (-LEFT_LPS, -_S)}


@dataclass(frozen=True, eq=False)
class ObliquePlane:
    """A planar reslice of a Volume: pixel ``[r, c]`` lies at
    ``origin_lps_mm + u_mm[c] * u + v_mm[r] * v``.

    Attributes
    ----------
    image : ndarray, shape (R, C)
        Sampled values (float64): rows run along ``v``, columns along ``u``.
    origin_lps_mm : ndarray, shape (3,)
        LPS position (mm) of the centre pixel (offsets 0, 0).
    u, v : ndarray, shape (3,)
        Orthonormal LPS directions of increasing column and row.
    u_mm : ndarray, shape (C,)
        Offsets of the pixel centres along ``u`` from the origin, mm (symmetric).
    v_mm : ndarray, shape (R,)
        Offsets of the pixel centres along ``v`` from the origin, mm (symmetric).
    pixel_mm : float
        Pixel size in mm (square pixels).
    """

    image: npt.NDArray[np.float64]
    origin_lps_mm: npt.NDArray[np.float64]
    u: npt.NDArray[np.float64]
    v: npt.NDArray[np.float64]
    u_mm: npt.NDArray[np.float64]
    v_mm: npt.NDArray[np.float64]
    pixel_mm: float

    @property
    def normal(self) -> npt.NDArray[np.float64]:
        """Unit normal ``u × v`` (LPS)."""
        return np.cross(self.u, self.v)

    @property
    def extent_mm(self) -> tuple[float, float, float, float]:
        """(u_min, u_max, v_min, v_max) of the pixel edges, mm from the origin.

        Pass it as ``extent`` to ``imshow(image, origin="lower")``.
        """
        half = self.pixel_mm / 2
        return (
            float(self.u_mm[0] - half),
            float(self.u_mm[-1] + half),
            float(self.v_mm[0] - half),
            float(self.v_mm[-1] + half),
        )

    def lps_mm(self) -> npt.NDArray[np.float64]:
        """LPS positions (mm) of all pixel centres, shape (R, C, 3)."""
        return (
            self.origin_lps_mm
            + self.v_mm[:, None, None] * self.v
            + self.u_mm[None, :, None] * self.u
        )

    def to_plane_mm(self, points_lps_mm: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """In-plane offsets and distance from the plane of LPS points.

        Parameters
        ----------
        points_lps_mm : array_like, shape (..., 3)
            LPS positions in mm.

        Returns
        -------
        ndarray, shape (..., 3)
            ``(u_mm, v_mm, normal_mm)``: offsets along ``u`` and ``v`` from the
            origin and signed distance along :attr:`normal`.
        """
        d = np.asarray(points_lps_mm, dtype=np.float64) - self.origin_lps_mm
        return np.stack([d @ self.u, d @ self.v, d @ self.normal], axis=-1)

    def resample(
        self, volume: Volume, order: int = 0, fill_value: float | None = None
    ) -> ObliquePlane:
        """The same pixels sampled from another volume (e.g. a mask on any grid)."""
        image = _sample_lps(volume, self.lps_mm(), order, fill_value)
        return ObliquePlane(
            image, self.origin_lps_mm, self.u, self.v, self.u_mm, self.v_mm, self.pixel_mm
        )


def oblique_plane(
    ct: Volume,
    origin_lps_mm: npt.ArrayLike,
    u: npt.ArrayLike,
    v: npt.ArrayLike,
    half_u_mm: float,
    half_v_mm: float,
    pixel_mm: float,
    order: int = 1,
    fill_value: float | None = None,
) -> ObliquePlane:
    """Resample a Volume on a planar grid given in LPS mm (any array axis order).

    Parameters
    ----------
    ct : Volume
        CT in HU or a mask; sampled through its own affine.
    origin_lps_mm : array_like, shape (3,)
        LPS position (mm) of the centre pixel.
    u, v : array_like, shape (3,)
        Orthogonal LPS directions of increasing column and row (normalised here).
    half_u_mm, half_v_mm : float
        Half-widths of the plane along ``u`` and ``v``, mm; rounded to whole pixels
        so that the grid is symmetric and its centre pixel lies exactly on the origin.
    pixel_mm : float
        Pixel size in mm.
    order : {0, 1}
        0: nearest voxel (masks, labels); 1: trilinear (CT).
    fill_value : float, optional
        Value outside the volume (more than half a voxel beyond its edge voxel
        centres). Default -1024 HU (air) for ``order=1`` and 0 for ``order=0``.

    Returns
    -------
    ObliquePlane
        The image (rows along ``v``, columns along ``u``) and its LPS grid.

    Raises
    ------
    ValueError
        If a direction is zero, not finite or not orthogonal to the other, a size
        is not positive, the grid exceeds 4097 pixels per side, or ``order`` is not 0 or 1.

    Examples
    --------
    >>> ct = Volume(np.arange(27.0).reshape(3, 3, 3), np.eye(4))
    >>> plane = oblique_plane(ct, [1, 1, 1], [1, 0, 0], [0, 1, 0], 1.0, 1.0, 1.0)
    >>> plane.image[1, 1], plane.image[1, 2]  # voxel (1, 1, 1), then one step along +L
    (np.float64(13.0), np.float64(22.0))
    """
    origin = as_point(origin_lps_mm, "origin_lps_mm")
    u_dir = _unit(u, "u")
    v_dir = _unit(v, "v")
    if abs(float(u_dir @ v_dir)) > 1e-6:
        raise BadInputError(
            f"u and v must be orthogonal; got u·v = {float(u_dir @ v_dir):.3g} "
            f"(u={u_dir.round(4).tolist()}, v={v_dir.round(4).tolist()}). "
            "Take v from a cross product with u."
        )
    for name, value in (("half_u_mm", half_u_mm), ("half_v_mm", half_v_mm)):
        if not (np.isfinite(value) and value > 0):
            raise BadInputError(f"{name} must be a positive number of mm; got {value!r}.")
    if not (np.isfinite(pixel_mm) and pixel_mm > 0):
        raise BadInputError(f"pixel_mm must be a positive number of mm; got {pixel_mm!r}.")
    offsets: list[npt.NDArray[np.float64]] = []
    for name, half in (("half_u_mm", half_u_mm), ("half_v_mm", half_v_mm)):
        n = 2 * round(half / pixel_mm) + 1
        if n > _MAX_PIXELS_PER_SIDE:
            raise BadInputError(
                f"{name}={half!r} at pixel_mm={pixel_mm!r} needs {n} pixels per side "
                f"(at most {_MAX_PIXELS_PER_SIDE}); use a larger pixel_mm or a smaller plane."
            )
        offsets.append((np.arange(n, dtype=np.float64) - (n - 1) / 2) * float(pixel_mm))
    plane = ObliquePlane(
        np.empty((0, 0)), origin, u_dir, v_dir, offsets[0], offsets[1], float(pixel_mm)
    )
    return plane.resample(ct, order=order, fill_value=fill_value)


def needle_frame(
    entry_lps_mm: npt.ArrayLike, target_lps_mm: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64], float]:
    """Orthonormal frame of a needle: its direction and two perpendiculars.

    Parameters
    ----------
    entry_lps_mm, target_lps_mm : array_like, shape (3,)
        Skin entry and tip (target) in LPS mm.

    Returns
    -------
    u, v, w : ndarray, shape (3,)
        ``u`` points from entry to target; ``v = normalize(S × u)`` (horizontal,
        perpendicular to the needle; ``L`` when the needle is vertical, parallel
        to S); ``w = u × v``.
    length_mm : float
        Distance from entry to target.

    Raises
    ------
    ValueError
        If a point is not three finite numbers or entry and target coincide.

    Examples
    --------
    >>> u, v, w, length_mm = needle_frame([0, -50, 0], [0, 0, 0])  # from anterior
    >>> u.tolist(), v.tolist(), w.tolist(), length_mm
    ([0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0], 50.0)
    """
    entry = as_point(entry_lps_mm, "entry_lps_mm")
    target = as_point(target_lps_mm, "target_lps_mm")
    d = target - entry
    length_mm = float(np.linalg.norm(d))
    if not length_mm > 1e-6:
        raise BadInputError(
            f"entry_lps_mm and target_lps_mm coincide ({entry.round(2).tolist()} mm); "
            "a needle needs a skin entry distinct from its target."
        )
    u = d / length_mm
    s_cross_u = np.cross(_S, u)
    norm = float(np.linalg.norm(s_cross_u))
    v = s_cross_u / norm if norm > 1e-9 else LEFT_LPS.copy()
    w = np.cross(u, v)
    return u + 0.0, v + 0.0, w + 0.0, length_mm  # + 0.0 turns -0.0 into 0.0


def needle_view_planes(
    ct: Volume,
    entry_lps_mm: npt.ArrayLike,
    target_lps_mm: npt.ArrayLike,
    pixel_mm: float = 0.5,
    beyond_mm: float = 30.0,
    side_mm: float = 60.0,
    eye_half_mm: float = 40.0,
) -> dict[str, ObliquePlane]:
    """The three CT reslices of :func:`render_needle_views`, in display orientation.

    Parameters
    ----------
    ct : Volume
        CT in HU, any orientation.
    entry_lps_mm, target_lps_mm : array_like, shape (3,)
        Skin entry and tip in LPS mm.
    pixel_mm : float
        Pixel size in mm.
    beyond_mm : float
        How far the two needle planes reach beyond the entry and the tip, mm.
    side_mm : float
        How far the two needle planes reach to each side of the needle, mm.
    eye_half_mm : float
        Half-width of the needle's-eye view, mm.

    Returns
    -------
    dict of str to ObliquePlane
        ``"in_plane"``: the plane spanned by the needle ``u`` and ``v = S × u``
        (the axial plane for an axial needle); ``"orthogonal"``: spanned by ``u`` and
        ``w = u × v``; ``"needles_eye"``: perpendicular to ``u``, centred on the target.
        Each plane's ``u``/``v`` are the screen's right/down directions (module
        docstring); the needle planes are centred on the needle's midpoint and square.

    Raises
    ------
    ValueError
        For invalid points (see :func:`needle_frame`) or sizes.
    """
    entry = as_point(entry_lps_mm, "entry_lps_mm")
    target = as_point(target_lps_mm, "target_lps_mm")
    u, v, w, length_mm = needle_frame(entry, target)
    for name, value in (("beyond_mm", beyond_mm), ("side_mm", side_mm)):
        if not (np.isfinite(value) and value >= 0):
            raise BadInputError(f"{name} must be a non-negative number of mm; got {value!r}.")
    middle = (entry + target) / 2
    planes = {}
    for name, normal in (("in_plane", w), ("orthogonal", v)):
        right, down, _ = _display_axes(normal)
        along, across = length_mm / 2 + beyond_mm, side_mm
        # bounding box, in screen axes, of the needle-aligned rectangle; made square
        half_right = along * abs(float(u @ right)) + across * abs(float(u @ down))
        half_down = along * abs(float(u @ down)) + across * abs(float(u @ right))
        half = max(half_right, half_down)
        planes[name] = oblique_plane(ct, middle, right, down, half, half, pixel_mm)
    right, down, _ = _display_axes(u, keep_sign=True)
    planes["needles_eye"] = oblique_plane(
        ct, target, right, down, eye_half_mm, eye_half_mm, pixel_mm
    )
    return planes


def skin_azimuth_deg(
    points_lps_mm: npt.ArrayLike, centre_lps_mm: npt.ArrayLike
) -> npt.NDArray[np.float64]:
    """Azimuth of points around the vertical (S) axis through a centre.

    Parameters
    ----------
    points_lps_mm : array_like, shape (..., 3)
        LPS positions in mm.
    centre_lps_mm : array_like, shape (3,)
        A point on the axis (its S coordinate is ignored).

    Returns
    -------
    ndarray, shape (...)
        Degrees in (-180, 180]: 0 anterior, +90 patient left, -90 patient right,
        ±180 posterior.

    Examples
    --------
    >>> skin_azimuth_deg([[0, -1, 0], [1, 0, 0], [-1, 0, 0]], [0, 0, 5]).tolist()
    [0.0, 90.0, -90.0]
    """
    d = np.asarray(points_lps_mm, dtype=np.float64) - as_point(centre_lps_mm, "centre_lps_mm")
    # anterior is -P, patient left is +L
    return np.degrees(np.arctan2(d[..., 0], -d[..., 1])) + 0.0


# --- rendering -------------------------------------------------------------------------


def _sample_lps(
    volume: Volume, lps_mm: npt.NDArray[np.float64], order: int, fill_value: float | None
) -> npt.NDArray[np.float64]:
    """Values of ``volume`` at LPS points (..., 3); ``fill_value`` beyond its voxels."""
    if not isinstance(volume, Volume):
        raise TypeError(f"expected a seldinger.imaging.Volume; got {type(volume).__name__}.")
    if order not in (0, 1):
        raise BadInputError(f"order must be 0 (nearest: masks) or 1 (linear: CT); got {order!r}.")
    fill = (AIR_HU if order == 1 else 0.0) if fill_value is None else float(fill_value)
    index = volume.lps_to_index(lps_mm)
    shape = np.asarray(volume.shape)
    tol = 1e-6
    inside = np.all((index >= -0.5 - tol) & (index <= shape - 0.5 + tol), axis=-1)
    array = volume.array
    if array.dtype == np.bool_:
        array = array.view(np.uint8)
    values = np.full(index.shape[:-1], fill, dtype=np.float64)
    if inside.any():
        values[inside] = ndimage.map_coordinates(
            array, index[inside].T, order=order, mode="nearest", output=np.float64
        )
    return values


def as_point(value: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    """Three finite LPS coordinates (mm), or ValueError naming ``name``."""
    try:
        point = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise BadInputError(f"{name} must be three LPS coordinates in mm; got {value!r}.") from err
    if point.shape != (3,) or not np.all(np.isfinite(point)):
        raise BadInputError(
            f"{name} must be three finite LPS coordinates in mm, shape (3,); got {value!r}."
        )
    return point


def as_points(value: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    """(n, 3) finite LPS points (mm), n >= 1, or ValueError naming ``name``."""
    try:
        points = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise BadInputError(f"{name} must be an (n, 3) array of LPS points in mm.") from err
    if points.ndim == 1 and points.shape == (3,):
        points = points[None, :]
    if points.ndim != 2 or points.shape[1] != 3 or len(points) == 0:
        raise BadInputError(
            f"{name} must have shape (n, 3) with n >= 1 (LPS mm); got shape {points.shape}."
        )
    if not np.all(np.isfinite(points)):
        bad = int(np.argmax(~np.all(np.isfinite(points), axis=1)))
        raise BadInputError(
            f"{name} row {bad} is not finite ({points[bad].tolist()}); remove or fix that point."
        )
    return points


def _unit(value: npt.ArrayLike, name: str) -> npt.NDArray[np.float64]:
    vector = as_point(value, name)
    norm = float(np.linalg.norm(vector))
    if not norm > 1e-12:
        raise BadInputError(f"{name} must be a non-zero LPS direction; got {vector.tolist()}.")
    return vector / norm


def _display_axes(
    normal: npt.NDArray[np.float64], keep_sign: bool = False
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """(right, down, into) unit LPS vectors of the screen for a plane with this normal.

    The plane is shown as the standard view (axial/coronal/sagittal) its normal is
    closest to; with ``keep_sign`` the viewer looks along ``normal`` as given
    (needle's eye), otherwise from that view's usual side. ``right × down = into``,
    so the picture is never mirrored.
    """
    n = normal / np.linalg.norm(normal)
    into_ref, down_ref = _STANDARD_VIEWS[int(np.argmax(np.abs(n)))]
    if not keep_sign and n @ into_ref < 0:
        n = -n
    down = down_ref - (down_ref @ n) * n
    down /= np.linalg.norm(down)
    right = np.cross(down, n)
    return right + 0.0, down + 0.0, n + 0.0
