"""Ray march through the planner's voxel labels (Numba).

Written by hand because no library walks a voxel grid with the exact voxel-by-voxel
traversal (Amanatides & Woo, "A fast voxel traversal algorithm for ray tracing",
Eurographics 1987) while accumulating per-structure lengths, crossings and minima: every
voxel a straight segment touches is visited once, with the length of the segment inside it,
so nothing thinner than the sampling step can be missed and lengths are exact for the
voxelised masks.
"""

from __future__ import annotations

import numba as nb
import numpy as np
import numpy.typing as npt

__all__ = ["march_rays"]

_INF = np.inf


@nb.njit(cache=True, nogil=True)
def _first_step(p: float, d: float, v: int) -> tuple[int, float, float]:
    """Step direction, parameter of the first voxel boundary, parameter per voxel."""
    if d > 0.0:
        return 1, ((v + 0.5) - p) / d, 1.0 / d
    if d < 0.0:
        return -1, ((v - 0.5) - p) / d, -1.0 / d
    return 0, _INF, _INF


@nb.njit(cache=True, nogil=True, inline="always")
def _advance(
    vi: int,
    vj: int,
    vk: int,
    ti: float,
    tj: float,
    tk: float,
    si: int,
    sj: int,
    sk: int,
    di: float,
    dj: float,
    dk: float,
) -> tuple[int, int, int, float, float, float]:
    """Step into the next voxel across the nearest boundary (voxel, next boundary per axis)."""
    if ti <= tj and ti <= tk:
        return vi + si, vj, vk, ti + di, tj, tk
    if tj <= tk:
        return vi, vj + sj, vk, ti, tj + dj, tk
    return vi, vj, vk + sk, ti, tj, tk + dk


@nb.njit(cache=True, nogil=True)
def _far_side(
    labels: npt.NDArray[np.uint32],
    p0: npt.NDArray[np.float64],
    d: npt.NDArray[np.float64],
    lesion_bit: np.uint32,
) -> float:
    """Parameter t (along ``d``) where the lesion run starting at ``p0`` ends; 0 if none."""
    ni, nj, nk = labels.shape
    vi = int(np.floor(p0[0] + 0.5))
    vj = int(np.floor(p0[1] + 0.5))
    vk = int(np.floor(p0[2] + 0.5))
    si, ti, di = _first_step(p0[0], d[0], vi)
    sj, tj, dj = _first_step(p0[1], d[1], vj)
    sk, tk, dk = _first_step(p0[2], d[2], vk)
    t_end = 0.0
    while True:
        if vi < 0 or vj < 0 or vk < 0 or vi >= ni or vj >= nj or vk >= nk:
            return t_end
        if not labels[vi, vj, vk] & lesion_bit:
            return t_end
        t_out = min(ti, tj, tk)
        if t_out == _INF:
            return t_end
        t_end = t_out
        vi, vj, vk, ti, tj, tk = _advance(vi, vj, vk, ti, tj, tk, si, sj, sk, di, dj, dk)


