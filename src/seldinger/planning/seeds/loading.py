"""Choosing loaded seed positions against dose-volume goals (Numba): greedy, then annealing.

Greedy start: add the candidate that raises the prescription-capped PTV dose most (organ
limits kept) until V100 and D90 hold, then unload seeds not needed. The annealing then
improves that loading. The loading is a set of loaded candidate positions. Its cost, in "seeds" as the unit, is

    E = W_HARD  · (V100 shortfall % + D90 shortfall % + organ points over their limit %)
      + W_V150  · (V150 above its limit, %)
      + W_SEED  · seeds + W_NEEDLE · needles
      + W_HOT   · V150 %  + W_SHELL · (normal-tissue shell at >= prescription, %)

where every "%" is a fraction of the sample points of the PTV (or shell, or organ) that
reach a dose threshold, counted exactly. D90 >= f·Rx is the same statement as "at least
90 % of the PTV gets f·Rx", so every goal is a count of points over a threshold and a move's
change in cost is one pass over the points. Moves: shift a loaded seed to a nearby
candidate (the common fine move), swap it with any unloaded candidate, remove one, add one.
Metropolis acceptance with geometric cooling; the best loading seen is returned.

This is the method of Pouliot et al. (Med Phys 1996, "Optimization of permanent 125I
prostate implants using fast simulated annealing") and of IPSA (Lessard & Pouliot, Med Phys
2001) with dose-volume counts in place of their penalty sums. Written here because no
library optimises a binary loading against dose-volume counts; SciPy's MILP would need one
binary per sample point for each DVH goal (thousands), far slower than this kernel.
"""

# Numba's nopython mode has only the legacy np.random API; its state is per thread, seeded
# at the start of each run, so a run is reproducible whatever else runs beside it.
# ruff: noqa: NPY002

from __future__ import annotations

from dataclasses import dataclass

import numba as nb
import numpy as np
import numpy.typing as npt

from seldinger.errors import BadInputError

__all__ = ["AnnealWeights", "anneal_loading", "greedy_loading", "loading_cost"]


@dataclass(frozen=True)
class AnnealWeights:
    """Cost weights, in seeds: what one unit of each term is worth against one seed."""

    hard_per_percent: float = 1000.0  # V100 / D90 / organ shortfall: effectively hard
    v150_excess_per_percent: float = 20.0  # V150 above its goal
    seed: float = 1.0
    needle: float = 2.0  # a needle is a pleural (or capsular) puncture
    hot_per_percent: float = 0.02  # V150 below its goal: homogeneity, a tie-breaker
    shell_per_percent: float = 0.02  # normal tissue at >= Rx: conformity, a tie-breaker


@nb.njit(cache=True, nogil=True)
def _count_ge(dose: npt.NDArray[np.float64], thr: float) -> int:
    c = 0
    for i in range(dose.size):
        if dose[i] >= thr:
            c += 1
    return c


@nb.njit(cache=True, nogil=True)
def _greedy(
    d_ptv: npt.NDArray[np.float32],
    d_oar: npt.NDArray[np.float32],
    owner: npt.NDArray[np.int64],
    new_needle_factor: float,
    oar_limit: npt.NDArray[np.float64],
    thr: npt.NDArray[np.float64],
    need: npt.NDArray[np.float64],
) -> npt.NDArray[np.bool_]:
    m, n = d_ptv.shape
    n_oar = d_oar.shape[1]
    rx, rx90 = thr[0], thr[1]
    dose = np.zeros(n)
    doar = np.zeros(n_oar)
    loaded = np.zeros(m, dtype=np.bool_)
    used = np.zeros(owner.max() + 1 if m else 1, dtype=np.bool_)
    order = np.empty(m, dtype=np.int64)
    n_loaded = 0
    while _count_ge(dose, rx) < need[0] or _count_ge(dose, rx90) < need[1]:
        best = -1
        best_gain = 0.0
        for j in range(m):
            if loaded[j]:
                continue
            fits = True
            for i in range(n_oar):
                if doar[i] + d_oar[j, i] > oar_limit[i]:
                    fits = False
                    break
            if not fits:
                continue
            gain = 0.0
            for i in range(n):
                if dose[i] < rx:
                    gain += min(dose[i] + d_ptv[j, i], rx) - dose[i]
            if not used[owner[j]]:
                gain *= new_needle_factor
            if gain > best_gain:
                best_gain = gain
                best = j
        if best < 0:
            loaded[:] = False
            return loaded  # goals out of reach: nothing loaded
        loaded[best] = True
        used[owner[best]] = True
        order[n_loaded] = best
        n_loaded += 1
        dose += d_ptv[best]
        doar += d_oar[best]
    # Unload what is not needed, the seed adding most dose first.
    total = np.zeros(n_loaded)
    for q in range(n_loaded):
        total[q] = d_ptv[order[q]].sum()
    for q in np.argsort(-total):
        j = order[q]
        trial = dose - d_ptv[j]
        if _count_ge(trial, rx) >= need[0] and _count_ge(trial, rx90) >= need[1]:
            dose = trial
            loaded[j] = False
    return loaded


