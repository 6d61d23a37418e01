"""Issue 5, through the command line: every bad input, parameter and model file gives a clean answer.

One table: each row builds its files, runs `lstmae.cli.app.main`, and states the
exit code and what stderr must say. Errors are exactly one line
(``lstmae: error: ...``) with exit code 2; repaired input is one
``lstmae: warning: ...`` line per repair, and the results stay finite.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmae.cli.app import main
from lstmae.persistence.model_file import FORMAT_VERSION

N = 120  # rows of the small test series


def sine_table(n: int = N, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = np.sin(2 * np.pi * np.arange(n) / 12) + 0.05 * rng.standard_normal(n)
    return pd.DataFrame({"timestamp": pd.date_range("2024-01-01", periods=n, freq="h"), "value": values})


def csv_text(frame: pd.DataFrame, sep: str = ",") -> str:
    return frame.to_csv(index=False, sep=sep, float_format="%.17g")


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A directory with the plain series and a tiny model fitted on it."""
    root = tmp_path_factory.mktemp("reliability")
    (root / "plain.csv").write_text(csv_text(sine_table()))
    code = main(["fit", str(root / "plain.csv"), "-o", str(root / "model.safetensors"), "--timesteps", "8",
                 "--units", "3", "--epochs", "1", "--batch-size", "64", "--seed", "0", "--quiet"])
    assert code == 0
    return root


# ------------------------------------------------------------------ file makers
def with_cells(changes: dict[int, str], sep: str = ",", header: str = "timestamp,value") -> Callable[[Path], str]:
    """The plain series with some value cells replaced by raw text (row numbers count data rows from 1)."""

    def make(path: Path) -> str:
        lines = csv_text(sine_table()).splitlines()
        for row, text in changes.items():
            lines[row] = lines[row].split(",")[0] + "," + text
        lines[0] = header
        return "\n".join(line.replace(",", sep) for line in lines) + "\n"

    return make


def reordered(order: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], str]:
    return lambda path: csv_text(order(sine_table()))


def repeated(frame: pd.DataFrame) -> pd.DataFrame:
    again = frame.iloc[[5]].assign(value=frame["value"].iloc[5] + 1.0)
    return pd.concat([frame.iloc[:10], again, frame.iloc[10:]], ignore_index=True)


@dataclass
class Case:
    name: str
    file: str | None  # name of the data file to create (None: use plain.csv)
    content: Callable[[Path], str | bytes] | None
    args: list[str]  # {data}, {model}, {out} and {dir} are filled in
    code: int
    stderr: str  # regex that the error (or warning) line must match
    check: Callable[[Path, str], None] | None = field(default=None)


def finite_scores(directory: Path, out: str) -> None:
    scores = pd.read_csv(directory / "scores.csv")
    assert len(scores) > 0 and np.isfinite(scores["score"]).all()


def same_as_plain(directory: Path, out: str) -> None:
    plain = pd.read_csv(directory / "plain-scores.csv")
    np.testing.assert_allclose(pd.read_csv(directory / "scores.csv")["score"], plain["score"], rtol=1e-6)


def fit_then_score(directory: Path, out: str) -> None:
    """The model written by the case's fit scores its own data with finite numbers."""
    model = directory / "case-model.safetensors"
    assert main(["score", str(directory / "case.csv"), "-m", str(model), "-o", str(directory / "scores.csv")]) == 0
    finite_scores(directory, out)


SCORE = ["score", "{data}", "-m", "{model}", "-o", "{dir}/scores.csv"]
FIT = ["fit", "{data}", "-o", "{dir}/case-model.safetensors", "--timesteps", "8", "--units", "3", "--epochs", "1",
       "--batch-size", "64", "--seed", "0", "--quiet"]
NOWHERE = "{dir}/never-read.csv"  # a data path that does not exist: parameters must fail first
#: A clean signal's fit: nothing on stderr, or the one-line note that the parts' levels are their floors.
CLEAN = r"^(lstmae: warning: clean signal[^\n]*\n?)?$"

