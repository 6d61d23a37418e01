"""Fuzz the data-file readers: random and broken files of every supported kind.

Usage::

    PYTHONPATH=src python bench/fuzz_readers.py --minutes 10 [--results bench/RESULTS.md]

Hypothesis generates the inputs: random bytes, valid CSV/TSV/parquet/npy/txt
content (BOM, CRLF, semicolons, gaps, infinities, text cells, repeated and
shuffled times, extreme magnitudes), the same content mutated at the byte
level (flips, cuts, insertions), gzip-wrapped or not, and written under every
supported extension, matching or not. Each file goes through
`lstmae.data.readers.read_data` with random options; one in ``--cli-every``
also goes through the command line (`lstmae.cli.app.main(["explain", FILE])`).

The only acceptable outcomes are a result or an `LstmaeError` (exit code 0 or
2 for the CLI). Anything else - another exception, exit code 1, a hang longer
than ``--hang-seconds``, a result with the wrong type or non-finite values
when missing values were to be filled - is a crash: the input is saved under
``bench/fuzz-crashes/`` (with a ``.crash`` note: what went wrong and the
options) and counted; ``tests/test_cleaning.py`` reads every saved input again. Rounds of examples with fresh seeds run
until the time is up; the summary replaces the text between
``<!-- fuzz:start -->`` and ``<!-- fuzz:end -->`` in the results file.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import os
import signal
import sys
import tempfile
import time
import traceback
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from lstmae.data.readers import SUPPORTED_EXTENSIONS, read_data
from lstmae.errors import LstmaeError

START, END = "<!-- fuzz:start -->", "<!-- fuzz:end -->"
HERE = Path(__file__).resolve().parent


class Hang(Exception):
    """Raised by the alarm when one input takes too long."""


# ------------------------------------------------------------------ content
cells = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.sampled_from(["", " ", "NA", "nan", "inf", "-inf", "1e308", "-1e308", "1e309", "abc", '"1,5"', "0x10", "1_000", "−1", "١٢"]),
    st.text(max_size=6),
)
times = st.one_of(
    st.datetimes(min_value=pd.Timestamp("1700-01-01").to_pydatetime(), max_value=pd.Timestamp("2200-01-01").to_pydatetime()).map(lambda d: d.isoformat()),
    st.integers(-(10**12), 10**12).map(str),
    st.sampled_from(["2024-01-01", "2024-01-01T00:00:00Z", "2024-01-01 00:00+05:00", "not a date", "", "31/12/2024", "2024-13-45"]),
)
names = st.one_of(st.sampled_from(["timestamp", "time", "date", "value", "v", "id", "a", "b", "", "0", "1"]), st.text(max_size=5))


@st.composite
def tables(draw) -> bytes:
    """Delimited text: a header and rows, with the oddities real files have."""
    delimiter = draw(st.sampled_from([",", ";", "\t", "|", " "]))
    n_cols = draw(st.integers(1, 4))
    header = [draw(names) for _ in range(n_cols)]
    if draw(st.booleans()):
        header[0] = draw(st.sampled_from(["timestamp", "time", "date"]))
    n_rows = draw(st.integers(0, 30))
    rows = []
    for _ in range(n_rows):
        row = [draw(times) if header[0] in ("timestamp", "time", "date") else draw(cells)]
        row += [draw(cells) for _ in range(n_cols - 1)]
        if draw(st.integers(0, 9)) == 0:  # ragged
            row = row[: draw(st.integers(0, len(row)))] + [draw(cells)] * draw(st.integers(0, 2))
        rows.append(row)
    if rows and draw(st.booleans()):  # repeated rows/times
        rows.append(list(rows[0]))
    newline = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    text = newline.join(delimiter.join(r) for r in [header, *rows]) + draw(st.sampled_from(["", newline, newline * 3]))
    raw = text.encode("utf-8", errors="surrogatepass")
    if draw(st.booleans()):
        raw = b"\xef\xbb\xbf" + raw
    return raw


@st.composite
def numeric_tables(draw) -> bytes:
    """Mostly valid numeric CSV with a time column: the reader's main path, then policies."""
    n = draw(st.integers(1, 60))
    start = pd.Timestamp("2024-01-01")
    order = draw(st.permutations(range(n))) if draw(st.booleans()) else list(range(n))
    stamps = [start + pd.Timedelta(hours=int(i)) for i in order]
    if draw(st.booleans()) and n > 1:
        stamps[-1] = stamps[0]
    values = draw(st.lists(st.one_of(st.floats(allow_nan=True, allow_infinity=False), st.just(float("nan"))), min_size=n, max_size=n))
    sep = draw(st.sampled_from([",", ";", "\t"]))
    lines = [f"timestamp{sep}value"] + [f"{s.isoformat()}{sep}{'' if np.isnan(v) else repr(v)}" for s, v in zip(stamps, values)]
    return ("\n".join(lines) + "\n").encode()


