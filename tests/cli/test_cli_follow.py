"""`lstmae score - -m MODEL --follow` through real pipes and processes, against `lstmae score` of the whole file.

The model remembers its time column ("when", a name that would not be found
by itself), as `lstmae fit` saves it: --follow must read with it too.
"""

from __future__ import annotations

import os
import signal
from io import StringIO
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstmae import LSTMAutoencoder
from lstmae.cli.app import main

from conftest import sine
from paths import ROOT

N = 200
SRC = str(ROOT / "src")


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("follow")
    index = pd.date_range("2025-02-01", periods=N, freq="min")
    frame = pd.DataFrame({"when": index.strftime("%Y-%m-%d %H:%M:%S"), "x": sine(N, 15, seed=7), "y": 2 * sine(N, 10, seed=8)})
    frame.loc[120:126, "y"] += 3.0
    data = folder / "data.csv"
    frame.to_csv(data, index=False)
    values = frame.set_index(pd.DatetimeIndex(index, name="when"))[["x", "y"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LSTMAutoencoder(timesteps=10, units=4, epochs=1, random_state=0, verbose=0).fit(values.iloc[:100])
    model.save(folder / "model.safetensors", metadata={"read": {"time_column": "when"}})
    return data, folder / "model.safetensors"


@pytest.fixture(scope="module")
def delay(files) -> int:
    return LSTMAutoencoder.load(files[1]).stream().delay


def _batch(files, capsys) -> pd.DataFrame:
    data, model = files
    assert main(["score", str(data), "-m", str(model)]) == 0
    return pd.read_csv(StringIO(capsys.readouterr().out))


def _lstmae(*args: str, **popen) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "lstmae", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **popen)


class Lines:
    """Collects a process's output lines in a thread, with the time each arrived."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self.thread = threading.Thread(target=lambda: self.lines.extend(iter(stream.readline, "")), daemon=True)
        self.thread.start()

    def wait_for(self, count: int, seconds: float = 60) -> None:
        end = time.monotonic() + seconds
        while len(self.lines) < count and time.monotonic() < end:
            time.sleep(0.02)
        assert len(self.lines) >= count, f"only {len(self.lines)} lines after {seconds} s"


def test_a_pipe_fed_slowly_gives_one_line_per_point_as_they_become_final(files, delay, tmp_path, capsys):
    data, model = files
    go = tmp_path / "go"
    # The feeder writes the header and 60 rows, waits until told (after the first scores came out), then the rest slowly.
    feeder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import os, sys, time
        lines = open({str(data)!r}).readlines()
        sys.stdout.writelines(lines[:61]); sys.stdout.flush()
        while not os.path.exists({str(go)!r}):
            time.sleep(0.01)
        for line in lines[61:]:
            sys.stdout.write(line); sys.stdout.flush(); time.sleep(0.005)
    """)], stdout=subprocess.PIPE)
    scorer = _lstmae("score", "-", "-m", str(model), "--follow", stdin=feeder.stdout)
    feeder.stdout.close()
    out = Lines(scorer.stdout)
    out.wait_for(1 + 60 - delay)  # the header, then every point that is final after 60
    time.sleep(0.3)
    assert len(out.lines) == 1 + 60 - delay and feeder.poll() is None  # out before the input ended, nothing more
    go.touch()
    assert scorer.wait(120) == 0, scorer.stderr.read()
    out.thread.join(10)
    feeder.wait(10)
    assert "Traceback" not in scorer.stderr.read()
    got = pd.read_csv(StringIO("".join(out.lines)))
    expected = _batch(files, capsys)
    assert list(got.columns) == ["when", "score", "anomaly"] and len(got) == N
    assert list(got["when"]) == list(expected["when"])
    np.testing.assert_allclose(got["score"], expected["score"], rtol=1e-5)
    np.testing.assert_array_equal(got["anomaly"], expected["anomaly"])
    assert expected["anomaly"].any()