CASES = [
    # ---- missing values, infinities, text
    Case("gaps are interpolated", "case.csv", with_cells({3: "", 4: "", 50: "NaN"}), SCORE, 0,
         r"^lstmae: warning: .*filled 3 missing value\(s\) by linear interpolation in time", finite_scores),
    Case("gaps refused with --missing error", "case.csv", with_cells({3: "", 4: ""}), [*SCORE, "--missing", "error"], 2,
         r"column 'value' .* missing value at data row 3 \(2 such cells"),
    Case("all-missing column", "case.csv", lambda p: csv_text(sine_table().assign(empty=np.nan)), FIT, 2,
         r"column 'empty' .* has no values: all 120 rows are missing"),
    Case("infinity", "case.csv", with_cells({7: "inf"}), SCORE, 2, r"column 'value' .* infinite value \(inf\) at data row 7"),
    Case("overflowing number", "case.csv", with_cells({9: "-1e400"}), SCORE, 2, r"infinite value \(-inf\) at data row 9"),
    Case("text in a number column", "case.csv", with_cells({4: "abc"}), SCORE, 2,
         r"column 'value' .* mixes numbers and text: data row 4 holds 'abc'"),
    # ---- timestamps
    Case("unsorted timestamps are sorted", "case.csv", reordered(lambda f: f.iloc[::-1]), SCORE, 0,
         r"^lstmae: warning: .*not in time order \(data row 2, .*sorted them by 'timestamp'", finite_scores),
    Case("duplicated timestamp refused", "case.csv", reordered(repeated), SCORE, 2,
         r"duplicate time 2024-01-01 05:00:00 .*data rows 6 and 11.*--duplicates mean"),
    Case("duplicates mean", "case.csv", reordered(repeated), [*SCORE, "--duplicates", "mean"], 0,
         r"^lstmae: warning: .*1 row\(s\) repeat an earlier time.*their mean", finite_scores),
    Case("duplicates first", "case.csv", reordered(repeated), [*SCORE, "--duplicates", "first"], 0,
         r"^lstmae: warning: .*kept the first row", same_as_plain),
    # ---- delimiters and encodings: same scores as the plain file
    Case("semicolons", "case.csv", lambda p: csv_text(sine_table(), ";"), SCORE, 0, r"^$", same_as_plain),
    Case("tabs (.tsv)", "case.tsv", lambda p: csv_text(sine_table(), "\t"), SCORE, 0, r"^$", same_as_plain),
    Case("byte-order mark", "case.csv", lambda p: "\ufeff" + csv_text(sine_table()), SCORE, 0, r"^$", same_as_plain),
    Case("CRLF and gzip", "case.csv.gz", lambda p: gzip.compress(csv_text(sine_table()).replace("\n", "\r\n").encode()),
         SCORE, 0, r"^$", same_as_plain),
    # ---- magnitudes
    # a constant series is the cleanest signal: the parts' levels are their floors, and lstmae says so in one line
    Case("constant series", "case.csv", lambda p: csv_text(sine_table().assign(value=3.25)), FIT, 0, CLEAN, fit_then_score),
    Case("values near 1e308", "case.csv", lambda p: csv_text(sine_table().assign(value=lambda f: f["value"] * 1.6e308)),
         # the few epochs of FIT may leave the model near the mean: lstmae then says so, in one line
         FIT, 0, r"^(lstmae: warning: mean-collapse[^\n]*\n?)?$", fit_then_score),
    Case("huge constant", "case.csv", lambda p: csv_text(sine_table().assign(value=-1.7976931348623157e308)), FIT, 0, CLEAN,
         fit_then_score),
    # ---- files that are not data
    Case("empty file", "case.csv", lambda p: "", SCORE, 2, r"case\.csv is empty \(0 bytes\)"),
    Case("header only", "case.csv", lambda p: "timestamp,value\n", SCORE, 2, r"has a header row but no data rows"),
    Case("blank lines only", "case.csv", lambda p: "\n\n  \n", SCORE, 2, r"is empty \(only blank lines\)"),
    Case("directory", None, None, ["score", "{dir}", "-m", "{model}"], 2, r"is a directory, not a data file"),
    Case("no such file", None, None, ["score", "{dir}/nope.csv", "-m", "{model}"], 2, r"no such file"),
    Case("binary garbage", "case.csv", lambda p: bytes(range(256)) * 4, SCORE, 2, r"holds binary data \(a NUL byte at offset 0\)"),
    Case("Windows-1252 text", "case.csv", lambda p: csv_text(sine_table()).replace("value", "température").encode("cp1252"), SCORE, 2,
         r"is not UTF-8 text \(byte 0xe9 at offset 14\); save it as UTF-8"),
    Case("CSV named .parquet", "case.parquet", lambda p: csv_text(sine_table()), SCORE, 2, r"cannot read .* as parquet"),
    Case("parquet named .csv", "case.csv", lambda p: _parquet_bytes(), SCORE, 2, r"case\.csv is a Parquet file, not UTF-8 text; name it \.parquet"),
    Case("gzip named .csv", "case.csv", lambda p: gzip.compress(b"timestamp,value\n"), SCORE, 2, r"is gzip-compressed, not UTF-8 text; name it \.csv\.gz"),
    Case("Excel workbook named .csv", "case.csv", lambda p: b"PK\x03\x04" + bytes(60), SCORE, 2, r"is a ZIP archive \(an Excel \.xlsx workbook\?\)"),
    Case("UTF-16 text", "case.csv", lambda p: csv_text(sine_table()).encode("utf-16"), SCORE, 2, r"is UTF-16 text, not UTF-8 text; save it as UTF-8"),
    Case("NUL bytes in text", "case.txt", lambda p: b"1\n2\n\x00\x003\n", SCORE, 2, r"holds binary data \(a NUL byte at offset 4\)"),
    Case("text named .npy", "case.npy", lambda p: "1\n2\n3\n", SCORE, 2, r"case\.npy is not a \.npy file \(it starts with b'1\\n2\\n3\\n'"),
    Case("parquet named .npy", "case.npy", lambda p: _parquet_bytes(), SCORE, 2, r"case\.npy is not a \.npy file \(it is a Parquet file\)"),
    Case("decimal commas with semicolons", "case.csv", lambda p: csv_text(sine_table(), ";").replace(".", ","), SCORE, 0, r"^$", same_as_plain),
    Case("thousands separators", "case.csv", with_cells({2: '"1,234"'}), SCORE, 2,
         r"mixes numbers and text: data row 2 holds '1,234' \('1,234' looks like a number with a decimal comma or thousands"),
    Case("several UTC offsets (daylight saving time)", "case.csv",
         lambda p: csv_text(sine_table().assign(timestamp=lambda f: [(t + pd.Timedelta(hours=int(i >= 60))).isoformat() + ("+01:00" if i < 60 else "+02:00") for i, t in enumerate(f["timestamp"])])),
         SCORE, 0, r"^lstmae: warning: .*carry different UTC offsets .*converted them all to UTC", finite_scores),
    Case("values far outside the training range", "case.csv", with_cells({10: "1e308", 11: "-1.7e308"}), SCORE, 0, r"^$", finite_scores),
    Case("CSV named .txt", "case.txt", lambda p: csv_text(sine_table()), SCORE, 2, r"holds a non-number 'timestamp,value'"),
    Case("not gzip", "case.csv.gz", lambda p: csv_text(sine_table()), SCORE, 2, r"cannot decompress .*not valid gzip"),
    Case("unknown extension", "case.xlsx", lambda p: "x", SCORE, 2, r"unsupported file type.*\.csv"),
    Case("series shorter than a window", "case.csv", lambda p: "value\n1\n2\n3\n", SCORE, 2,
         r"3 timesteps, fewer than the model's timesteps=8"),
    # ---- parameters: checked before the data is even opened (the data path does not exist)
    *[
        Case(f"parameter {option} {value}", None, None, ["fit", NOWHERE, "-o", "{dir}/m.safetensors", option, value], 2, pattern)
        for option, value, pattern in [
            ("--timesteps", "1", r"timesteps must be >= 2 .*got 1"),
            ("--timesteps", "ten", r"--timesteps must be 'auto' or an integer >= 2, got 'ten'"),
            ("--units", "0", r"units must be in \[1, 4096\], got 0"),
            ("--units", "64,99999", r"units must be in \[1, 4096\], got \[64, 99999\]"),
            ("--epochs", "0", r"epochs must be an integer >= 1, got 0"),
            ("--batch-size", "0", r"--batch-size must be an integer >= 1, got 0"),
            ("--stride", "0", r"stride must be an integer >= 1, got 0"),
            ("--architecture", "dense", r"architecture must be one of \['repeat', 'sequence'\], got 'dense'"),
            ("--validation-split", "1", r"--validation-split must be in \[0, 1\), got 1.0"),
            ("--learning-rate", "-0.1", r"--learning-rate must be in \(0, 10\], got -0.1"),
            ("--patience", "0", r"patience must be an integer >= 1, got 0"),
            ("--threshold", "-1", r"threshold must be 'auto', 'pot' or a finite number >= 0, got -1.0"),
            ("--threshold", "nan", r"threshold must be 'auto', 'pot' or a finite number >= 0, got nan"),
            ("--missing", "drop", r"missing must be one of interpolate, error, keep; got 'drop'"),
            ("--duplicates", "last", r"duplicates must be one of error, mean, first; got 'last'"),
            ("--device", "tpu", r"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got 'tpu'"),
            ("--epochs", "many", r"--epochs must be an integer >= 1, got 'many'"),
        ]
    ],
    Case("scoring option checked before the model is opened", None, None,
         ["score", NOWHERE, "-m", "{dir}/no-model.safetensors", "--missing", "skip"], 2, r"missing must be one of .*got 'skip'"),
    Case("train-end beyond the data", None, None, [*FIT[:1], "{dir}/plain.csv", *FIT[2:], "--train-end", "500"], 2,
         r"train_end='500' is outside the allowed range 1\.\.120"),
    Case("train-end time after the data", None, None, [*FIT[:1], "{dir}/plain.csv", *FIT[2:], "--train-end", "2030-01-01"], 2,
         r"train_end='2030-01-01' leaves no training rows or lies after the data"),
    Case("timesteps longer than the series", None, None,
         ["fit", "{dir}/plain.csv", "-o", "{dir}/case-model.safetensors", "--timesteps", "200", "--quiet"], 2,
         r"120 timesteps, fewer than timesteps=200"),
    Case("stride beyond timesteps", None, None, [*FIT[:1], "{dir}/plain.csv", *FIT[2:], "--stride", "9"], 2,
         r"stride=9 is larger than timesteps=8"),
    Case("detect threshold below zero", None, None, ["detect", "{dir}/plain.csv", "-m", "{model}", "--threshold", "-1"], 2,
         r"threshold must be .*>= 0.*-1"),
    Case("encode stride zero", None, None, ["encode", "{dir}/plain.csv", "-m", "{model}", "-o", "{dir}/e.npy", "--stride", "0"], 2,
         r"stride must be an integer >= 1, got 0"),
    Case("fit output is a directory", None, None, ["fit", NOWHERE, "-o", "{dir}"], 2, r"--output .* is a directory"),
    Case("fit output cannot be written", None, None, ["fit", NOWHERE, "-o", "/proc/lstmae/m.safetensors"], 2,
         r"--output '/proc/lstmae/m\.safetensors' cannot be written: .*choose a writable directory"),
    Case("a pipe as data", "case.csv", None, SCORE, 2, r"is not a regular file \(a pipe, socket or device\)"),
    Case("resume without a checkpoint", None, None, [*FIT[:1], "{dir}/plain.csv", *FIT[2:], "--resume"], 2,
         r"--resume: no checkpoint .*case-model\.safetensors\.ckpt.*run without --resume"),
]


