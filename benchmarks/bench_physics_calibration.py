"""Calibration of the RF / MW device models against the catalogue zones, and the cryo table.

For every RF and MW setting of the catalogue, the power delivered to tissue is fitted so that
the simulated lethal zone (Arrhenius Ω ≥ 1) in homogeneous liver has the catalogue width;
the length is predicted. Cryo devices are run with their model as it is. Prints the table
(goal: width and length within 15 %); ``--write`` stores the fitted powers in
``src/seldinger/physics/data/thermal_devices.json``. Run from the project root::

    .venv/bin/python benchmarks/bench_physics_calibration.py [--write] [--device NAME]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

GOAL = 0.15
DATA = Path(__file__).resolve().parents[1] / "src/seldinger/physics/data/thermal_devices.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--device", action="append")
    parser.add_argument("--setting", action="append", help="only these settings")
    args = parser.parse_args(argv)
    from seldinger.physics.ablation import load_catalogue
    from seldinger.physics.calibration import calibrate_setting
    from seldinger.physics.thermal_devices import load_thermal_devices

    models = load_thermal_devices()
    rows = []
    print(
        f"{'device':20s} {'setting':14s} {'P W':>7s} {'t s':>6s} perf "
        f"{'L cat':>6s} {'L sim':>6s} {'err':>6s} {'W cat':>6s} {'W sim':>6s} {'err':>6s}  s"
    )
    for device in load_catalogue():
        name = device.name.lower()
        if name not in models or (args.device and name not in args.device):
            continue
        for setting in device.settings:
            if args.setting and setting not in args.setting:
                continue
            clock = time.perf_counter()
            width = device.setting(setting).zone.width_mm
            row = calibrate_setting(name, setting, spacing_mm=1.0 if width <= 40 else 1.5)
            rows.append(row)
            ok = "" if max(abs(row.length_error), abs(row.width_error)) <= GOAL else "  > 15 %"
            print(
                f"{row.device:20s} {row.setting:14s} {row.delivered_power_w:7.2f} "
                f"{row.duration_s:6.0f} {'yes' if row.perfused else 'no ':4s}"
                f"{row.catalogue_length_mm:6.1f} {row.length_mm:6.1f} {100 * row.length_error:5.1f}% "
                f"{row.catalogue_width_mm:6.1f} {row.width_mm:6.1f} {100 * row.width_error:5.1f}% "
                f"{time.perf_counter() - clock:4.0f}{ok}",
                flush=True,
            )
            if args.write and models[name].modality != "cryo":
                document = json.loads(DATA.read_text(encoding="utf-8"))
                document["devices"][row.device]["settings"][row.setting] = {
                    "delivered_power_w": round(row.delivered_power_w, 3),
                    "duration_s": row.duration_s,
                    "perfused": row.perfused,
                }
                DATA.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    bad = [r for r in rows if max(abs(r.length_error), abs(r.width_error)) > GOAL]
    print(f"{len(rows) - len(bad)} of {len(rows)} settings within {GOAL:.0%} in width and length")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
