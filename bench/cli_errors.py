"""How long the command line takes to refuse bad input, verb by verb (issue 23, item 4).

Usage::

    PYTHONPATH=src python bench/cli_errors.py --label after [--src src] [--runs 3]

Each case is one bad invocation of a verb (a missing file, a bad option, a
missing model), run as a real process (``python -m lstmae ...``, the way a
user meets it) ``--runs`` times; the table gives the median wall-clock time,
the exit code and the start of the error line. ``--src`` is the source tree
put first on PYTHONPATH, so the same script times an older checkout (e.g.
``git archive BASE src | tar -x -C /tmp/base`` then ``--src /tmp/base/src
--label before``). Results are kept by label in ``bench/cli-errors.json``;
``bench/RESULTS-cli-errors.md`` is rewritten with one column per label.

A bad option or path needs no torch, Lightning or estimator: the command line
checks it first, so every case should answer in well under a second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
STORE = HERE / "cli-errors.json"
RESULTS = HERE / "RESULTS-cli-errors.md"

# (verb, what is wrong, arguments): {d} is a scratch folder holding ok.csv (a short series),
# model.safetensors (a tiny fitted model) and fleet/ (an empty folder); nothing named "nope" exists.
CASES: list[tuple[str, str, list[str]]] = [
    ("fit", "missing data file", ["fit", "{d}/nope.csv", "-o", "{d}/m.safetensors"]),
    ("fit", "--timesteps 0", ["fit", "{d}/ok.csv", "-o", "{d}/m.safetensors", "--timesteps", "0"]),
    ("fit", "--epochs many", ["fit", "{d}/ok.csv", "-o", "{d}/m.safetensors", "--epochs", "many"]),
    ("fit", "--missing drop", ["fit", "{d}/ok.csv", "-o", "{d}/m.safetensors", "--missing", "drop"]),
    ("fit", "output is a directory", ["fit", "{d}/ok.csv", "-o", "{d}"]),
    ("fit", "--resume, no checkpoint", ["fit", "{d}/ok.csv", "-o", "{d}/m.safetensors", "--resume"]),
    ("score", "missing model file", ["score", "{d}/ok.csv", "-m", "{d}/nope.safetensors"]),
    ("score", "missing data file", ["score", "{d}/nope.csv", "-m", "{d}/model.safetensors"]),
    ("score", "--missing drop", ["score", "{d}/ok.csv", "-m", "{d}/model.safetensors", "--missing", "drop"]),
    ("detect", "missing model file", ["detect", "{d}/ok.csv", "-m", "{d}/nope.safetensors"]),
    ("detect", "missing data file", ["detect", "{d}/nope.csv", "-m", "{d}/model.safetensors"]),
    ("encode", "missing data file", ["encode", "{d}/nope.csv", "-m", "{d}/model.safetensors", "-o", "{d}/e.npy"]),
    ("encode", "output .xlsx", ["encode", "{d}/ok.csv", "-m", "{d}/model.safetensors", "-o", "{d}/e.xlsx"]),
    ("reconstruct", "missing data file", ["reconstruct", "{d}/nope.csv", "-m", "{d}/model.safetensors"]),
    ("explain", "missing model file", ["explain", "-m", "{d}/nope.safetensors"]),
    ("explain", "--timesteps 0", ["explain", "--length", "100", "--timesteps", "0"]),
    ("report", "missing data file", ["report", "{d}/nope.csv", "-m", "{d}/model.safetensors", "-o", "{d}/r.html"]),
    ("evaluate", "missing folder", ["evaluate", "{d}/nope", "--format", "ucr"]),
    ("evaluate", "--params unknown key", ["evaluate", "{d}/ok.csv", "--format", "labelled-csv", "--params", '{"epoch": 1}']),
    ("fleet fit", "missing data", ["fleet", "fit", "{d}/nope.csv", "--series-column", "s", "-o", "{d}/f"]),
    ("fleet fit", "--timesteps ten", ["fleet", "fit", "{d}/ok.csv", "--series-column", "s", "-o", "{d}/f", "--timesteps", "ten"]),
    ("fleet score", "no fleet", ["fleet", "score", "{d}/ok.csv", "-m", "{d}/fleet", "-o", "{d}/s"]),
    ("fleet detect", "no fleet", ["fleet", "detect", "{d}/ok.csv", "-m", "{d}/fleet"]),
]


def _prepare(folder: Path, env: dict) -> None:
    rows = "\n".join(f"2024-01-01T{h % 24:02d}:{h // 24:02d}:00,{(h % 12) / 12:.4f}" for h in range(120))
    (folder / "ok.csv").write_text("timestamp,value\n" + rows + "\n")
    (folder / "fleet").mkdir()
    done = subprocess.run(
        [sys.executable, "-m", "lstmae", "fit", str(folder / "ok.csv"), "-o", str(folder / "model.safetensors"),
         "--timesteps", "8", "--units", "2", "--epochs", "1", "--seed", "0", "--quiet"],
        capture_output=True, text=True, env=env,
    )
    if done.returncode != 0:
        raise SystemExit(f"could not fit the scratch model: {done.stderr.strip()}")


def _time(args: list[str], env: dict, runs: int) -> dict:
    seconds, code, line = [], None, ""
    for _ in range(runs):
        began = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "lstmae", *args], capture_output=True, text=True, env=env)
        seconds.append(time.perf_counter() - began)
        code, lines = done.returncode, [x for x in done.stderr.splitlines() if x.strip()]
        line = lines[0] if lines else ""
    return {"median_s": statistics.median(seconds), "min_s": min(seconds), "runs": runs, "exit": code, "message": line,
            "lines": len(lines)}


def _table(store: dict) -> str:
    labels = list(store["runs"])
    head = "| verb | bad input | " + " | ".join(f"{label} (s)" for label in labels) + " | exit | error line (last label) |"
    rows = [head, "|" + "---|" * (len(labels) + 4)]
    for verb, what, _ in CASES:
        key = f"{verb}: {what}"
        found = [store["runs"][label]["cases"].get(key) for label in labels]
        times = [f"{f['median_s']:.2f} ({f['min_s']:.2f})" if f and "min_s" in f else f"{f['median_s']:.2f}" if f else "-"
                 for f in found]
        last = next((f for f in reversed(found) if f), None)
        message = (last["message"][:90] + ("..." if len(last["message"]) > 90 else "")).replace("|", "\\|") if last else ""
        exits = "/".join(str(f["exit"]) if f else "-" for f in found)
        rows.append(f"| {verb} | {what} | " + " | ".join(times) + f" | {exits} | `{message}` |")
    summary = []
    for label in labels:
        times = [f["median_s"] for f in store["runs"][label]["cases"].values()]
        summary.append(f"{statistics.median(times):.2f} / {max(times):.2f}")
    rows.append("| **all** | median / slowest case | " + " | ".join(summary) + " | | |")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", required=True, help="Column name for this run, e.g. before / after.")
    parser.add_argument("--src", default=str(HERE.parent / "src"), help="Source tree to time (first on PYTHONPATH).")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--note", default="", help="A line about this run (commit, machine load).")
    options = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(Path(options.src).resolve()), "PYTHONWARNINGS": "ignore"}
    store = json.loads(STORE.read_text()) if STORE.is_file() else {"runs": {}}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        _prepare(folder, env)
        cases = {}
        for verb, what, args in CASES:
            found = _time([a.replace("{d}", str(folder)) for a in args], env, options.runs)
            found["message"] = found["message"].replace(str(folder), "{d}")
            cases[f"{verb}: {what}"] = found
            print(f"{verb:>12} | {what:<26} | {found['median_s']:5.2f} s | exit {found['exit']} | {found['message'][:80]}", flush=True)
    store["runs"][options.label] = {
        "cases": cases, "note": options.note, "python": platform.python_version(), "cpus": os.cpu_count(),
        "load": os.getloadavg()[0], "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    STORE.write_text(json.dumps(store, indent=1) + "\n")
    notes = "\n".join(
        f"- **{label}**: {run['when']}, Python {run['python']}, {run['cpus']} CPUs, load average {run['load']:.1f}"
        + (f"; {run['note']}" if run["note"] else "")
        for label, run in store["runs"].items()
    )
    text = (
        "# Time to refuse bad input, per verb\n\n"
        "`python bench/cli_errors.py --label LABEL [--src TREE]`: each bad invocation run as a process "
        f"(`python -m lstmae ...`), median (and fastest) wall-clock seconds of {options.runs} runs. The machine is "
        "shared (2 cores, other jobs running: see the load averages), so single runs vary by up to a second; the "
        "fastest run is the cost without contention. Written by the script.\n\n"
        f"{notes}\n\n{_table(store)}\n"
    )
    RESULTS.write_text(text)
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
