"""Sub-voxel surfaces of binary masks on anisotropic grids, and distances to them.

A mask's surface is rebuilt between the voxel centres (in mm, in the mask's array frame):

1. **Initial mesh.** The mask is blurred by a Gaussian of ``SMOOTHING_VOXELS`` voxels per
   axis and its 0.5 level set taken by marching cubes (``spacing`` in mm). The curvature
   shrinkage of a blurred level set, ``½ tr(K Σ_t)`` (K the shape operator, Σ_t the blur
   covariance given no displacement along the normal; ``σ²/R`` for a sphere), is added
   back along the normal, K read from finite differences of the blurred field.
2. **Slice contours.** Across the thickest axis every slice is an exact cross-section of
   the true surface, known to in-plane resolution: its 0.5 contour (marching squares
   after an in-plane-only blur, corrected for its 2-D curvature shrinkage the same way)
   gives sub-pixel surface points on each slice plane. These carry what a local blur
   cannot: where a cap beyond the last slice ends (the shrinking of the last contours).
3. **Local sphere fits.** Around each vertex (one fit per cell of 2 × 2 voxels by half a
   slice) an algebraic sphere ``a0 + a·x + a4|x|² = 0`` is fitted, Pratt-normalised, to
   the 32 nearest contour points on each of the 4 nearest occupied slices (Gaussian
   weights), and the vertex is projected onto it: algebraic point-set surfaces
   (Guennebaud & Gross, SIGGRAPH 2007). A projection that leaves the cells whose voxel
   centres straddle the mask (where the true surface must pass) is refused, which keeps
   flat tops, where no fit can know the height, at the half-voxel of step 1.
4. **Subdivision.** Each triangle is split in four and each edge midpoint projected on the
   mean of its ends' spheres, so that chords lie within ~0.05 mm of the surface.
Measured on voxelised spheres (voxel centre inside) of radius 5-20 mm on a 0.7 x 0.7 x
2.5 mm grid: surface points within 0.15 mm of the true sphere
(``tests/planning/test_margin.py``). Where a surface is flat and parallel to the slices
the masks do not say where between the last occupied and the first empty slice it lies:
it is put halfway (up to half a slice off).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.measure import find_contours, marching_cubes

from seldinger.errors import BadInputError

FloatArray = npt.NDArray[np.float64]

#: Gaussian blur (standard deviation) along each array axis, in voxels, before the 0.5
#: level set of the initial mesh is taken (step 1).
SMOOTHING_VOXELS = 1.0
_NEAREST_TRIANGLES = 16  # triangles (nearest centroids to the foot) searched per point
_FOOT_ITERATIONS = 2


def _sigma_mm(spacing: FloatArray) -> FloatArray:
    return SMOOTHING_VOXELS * spacing


def pad_voxels(spacing: FloatArray) -> npt.NDArray[np.int64]:
    # the blur is truncated at 4 standard deviations; the 0.5 level lies well inside that
    return np.ceil(4.0 * _sigma_mm(spacing) / spacing).astype(np.int64) + 2


def mask_surface(mask: npt.NDArray[np.bool_], spacing: FloatArray, start: FloatArray) -> _Mesh:
    """Curvature-corrected 0.5 level set of the blurred mask: verts (box mm), faces, normals."""
    voxels = mask.sum()
    for scale in (1.0, 0.5, 0.0):
        sigma_mm = scale * _sigma_mm(spacing)
        sigma_vox = float(scale)
        field = mask.astype(np.float32)
        if scale > 0:
            field = ndimage.gaussian_filter(
                field, tuple(sigma_mm / spacing), mode="constant", truncate=4.0
            )
        if field.max() <= 0.5:
            continue
        verts, faces, _, _ = marching_cubes(field, level=0.5, spacing=tuple(spacing))
        verts = verts.astype(np.float64)
        faces = faces.astype(np.int64)
        volume = surface_flux(verts - verts.mean(axis=0), faces, np.full(len(verts), -1.0))
        if volume < 0:  # make the winding counter-clockwise from outside
            faces = faces[:, ::-1]
            volume = -volume
        if sigma_vox > 0 and volume < 0.5 * voxels * np.prod(spacing):
            continue  # blur ate a thin or tiny part: retry with less
        normals, shift = _normals_and_shift(field, verts / spacing, spacing, sigma_mm)
        verts = verts + shift[:, None] * normals
        # one fit per anchor cell (2 × 2 voxels in-plane, half a slice across, on the
        # volume's grid so that every crop gives the same cells): the vertices of a
        # cell share their mean's sphere
        cell_mm = spacing * np.where(spacing == spacing.max(), 0.5, 2.0)
        _, cell, members = np.unique(
            np.floor((verts + start * spacing) / cell_mm).astype(np.int64),
            axis=0,
            return_inverse=True,
            return_counts=True,
        )
        cell = cell.ravel()
        anchors = np.zeros((len(members), 3))
        np.add.at(anchors, cell, verts)
        anchor_normals = np.zeros((len(members), 3))
        np.add.at(anchor_normals, cell, normals)
        spheres = _fit_slice_spheres(mask, anchors / members[:, None], anchor_normals, spacing)[
            cell
        ]
        verts = _project(verts, spheres, mask, spacing)
        n_coarse = len(verts)
        verts, faces, edges = _subdivide(verts, faces)
        verts[n_coarse:] = _project(
            verts[n_coarse:], 0.5 * (spheres[edges[:, 0]] + spheres[edges[:, 1]]), mask, spacing
        )
        normals = _face_to_vertex_normals(verts, faces)
        return _Mesh(verts, faces, normals, n_coarse, edges, field, spacing)
    raise BadInputError("mask has no surface (unreachable for a non-empty mask).")


def _normals_and_shift(
    field: npt.NDArray[np.float32],
    index: FloatArray,
    spacing: FloatArray,
    sigma_mm: FloatArray,
    axes: tuple[int, ...] = (0, 1, 2),
) -> tuple[FloatArray, FloatArray]:
    """Outward unit normals and the outward shift ½ tr(K Σ_t) at points (voxel index).

    Derivatives are taken along ``axes`` only (the others get zero gradient and
    Hessian: a field blurred within slices only).
    """
    eye = np.zeros((3, 3))
    for a in axes:
        eye[a, a] = 1.0

    def at(offset: FloatArray) -> FloatArray:
        return ndimage.map_coordinates(field, (index + offset).T, order=1, mode="nearest")

    f0 = at(np.zeros(3))
    plus = [at(eye[a]) for a in range(3)]
    minus = [at(-eye[a]) for a in range(3)]
    grad = np.stack([(plus[a] - minus[a]) / (2 * spacing[a]) for a in range(3)], axis=1)
    grad[:, [a for a in range(3) if a not in axes]] = 0.0
    norm = np.linalg.norm(grad, axis=1)
    norm = np.where(norm > 0, norm, 1.0)
    normals = -grad / norm[:, None]  # the field falls outward
    if not np.any(sigma_mm > 0):
        return normals, np.zeros(len(index))
    hess = np.zeros((len(index), 3, 3))
    for a in axes:
        hess[:, a, a] = (plus[a] - 2 * f0 + minus[a]) / spacing[a] ** 2
        for b in axes:
            if b <= a:
                continue
            pp, pm = at(eye[a] + eye[b]), at(eye[a] - eye[b])
            mp, mm = at(-eye[a] + eye[b]), at(-eye[a] - eye[b])
            hess[:, a, b] = hess[:, b, a] = (pp - pm - mp + mm) / (4 * spacing[a] * spacing[b])
    sigma2 = sigma_mm**2  # Σ = diag(σ_a²) in mm²
    sn = normals * sigma2  # Σ n
    nsn = np.maximum(np.einsum("ij,ij->i", normals, sn), 1e-12)
    # tr(H Σ_t) with Σ_t = Σ − (Σn)(Σn)ᵀ / (nᵀΣn)
    trace = np.einsum("iaa,a->i", hess, sigma2) - np.einsum("ia,iab,ib->i", sn, hess, sn) / nsn
    shift = -0.5 * trace / norm
    # second-order formula: keep it where it is small against the blur itself
    limit = np.sqrt(nsn)
    return normals, np.clip(shift, -limit, limit)


@dataclass(frozen=True, eq=False)
class _Mesh:
    """A closed, outward-wound triangle mesh in box mm, with search trees."""

    verts: FloatArray  # (n, 3): the n_coarse marching-cubes vertices first, then midpoints
    faces: npt.NDArray[np.int64]
    normals: FloatArray
    n_coarse: int
    edges: npt.NDArray[np.int64]  # vertex pair of each midpoint, in order
    field: npt.NDArray[np.float32]  # the blurred mask (> 0.5 inside), on the box grid
    spacing: FloatArray

    @cached_property
    def coarse_tree(self) -> cKDTree:
        return cKDTree(self.verts[: self.n_coarse])

    @cached_property
    def centroid_tree(self) -> cKDTree:
        return cKDTree(self.verts[self.faces].mean(axis=1))

    def mesh_distance(self, other: _Mesh) -> FloatArray:
        """Signed distance of every vertex to ``other``: exact at the marching-cubes
        vertices, the mean of its edge's ends at each midpoint."""
        coarse = signed_distance(self.verts[: self.n_coarse], other)
        return np.concatenate([coarse, 0.5 * (coarse[self.edges[:, 0]] + coarse[self.edges[:, 1]])])