def _parquet_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    sine_table().to_parquet(buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cli_answers_cleanly(capsys, base, tmp_path, case):
    for name in ("plain.csv", "model.safetensors"):
        (tmp_path / name).write_bytes((base / name).read_bytes())
    data = tmp_path / "plain.csv"
    if case.file is not None:
        data = tmp_path / case.file
        if case.content is None:
            os.mkfifo(data)
        else:
            content = case.content(data)
            data.write_bytes(content if isinstance(content, bytes) else content.encode())
    if case.check is same_as_plain:
        assert main(["score", str(tmp_path / "plain.csv"), "-m", str(tmp_path / "model.safetensors"), "-o", str(tmp_path / "plain-scores.csv")]) == 0
        capsys.readouterr()
    args = [a.format(data=data, model=tmp_path / "model.safetensors", dir=tmp_path) for a in case.args]
    code = main(args)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("wrote ")]
    assert code == case.code, err
    if case.code == 2:
        assert len(lines) == 1 and lines[0].startswith("lstmae: error: "), err
        assert re.search(case.stderr, lines[0]), lines[0]
        assert not (tmp_path / "scores.csv").exists() and not (tmp_path / "case-model.safetensors").exists()
    else:
        assert all(line.startswith("lstmae: warning: ") for line in lines), err
        assert re.search(case.stderr, lines[0] if lines else ""), err
    if case.check is not None:
        case.check(tmp_path, err)


