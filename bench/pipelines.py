"""Framework overhead per pipeline step: Shipyard's executors vs Prefect and Metaflow.

The workload is a chain of N trivial steps (each adds 1 to its input). For Shipyard it is run
twice on a fresh workspace: the first run executes every step, the second finds every step in
the cache. Overhead per step = wall time of the run / N (the steps themselves take
microseconds). For the comparison tools the same chain runs in their own environment
(``bench/.venv-pipelines``, never the dev extras), if it is installed:

    python3 -m venv bench/.venv-pipelines && bench/.venv-pipelines/bin/pip install prefect metaflow
    .venv/bin/python bench/pipelines.py --steps 20 --repeat 5

Prints a table and ``--json`` figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OTHER_VENV = ROOT / "bench" / ".venv-pipelines"

CHAIN = """
from shipyard.pipelines import pipeline, step

@step
def inc(x: int) -> int:
    return x + 1

def make(n):
    @pipeline(name=f"chain{n}")
    def chain(start: int = 0):
        value = start
        for i in range(n):
            value = inc.options(name=f"inc{i}")(value)
    return chain
"""

PREFECT = """
import os, sys, time
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "CRITICAL")
from prefect import flow, task

@task
def inc(x):
    return x + 1

@flow
def chain(n):
    value = 0
    for _ in range(n):
        value = inc(value)
    return value

n = int(sys.argv[1])
chain(n)  # warm-up: the ephemeral API server starts here
t = time.perf_counter()
chain(n)
print(time.perf_counter() - t)
"""

METAFLOW = """
from metaflow import FlowSpec, step

class Chain(FlowSpec):
    @step
    def start(self):
        self.value = 0
        self.next(self.s0)
{steps}
    @step
    def end(self):
        pass

if __name__ == "__main__":
    Chain()
"""


def _shipyard(steps: int, executor: str, repeat: int) -> dict[str, float]:
    from shipyard.config import Settings
    from shipyard.pipelines import run
    from shipyard.workspace import Workspace

    module = Path(tempfile.mkdtemp()) / "bench_chain.py"
    module.write_text(CHAIN)
    sys.path.insert(0, str(module.parent))
    import bench_chain  # type: ignore[import-not-found]

    chain = bench_chain.make(steps)
    executed, cached = [], []
    for i in range(repeat):
        # Start values far apart, so no step of one run has the input of another's.
        start = 1_000_000 * (i + 1)
        with (
            tempfile.TemporaryDirectory() as home,
            Workspace.open(Settings.from_env({}, home=home)) as ws,
        ):
            run(chain, workspace=ws, executor=executor, max_workers=2)  # warm-up: imports, pool
            t = time.perf_counter()
            first = run(chain, {"start": start}, workspace=ws, executor=executor, max_workers=2)
            executed.append(time.perf_counter() - t)
            t = time.perf_counter()
            second = run(chain, {"start": start}, workspace=ws, executor=executor, max_workers=2)
            cached.append(time.perf_counter() - t)
            assert first.status == second.status == "SUCCEEDED"
            assert not any(s.cached for s in first.steps)
            assert all(s.cached for s in second.steps)
    return {
        "executed_ms_per_step": statistics.median(executed) / steps * 1000,
        "cached_ms_per_step": statistics.median(cached) / steps * 1000,
    }


def _other(tool: str, steps: int, repeat: int) -> dict[str, float] | str:
    python = OTHER_VENV / "bin" / "python"
    if not python.exists():
        return f"not installed ({OTHER_VENV} missing)"
    check = subprocess.run([python, "-c", f"import {tool}"], capture_output=True, text=True)
    if check.returncode != 0:
        return f"not installed in {OTHER_VENV}"
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "HOME": tmp, "PREFECT_HOME": tmp, "DO_NOT_TRACK": "1"}
        if tool == "prefect":
            script = Path(tmp) / "chain.py"
            script.write_text(PREFECT)
            for _ in range(repeat):
                out = subprocess.run(
                    [python, script, str(steps)], capture_output=True, text=True, env=env, cwd=tmp
                )
                if out.returncode != 0:
                    return f"failed: {out.stderr.strip().splitlines()[-1:]}"
                times.append(float(out.stdout.strip().splitlines()[-1]))
        else:
            body = "".join(
                textwrap.indent(
                    f"\n@step\ndef s{i}(self):\n    self.value += 1\n    self.next(self.{'s' + str(i + 1) if i + 1 < steps else 'end'})\n",
                    "    ",
                )
                for i in range(steps)
            )
            script = Path(tmp) / "chain_flow.py"
            script.write_text(METAFLOW.format(steps=body))
            env["METAFLOW_DEFAULT_DATASTORE"] = "local"
            env["USERNAME"] = "bench"
            for _ in range(repeat):
                t = time.perf_counter()
                out = subprocess.run(
                    [python, script, "run", "--max-workers", "2"],
                    capture_output=True,
                    text=True,
                    env=env,
                    cwd=tmp,
                )
                if out.returncode != 0:
                    return f"failed: {out.stderr.strip().splitlines()[-1:]}"
                times.append(time.perf_counter() - t)
    per_step = statistics.median(times) / (steps + (2 if tool == "metaflow" else 0)) * 1000
    return {"executed_ms_per_step": per_step}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--skip-others", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    results: dict[str, object] = {
        "shipyard inprocess": _shipyard(args.steps, "inprocess", args.repeat),
        "shipyard process": _shipyard(args.steps, "process", max(1, args.repeat // 2)),
    }
    if not args.skip_others:
        results["prefect"] = _other("prefect", args.steps, args.repeat)
        results["metaflow"] = _other("metaflow", args.steps, max(1, args.repeat // 2))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"{args.steps}-step chain of trivial steps, median of {args.repeat} runs")
    print(f"{'tool':<22}{'executed ms/step':>18}{'cached ms/step':>16}")
    for tool, figures in results.items():
        if isinstance(figures, str):
            print(f"{tool:<22}{figures}")
            continue
        cached = figures.get("cached_ms_per_step")
        print(
            f"{tool:<22}{figures['executed_ms_per_step']:>18.2f}{'-' if cached is None else f'{cached:.2f}':>16}"
        )


if __name__ == "__main__":
    main()
