"""Microwave antenna SAR from Maxwell's equations: axisymmetric TM (H_φ) finite elements.

A coaxial interstitial antenna in homogeneous tissue is rotationally symmetric, and its
fields are TM to φ: only H_φ(r, z), E_r and E_z. With the e^{jωt} convention,
ε_c = ε₀ε_r − jσ/ω and η = 1/ε_c, the magnetic field solves (physics.md §2.1)

    ∇ × (η ∇ × H) − ω²μ₀ H = 0,   E = η ∇ × H / (jω),   Q = ½ σ |E|²,  SAR = Q/ρ,

with (∇ × H) = −∂_z H_φ r̂ + (1/r) ∂_r(r H_φ) ẑ. The unknown is u = r H_φ: a TEM wave in a
coax is u = const across the line, which bilinear elements represent exactly (with H_φ
itself the 1/r profile costs a spurious radial "stiffness" far larger than k², and the wave
turns evanescent). With test functions w/r the weak form, over dr dz (the 2π of the
revolution is put back in the powers), is

    ∫ η (∂_r u ∂_r w + ∂_z u ∂_z w)/r − ω²μ₀ u w / r  dr dz  +  ∮ η (n × ∇×H)·φ̂ w/r = 0,

solved with bilinear (Q1) elements and 3×3 Gauss points on a rectilinear (r, z) mesh graded
towards the antenna (every material edge is a mesh line), complex arithmetic and a sparse
direct solve (SciPy SuperLU, minimum-degree ordering of A + Aᵀ).
E_r = −η ∂_z u/(jωr), E_z = η ∂_r u/(jωr). The boundary conditions:

* **Metal (PEC)**: n × E = 0 makes the boundary term vanish, so a conductor is a hole in the
  mesh with the natural (Neumann-type, η-weighted) condition: nothing to impose. Conductors
  are the inner and outer conductor of the coax and the short at its end.
* **Axis** r = 0 (tissue and catheter beyond the antenna's end): u = r H_φ = 0 (essential).
  Near the axis u ~ r², which the first cell (0.04 mm) represents only roughly; the error
  stays in that cell (the convergence test moves nothing there by more than 3 %).
* **TEM port** on the coax dielectric at the proximal end of the mesh: the field there is
  (A e^{−jkz} + B e^{jkz})/r, so n × ∇×H = jk (H − 2 H_inc) φ̂ exactly for the TEM mode,
  which gives the first-order port condition  ∮ jkη H v = ∮ 2jkη H_inc v.  A is set for
  1 W incident (P = π Z_d |A|² ln(b/a)); the reflected amplitude B is the projection of
  u − A on the TEM profile, S11 = B/A (reference plane: the port).
* **Outer tissue boundary**: the first-order absorbing (scattering) condition for a wave
  leaving along n, ∮ jkη H v with the tissue's complex k. The power leaving through it is
  ½ Re ∮ (kη/ω) |H|² dS.

**Assembly** with scikit-fem: ``MeshQuad.init_tensor`` on the (r, z) nodes restricted to
the cells outside the conductors, ``ElementQuad1`` on a cell ``Basis`` (Gauss order 5: 3×3
points) for the volume form and the absorbed power, a ``FacetBasis`` (3 points per edge) for
the port and the absorbing sides, complex-valued ``BilinearForm``s, ``condense`` for the
axis and ``solve`` with SuperLU. Hand-written are only the mesh grading, the sorting of the
boundary facets into port and absorbing sides by their midpoints, and the mapping of
elements and nodes back to the (r, z) grid by their coordinates: the rectilinear arrays of
:class:`AxisymmetricMesh` stay the public mesh description and index the SAR table.

Power balance (incident = reflected + absorbed + leaving), a matched coax line (|H_φ| ∝ 1/r,
no reflection), the attenuation of a lossy line against the analytic complex wavenumber and
mesh convergence are checked in ``tests/physics/test_mw_antenna.py``; the numbers are in
docs/physics_simulation.md (e.g. matched line |S11| 1.2e-5, lossy line α within 0.1 % of
the analytic 48.04 Np/m, power balance 1e-8, slot antenna S11 −14.9 dB). One solve takes
0.08–0.15 s (≈ 10⁴ unknowns; the LU about a third of it); :func:`antenna_sar` caches it per
design and tissue.

**Antenna geometry** (:class:`CoaxialSlotAntenna`): the coaxial slot antenna of Saito et al.
(K. Saito, Y. Hayashi, H. Yoshimura, K. Ito, "Heating characteristics of array applicator
composed of two coaxial-slot antennas for microwave coagulation therapy", IEEE Trans. MTT
48(11):1800–1806, 2000) as used in the COMSOL "Microwave Cancer Therapy" application
(doc.comsol.com, models.heat.microwave_cancer_therapy: "a thin coaxial cable with a
ring-shaped slot measuring 1 mm cut on the outer conductor 5 mm from the short-circuited tip",
enclosed in a PTFE catheter; 2.45 GHz, P_in 10 W; liver ε_r 43.03, σ 1.69 S/m). Radii:
inner conductor 0.145 mm (Ø 0.29 mm, the issue brief [U]; a public gmsh geometry of the same
antenna from the Go-Smart project, found by code search, uses 0.135 mm), dielectric 0.47 mm,
outer conductor 0.595 mm, catheter 0.895 mm (that geometry's R2, R3, R4 [S], and the
brief's Ø 0.94 / 1.19 / 1.79 mm); PTFE ε_r 2.03, catheter ε_r 2.6 (the brief, after the
COMSOL model [U: its material table was not readable here]). The slot's 5 mm is
taken to its distal edge (slot centre 5.5 mm from the short) and the catheter closes 0.3 mm
beyond the short [U]. Other published designs of the same family are instances of the
dataclass: a slot further from the short acts as the feed gap of a sleeve dipole (the
distal arm is the shorted coax), and two slots give the double-slot antenna of Bertram et
al. (BioMed Eng OnLine 5:15, 2006).
"""