def _in_process(args: list[str], text: str, tmp_path: Path, capsys) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of `lstmae ARGS` run here, with ``text`` as standard input."""
    given = tmp_path / "stdin.csv"
    given.write_text(text)
    saved = sys.stdin
    try:
        with open(given) as sys.stdin:
            code = main(args)
    finally:
        sys.stdin = saved
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_malformed_lines_are_skipped_with_one_warning_each(files, tmp_path, capsys):
    data, model = files
    lines = data.read_text().splitlines(keepends=True)
    bad = ["2025-02-01 00:39:30,abc,1\n", "2025-02-01 00:10:00,1,1\n", "only,two\n", "yesterday,1,2\n"]
    text = "".join(lines[:41] + bad + lines[41:])
    code, out, err = _in_process(["score", "-", "-m", str(model), "--follow"], text, tmp_path, capsys)
    assert code == 0, err
    warned = [line for line in err.splitlines() if line.startswith("lstmae: warning: line")]
    assert len(warned) == 4 and "Traceback" not in err
    assert "line 42 skipped: column 'x' holds 'abc', not a number" in warned[0]
    assert "not after the previous one" in warned[1] and "it has 2 field(s), the header 3" in warned[2]
    assert "'yesterday', not a date/time" in warned[3]
    assert len(out.splitlines()) == 1 + N
    code, out, err = _in_process(["score", "-", "-m", str(model), "--follow", "--missing", "error"], text, tmp_path, capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip().endswith("lstmae: error: line 42 of the input is malformed (column 'x' holds 'abc', not a number); --missing error refuses it.")


def test_ctrl_c_flushes_and_exits_130(files, delay):
    data, model = files
    lines = data.read_text().splitlines(keepends=True)
    scorer = _lstmae("score", "-", "-m", str(model), "--follow", stdin=subprocess.PIPE)
    out = Lines(scorer.stdout)
    scorer.stdin.writelines(lines[:81])
    scorer.stdin.flush()
    out.wait_for(1 + 80 - delay)
    scorer.send_signal(signal.SIGINT)
    assert scorer.wait(60) == 130
    out.thread.join(10)
    stderr = scorer.stderr.read()
    assert "Traceback" not in stderr and "lstmae: interrupted (SIGINT)" in stderr
    assert len(out.lines) == 1 + 80  # the last points scored as the end of the series
    scorer.stdin.close()


def test_a_named_file_is_followed_until_idle(files, delay, tmp_path, capsys):
    data, model = files
    lines = data.read_text().splitlines(keepends=True)
    growing = tmp_path / "growing.csv"
    growing.write_text("".join(lines[:101]))
    scorer = _lstmae("score", str(growing), "-m", str(model), "--follow", "--idle-timeout", "1.5")
    out = Lines(scorer.stdout)
    out.wait_for(1 + 100 - delay)
    with open(growing, "a") as stream:  # appended later, as a logger would
        for line in lines[101:]:
            stream.write(line)
            stream.flush()
    assert scorer.wait(60) == 0, scorer.stderr.read()
    out.thread.join(10)
    expected = _batch(files, capsys)
    got = pd.read_csv(StringIO("".join(out.lines)))
    np.testing.assert_allclose(got["score"], expected["score"], rtol=1e-5)


@pytest.mark.parametrize("extra, message", [
    (["-o", "x.csv"], "drop -o and redirect"),
    (["--duplicates", "mean"], "cannot be used with --follow"),
    (["--idle-timeout", "0"], "--idle-timeout must be a number of seconds > 0, got 0.0"),
    (["--columns", "x"], "the header has 1 value column(s) ['x'] but the model was fitted on 2"),
])
def test_follow_options_that_cannot_work_are_refused(files, extra, message, tmp_path, capsys):
    data, model = files
    code, _, err = _in_process(["score", "-", "-m", str(model), "--follow", *extra], data.read_text(), tmp_path, capsys)
    assert code == 2 and message in err


def test_a_byte_order_mark_before_the_header_is_ignored(files, tmp_path, capsys):
    data, model = files
    code, out, err = _in_process(["score", "-", "-m", str(model), "--follow"], "\ufeff" + data.read_text(), tmp_path, capsys)
    assert code == 0, err
    assert out.splitlines()[0] == "when,score,anomaly" and len(out.splitlines()) == 1 + N


def test_a_stream_without_its_header_is_refused_with_the_command_that_reads_from_the_header(files, tmp_path, capsys):
    """What `tail -f FILE` sends: the last 10 lines, no header (issue 23 item 5)."""
    data, model = files
    tail = "".join(data.read_text().splitlines(keepends=True)[-10:])
    code, out, err = _in_process(["score", "-", "-m", str(model), "--follow"], tail, tmp_path, capsys)
    assert code == 2 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lstmae: error: the first line ")
    assert "looks like data, not a header" in lines[0] and "tail -n +1 -f FILE" in lines[0]


def test_the_delay_is_said_once_in_rows_and_in_time(files, delay, tmp_path, capsys):
    data, model = files
    code, out, err = _in_process(["score", "-", "-m", str(model), "--follow"], data.read_text(), tmp_path, capsys)
    assert code == 0 and len(out.splitlines()) == 1 + N
    notes = [line for line in err.splitlines() if line.startswith("lstmae: ")]
    assert notes[0] == (f"lstmae: each score is written {delay} rows after its row arrives (the model's window and the "
                        "centred mean around each point); --provisional also writes a first score at once.")
    minutes = pd.Timedelta(minutes=delay)  # one row a minute in the fixture
    assert notes[1] == f"lstmae: at one row every 0 days 00:01:00, a score comes about {minutes} after its row's time."
    assert len(notes) == 2


def test_provisional_scores_come_at_once_marked_and_final_ones_follow(files, delay, tmp_path, capsys):
    data, model = files
    code, out, _ = _in_process(["score", "-", "-m", str(model), "--follow", "--provisional"], data.read_text(), tmp_path, capsys)
    assert code == 0
    table = pd.read_csv(StringIO(out))
    assert list(table.columns) == ["when", "score", "anomaly", "final"]
    final, early = table[table["final"] == 1], table[table["final"] == 0]
    expected = _batch(files, capsys)
    assert list(final["when"]) == list(expected["when"])  # every point once, final, in order
    np.testing.assert_allclose(final["score"], expected["score"], rtol=1e-5)
    # A provisional line for each row from the first full window on, written before that row's final one:
    # what flush() would give it had the series ended there (the batch score of the rows so far).
    stream = LSTMAutoencoder.load(model).stream()
    assert len(early) == N - 10 + 1 and list(early["when"]) == list(expected["when"][9:])
    frame = pd.read_csv(data)
    values = frame[["x", "y"]].to_numpy()
    times = pd.DatetimeIndex(frame["when"])
    for row in (9, 60, 150):
        stream = LSTMAutoencoder.load(model).stream()
        stream.update(values[: row + 1], times[: row + 1])
        assert early["score"].iloc[row - 9] == pytest.approx(stream.provisional().iloc[-1], rel=1e-6)  # fed whole, not row by row
    position = {label: at for at, label in enumerate(table["when"].where(table["final"] == 1))}
    first_early = {label: at for at, label in reversed(list(enumerate(table["when"].where(table["final"] == 0))))}
    assert all(first_early[label] < position[label] for label in early["when"])


def test_provisional_needs_follow(files, capsys):
    data, model = files
    code = main(["score", str(data), "-m", str(model), "--provisional"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == ["lstmae: error: --provisional writes the scores of a stream before they are final; it needs --follow."]