@st.composite
def parquet_bytes(draw) -> bytes:
    n = draw(st.integers(0, 20))
    data = {}
    for name in draw(st.lists(names, min_size=1, max_size=3, unique=True)):
        kind = draw(st.sampled_from(["float", "int", "str", "time", "nullable", "bool"]))
        if kind == "float":
            data[name] = draw(st.lists(st.floats(), min_size=n, max_size=n))
        elif kind == "int":
            data[name] = draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n))
        elif kind == "str":
            data[name] = draw(st.lists(cells, min_size=n, max_size=n))
        elif kind == "time":
            data[name] = pd.date_range("2024-01-01", periods=n, freq="min")[::-1] if n else pd.DatetimeIndex([])
        elif kind == "nullable":
            data[name] = pd.array(draw(st.lists(st.one_of(st.none(), st.integers(-100, 100)), min_size=n, max_size=n)), dtype="Int64")
        else:
            data[name] = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    buffer = io.BytesIO()
    try:
        pd.DataFrame(data).to_parquet(buffer)
    except Exception:  # pyarrow refuses some generated frames (e.g. mixed objects): that is not the reader's fault
        return b"PAR1"
    return buffer.getvalue()


@st.composite
def npy_bytes(draw) -> bytes:
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=0, max_size=4)))
    dtype = draw(st.sampled_from(["<f8", ">f4", "<i2", "u1", "?", "<c16", "U3", "O", "V4", "<M8[s]", "f2"]))
    size = int(np.prod(shape)) if shape else 1
    buffer = io.BytesIO()
    if dtype == "O":
        np.save(buffer, np.array([{"a": 1}] * max(size, 1), dtype=object), allow_pickle=True)
    else:
        raw = draw(st.binary(min_size=size * np.dtype(dtype).itemsize, max_size=size * np.dtype(dtype).itemsize))
        np.save(buffer, np.frombuffer(raw, dtype=dtype).reshape(shape), allow_pickle=False)
    return buffer.getvalue()


txt_bytes = st.lists(st.one_of(cells, st.floats().map(repr)), max_size=40).flatmap(
    lambda tokens: st.sampled_from([" ", "\n", "\r\n", "\t", ","]).map(lambda sep: sep.join(tokens).encode("utf-8", "surrogatepass"))
)