from __future__ import annotations

import functools
import itertools
import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.interpolate import RegularGridInterpolator
from scipy.sparse.linalg import splu
from skfem import (
    Basis,
    BilinearForm,
    ElementQuad1,
    FacetBasis,
    Functional,
    LinearForm,
    MeshQuad,
    condense,
    solve,
)
from skfem.element import DiscreteField
from skfem.helpers import dot, grad

from seldinger.errors import BadInputError

__all__ = [
    "LIVER_2450MHZ",
    "SAITO_SLOT_ANTENNA",
    "AntennaSar",
    "AxisymmetricMesh",
    "CoaxialSlotAntenna",
    "MwSolution",
    "TissueDielectric",
    "antenna_mesh",
    "antenna_sar",
    "coax_line_mesh",
    "complex_wavenumber_per_m",
    "solve_axisymmetric",
]

FloatArray = npt.NDArray[np.float64]
ComplexArray = npt.NDArray[np.complex128]
BoolArray = npt.NDArray[np.bool_]
EPS0_F_PER_M = 8.8541878128e-12
MU0_H_PER_M = 4e-7 * math.pi


@dataclass(frozen=True)
class TissueDielectric:
    """Dielectric properties of the (homogeneous) tissue at the antenna's frequency."""

    relative_permittivity: float
    conductivity_s_per_m: float
    frequency_hz: float = 2.45e9


#: Liver at 2.45 GHz (physics.md §2.2: COMSOL MWA model, Gabriel dispersion [S]).
LIVER_2450MHZ = TissueDielectric(43.03, 1.69, 2.45e9)


