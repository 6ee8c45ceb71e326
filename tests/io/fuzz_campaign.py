"""A long mutation campaign against ``seldinger.io.read_ct``, on several cores.

Usage (from the project root)::

    .venv/bin/python tests/io/fuzz_campaign.py --cases 120000 --workers 2 --out /tmp/campaign

Case ``i`` is mutated from base ``KINDS[i % len(KINDS)]`` with the generator
``default_rng([SEED, seed, i])``, so any case can be rebuilt alone (``--replay i``).
Each worker process reads its cases under a time limit (SIGALRM) and an address-space
ceiling; the parent also watches the workers, so a crash (segmentation fault, abort) or a
hang in native code is recorded against the case that was running and a new worker takes
over. Misbehaving inputs are written to ``OUT/bad/<i>/`` with their mutation; the summary
(counts by kind and outcome, foreign exception kinds, times) goes to ``OUT/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import queue
import shutil
import sys
import time
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

import fuzz_mutate as fm  # noqa: E402
import numpy as np  # noqa: E402

from shared_paths import LIDC  # noqa: E402


def _case(bases: dict[str, fm.Base], seed: int, i: int) -> fm.Case:
    kind = fm.KINDS[i % len(fm.KINDS)]
    return fm.mutate(bases[kind], np.random.default_rng([fm.SEED, seed, i]))


def _save(case: fm.Case, folder: Path, note: dict[str, Any]) -> None:
    fm.write_case(case, folder)
    (folder / "FINDING.json").write_text(json.dumps(note, indent=1, default=str))


def _ceiling(extra_bytes: int) -> None:
    import resource

    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmSize:"):
            limit = int(line.split()[1]) * 1024 + extra_bytes
            resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))


def _worker(wid: int, args: argparse.Namespace, tasks: Any, results: Any) -> None:
    warnings.simplefilter("error")  # a warning that escapes the readers is a finding
    bases = fm.build_bases(LIDC / "dicom", LIDC / "ct.nii.gz", args.out / f"bases{wid}")
    _ceiling(int(args.memory_gib * 2**30))
    work = args.out / "work" / f"w{wid}"
    while True:
        i = tasks.get()
        if i is None:
            results.put(("exit", wid, None, None))
            return
        results.put(("start", wid, i, None))
        case = _case(bases, args.seed, i)
        shutil.rmtree(work, ignore_errors=True)
        path = fm.write_case(case, work)
        outcome = fm.read_outcome(path, args.time_limit, (str(path), case.target))
        payload = {
            "kind": case.kind,
            "status": outcome.status,
            "error": outcome.error,
            "where": outcome.where,
            "seconds": outcome.seconds,
            "named": outcome.names_input,
        }
        if outcome.status in ("foreign", "hang") or not outcome.names_input:
            payload["mutation"] = case.mutation
            payload["message"] = outcome.message
            _save(case, args.out / "bad" / str(i), payload)
        results.put(("done", wid, i, payload))


def _start(wid: int, args: argparse.Namespace, tasks: Any, results: Any) -> mp.Process:
    process = mp.Process(target=_worker, args=(wid, args, tasks, results), daemon=True)
    process.start()
    return process


def run(args: argparse.Namespace) -> dict[str, Any]:
    args.out.mkdir(parents=True, exist_ok=True)
    tasks: Any = mp.Queue()
    results: Any = mp.Queue()
    for i in range(args.start, args.start + args.cases):
        tasks.put(i)
    for _ in range(args.workers):
        tasks.put(None)
    workers = {wid: _start(wid, args, tasks, results) for wid in range(args.workers)}
    running: dict[int, tuple[int, float]] = {}
    counts: Counter[tuple[str, str]] = Counter()
    seconds: Counter[str] = Counter()
    kinds_of_failure: dict[str, dict[str, Any]] = {}
    unnamed = 0
    done = exited = 0
    started = time.monotonic()
    bases: dict[str, fm.Base] | None = None

    def record(i: int, payload: dict[str, Any]) -> None:
        nonlocal done, unnamed
        done += 1
        counts[(payload["kind"], payload["status"])] += 1
        seconds[payload["kind"]] += payload.get("seconds", 0.0)
        unnamed += not payload.get("named", True)
        if payload["status"] in ("foreign", "hang", "crash"):
            key = f"{payload['status']} {payload['error']} at {payload['where']}"
            entry = kinds_of_failure.setdefault(key, {"count": 0, "first_case": i, **payload})
            entry["count"] += 1

    while exited < args.workers:
        try:
            message, wid, i, payload = results.get(timeout=1.0)
        except queue.Empty:
            message = ""
        if message == "start":
            running[wid] = (i, time.monotonic())
        elif message == "done":
            running.pop(wid, None)
            record(i, payload)
            if done % 5000 == 0:
                print(f"{done} cases, {time.monotonic() - started:.0f} s", flush=True)
        elif message == "exit":
            exited += 1
        for wid, process in list(workers.items()):
            in_flight = running.get(wid)
            overdue = in_flight and time.monotonic() - in_flight[1] > 3 * args.time_limit + 5
            if process.is_alive() and not overdue:
                continue
            if not process.is_alive() and in_flight is None:
                if process.exitcode != 0:  # died between two cases
                    workers[wid] = _start(wid, args, tasks, results)
                continue
            if overdue:
                process.kill()
            process.join()
            status = "hang" if overdue else "crash"
            assert in_flight is not None
            i = in_flight[0]
            if bases is None:
                bases = fm.build_bases(LIDC / "dicom", LIDC / "ct.nii.gz", args.out / "bases-p")
            case = _case(bases, args.seed, i)
            payload = {
                "kind": case.kind,
                "status": status,
                "error": f"exit code {process.exitcode}",
                "where": "native code",
                "mutation": case.mutation,
            }
            _save(case, args.out / "bad" / str(i), payload)
            record(i, payload)
            running.pop(wid, None)
            workers[wid] = _start(wid, args, tasks, results)
    elapsed = time.monotonic() - started
    by_kind: dict[str, dict[str, int]] = {}
    for (kind, status), n in sorted(counts.items()):
        by_kind.setdefault(kind, {})[status] = n
    summary = {
        "cases": done,
        "first_case": args.start,
        "seed": args.seed,
        "workers": args.workers,
        "wall_s": round(elapsed, 1),
        "read_s_by_kind": {k: round(v, 1) for k, v in sorted(seconds.items())},
        "by_kind": by_kind,
        "foreign_or_hang_or_crash": sum(e["count"] for e in kinds_of_failure.values()),
        "failure_kinds": kinds_of_failure,
        "project_errors_not_naming_the_input": unnamed,
    }
    (args.out / f"summary-{args.seed}-{args.start}.json").write_text(json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10000)
    parser.add_argument("--start", type=int, default=0, help="index of the first case")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--time-limit", type=float, default=10.0, help="seconds per input")
    parser.add_argument("--memory-gib", type=float, default=2.0, help="address space per read")
    parser.add_argument("--out", type=Path, default=Path("fuzz-campaign"))
    parser.add_argument("--replay", type=int, help="rebuild case REPLAY into OUT/replay and stop")
    args = parser.parse_args(argv)
    if args.replay is not None:
        bases = fm.build_bases(LIDC / "dicom", LIDC / "ct.nii.gz", args.out / "bases-r")
        case = _case(bases, args.seed, args.replay)
        path = fm.write_case(case, args.out / "replay")
        print(case.kind, case.mutation, path)
        print(fm.read_outcome(path, args.time_limit))
        return 0
    summary = run(args)
    print(json.dumps({k: v for k, v in summary.items() if k != "failure_kinds"}, indent=1))
    for key, entry in summary["failure_kinds"].items():
        print(
            f"{entry['count']:6d}  {key}  (first case {entry['first_case']}: {entry.get('mutation')})"
        )
    return 1 if summary["foreign_or_hang_or_crash"] else 0


if __name__ == "__main__":
    mp.set_start_method("fork")
    raise SystemExit(main())