@nb.njit(parallel=True, cache=True, nogil=True)
def march_rays(
    labels: npt.NDArray[np.uint32],
    distances: npt.NDArray[np.uint16],
    spacing: npt.NDArray[np.float64],
    starts: npt.NDArray[np.float64],
    ends: npt.NDArray[np.float64],
    t_candidate: npt.NDArray[np.float64],
    gap_tolerance_t: npt.NDArray[np.float64],
    hard_mask: np.uint32,
    body_bit: np.uint32,
    lung_left_bit: np.uint32,
    lung_right_bit: np.uint32,
    lesion_bit: np.uint32,
    emphysema_bit: np.uint32,
    bulla_bit: np.uint32,
    liver_bit: np.uint32,
    stop_at_hard: bool,
    lobe_shift: int,
    wall_channel: int,
) -> tuple[
    npt.NDArray[np.uint32],
    npt.NDArray[np.float64],
    npt.NDArray[np.bool_],
    npt.NDArray[np.float64],
    npt.NDArray[np.int32],
    npt.NDArray[np.float64],
    npt.NDArray[np.float64],
    npt.NDArray[np.bool_],
    npt.NDArray[np.float64],
    npt.NDArray[np.uint16],
    npt.NDArray[np.float64],
    npt.NDArray[np.int32],
    npt.NDArray[np.uint16],
    npt.NDArray[np.float64],
]:
    """March each ray from its start (the target, voxel index space) outwards to its end.

    Each ray walks every voxel the segment ``starts[n] -> ends[n]`` touches, from the target
    until it leaves the body. Parameters t run from 0 (start) to 1 (end). With
    ``stop_at_hard`` a ray stops at its first hard-structure voxel (it is refused anyway):
    its other outputs are then partial and ``t_exit`` is NaN.

    Returns
    -------
    blocked : uint32 (n,)
        OR of the hard-structure bits met inside the body.
    t_exit : float (n,)
        Where the ray leaves the body (1 if it does not before its end).
    air_gap : bool (n,)
        The ray leaves the body and enters it again before ``t_candidate - gap_tolerance_t``.
    lung_mm : float (n,)
        Length inside aerated lung (lesion voxels excluded).
    crossings : int32 (n,)
        Pleural crossings (lung surface passed; between left and right lung counts two).
    t_pleura : float (n,)
        Parameter of the outermost pleural crossing (-1 if none).
    emphysema_mm : float (n,)
        Length inside emphysema.
    bulla : bool (n,)
        The ray crosses a bulla.
    t_lesion : float (n,)
        End of the lesion run at the start (the lesion's near edge), 0 without a lesion.
    min_distance : uint16 (n, M)
        Smallest distance map value met inside the body (1/100 mm).
    t_far : float (n,)
        How far (in t, backwards from the start) the lesion continues behind the target.
    fissures : int32 (n,)
        Fissure crossings: the lobe (label bits ``lobe_shift`` .. +2, 0 unknown) changes
        between lung voxels of one lung without leaving it.
    wall_min : uint16 (n,)
        Smallest value of distance channel ``wall_channel`` (the bones) met outside the
        lungs after the ray's last lung voxel: the margin to the ribs where the needle
        crosses the chest wall (the whole path when it meets no lung; 65535 without the
        channel).
    liver_mm : float (n,)
        Length of the first run of ``liver_bit`` voxels outside the lesion: the parenchyma
        the needle crosses between the liver capsule and the lesion.
    """
    n = starts.shape[0]
    m = distances.shape[3]
    ni, nj, nk = labels.shape
    blocked = np.zeros(n, dtype=np.uint32)
    t_exit = np.ones(n, dtype=np.float64)
    air_gap = np.zeros(n, dtype=np.bool_)
    lung_mm = np.zeros(n, dtype=np.float64)
    crossings = np.zeros(n, dtype=np.int32)
    t_pleura = np.full(n, -1.0, dtype=np.float64)
    emphysema_mm = np.zeros(n, dtype=np.float64)
    bulla = np.zeros(n, dtype=np.bool_)
    t_lesion = np.zeros(n, dtype=np.float64)
    min_distance = np.full((n, m), 65535, dtype=np.uint16)
    t_far = np.zeros(n, dtype=np.float64)
    fissures = np.zeros(n, dtype=np.int32)
    wall_min = np.full(n, 65535, dtype=np.uint16)
    liver_mm = np.zeros(n, dtype=np.float64)
    lobe_mask = np.uint32(7) << np.uint32(lobe_shift)
    for r in nb.prange(n):
        p0 = starts[r]
        d = ends[r] - p0
        length = np.sqrt(
            (d[0] * spacing[0]) ** 2 + (d[1] * spacing[1]) ** 2 + (d[2] * spacing[2]) ** 2
        )
        t_far[r] = _far_side(labels, p0, -d, lesion_bit)
        vi = int(np.floor(p0[0] + 0.5))
        vj = int(np.floor(p0[1] + 0.5))
        vk = int(np.floor(p0[2] + 0.5))
        si, ti, di = _first_step(p0[0], d[0], vi)
        sj, tj, dj = _first_step(p0[1], d[1], vj)
        sk, tk, dk = _first_step(p0[2], d[2], vk)
        t_in = 0.0
        state = -1  # lung side of the previous non-lesion voxel: 0 none, 1 left, 2 right
        lobe = 0  # lobe of the previous lung voxel of this run in one lung (0: none yet)
        in_lesion_run = True
        liver_run = 0  # 0: no liver voxel yet, 1: in the first liver run, 2: past it
        exited = False
        limit = t_candidate[r] - gap_tolerance_t[r]
        while True:
            t_out = min(ti, tj, tk)
            inside = 0 <= vi < ni and 0 <= vj < nj and 0 <= vk < nk
            lab = labels[vi, vj, vk] if inside else np.uint32(0)
            if not lab & body_bit:
                if not exited:
                    exited = True
                    t_exit[r] = t_in
                if t_in >= limit or not inside:
                    break
            elif exited:
                if t_in < limit:
                    air_gap[r] = True
                break
            else:
                seg = (min(t_out, 1.0) - t_in) * length
                if lab & lesion_bit:
                    if in_lesion_run:
                        t_lesion[r] = min(t_out, 1.0)
                else:
                    in_lesion_run = False
                    blocked[r] |= lab & hard_mask
                    if stop_at_hard and blocked[r]:
                        t_exit[r] = np.nan
                        break
                    side = 1 if lab & lung_left_bit else (2 if lab & lung_right_bit else 0)
                    if state >= 0 and side != state:
                        crossings[r] += 1 if (side == 0 or state == 0) else 2
                        if state != 0:
                            t_pleura[r] = t_in
                    if side != state:
                        lobe = 0
                    state = side
                    if side != 0:
                        lung_mm[r] += seg
                        code = int((lab & lobe_mask) >> np.uint32(lobe_shift))
                        if code != 0:
                            if lobe != 0 and code != lobe:
                                fissures[r] += 1
                            lobe = code
                        wall_min[r] = 65535  # the chest wall begins after the last lung voxel
                    elif wall_channel >= 0:
                        value = distances[vi, vj, vk, wall_channel]
                        if value < wall_min[r]:
                            wall_min[r] = value
                    if lab & emphysema_bit:
                        emphysema_mm[r] += seg
                    if lab & bulla_bit:
                        bulla[r] = True
                    if lab & liver_bit:
                        if liver_run == 0:
                            liver_run = 1
                        if liver_run == 1:
                            liver_mm[r] += seg
                    elif liver_run == 1:
                        liver_run = 2
                for q in range(m):
                    value = distances[vi, vj, vk, q]
                    if value < min_distance[r, q]:
                        min_distance[r, q] = value
            if t_out >= 1.0:
                break
            t_in = t_out
            vi, vj, vk, ti, tj, tk = _advance(vi, vj, vk, ti, tj, tk, si, sj, sk, di, dj, dk)
    return (
        blocked,
        t_exit,
        air_gap,
        lung_mm,
        crossings,
        t_pleura,
        emphysema_mm,
        bulla,
        t_lesion,
        min_distance,
        t_far,
        fissures,
        wall_min,
        liver_mm,
    )