@dataclass(frozen=True)
class CoaxialSlotAntenna:
    """A coaxial antenna shorted at its end with ring slots in its outer conductor.

    Radii in mm; ``slots_mm`` holds (distance of the slot's distal edge from the short,
    slot width) per slot; ``cap_mm`` is the catheter wall beyond the short, so the antenna's
    tip (the catheter's end) lies ``cap_mm`` beyond the short; the short is a metal disc
    ``short_mm`` thick joining the conductors (its distal face is the slot's reference).
    ``choke_mm`` = (distance of its open mouth behind the short, length) adds a coaxial
    choke: a metal sleeve at ``choke_radii_mm`` inside the catheter, shorted to the outer
    conductor at its proximal end, filled with the catheter's dielectric (a λ/4 stub that
    blocks the current flowing back along the shaft; Lin & Wang 1996, Bertram et al. 2006).
    """

    name: str = "saito-slot"
    inner_radius_mm: float = 0.145
    dielectric_radius_mm: float = 0.47
    outer_radius_mm: float = 0.595
    catheter_radius_mm: float = 0.895
    dielectric_permittivity: float = 2.03
    catheter_permittivity: float = 2.6
    slots_mm: tuple[tuple[float, float], ...] = ((5.0, 1.0),)
    cap_mm: float = 0.3
    short_mm: float = 0.1
    choke_mm: tuple[float, float] | None = None
    choke_radii_mm: tuple[float, float] = (0.745, 0.845)

    def __post_init__(self) -> None:
        # tuples, whatever the caller passed (JSON lists), so that the design is hashable
        try:
            slots = tuple((float(s), float(w)) for s, w in self.slots_mm)
            choke = None if self.choke_mm is None else tuple(float(v) for v in self.choke_mm)
            choke_radii = tuple(float(v) for v in self.choke_radii_mm)
        except (TypeError, ValueError) as error:
            raise BadInputError(f"Antenna {self.name!r}: malformed slots or choke.") from error
        if (choke is not None and len(choke) != 2) or len(choke_radii) != 2:
            raise BadInputError(f"Antenna {self.name!r}: a choke needs two numbers.")
        object.__setattr__(self, "slots_mm", slots)
        object.__setattr__(self, "choke_mm", choke)
        object.__setattr__(self, "choke_radii_mm", choke_radii)
        radii = (
            self.inner_radius_mm,
            self.dielectric_radius_mm,
            self.outer_radius_mm,
            self.catheter_radius_mm,
        )
        if not all(math.isfinite(r) for r in radii) or not 0 < radii[0] < radii[1] < radii[2]:
            raise BadInputError(f"Antenna {self.name!r}: radii must increase; got {radii}.")
        if not radii[2] < radii[3]:
            raise BadInputError(f"Antenna {self.name!r}: the catheter must enclose the coax.")
        if not self.slots_mm or any(s < 0 or w <= 0 for s, w in self.slots_mm):
            raise BadInputError(f"Antenna {self.name!r}: slots need s >= 0, width > 0.")
        if self.choke_mm is not None:
            ri, ro = self.choke_radii_mm
            if not (radii[2] < ri < ro < radii[3]) or self.choke_mm[1] <= self.short_mm:
                raise BadInputError(f"Antenna {self.name!r}: the choke must fit the catheter.")
        if (
            self.cap_mm <= 0
            or self.short_mm <= 0
            or min(self.dielectric_permittivity, self.catheter_permittivity) < 1
        ):
            raise BadInputError(f"Antenna {self.name!r}: cap_mm > 0 and ε_r >= 1 needed.")

    @property
    def slot_centre_from_tip_mm(self) -> float:
        """Distance of the first slot's centre behind the tip (mm)."""
        s, w = self.slots_mm[0]
        return self.cap_mm + s + 0.5 * w


#: The Saito / COMSOL coaxial slot antenna (module docstring).
SAITO_SLOT_ANTENNA = CoaxialSlotAntenna()


def complex_wavenumber_per_m(
    frequency_hz: float, relative_permittivity: float, conductivity_s_per_m: float
) -> complex:
    """k = ω √(μ₀ ε_c) with Im k ≤ 0 (a wave e^{−jkz} decays by e^{Im k · z}).

    >>> round(-complex_wavenumber_per_m(2.45e9, 43.03, 1.69).imag, 1)
    48.0
    """
    omega = 2 * math.pi * frequency_hz
    eps_c = EPS0_F_PER_M * relative_permittivity - 1j * conductivity_s_per_m / omega
    k = complex(omega * np.sqrt(MU0_H_PER_M * eps_c))
    return k if k.real >= 0 else -k