@pytest.mark.parametrize("verb", ["fit", "score", "detect", "encode", "reconstruct", "explain"])
def test_every_data_verb_takes_the_input_policy(capsys, base, tmp_path, verb):
    path = tmp_path / "gaps.csv"
    path.write_text(with_cells({3: "", 60: ""})(path))
    model = str(base / "model.safetensors")
    args = {
        "fit": ["-o", str(tmp_path / "m.safetensors"), "--timesteps", "8", "--units", "2", "--epochs", "1", "--quiet"],
        "score": ["-m", model],
        "detect": ["-m", model],
        "encode": ["-m", model, "-o", str(tmp_path / "e.npy")],
        "reconstruct": ["-m", model],
        "explain": ["--timesteps", "8"],
    }[verb]
    assert main([verb, str(path), *args]) == 0
    assert re.search(r"lstmae: warning: .*filled 2 missing value", capsys.readouterr().err)
    assert main([verb, str(path), *args, "--missing", "error", "--duplicates", "first"]) == 2
    assert re.search(r"lstmae: error: column 'value' .* missing value at data row 3", capsys.readouterr().err)


# ------------------------------------------------------------------ model files
def _rewrite(model: Path, target: Path, edit: Callable[[dict, dict], None]) -> None:
    """Write ``model``'s tensors and header to ``target`` after ``edit(tensors, header)``; the checksum is recomputed."""
    from safetensors.torch import save_file

    from lstmae.persistence.model_file import load_model, tensors_digest

    tensors, info = load_model(model)
    edit(tensors, info)
    info["tensors_sha256"] = tensors_digest(tensors)
    save_file(tensors, target, metadata={"lstmae": json.dumps(info)})