@nb.njit(cache=True, nogil=True)
def _cost(
    c100: int,
    c90: int,
    c150: int,
    cshell: int,
    cviol: int,
    nseeds: int,
    nneedles: int,
    need100: float,
    need90: float,
    allow150: float,
    pct_ptv: float,
    pct_shell: float,
    pct_oar: float,
    w: npt.NDArray[np.float64],
) -> float:
    short = max(0.0, need100 - c100) * pct_ptv + max(0.0, need90 - c90) * pct_ptv
    short += cviol * pct_oar
    excess = max(0.0, c150 - allow150) * pct_ptv
    return (
        w[0] * short
        + w[1] * excess
        + w[2] * nseeds
        + w[3] * nneedles
        + w[4] * c150 * pct_ptv
        + w[5] * cshell * pct_shell
    )


@nb.njit(cache=True, nogil=True)
def _anneal(
    d_ptv: npt.NDArray[np.float32],  # (m, n_ptv) Gy per loaded candidate
    d_shell: npt.NDArray[np.float32],  # (m, n_shell)
    d_oar: npt.NDArray[np.float32],  # (m, n_oar)
    oar_limit: npt.NDArray[np.float64],  # (n_oar,)
    owner: npt.NDArray[np.int64],  # (m,) needle of each candidate
    n_needles: int,
    nbr_ptr: npt.NDArray[np.int64],
    nbr_idx: npt.NDArray[np.int64],
    loaded0: npt.NDArray[np.bool_],
    thr: npt.NDArray[np.float64],  # rx, f*rx (D90), 1.5 rx
    need: npt.NDArray[np.float64],  # need100, need90, allow150 (point counts)
    w: npt.NDArray[np.float64],
    iterations: int,
    t_start: float,
    t_end: float,
    seed: int,
) -> npt.NDArray[np.bool_]:
    np.random.seed(seed)
    m, n_ptv = d_ptv.shape
    n_shell = d_shell.shape[1]
    n_oar = d_oar.shape[1]
    pct_ptv = 100.0 / max(n_ptv, 1)
    pct_shell = 100.0 / max(n_shell, 1)
    pct_oar = 100.0 / max(n_oar, 1)
    rx, rx90, rx150 = thr[0], thr[1], thr[2]
    loaded = loaded0.copy()
    dose = np.zeros(n_ptv)
    dshell = np.zeros(n_shell)
    doar = np.zeros(n_oar)
    per_needle = np.zeros(n_needles, dtype=np.int64)
    nseeds = 0
    for j in range(m):
        if loaded[j]:
            dose += d_ptv[j]
            dshell += d_shell[j]
            doar += d_oar[j]
            per_needle[owner[j]] += 1
            nseeds += 1
    nneedles = 0
    for k in range(n_needles):
        if per_needle[k] > 0:
            nneedles += 1
    c100 = _count_ge(dose, rx)
    c90 = _count_ge(dose, rx90)
    c150 = _count_ge(dose, rx150)
    cshell = _count_ge(dshell, rx)
    cviol = 0
    for i in range(n_oar):
        if doar[i] > oar_limit[i]:
            cviol += 1
    e = _cost(
        c100,
        c90,
        c150,
        cshell,
        cviol,
        nseeds,
        nneedles,
        need[0],
        need[1],
        need[2],
        pct_ptv,
        pct_shell,
        pct_oar,
        w,
    )
    best = loaded.copy()
    best_e = e
    loaded_list = np.empty(m, dtype=np.int64)
    cool = (t_end / t_start) ** (1.0 / max(iterations - 1, 1))
    t = t_start
    for _ in range(iterations):
        t *= cool
        nl = 0
        for j in range(m):
            if loaded[j]:
                loaded_list[nl] = j
                nl += 1
        # Choose a move: remove j (a >= 0), add k (b >= 0), or both (a shift or swap).
        r = np.random.random()
        a = -1
        b = -1
        if nl > 0 and r < 0.45:  # shift to a neighbour
            a = loaded_list[np.random.randint(nl)]
            cnt = nbr_ptr[a + 1] - nbr_ptr[a]
            # A few tries for a neighbour on a needle already in use (fewer needles).
            for _try in range(4):
                if cnt == 0:
                    break
                b = nbr_idx[nbr_ptr[a] + np.random.randint(cnt)]
                if per_needle[owner[b]] - (1 if owner[b] == owner[a] else 0) > 0:
                    break
        elif nl > 0 and r < 0.6:  # swap with any candidate
            a = loaded_list[np.random.randint(nl)]
            b = np.random.randint(m)
        elif nl > 0 and r < 0.8:  # remove
            a = loaded_list[np.random.randint(nl)]
        else:  # add
            b = np.random.randint(m)
        if b >= 0 and loaded[b]:
            continue
        if a < 0 and b < 0:
            continue
        n100 = 0
        n90 = 0
        n150 = 0
        for i in range(n_ptv):
            v = dose[i]
            if a >= 0:
                v -= d_ptv[a, i]
            if b >= 0:
                v += d_ptv[b, i]
            if v >= rx:
                n100 += 1
            if v >= rx90:
                n90 += 1
            if v >= rx150:
                n150 += 1
        ns = 0
        for i in range(n_shell):
            v = dshell[i]
            if a >= 0:
                v -= d_shell[a, i]
            if b >= 0:
                v += d_shell[b, i]
            if v >= rx:
                ns += 1
        nv = 0
        for i in range(n_oar):
            v = doar[i]
            if a >= 0:
                v -= d_oar[a, i]
            if b >= 0:
                v += d_oar[b, i]
            if v > oar_limit[i]:
                nv += 1
        seeds_new = nseeds - (1 if a >= 0 else 0) + (1 if b >= 0 else 0)
        needles_new = nneedles
        if a >= 0 and per_needle[owner[a]] == 1 and not (b >= 0 and owner[b] == owner[a]):
            needles_new -= 1
        if b >= 0 and per_needle[owner[b]] == 0:
            needles_new += 1
        e_new = _cost(
            n100,
            n90,
            n150,
            ns,
            nv,
            seeds_new,
            needles_new,
            need[0],
            need[1],
            need[2],
            pct_ptv,
            pct_shell,
            pct_oar,
            w,
        )
        de = e_new - e
        if de <= 0.0 or np.random.random() < np.exp(-de / t):
            if a >= 0:
                loaded[a] = False
                per_needle[owner[a]] -= 1
                dose -= d_ptv[a]
                dshell -= d_shell[a]
                doar -= d_oar[a]
            if b >= 0:
                loaded[b] = True
                per_needle[owner[b]] += 1
                dose += d_ptv[b]
                dshell += d_shell[b]
                doar += d_oar[b]
            c100, c90, c150, cshell, cviol = n100, n90, n150, ns, nv
            nseeds, nneedles, e = seeds_new, needles_new, e_new
            if e < best_e - 1e-12:
                best_e = e
                best[:] = loaded
    return best