@dataclass(frozen=True, eq=False)
class AxisymmetricMesh:
    """A rectilinear (r, z) mesh (m) with per-cell materials and boundary roles.

    ``pec`` cells are metal (holes, natural condition). The port is the part of the z = z_min
    edge with r in ``port_radii_m`` (a TEM coax of ``port_permittivity``); ``absorbing`` names
    the outer sides ("r_max", "z_max", "z_min") that get the first-order absorbing condition
    (z_min: outside the port). H_φ = 0 is imposed on r = 0 when the mesh reaches the axis.
    """

    r_m: FloatArray
    z_m: FloatArray
    relative_permittivity: FloatArray  # (nr - 1, nz - 1)
    conductivity_s_per_m: FloatArray
    pec: BoolArray
    port_radii_m: tuple[float, float]
    port_permittivity: float
    absorbing: tuple[str, ...] = ("r_max", "z_max", "z_min")


@dataclass(frozen=True, eq=False)
class MwSolution:
    """The solved field for 1 W incident at the port, and its power budget (W)."""

    mesh: AxisymmetricMesh
    h_field: ComplexArray  # H_φ at the mesh nodes (A/m), shape (nr, nz)
    q_cell_w_per_m3: FloatArray  # cell-averaged ½σ|E|², shape (nr - 1, nz - 1)
    s11: complex
    incident_w: float
    reflected_w: float
    absorbed_w: float
    leaving_w: float
    solve_s: float

    @property
    def balance_error(self) -> float:
        """(incident − reflected − absorbed − leaving) / incident."""
        return (self.incident_w - self.reflected_w - self.absorbed_w - self.leaving_w) / (
            self.incident_w
        )


_INTORDER = 5  # Gauss–Legendre with 3 points per direction: 3×3 in a cell, 3 on an edge
#: skfem's FormExtraParams: the fields at the quadrature points by name (w.x, w.eta, w.u, …)
FormParams = Any


@BilinearForm(dtype=np.complex128)
def _maxwell(u: DiscreteField, v: DiscreteField, w: FormParams) -> ComplexArray:
    """(η ∇u·∇w − ω²μ₀ u w)/r: the weak form of ∇ × (η ∇ × H) − ω²μ₀ H in u = r H_φ."""
    return (w.eta * dot(grad(u), grad(v)) - w.k0_sq * u * v) / w.x[0]


@BilinearForm(dtype=np.complex128)
def _edge_mass(u: DiscreteField, v: DiscreteField, w: FormParams) -> ComplexArray:
    """kη u w/r on boundary edges (j× this is the port and absorbing condition)."""
    return w.k_eta * u * v / w.x[0]


@LinearForm
def _inverse_r(v: DiscreteField, w: FormParams) -> FloatArray:
    """w/r on the port: the TEM profile (source and projection for S11)."""
    return v / w.x[0]


@Functional
def _absorbed(w: FormParams) -> FloatArray:
    """½σ|E|² r with |E|² = |η/(ωr)|² |∇u|² (the 2π of the revolution is put back outside)."""
    return w.sigma_eta_sq * (abs(w.u.grad[0]) ** 2 + abs(w.u.grad[1]) ** 2) / w.x[0]


@Functional
def _volume(w: FormParams) -> FloatArray:
    """r: a cell's volume per radian."""
    return w.x[0]


def _superlu(matrix: sp.spmatrix, rhs: ComplexArray) -> ComplexArray:
    """SuperLU with a minimum-degree ordering of A + Aᵀ (the matrix is complex symmetric)."""
    return np.asarray(splu(matrix.tocsc(), permc_spec="MMD_AT_PLUS_A").solve(rhs))


