# Seldinger — two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO_OUT ?= demo-out

.PHONY: install demo test lint typecheck pytest bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml web/package-lock.json | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@# NiiVue for `seldinger serve`, pinned by web/package-lock.json, copied into the package
	@if command -v npm >/dev/null; then \
		cd web && npm ci --no-audit --no-fund --silent && npm run --silent build; \
	else echo "warning: npm not found: seldinger serve will lack its viewer (apt install npm)" >&2; fi
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/seldinger demo --out $(DEMO_OUT) --force

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_read_dicom.py
	$(BIN)/python benchmarks/bench_anatomy.py
	$(BIN)/python benchmarks/bench_trajectory.py
	$(BIN)/python benchmarks/bench_ablation.py
	$(BIN)/python benchmarks/bench_margin.py
	$(BIN)/python benchmarks/bench_tg43.py
	$(BIN)/python benchmarks/bench_seed_plan.py
	$(BIN)/python benchmarks/bench_igtl.py
	$(BIN)/python benchmarks/bench_export.py
	$(BIN)/python benchmarks/bench_pacs.py
	$(BIN)/python benchmarks/bench_plan_trajectory.py
	$(BIN)/python benchmarks/bench_motion_register.py
	$(BIN)/python benchmarks/bench_motion_model.py
	$(BIN)/python benchmarks/bench_robot_reach.py
	$(BIN)/python benchmarks/bench_robot_reach_cases.py
	$(BIN)/python benchmarks/bench_robot_protocol.py
	$(BIN)/python benchmarks/bench_physics_ire.py
	$(BIN)/python benchmarks/bench_physics_thermal.py
	$(BIN)/python benchmarks/bench_physics_cryo.py
	$(BIN)/python benchmarks/bench_physics_calibration.py
	$(BIN)/python benchmarks/bench_mw_antenna.py
	$(BIN)/python benchmarks/bench_stents.py
	$(BIN)/python benchmarks/bench_workstation.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