@st.composite
def mutated(draw, content: st.SearchStrategy[bytes]) -> bytes:
    """``content`` with up to a few byte-level edits: flip, cut, insert, duplicate a slice."""
    raw = bytearray(draw(content))
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["flip", "cut", "insert", "dup", "zero"]))
        at = draw(st.integers(0, max(len(raw) - 1, 0)))
        if op == "flip" and raw:
            raw[at] ^= 1 << draw(st.integers(0, 7))
        elif op == "cut":
            raw = raw[:at]
        elif op == "insert":
            raw[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif op == "dup":
            raw[at:at] = raw[at : at + draw(st.integers(1, 16))]
        elif op == "zero" and raw:
            raw[at : at + 4] = b"\0" * len(raw[at : at + 4])
    return bytes(raw)


contents = st.one_of(
    st.binary(max_size=200),
    parquet_bytes(),
    npy_bytes(),
    mutated(tables()),
    numeric_tables(),
    mutated(numeric_tables()),
    mutated(parquet_bytes()),
    mutated(npy_bytes()),
    mutated(txt_bytes),
)


@st.composite
def cases(draw) -> tuple[bytes, str, dict]:
    raw = draw(contents)
    extension = draw(st.sampled_from(SUPPORTED_EXTENSIONS + (".CSV", ".Parquet")))
    if extension.lower().endswith(".gz") and draw(st.integers(0, 4)) > 0:
        raw = gzip.compress(raw)
        if draw(st.integers(0, 4)) == 0:
            raw = raw[: draw(st.integers(0, len(raw)))]
    options = {
        "missing": draw(st.sampled_from(["interpolate", "error", "keep"])),
        "duplicates": draw(st.sampled_from(["error", "mean", "first"])),
    }
    if extension.lower() not in (".npy", ".txt", ".txt.gz") and draw(st.integers(0, 3)) == 0:
        options[draw(st.sampled_from(["time_column", "id_column", "columns"]))] = draw(names)
    return raw, extension, options


# ------------------------------------------------------------------ checking
class Fuzzer:
    def __init__(self, workdir: Path, crash_dir: Path, hang_seconds: int, cli_every: int) -> None:
        self.workdir, self.crash_dir = workdir, crash_dir
        self.hang_seconds, self.cli_every = hang_seconds, cli_every
        self.inputs = 0
        self.outcomes: Counter[str] = Counter()
        self.crashes: dict[str, str] = {}
        self.other_warnings: Counter[str] = Counter()

    def check(self, raw: bytes, extension: str, options: dict) -> None:
        self.inputs += 1
        path = self.workdir / f"input{extension}"
        path.write_bytes(raw)
        problem = self._read(path, options)
        if problem is None and self.inputs % self.cli_every == 0:
            problem = self._cli(path, options)
        if problem is not None:
            self._record(problem, raw, extension, options)

    def _read(self, path: Path, options: dict) -> str | None:
        with _alarm(self.hang_seconds), warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                loaded = read_data(path, **options)
            except LstmaeError as exc:
                self.outcomes[f"refused: {type(exc).__name__}"] += 1
                if "\n" in str(exc):
                    return f"multi-line error message: {str(exc)[:200]!r}"
                return None
            except Hang:
                return f"hang: read_data took over {self.hang_seconds} s"
            except Exception as exc:  # the crash we are looking for
                return f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}"
        for warning in caught:
            if warning.category.__name__ != "LstmaeWarning":
                self.other_warnings[f"{warning.category.__name__}: {str(warning.message)[:90]}"] += 1
        self.outcomes[f"read: {loaded.kind}"] += 1
        values = np.asarray(loaded.data, dtype=np.float64)
        if values.dtype != np.float64 or values.size == 0:
            return f"bad result: dtype {values.dtype}, shape {values.shape}"
        if np.isinf(values).any():
            return "bad result: an infinite value came through"
        if options["missing"] != "keep" and np.isnan(values).any():
            return f"bad result: NaN left with missing={options['missing']!r}"
        if loaded.kind == "series" and not loaded.data.index.is_monotonic_increasing and not isinstance(loaded.data.index, pd.RangeIndex):
            return "bad result: series index not sorted"
        return None

    def _cli(self, path: Path, options: dict) -> str | None:
        from lstmae.cli.app import main

        args = ["explain", str(path), "--timesteps", "2", "--units", "2", "--missing", options["missing"] if options["missing"] != "keep" else "error"]
        args += ["--duplicates", options["duplicates"]]
        stderr = io.StringIO()
        with _alarm(self.hang_seconds * 3), contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(stderr):
            try:
                code = main(args)
            except Hang:
                return "hang: lstmae explain took too long"
            except BaseException as exc:  # main must never raise
                return f"CLI raised {type(exc).__name__}: {exc}"
        self.outcomes[f"cli exit {code}"] += 1
        text = stderr.getvalue()
        if code not in (0, 2) or "Traceback" in text:
            return f"CLI exit {code}: {text.strip()[:300]}"
        errors = [line for line in text.splitlines() if line.startswith("lstmae: error")]
        if code == 2 and len(errors) != 1:
            return f"CLI exit 2 without exactly one error line: {text.strip()[:300]}"
        return None

    def _record(self, problem: str, raw: bytes, extension: str, options: dict) -> None:
        key = problem.splitlines()[0][:160]
        self.outcomes["CRASH"] += 1
        if key in self.crashes:
            return
        digest = hashlib.sha256(raw).hexdigest()[:12]
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        (self.crash_dir / f"{digest}{extension}").write_bytes(raw)
        (self.crash_dir / f"{digest}.crash").write_text(f"{problem}\noptions: {options!r}\n")
        self.crashes[key] = f"{digest}{extension}"
        print(f"CRASH {digest}{extension}: {key}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _alarm(seconds: int):
    def ring(signum, frame):  # noqa: ANN001
        raise Hang()

    previous = signal.signal(signal.SIGALRM, ring)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def run(minutes: float, hang_seconds: int, cli_every: int, round_size: int) -> tuple[Fuzzer, float, int]:
    with tempfile.TemporaryDirectory(prefix="lstmae-fuzz-") as tmp:
        fuzzer = Fuzzer(Path(tmp), HERE / "fuzz-crashes", hang_seconds, cli_every)
        started = time.monotonic()
        deadline = started + minutes * 60
        rounds = 0
        while time.monotonic() < deadline:
            @seed(rounds)
            @settings(
                max_examples=round_size, deadline=None, database=None, derandomize=False,
                suppress_health_check=list(HealthCheck), phases=["generate"],
            )
            @given(cases())
            def one(case):  # noqa: ANN001
                if time.monotonic() < deadline:
                    fuzzer.check(*case)

            one()
            rounds += 1
            print(f"{time.monotonic() - started:7.0f} s  {fuzzer.inputs} inputs  {len(fuzzer.crashes)} distinct crash(es)", file=sys.stderr, flush=True)
        return fuzzer, time.monotonic() - started, rounds


def write_results(path: Path, fuzzer: Fuzzer, seconds: float, rounds: int, notes: str) -> None:
    import hypothesis
    import pyarrow
    import torch

    lines = [
        START,
        "## Fuzzing the file readers (`bench/fuzz_readers.py`)",
        "",
        f"Run `{' '.join(['python', *sys.argv])}` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: "
        f"{seconds / 60:.1f} minutes, {fuzzer.inputs} inputs in {rounds} hypothesis rounds "
        f"({fuzzer.inputs / max(seconds, 1e-9):.0f} inputs/s, 1 CPU thread under `nice`; one input in "
        f"{fuzzer.cli_every} also through `lstmae explain FILE`). pandas {pd.__version__}, numpy {np.__version__}, "
        f"pyarrow {pyarrow.__version__}, hypothesis {hypothesis.__version__}, torch {torch.__version__}.",
        "",
        f"**Crashes found in this run: {len(fuzzer.crashes)}**"
        + ("." if not fuzzer.crashes else " (inputs saved under `bench/fuzz-crashes/`):"),
    ]
    lines += [f"- `{name}`: {key}" for key, name in fuzzer.crashes.items()]
    lines += ["", "Outcomes:", ""]
    lines += [f"- {name}: {count}" for name, count in sorted(fuzzer.outcomes.items())]
    if fuzzer.other_warnings:
        lines += ["", "Warnings from libraries that reached the reader (not crashes; most frequent first):", ""]
        lines += [f"- {count} x {name}" for name, count in fuzzer.other_warnings.most_common(8)]
    if notes:
        lines += ["", notes.strip()]
    lines.append(END)
    block = "\n".join(lines)
    text = path.read_text() if path.exists() else "# Benchmark results\n"
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--hang-seconds", type=int, default=20)
    parser.add_argument("--cli-every", type=int, default=25)
    parser.add_argument("--round-size", type=int, default=300)
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    parser.add_argument("--notes", type=Path, default=None, help="Markdown appended to the summary (what was fixed).")
    parser.add_argument("--no-write", action="store_true", help="Print the summary only.")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    os.environ.setdefault("COLUMNS", "200")
    fuzzer, seconds, rounds = run(args.minutes, args.hang_seconds, args.cli_every, args.round_size)
    notes = args.notes.read_text() if args.notes is not None and args.notes.exists() else ""
    if not args.no_write:
        write_results(args.results, fuzzer, seconds, rounds, notes)
    print(f"{fuzzer.inputs} inputs in {seconds:.0f} s; {len(fuzzer.crashes)} distinct crash(es)")
    for name, count in sorted(fuzzer.outcomes.items()):
        print(f"  {name}: {count}")
    for name, count in fuzzer.other_warnings.most_common(8):
        print(f"  warning {count} x {name}")
    for key, name in fuzzer.crashes.items():
        print(f"  {name}: {key}")
    return 1 if fuzzer.crashes else 0


if __name__ == "__main__":
    sys.exit(main())