def solve_axisymmetric(mesh: AxisymmetricMesh, frequency_hz: float) -> MwSolution:
    """Solve the TM (H_φ) problem on ``mesh`` for 1 W incident TEM power at the port."""
    clock = time.perf_counter()
    omega = 2 * math.pi * frequency_hz
    r, z = mesh.r_m, mesh.z_m
    fem, (ci, cj), grid_node = _open_mesh(mesh)
    basis = Basis(fem, ElementQuad1(), intorder=_INTORDER)
    eps_c = EPS0_F_PER_M * mesh.relative_permittivity[ci, cj] - 1j * (
        mesh.conductivity_s_per_m[ci, cj] / omega
    )
    eta = 1.0 / eps_c
    matrix = _maxwell.assemble(basis, eta=_per_point(eta, basis), k0_sq=omega**2 * MU0_H_PER_M)

    a_port, b_port = mesh.port_radii_m
    port_facets, absorbing_facets = _boundary_facets(fem, mesh)
    k_port = complex_wavenumber_per_m(frequency_hz, mesh.port_permittivity, 0.0)
    eta_port = 1.0 / (EPS0_F_PER_M * mesh.port_permittivity)
    z_impedance = math.sqrt(MU0_H_PER_M / (EPS0_F_PER_M * mesh.port_permittivity))
    log_ratio = math.log(b_port / a_port)
    amplitude = math.sqrt(1.0 / (math.pi * z_impedance * log_ratio))  # 1 W incident
    port = FacetBasis(fem, ElementQuad1(), facets=port_facets, intorder=_INTORDER)
    matrix = matrix + 1j * _edge_mass.assemble(port, k_eta=k_port * eta_port)
    port_load = _inverse_r.assemble(port)  # ∫ w/r dr over the port
    # source: 2jkη ∫ (A/r)(w/r) r dr = 2jkηA ∫ w/r dr
    rhs = 2j * k_port * eta_port * amplitude * port_load
    # absorbing sides: ∮ jkη u w/r with the kη of the cell inside (k: the outgoing root)
    leaving_mass = None
    if absorbing_facets.size:
        outer = FacetBasis(fem, ElementQuad1(), facets=absorbing_facets, intorder=_INTORDER)
        k = omega * np.sqrt(MU0_H_PER_M * eps_c[outer.tind])
        k_eta = np.where(k.real < 0, -k, k) * eta[outer.tind]
        leaving_mass = _edge_mass.assemble(outer, k_eta=_per_point(k_eta, outer))
        matrix = matrix + 1j * leaving_mass

    # u = r H_φ = 0 on the axis; the matrix is complex symmetric with a symmetric pattern:
    # a minimum-degree ordering of A + Aᵀ fills 1.6× less than SuperLU's default COLAMD
    # and factors ~4× faster here
    axis = np.flatnonzero(fem.p[0] == 0.0)
    u = solve(*condense(matrix, rhs, D=axis), solver=_superlu)

    # reflection: u = A + B on a TEM port; B = ∫(u − A)/r dr / ln(b/a), the projection
    integral = complex(port_load @ u)
    s11 = (integral - amplitude * log_ratio) / (amplitude * log_ratio)
    # power leaving through the absorbing sides: ½ Re ∮ (kη/ω)|u/r|² 2π r dl
    leaving = 0.0
    if leaving_mass is not None:
        leaving = math.pi * float((u.conj() @ (leaving_mass @ u)).real) / omega

    # Q = ½σ|E|² at the Gauss points, E = η ∇×H/(jω): E_r = −η ∂_z u/(jωr), E_z = η ∂_r u/(jωr);
    # per cell the absorbed power and the cell average of Q for the SAR table
    sigma = mesh.conductivity_s_per_m[ci, cj]
    absorbed_cell = (2 * math.pi) * _absorbed.elemental(
        basis,
        u=basis.interpolate(u),
        sigma_eta_sq=_per_point(0.5 * sigma * np.abs(eta) ** 2 / omega**2, basis),
    )
    q_cell = np.zeros(mesh.pec.shape)
    q_cell[ci, cj] = absorbed_cell / (2 * math.pi * _volume.elemental(basis))
    h_vec = np.zeros(r.size * z.size, dtype=np.complex128)
    h_vec[grid_node] = u
    h_field = h_vec.reshape(r.size, z.size) / np.where(r > 0, r, np.inf)[:, None]  # H_φ = u/r
    return MwSolution(
        mesh=mesh,
        h_field=h_field,
        q_cell_w_per_m3=q_cell,
        s11=complex(s11),
        incident_w=1.0,
        reflected_w=float(abs(s11) ** 2),
        absorbed_w=float(absorbed_cell.sum()),
        leaving_w=leaving,
        solve_s=time.perf_counter() - clock,
    )


