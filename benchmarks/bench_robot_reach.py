"""Reachability of every candidate needle path (all skin entries) by each robot model.

A CT-sized synthetic body (512x512x300 voxels of 0.7 x 0.7 x 1.0 mm; an elliptic
cylinder with 170 x 120 mm semi-axes, the chest's cross-section) and a target in its left
half. The candidates are the skin points ~1.4 mm apart within the needle's 150 mm of the
target (the planner's sampling), as ``plan_trajectories`` gives them. Times, per robot:

- ``reach_paths`` on all candidates: the vectorised body and bore checks along the guide,
  then the closed-form IK on all paths at once (the guide's; the UR arm's eight branches
  for each of eight needle rolls, its links checked against the body);
- a baseline in the same process, on a random subset scaled to all candidates: for the
  guide ``reach_paths`` one path at a time; for the arm roboticstoolbox's numerical IK
  (``ik_LM`` from five seeds, the method before the closed form) path by path.

Prints the figures beside the goal (<= 1 s per robot). Run from the project root (never
collected by pytest)::

    .venv/bin/python benchmarks/bench_robot_reach.py [--repeat 3] [--baseline-n 300]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from seldinger.imaging import Volume
from seldinger.robot import (
    MountSide,
    RobotKind,
    list_models,
    load_model,
    mount_to_ct,
    reach_paths,
    summarise,
)
from seldinger.robot.kinematics import _arm_inverse as numerical_ik  # the baseline
from seldinger.robot.kinematics import frame_from_axis

GOAL_S = 1.0
SHAPE = (512, 512, 300)
SPACING_MM = (0.7, 0.7, 1.0)
SEMI_AXES_MM = (170.0, 120.0)
TARGET_LPS_MM = np.array([70.0, 10.0, 0.0])
NEEDLE_MM = 150.0
STEP_MM = 1.4


def body_volume() -> Volume:
    affine = np.diag([*SPACING_MM, 1.0])
    affine[:3, 3] = [-(n - 1) * s / 2.0 for n, s in zip(SHAPE, SPACING_MM, strict=True)]
    x = np.arange(SHAPE[0]) * SPACING_MM[0] + affine[0, 3]
    y = np.arange(SHAPE[1]) * SPACING_MM[1] + affine[1, 3]
    section = (x[:, None] / SEMI_AXES_MM[0]) ** 2 + (y[None, :] / SEMI_AXES_MM[1]) ** 2 <= 1.0
    return Volume(np.ascontiguousarray(np.broadcast_to(section[:, :, None], SHAPE)), affine)


def skin_entries() -> np.ndarray:
    """Points on the elliptic cylinder ~STEP_MM apart, within NEEDLE_MM of the target."""
    a, b = SEMI_AXES_MM
    perimeter = np.pi * (3 * (a + b) - np.sqrt((3 * a + b) * (a + 3 * b)))  # Ramanujan
    t = np.linspace(0.0, 2 * np.pi, int(perimeter / STEP_MM), endpoint=False)
    z = np.arange(-NEEDLE_MM, NEEDLE_MM + 1e-9, STEP_MM)
    tt, zz = np.meshgrid(t, z, indexing="ij")
    points = np.stack([a * np.cos(tt), b * np.sin(tt), zz], axis=-1).reshape(-1, 3)
    return points[np.linalg.norm(points - TARGET_LPS_MM, axis=1) <= NEEDLE_MM]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--baseline-n", type=int, default=300)
    args = parser.parse_args()
    body = body_volume()
    entries = skin_entries()
    targets = np.broadcast_to(TARGET_LPS_MM, entries.shape)
    side = MountSide.LEFT  # the target lies in the left half
    print(f"{platform.processor() or platform.machine()}, python {platform.python_version()}")
    print(
        f"body {SHAPE} voxels, {len(entries)} candidate entries, robot on the {side.value} side\n"
    )
    print(
        f"{'robot':<12} {'all paths s':>12} {'per path ms':>12} {'loop (scaled) s':>16} {'speed-up':>9}  goal  reachable / reasons"
    )
    rng = np.random.default_rng(20261207)
    for name in list_models():
        model = load_model(name)
        base = mount_to_ct([0.0, 0.0, 0.0], side) @ model.base_to_mount
        reach_paths(model, entries[:20], targets[:20], base, body=body)  # warm-up (imports)
        timed = np.arange(len(entries))
        best = np.inf
        for _ in range(args.repeat):
            start = time.perf_counter()
            results = reach_paths(model, entries[timed], targets[timed], base, body=body)
            best = min(best, (time.perf_counter() - start) * len(entries) / len(timed))
        subset = rng.choice(len(entries), size=min(args.baseline_n, len(entries)), replace=False)
        start = time.perf_counter()
        for index in subset:
            if model.kind is RobotKind.SERIAL_ARM_GUIDE:
                direction = targets[index] - entries[index]
                direction = direction / np.linalg.norm(direction)
                pose = frame_from_axis(direction, entries[index] - model.standoff_mm * direction)
                numerical_ik(model, pose, base)
            else:
                reach_paths(
                    model, entries[index : index + 1], targets[index : index + 1], base, body=body
                )
        loop_s = (time.perf_counter() - start) / len(subset) * len(entries)
        summary = summarise(results)
        verdict = "ok" if best <= GOAL_S else "MISS"
        print(
            f"{name:<12} {best:>12.3f} {1e3 * best / len(entries):>12.3f} {loop_s:>16.2f} "
            f"{loop_s / best:>8.1f}x  {verdict:<4}  {summary['reachable']} "
            f"({100 * summary['fraction_reachable']:.0f} %) {summary['reasons']}"
        )


if __name__ == "__main__":
    main()