def _subdivide(
    verts: FloatArray, faces: npt.NDArray[np.int64]
) -> tuple[FloatArray, npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Split every triangle into four at its edge midpoints (orientation kept).

    Returns the vertices (old ones first, then one midpoint per edge), the faces and the
    edges (vertex pairs) in the order of their midpoints.
    """
    pairs = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]]), axis=1)
    keys, inverse = np.unique(pairs[:, 0] * len(verts) + pairs[:, 1], return_inverse=True)
    edges = np.stack([keys // len(verts), keys % len(verts)], axis=1)
    mid = len(verts) + inverse.reshape(3, -1).T  # (m, 3): midpoints of ab, bc, ca
    a, b, c = faces.T
    ab, bc, ca = mid.T
    new_faces = np.concatenate(
        [
            np.stack([a, ab, ca], axis=1),
            np.stack([ab, b, bc], axis=1),
            np.stack([ca, bc, c], axis=1),
            np.stack([ab, bc, ca], axis=1),
        ]
    )
    new_verts = np.concatenate([verts, 0.5 * (verts[edges[:, 0]] + verts[edges[:, 1]])])
    return new_verts, new_faces, edges


_MIXED_SLACK_MM = 0.2  # tolerance of the mask-consistency check on a projected point
_SLICES = 4  # occupied slices whose contours are fitted around a vertex
_PER_SLICE = 32  # contour points taken from each nearby slice


def _slice_contours(
    mask: npt.NDArray[np.bool_], spacing: FloatArray, axis: int
) -> tuple[FloatArray, npt.NDArray[np.int64]]:
    """Sub-pixel contour points of every slice across ``axis`` (box mm) and their slice."""
    sigma_mm = _sigma_mm(spacing).copy()
    sigma_mm[axis] = 0.0
    field = ndimage.gaussian_filter(
        mask.astype(np.float32), tuple(sigma_mm / spacing), mode="constant", truncate=4.0
    )
    inplane = tuple(a for a in range(3) if a != axis)
    points, slices = [], []
    for k in np.flatnonzero(np.any(mask, axis=inplane)):
        for line in find_contours(np.take(field, k, axis=axis), 0.5):
            ijk = np.insert(line[:-1], axis, float(k), axis=1)
            points.append(ijk)
            slices.append(np.full(len(ijk), k))
    if not points:
        return np.empty((0, 3)), np.empty(0, dtype=np.int64)
    index = np.concatenate(points)
    normals, shift = _normals_and_shift(field, index, spacing, sigma_mm, inplane)
    return index * spacing + shift[:, None] * normals, np.concatenate(slices)


def _fit_slice_spheres(
    mask: npt.NDArray[np.bool_], verts: FloatArray, normals: FloatArray, spacing: FloatArray
) -> FloatArray:
    """Algebraic sphere fitted to the slice contours around each vertex.

    Returns ``(a0, ax, ay, az, a4)`` per vertex, the sphere (or plane) being
    ``a0 + a·x + a4 |x|² = 0`` in box mm, scaled so that ``|a|² − 4 a0 a4 = 1`` (unit
    gradient on the surface: Pratt's normalisation) and signed to increase along
    ``normals`` (outward), so that neighbouring fits can be averaged. Rows of NaN: no
    usable fit.
    """
    axis = int(np.argmax(spacing))
    points, slice_of = _slice_contours(mask, spacing, axis)
    if len(points) == 0:
        return np.full((len(verts), 5), np.nan)
    h = spacing[axis]
    present = np.unique(slice_of)
    # the four occupied slices nearest each vertex (two either side where there are)
    window = min(_SLICES, len(present))
    position = np.searchsorted(present, verts[:, axis] / h)
    first = np.clip(position - window // 2, 0, len(present) - window)
    neighbours = np.full((len(verts), _SLICES * _PER_SLICE), -1, dtype=np.int64)
    for n, k in enumerate(present):
        members = np.flatnonzero(slice_of == k)
        column = n - first
        rows = np.flatnonzero((column >= 0) & (column < window))
        if len(rows) == 0:
            continue
        m = min(_PER_SLICE, len(members))
        _, nearest = cKDTree(points[members]).query(verts[rows], k=m, workers=-1)
        nearest = np.asarray(nearest).reshape(len(rows), m)
        cols = column[rows, None] * _PER_SLICE + np.arange(m)
        neighbours[rows[:, None], cols] = members[nearest]
    valid = neighbours >= 0
    # local coordinates (float32: the fit is scale-free there), rows [1, x, y, z, |x|²]
    rows5 = np.empty((*neighbours.shape, 5), dtype=np.float32)
    rows5[..., 0] = 1.0
    rows5[..., 1:4] = points[np.maximum(neighbours, 0)] - verts[:, None, :]
    d2 = np.einsum("ijk,ijk->ij", rows5[..., 1:4], rows5[..., 1:4])
    scale = np.sqrt(np.max(np.where(valid, d2, 0.0), axis=1)).astype(np.float64) + 1e-9
    rows5[..., 1:4] /= scale[:, None, None].astype(np.float32)
    rows5[..., 4] = d2 / (scale**2)[:, None].astype(np.float32)
    weight = np.where(valid, np.exp(-rows5[..., 4]), np.float32(0.0))
    moment = np.matmul((rows5 * weight[..., None]).transpose(0, 2, 1), rows5).astype(np.float64)
    # Pratt normalisation |u_lin|² − 4 u0 u4 = 1 (unit gradient on the sphere)
    pratt = np.diag([0.0, 1.0, 1.0, 1.0, 0.0])
    pratt[0, 4] = pratt[4, 0] = -2.0
    # M u = η B u  <=>  (M^-½ B M^-½) w = w / η with w = M^½ u: the smallest
    # non-negative η is the largest eigenvalue of a symmetric 5×5 matrix
    # (robust to rank-deficient M: eigenvalues clipped before the inverse square root)
    m_values, m_vectors = np.linalg.eigh(moment)
    floor = 1e-10 * np.maximum(m_values[:, -1:], 1e-300)
    inv_sqrt = (m_vectors / np.sqrt(np.maximum(m_values, floor))[:, None, :]) @ m_vectors.transpose(
        0, 2, 1
    )
    values, vectors = np.linalg.eigh(inv_sqrt @ pratt @ inv_sqrt)
    u = np.einsum("iab,ib->ia", inv_sqrt, vectors[:, :, -1])
    pratt_norm = np.einsum("ij,ij->i", u[:, 1:4], u[:, 1:4]) - 4 * u[:, 0] * u[:, 4]
    good = (values[:, -1] > 0) & (pratt_norm > 1e-12)
    good &= valid.sum(axis=1) >= 8
    u = u / np.sqrt(np.where(good, pratt_norm, 1.0))[:, None]
    u *= np.where(np.einsum("ij,ij->i", u[:, 1:4], normals) < 0, -1.0, 1.0)[:, None]
    # back from local coordinates x_l = (x − v) / s to box mm
    s_ = scale[:, None]
    u0, lin, u4 = u[:, :1], u[:, 1:4], u[:, 4:]
    a4 = u4 / s_**2
    a = lin / s_ - 2 * a4 * verts
    a0 = (
        u0
        - np.einsum("ij,ij->i", lin, verts)[:, None] / s_
        + a4 * np.einsum("ij,ij->i", verts, verts)[:, None]
    )
    spheres = np.concatenate([a0, a, a4], axis=1) * s_  # Pratt norm 1 in mm
    spheres[~good] = np.nan
    return spheres


def _project(
    points: FloatArray, spheres: FloatArray, mask: npt.NDArray[np.bool_], spacing: FloatArray
) -> FloatArray:
    """Points moved onto their algebraic spheres (Newton along the gradient).

    The true surface of a voxelised shape passes only through cells whose eight voxel
    centres are neither all inside nor all outside the mask. A move that ends farther
    than ``_MIXED_SLACK_MM`` from such a cell contradicts the mask: the local sphere is
    the wrong model there (a flat top extrapolated as a dome) and the point stays.
    """
    a0, a, a4 = spheres[:, 0], spheres[:, 1:4], spheres[:, 4]
    value = a0 + np.einsum("ij,ij->i", a, points) + a4 * np.einsum("ij,ij->i", points, points)
    grad0 = a + 2 * a4[:, None] * points
    step = np.zeros_like(points)
    for _ in range(3):  # f(p + d) = value + grad0·d + a4 |d|²
        grad = grad0 + 2 * a4[:, None] * step
        f = value + np.einsum("ij,ij->i", grad0, step) + a4 * np.einsum("ij,ij->i", step, step)
        step = step - (f / np.maximum(np.einsum("ij,ij->i", grad, grad), 1e-12))[:, None] * grad
    step = np.where(np.isfinite(step).all(axis=1, keepdims=True), step, 0.0)
    length = np.linalg.norm(step, axis=1, keepdims=True)
    unit = step / np.where(length > 0, length, 1.0)
    fine = np.zeros(len(points), dtype=bool)
    for slack in (0.0, -_MIXED_SLACK_MM, _MIXED_SLACK_MM):
        fine |= _in_mixed_cell(points + step + slack * unit, mask, spacing)
    return np.where(fine[:, None], points + step, points)


def _in_mixed_cell(
    points: FloatArray, mask: npt.NDArray[np.bool_], spacing: FloatArray
) -> npt.NDArray[np.bool_]:
    """True where the 8 voxel centres around a point (box mm) hold both inside and outside."""
    low = np.floor(points / spacing).astype(np.int64)
    limit = np.array(mask.shape) - 1
    count = np.zeros(len(points), dtype=np.int64)
    for corner in np.ndindex(2, 2, 2):
        ijk = np.clip(low + np.array(corner), 0, limit)
        count += mask[ijk[:, 0], ijk[:, 1], ijk[:, 2]]
    return (count > 0) & (count < 8)


def vertex_areas(verts: FloatArray, faces: npt.NDArray[np.int64]) -> FloatArray:
    tri = verts[faces]
    area = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1)
    return np.bincount(faces.ravel(), np.repeat(area / 3.0, 3), minlength=len(verts)).astype(
        np.float64
    )


def _face_to_vertex_normals(verts: FloatArray, faces: npt.NDArray[np.int64]) -> FloatArray:
    tri = verts[faces]
    face_n = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # area-weighted
    normals = np.zeros_like(verts)
    for corner in range(3):
        np.add.at(normals, faces[:, corner], face_n)
    length = np.linalg.norm(normals, axis=1)
    return normals / np.where(length > 0, length, 1.0)[:, None]


def surface_flux(verts: FloatArray, faces: npt.NDArray[np.int64], depth: FloatArray) -> float:
    """Volume enclosed, counting each triangle by its fraction with ``depth < 0``."""
    tri = verts[faces]
    signed = np.einsum("ij,ij->i", tri[:, 0], np.cross(tri[:, 1], tri[:, 2])) / 6.0
    return float(np.sum(signed * _inner_fraction(depth[faces])))


def _inner_fraction(d: FloatArray) -> FloatArray:
    """Area fraction of each triangle where the linear interpolant of corner values is < 0."""
    neg = d < 0
    count = neg.sum(axis=1)
    fraction = (count == 3).astype(np.float64)
    mixed = (count == 1) | (count == 2)
    if mixed.any():
        dm = d[mixed]
        lone = np.where((count[mixed] == 1)[:, None], neg[mixed], ~neg[mixed])
        a = np.argmax(lone, axis=1)
        da = dm[np.arange(len(dm)), a]
        others = dm[np.arange(len(dm))[:, None], (a[:, None] + np.array([1, 2])) % 3]
        with np.errstate(divide="ignore", invalid="ignore"):
            part = da**2 / ((da - others[:, 0]) * (da - others[:, 1]))
        part = np.clip(np.nan_to_num(part, nan=0.5), 0.0, 1.0)
        fraction[mixed] = np.where(count[mixed] == 1, part, 1.0 - part)
    return fraction


# --- distances ---------------------------------------------------------------------------


def signed_distance(points: FloatArray, mesh: _Mesh) -> FloatArray:
    """Distance of each point to a closed triangle mesh; positive outside it.

    The nearest vertex of the unsubdivided mesh gives a first foot point; twice, the
    triangles with the centroids nearest the current foot are searched for the closest
    point (querying near the surface keeps the k-d tree fast). Within a voxel of the
    surface the sign is that of the offset along the normal interpolated at the closest
    point; farther, that of the blurred mask.
    """
    k = min(_NEAREST_TRIANGLES, len(mesh.faces))
    _, first = mesh.coarse_tree.query(points, workers=-1)
    foot = mesh.verts[np.asarray(first)]
    best = np.full(len(points), np.inf)
    best_tri = np.zeros(len(points), dtype=np.int64)
    best_bary = np.zeros((len(points), 3))
    rows = np.arange(len(points))
    for _ in range(_FOOT_ITERATIONS):
        _, candidates = mesh.centroid_tree.query(foot, k=k, workers=-1)
        candidates = np.asarray(candidates).reshape(len(points), k)
        corners = mesh.verts[mesh.faces[candidates]].reshape(-1, 3, 3)
        dist2, bary = _closest_on_triangles(np.repeat(points, k, axis=0), corners)
        pick = np.argmin(dist2.reshape(len(points), k), axis=1)
        flat = rows * k + pick
        better = dist2[flat] < best
        best = np.where(better, dist2[flat], best)
        best_tri = np.where(better, candidates[rows, pick], best_tri)
        best_bary = np.where(better[:, None], bary[flat], best_bary)
        foot = np.einsum("ij,ijk->ik", best_bary, mesh.verts[mesh.faces[best_tri]])
    normal = np.einsum("ij,ijk->ik", best_bary, mesh.normals[mesh.faces[best_tri]])
    outside = np.einsum("ij,ij->i", points - foot, normal) >= 0
    distance = np.sqrt(best)
    # beyond a voxel from the surface the blurred mask decides (a folded triangle
    # cannot flip it); nearer, the surface normal does
    far = distance > mesh.spacing.max()
    if far.any():
        level = ndimage.map_coordinates(
            mesh.field, (points[far] / mesh.spacing).T, order=1, mode="constant"
        )
        outside[far] = level <= 0.5
    return np.where(outside, 1.0, -1.0) * distance


def _closest_on_triangles(p: FloatArray, tri: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Squared distance from each p to its triangle, and the closest point's barycentrics."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    n = np.cross(b - a, c - a)
    nn = np.einsum("ij,ij->i", n, n)
    safe = np.where(nn > 0, nn, 1.0)
    q = p - (np.einsum("ij,ij->i", p - a, n) / safe)[:, None] * n
    wa = np.einsum("ij,ij->i", np.cross(b - q, c - q), n) / safe
    wb = np.einsum("ij,ij->i", np.cross(c - q, a - q), n) / safe
    bary = np.stack([wa, wb, 1.0 - wa - wb], axis=1)
    inside = (nn > 0) & np.all(bary >= 0, axis=1)
    best = np.where(inside, np.einsum("ij,ij->i", p - q, p - q), np.inf)
    best_bary = np.where(inside[:, None], bary, 0.0)
    for i, j in ((0, 1), (1, 2), (2, 0)):
        x, y = tri[:, i], tri[:, j]
        e = y - x
        ee = np.einsum("ij,ij->i", e, e)
        t = np.clip(np.einsum("ij,ij->i", p - x, e) / np.where(ee > 0, ee, 1.0), 0.0, 1.0)
        r = p - (x + t[:, None] * e)
        d2 = np.einsum("ij,ij->i", r, r)
        better = d2 < best
        best = np.where(better, d2, best)
        w = np.zeros_like(bary)
        w[:, i], w[:, j] = 1.0 - t, t
        best_bary = np.where(better[:, None], w, best_bary)
    return best, best_bary