def _open_mesh(
    mesh: AxisymmetricMesh,
) -> tuple[MeshQuad, tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]], npt.NDArray[np.intp]]:
    """The skfem mesh of the open (non-metal) cells, each element's (radial, axial) cell index
    and each node's index in the (nr, nz) grid; found from coordinates, so that nothing
    depends on skfem's numbering."""
    r, z = mesh.r_m, mesh.z_m
    full = MeshQuad.init_tensor(r, z)
    centre = full.p[:, full.t].mean(axis=1)
    fem = full.restrict(np.flatnonzero(~mesh.pec[_cell(r, centre[0]), _cell(z, centre[1])]))
    centre = fem.p[:, fem.t].mean(axis=1)
    grid_node = np.searchsorted(r, fem.p[0]) * z.size + np.searchsorted(z, fem.p[1])
    return fem, (_cell(r, centre[0]), _cell(z, centre[1])), grid_node


def _cell(nodes: FloatArray, x: FloatArray) -> npt.NDArray[np.intp]:
    """Index of the cell between ``nodes`` that holds each point ``x`` (inside a cell)."""
    return np.searchsorted(nodes, x) - 1


def _boundary_facets(
    fem: MeshQuad, mesh: AxisymmetricMesh
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]:
    """The port's and the absorbing sides' boundary facets, by their midpoints.

    The other boundary facets (metal, the axis, a coax line's walls) get no boundary term.
    """
    r, z = mesh.r_m, mesh.z_m
    facets = fem.boundary_facets()
    mid = fem.p[:, fem.facets[:, facets]].mean(axis=1)
    tol = 1e-9 * max(r[-1] - r[0], z[-1] - z[0])
    at_z_min = np.abs(mid[1] - z[0]) < tol
    a_port, b_port = mesh.port_radii_m
    in_port = at_z_min & (mid[0] > a_port) & (mid[0] < b_port)
    if not in_port.any():
        raise BadInputError("The port lies on no open cell of the mesh.")
    sides = {
        "z_min": at_z_min & ~in_port,
        "z_max": np.abs(mid[1] - z[-1]) < tol,
        "r_max": np.abs(mid[0] - r[-1]) < tol,
    }
    absorbing = np.zeros(facets.size, dtype=bool)
    for side in mesh.absorbing:
        absorbing |= sides[side]
    return facets[in_port], facets[absorbing]


def _per_point(values: npt.NDArray[np.generic], basis: Any) -> npt.NDArray[np.generic]:
    """A per-element (or per-facet) coefficient repeated at the basis' quadrature points."""
    return np.repeat(values[:, None], basis.X.shape[-1], axis=1)


def _graded_nodes(
    breaks: list[float], size: FloatArray | float, sample: FloatArray | None = None
) -> FloatArray:
    """Nodes through every break point, spaced by the size function (sampled on ``sample``).

    Each interval between breaks gets ⌈∫ dx/h⌉ cells placed at equal steps of ∫ dx/h, so
    the spacing follows h smoothly and every material edge is a mesh line.
    """
    out = [breaks[0]]
    for x0, x1 in itertools.pairwise(breaks):
        xs = np.linspace(x0, x1, 400)
        h = np.full_like(xs, size) if sample is None else np.interp(xs, sample, size)
        density = np.concatenate([[0.0], np.cumsum(np.diff(xs) * 0.5 * (1 / h[1:] + 1 / h[:-1]))])
        n = max(1, math.ceil(density[-1] - 1e-9))
        out.extend(np.interp(np.linspace(0, density[-1], n + 1)[1:], density, xs).tolist())
    return np.asarray(out)


def _size(
    x: FloatArray, focus: list[tuple[float, float]], h_min: float, h_max: float
) -> FloatArray:
    """h_min inside the focus intervals, growing by 0.2 per unit distance up to h_max."""
    dist = np.full_like(x, np.inf)
    for lo, hi in focus:
        dist = np.minimum(dist, np.maximum(0.0, np.maximum(lo - x, x - hi)))
    return np.minimum(h_max, h_min + 0.2 * dist)