def _flip_last_byte(raw: bytes) -> bytes:
    return raw[:-3] + bytes([raw[-3] ^ 0x10]) + raw[-2:]


MODEL_CASES = [
    ("truncated", lambda src, dst: dst.write_bytes(src.read_bytes()[: len(src.read_bytes()) // 2]), r"not a readable lstmae model \(damaged, truncated"),
    ("cut by one byte", lambda src, dst: dst.write_bytes(src.read_bytes()[:-1]), r"not a readable lstmae model"),
    ("bit-flipped weights", lambda src, dst: dst.write_bytes(_flip_last_byte(src.read_bytes())), r"is damaged: its weights do not match the checksum"),
    ("emptied", lambda src, dst: dst.write_bytes(b""), r"is empty \(0 bytes\)"),
    ("incomplete (no scaler)", lambda src, dst: _rewrite(src, dst, lambda t, i: t.pop("scaler.scale")), r"incomplete or inconsistent content \(KeyError"),
    ("incomplete (a layer missing)", lambda src, dst: _rewrite(src, dst, lambda t, i: t.pop(sorted(k for k in t if k.startswith("net."))[0])),
     r"incomplete or inconsistent content \(RuntimeError"),
    ("newer format", lambda src, dst: _rewrite(src, dst, lambda t, i: i.update(format_version=FORMAT_VERSION + 1)),
     rf"uses model format {FORMAT_VERSION + 1}, newer than this lstmae"),
    ("not a model", lambda src, dst: dst.write_text("timestamp,value\n"), r"not a readable lstmae model"),
    ("a directory", lambda src, dst: dst.mkdir(), r"is a directory, not a model file"),
]


@pytest.mark.parametrize(("name", "damage", "pattern"), MODEL_CASES, ids=[c[0] for c in MODEL_CASES])
@pytest.mark.parametrize("verb", ["score", "explain"])
def test_damaged_model_is_refused(capsys, base, tmp_path, name, damage, pattern, verb):
    damaged = tmp_path / "damaged.safetensors"
    damage(base / "model.safetensors", damaged)
    args = ["score", str(base / "plain.csv"), "-m", str(damaged)] if verb == "score" else ["explain", "-m", str(damaged)]
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and re.search(pattern, err), err