def _neighbours(
    pos: npt.NDArray[np.float64], radius_mm: float
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """CSR lists of the candidates within ``radius_mm`` of each candidate (itself excluded)."""
    from scipy.spatial import cKDTree

    lists = cKDTree(pos).query_ball_point(pos, radius_mm)
    ptr = np.zeros(len(pos) + 1, dtype=np.int64)
    idx: list[int] = []
    for j, near in enumerate(lists):
        others = [k for k in near if k != j]
        idx.extend(others)
        ptr[j + 1] = ptr[j] + len(others)
    return ptr, np.asarray(idx, dtype=np.int64)


def _weights(w: AnnealWeights) -> npt.NDArray[np.float64]:
    return np.array(
        [
            w.hard_per_percent,
            w.v150_excess_per_percent,
            w.seed,
            w.needle,
            w.hot_per_percent,
            w.shell_per_percent,
        ]
    )


def _thresholds(
    n_ptv: int, rx_gy: float, d90_fraction: float, v100_min_percent: float, v150_max_percent: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    thr = np.array([rx_gy, d90_fraction * rx_gy, 1.5 * rx_gy])
    need = np.array(
        [
            np.ceil(min(v100_min_percent, 100.0) / 100.0 * n_ptv - 1e-9),
            np.ceil(0.9 * n_ptv - 1e-9),
            np.floor(v150_max_percent / 100.0 * n_ptv + 1e-9),
        ]
    )
    return thr, need


def loading_cost(
    loaded: npt.NDArray[np.bool_],
    d_ptv: npt.NDArray[np.float32],
    d_shell: npt.NDArray[np.float32],
    d_oar: npt.NDArray[np.float32],
    oar_limit: npt.NDArray[np.float64],
    owner: npt.NDArray[np.int64],
    rx_gy: float,
    d90_fraction: float,
    v100_min_percent: float,
    v150_max_percent: float,
    weights: AnnealWeights = AnnealWeights(),
) -> float:
    """The annealing cost of a loading (same units: seeds); arrays as in :func:`anneal_loading`."""
    n_ptv = d_ptv.shape[1]
    thr, need = _thresholds(n_ptv, rx_gy, d90_fraction, v100_min_percent, v150_max_percent)
    dose = d_ptv[loaded].sum(axis=0, dtype=np.float64)
    shell = d_shell[loaded].sum(axis=0, dtype=np.float64)
    oar = d_oar[loaded].sum(axis=0, dtype=np.float64)
    return float(
        _cost(
            int(np.count_nonzero(dose >= thr[0])),
            int(np.count_nonzero(dose >= thr[1])),
            int(np.count_nonzero(dose >= thr[2])),
            int(np.count_nonzero(shell >= thr[0])),
            int(np.count_nonzero(oar > oar_limit)),
            int(loaded.sum()),
            len(set(owner[loaded].tolist())),
            float(need[0]),
            float(need[1]),
            float(need[2]),
            100.0 / max(n_ptv, 1),
            100.0 / max(d_shell.shape[1], 1),
            100.0 / max(d_oar.shape[1], 1),
            _weights(weights),
        )
    )


def greedy_loading(
    d_ptv: npt.NDArray[np.float32],
    d_oar: npt.NDArray[np.float32],
    oar_limit: npt.NDArray[np.float64],
    owner: npt.NDArray[np.int64],
    rx_gy: float,
    d90_fraction: float,
    v100_min_percent: float,
    new_needle_factor: float = 0.8,
) -> npt.NDArray[np.bool_] | None:
    """Greedy loading meeting V100 and D90 with no organ point over its limit, or None.

    ``d_ptv`` and ``d_oar`` are (candidates, points) dose in Gy from each candidate alone;
    ``owner`` the needle of each candidate: a seed on a needle not yet used counts
    ``new_needle_factor`` of its gain, so loadings share needles.
    """
    m = d_ptv.shape[0]
    thr, need = _thresholds(d_ptv.shape[1], rx_gy, d90_fraction, v100_min_percent, 100.0)
    loaded = _greedy(
        np.ascontiguousarray(d_ptv, dtype=np.float32),
        np.ascontiguousarray(d_oar, dtype=np.float32).reshape(m, -1),
        np.ascontiguousarray(owner, dtype=np.int64),
        float(new_needle_factor),
        np.ascontiguousarray(oar_limit, dtype=np.float64),
        thr,
        need,
    )
    return loaded if loaded.any() else None


def anneal_loading(
    loaded: npt.NDArray[np.bool_],
    d_ptv: npt.NDArray[np.float32],
    d_shell: npt.NDArray[np.float32],
    d_oar: npt.NDArray[np.float32],
    oar_limit: npt.NDArray[np.float64],
    owner: npt.NDArray[np.int64],
    positions_mm: npt.NDArray[np.float64],
    rx_gy: float,
    d90_fraction: float,
    v100_min_percent: float,
    v150_max_percent: float,
    iterations: int = 60_000,
    seed: int = 0,
    weights: AnnealWeights = AnnealWeights(),
    neighbour_mm: float = 7.5,
) -> npt.NDArray[np.bool_]:
    """Improve a loading by simulated annealing; returns the best loading seen.

    Parameters
    ----------
    loaded : bool array (m,)
        Starting loading (e.g. the greedy one).
    d_ptv, d_shell, d_oar : arrays (m, n_*)
        Dose at the PTV, normal-tissue shell and organ sample points from each candidate
        loaded alone (float32; any unit, e.g. Gy per U, with the dose thresholds and
        ``oar_limit`` in the same unit). Rows are candidates.
    oar_limit : array (n_oar,)
        Dose limit (Gy) of each organ point.
    owner : int array (m,)
        Needle of each candidate (needles counted for the cost).
    positions_mm : array (m, 3)
        Candidate positions: shifts move a seed to a candidate within ``neighbour_mm``.
    """
    m = d_ptv.shape[0]
    if loaded.shape != (m,):
        raise BadInputError(f"loaded must have one flag per candidate ({m}); got {loaded.shape}.")
    thr, need = _thresholds(d_ptv.shape[1], rx_gy, d90_fraction, v100_min_percent, v150_max_percent)
    ptr, idx = _neighbours(positions_mm, neighbour_mm)
    owner = np.ascontiguousarray(owner, dtype=np.int64)
    n_needles = int(owner.max()) + 1 if owner.size else 0
    # Annealing temperature in seeds: early on a move costing ~2 seeds is often taken.
    return np.asarray(
        _anneal(
            np.ascontiguousarray(d_ptv, dtype=np.float32),
            np.ascontiguousarray(d_shell, dtype=np.float32).reshape(m, -1),
            np.ascontiguousarray(d_oar, dtype=np.float32).reshape(m, -1),
            np.ascontiguousarray(oar_limit, dtype=np.float64),
            owner,
            n_needles,
            ptr,
            idx,
            np.ascontiguousarray(loaded, dtype=np.bool_),
            thr,
            need,
            _weights(weights),
            int(iterations),
            2.0,
            0.01,
            int(seed),
        ),
        dtype=bool,
    )