def antenna_mesh(
    antenna: CoaxialSlotAntenna,
    tissue: TissueDielectric,
    refine: float = 1.0,
    radius_mm: float = 30.0,
    behind_mm: float = 50.0,
    beyond_mm: float = 20.0,
) -> AxisymmetricMesh:
    """The antenna in a tissue cylinder of ``radius_mm``; z = 0 at the tip, shaft at z < 0.

    The mesh reaches ``behind_mm`` behind the proximal slot (port there) and ``beyond_mm``
    beyond the tip. Cells are 0.04 mm across the antenna and at its slots and tip, growing to
    λ_tissue/20 (~0.9 mm in liver at 2.45 GHz); ``refine`` divides every size.
    """
    if not (math.isfinite(refine) and refine > 0):
        raise BadInputError(f"refine must be positive; got {refine!r}.")
    a, b, c, d = (
        antenna.inner_radius_mm,
        antenna.dielectric_radius_mm,
        antenna.outer_radius_mm,
        antenna.catheter_radius_mm,
    )
    z_short = -antenna.cap_mm
    z_metal = z_short - antenna.short_mm
    slots = [(z_short - s - w, z_short - s) for s, w in antenna.slots_mm]
    if max(hi for _, hi in slots) > z_metal:
        raise BadInputError(f"Antenna {antenna.name!r}: a slot overlaps the short.")
    chokes = []
    if antenna.choke_mm is not None:
        mouth = z_short - antenna.choke_mm[0]
        chokes.append((mouth - antenna.choke_mm[1], mouth))
    z_min = min(lo for lo, _ in slots + chokes) - behind_mm
    k = complex_wavenumber_per_m(
        tissue.frequency_hz, tissue.relative_permittivity, tissue.conductivity_s_per_m
    )
    h_far = min(1.0, 1e3 * 2 * math.pi / abs(k.real) / 20) / refine
    h_near = 0.04 / refine
    rs = np.linspace(0.0, radius_mm, 4000)
    r_breaks = sorted({0.0, a, b, c, d, radius_mm, *(antenna.choke_radii_mm if chokes else ())})
    r_mm = _graded_nodes(r_breaks, _size(rs, [(0.0, d)], h_near, h_far), rs)
    zs = np.linspace(z_min, beyond_mm, 8000)
    focus = [(lo, hi) for lo, hi in slots] + [(z_short, 0.0)] + [(hi, hi) for _, hi in chokes]
    ends = [v for sl in slots + chokes for v in sl]
    ends += [lo + antenna.short_mm for lo, _ in chokes]
    breaks = sorted({z_min, beyond_mm, 0.0, z_short, z_metal, *ends})
    z_mm = _graded_nodes(breaks, _size(zs, focus, 2 * h_near, h_far), zs)
    rc = 0.5 * (r_mm[:-1] + r_mm[1:])[:, None]
    zc = 0.5 * (z_mm[:-1] + z_mm[1:])[None, :]
    shaft = zc < z_short
    in_slot = np.zeros_like(zc, dtype=bool)
    for lo, hi in slots:
        in_slot |= (zc > lo) & (zc < hi)
    pec = shaft & ((rc < a) | ((rc > b) & (rc < c) & ~in_slot))
    pec |= shaft & (zc > z_metal) & (rc < c)  # the short
    for lo, hi in chokes:
        ri, ro = antenna.choke_radii_mm
        pec |= (zc > lo) & (zc < hi) & (rc > ri) & (rc < ro)  # the sleeve
        pec |= (zc > lo) & (zc < lo + antenna.short_mm) & (rc > c) & (rc < ro)  # its short
    dielectric = shaft & (rc < c) & ~pec
    catheter = (zc < 0.0) & (rc < d) & ~pec & ~dielectric
    eps = np.where(
        dielectric,
        antenna.dielectric_permittivity,
        np.where(catheter, antenna.catheter_permittivity, tissue.relative_permittivity),
    )
    sigma = np.where(dielectric | catheter | pec, 0.0, tissue.conductivity_s_per_m)
    return AxisymmetricMesh(
        r_m=r_mm / 1e3,
        z_m=z_mm / 1e3,
        relative_permittivity=np.asarray(eps, dtype=np.float64),
        conductivity_s_per_m=np.asarray(sigma, dtype=np.float64),
        pec=np.asarray(pec),
        port_radii_m=(a / 1e3, b / 1e3),
        port_permittivity=antenna.dielectric_permittivity,
    )


