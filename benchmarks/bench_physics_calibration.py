"""Calibration of the RF / MW device models against the catalogue zones, and the cryo table.

For every RF and MW setting of the catalogue, the power delivered to tissue is fitted so that
the simulated lethal zone (Arrhenius Ω ≥ 1) in homogeneous liver has the catalogue width;
the length is predicted. Each cryo device's probe surface temperature is fitted so that the
iceball (catalogue isotherm) of its single-probe setting has the catalogue width, and its
freezing length to the catalogue length where that was far off; its multi-probe settings
are predicted with the fit. Prints the table (goal: width and length within 15 %);
``--write`` stores the fitted powers, probe temperatures and freezing lengths in
``src/seldinger/physics/data/thermal_devices.json``. Run from the project root::

    .venv/bin/python benchmarks/bench_physics_calibration.py [--write] [--device NAME]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

GOAL = 0.15
DATA = Path(__file__).resolve().parents[1] / "src/seldinger/physics/data/thermal_devices.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true")
    parser.add_argument("--device", action="append")
    parser.add_argument("--setting", action="append", help="only these settings")
    args = parser.parse_args(argv)
    from seldinger.physics.ablation import load_catalogue
    from seldinger.physics.calibration import (
        CRYO_EXPOSURE_RANGE_MM,
        CRYO_PROBE_RANGE_C,
        calibrate_cryo,
        calibrate_setting,
        simulate_in_liver,
    )
    from seldinger.physics.thermal_devices import load_thermal_devices

    if TYPE_CHECKING:
        from seldinger.physics.calibration import CalibrationRow

    models = load_thermal_devices()
    rows = []
    fitted: dict[str, CalibrationRow] = {}

    def write_cryo(fit: CalibrationRow) -> None:
        document = json.loads(DATA.read_text(encoding="utf-8"))
        entry = document["devices"][fit.device]
        entry["probe_c"] = fit.probe_c
        entry["exposure_mm"] = fit.exposure_mm
        entry["calibrated_setting"] = fit.setting
        base = entry["source"].split(" | CALIBRATED")[0]
        entry["source"] = (
            f"{base} | CALIBRATED (benchmarks/bench_physics_calibration.py --write): probe_c "
            f"(probe surface temperature, range {CRYO_PROBE_RANGE_C[0]:g}..{CRYO_PROBE_RANGE_C[1]:g}"
            f" C) FITTED to the catalogue width of setting {fit.setting!r} in its conditions; "
            f"exposure_mm (freezing length) "
            + (
                f"FITTED to its length (range {CRYO_EXPOSURE_RANGE_MM[0]:g}.."
                f"{CRYO_EXPOSURE_RANGE_MM[1]:g} mm)"
                if fit.exposure_mm != models[fit.device.lower()].exposure_mm
                else "as modelled [U], the length a prediction"
            )
            + f"; simulated {fit.length_mm:g} x {fit.width_mm:g} mm vs catalogue "
            f"{fit.catalogue_length_mm:g} x {fit.catalogue_width_mm:g} mm"
        )
        DATA.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")

    print(
        f"{'device':20s} {'setting':14s} {'P W|°C':>7s} {'t s':>6s} perf "
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
            spacing = 1.0 if width <= 40 else 1.5
            if models[name].modality == "cryo":
                fit = fitted.get(name)
                if fit is None:  # the single-probe setting first, at the RF / MW spacing
                    fit = fitted[name] = calibrate_cryo(name, 1.0)
                    if args.write:
                        write_cryo(fit)
                if setting.lower() == fit.setting.lower():
                    row = fit
                else:  # a prediction with the fit
                    row = simulate_in_liver(
                        name,
                        setting,
                        spacing_mm=spacing,
                        probe_c=fit.probe_c,
                        exposure_mm=fit.exposure_mm,
                    )
            else:
                row = calibrate_setting(name, setting, spacing_mm=spacing)
            rows.append(row)
            ok = "" if max(abs(row.length_error), abs(row.width_error)) <= GOAL else "  > 15 %"
            print(
                f"{row.device:20s} {row.setting:14s} "
                f"{row.delivered_power_w if row.probe_c is None else row.probe_c:7.2f} "
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