def coax_line_mesh(
    inner_radius_mm: float,
    outer_radius_mm: float,
    length_mm: float,
    relative_permittivity: float,
    conductivity_s_per_m: float = 0.0,
    cells_r: int = 8,
    cell_z_mm: float = 0.5,
) -> AxisymmetricMesh:
    """A straight coax (verification): port at z = 0, absorbing (matched) end at z = L.

    Its walls r = a, b are metal, which is the natural condition of the mesh's sides.
    """
    r = np.linspace(inner_radius_mm, outer_radius_mm, cells_r + 1) / 1e3
    z = np.linspace(0.0, length_mm, max(2, round(length_mm / cell_z_mm)) + 1) / 1e3
    shape = (r.size - 1, z.size - 1)
    return AxisymmetricMesh(
        r_m=r,
        z_m=z,
        relative_permittivity=np.full(shape, relative_permittivity),
        conductivity_s_per_m=np.full(shape, conductivity_s_per_m),
        pec=np.zeros(shape, dtype=bool),
        port_radii_m=(inner_radius_mm / 1e3, outer_radius_mm / 1e3),
        port_permittivity=relative_permittivity,
        absorbing=("z_max",),
    )


@dataclass(frozen=True, eq=False)
class AntennaSar:
    """Absorbed power density of an antenna per W forward (incident) power.

    ``q_w_per_m3_per_w`` is the cell-averaged ½σ|E|² on the cell centres ``r_mm`` × ``z_mm``
    (z = 0 at the tip, negative along the shaft); ``absorbed_fraction`` = 1 − |S11|² minus
    what leaves the solved region.
    """

    antenna: CoaxialSlotAntenna
    tissue: TissueDielectric
    r_mm: FloatArray
    z_mm: FloatArray
    q_w_per_m3_per_w: FloatArray
    s11: complex
    absorbed_fraction: float
    balance_error: float
    solve_s: float

    @property
    def s11_db(self) -> float:
        """Return loss, 20 log₁₀ |S11| (dB)."""
        return 20 * math.log10(max(abs(self.s11), 1e-12))

    def sar_w_per_kg(self, density_kg_per_m3: float, input_power_w: float) -> FloatArray:
        """SAR = Q/ρ for ``input_power_w`` forward power (W/kg)."""
        return self.q_w_per_m3_per_w * (input_power_w / density_kg_per_m3)

    def interpolator(self) -> RegularGridInterpolator:
        """Q (W/m³ per W) at (ρ mm, s mm) points; zero outside the solved region."""
        return RegularGridInterpolator(
            (self.r_mm, self.z_mm),
            self.q_w_per_m3_per_w,
            method="linear",
            bounds_error=False,
            fill_value=0.0,
        )


@functools.lru_cache(maxsize=32)
def antenna_sar(
    antenna: CoaxialSlotAntenna, tissue: TissueDielectric, refine: float = 1.0
) -> AntennaSar:
    """The solved SAR pattern of ``antenna`` in homogeneous ``tissue`` (cached per inputs)."""
    values = (tissue.relative_permittivity, tissue.conductivity_s_per_m, tissue.frequency_hz)
    if not all(math.isfinite(v) for v in values) or tissue.relative_permittivity < 1:
        raise BadInputError(f"Tissue dielectric properties are not physical: {tissue!r}.")
    if tissue.conductivity_s_per_m <= 0 or tissue.frequency_hz <= 0:
        raise BadInputError(f"Tissue conductivity and frequency must be positive: {tissue!r}.")
    solution = solve_axisymmetric(antenna_mesh(antenna, tissue, refine), tissue.frequency_hz)
    mesh = solution.mesh
    arrays = (
        0.5e3 * (mesh.r_m[:-1] + mesh.r_m[1:]),
        0.5e3 * (mesh.z_m[:-1] + mesh.z_m[1:]),
        solution.q_cell_w_per_m3.copy(),
    )
    for array in arrays:
        array.flags.writeable = False  # the result is cached and shared by every caller
    return AntennaSar(
        antenna=antenna,
        tissue=tissue,
        r_mm=arrays[0],
        z_mm=arrays[1],
        q_w_per_m3_per_w=arrays[2],
        s11=solution.s11,
        absorbed_fraction=solution.absorbed_w,
        balance_error=solution.balance_error,
        solve_s=solution.solve_s,
    )
