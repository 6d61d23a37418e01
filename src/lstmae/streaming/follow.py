"""``lstmae score DATA -m MODEL --follow``: CSV rows in as they arrive, ``time,score,anomaly`` out as scores become final.

DATA is ``-`` (standard input, e.g. ``tail -n +1 -f data.csv | lstmae score - -m model --follow``, from the header on)
or a file that is read like ``tail -f``: from its first line, then waiting for
appended lines. The first line is the header. Each data row goes through a
`lstmae.streaming.scorer.StreamScorer`; every point whose score became final is
written at once (one line, flushed).

Ends: standard input at its end; a file after ``--idle-timeout`` seconds
without a new line (default: never); both on Ctrl-C or SIGTERM. At every end
the stream is flushed (the last points are scored as the end of the series);
Ctrl-C then exits 130, SIGTERM 143.

A malformed line (wrong number of fields, a value that is not a number, a time
that is not a time or not after the previous one) gives one ``lstmae: warning:``
line and is skipped; with ``--missing error`` it is refused (exit 2), as is an
empty cell, which is otherwise interpolated (`lstmae.streaming.scorer`). A first
line that looks like data, not a header (what ``tail -f`` sends: the file's last
ten lines), is refused with the command that reads the file from its header.

A score is final ``scorer.delay`` rows after its row arrived (the model's window
and the centred mean); one line on stderr says so at the start (and, once two
timestamps have arrived, how long that is). With ``provisional`` each row's
provisional score (`StreamScorer.provisional`) is written as soon as the row
arrives, in a fourth column ``final`` = 0; final scores then have ``final`` = 1.
"""

from __future__ import annotations

import csv
import os
import select
import sys
import time
import warnings
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd

from lstmae.data.readers import TIME_COLUMN_NAMES
from lstmae.errors import DataError, DataFileError, LstmaeWarning, ParameterError
from lstmae.streaming.scorer import StreamScorer

#: Seconds between looks at a followed file that has no new line yet.
POLL_SECONDS = 0.05
DELIMITERS = (",", ";", "\t")


def read_lines(fd: int, is_file: bool, idle_timeout: float | None) -> Iterator[str]:
    """Complete lines from a file descriptor as they arrive (a pipe: until its end; a file: until idle).

    A file is read like ``tail -f``: at its current end, wait and look again;
    after ``idle_timeout`` seconds without new data the last, unterminated
    line (if any) is given and the iteration ends.
    """
    pending = b""
    last_data = time.monotonic()
    while True:
        if is_file:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                time.sleep(POLL_SECONDS)
        else:
            ready, _, _ = select.select([fd], [], [], POLL_SECONDS if idle_timeout is not None else None)
            chunk = os.read(fd, 1 << 16) if ready else b""
            if ready and not chunk:  # the writer closed the pipe
                if pending.strip():
                    yield pending.decode("utf-8", errors="replace")
                return
        if chunk:
            last_data = time.monotonic()
            pending += chunk
            *complete, pending = pending.split(b"\n")
            for line in complete:
                yield line.decode("utf-8", errors="replace").rstrip("\r")
        elif idle_timeout is not None and time.monotonic() - last_data >= idle_timeout:
            if pending.strip():
                yield pending.decode("utf-8", errors="replace").rstrip("\r")
            return


def _is_value(text: str) -> bool:
    """Whether a header field reads as a number or a date/time: what a data row holds, not a column name."""
    try:
        float(text)
        return True
    except ValueError:
        pass
    if not any(c.isdigit() for c in text):
        return False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return not pd.isna(pd.Timestamp(text))
    except (ValueError, TypeError, OverflowError):
        return False


class Columns:
    """Where the time and the model's values are in a line, from the header."""

    def __init__(self, header: str, scorer: StreamScorer, time_column: str | None, columns: list[str] | None,
                 detect_time: bool) -> None:
        header = header.lstrip("\ufeff")  # a UTF-8 byte order mark, as the file readers accept it
        self.delimiter = max(DELIMITERS, key=header.count)
        names = [name.strip() for name in next(csv.reader([header], delimiter=self.delimiter))]
        fitted = scorer.feature_names
        if all(_is_value(name) for name in names) and not (fitted and all(str(n) in names for n in fitted)):
            raise DataFileError(
                f"the first line {names} looks like data, not a header: --follow reads the CSV header first. "
                "`tail -f FILE` sends only the last 10 lines; use `tail -n +1 -f FILE | lstmae score - ...` "
                "(from the header on), or follow the file itself: `lstmae score FILE -m MODEL --follow`."
            )
        self.width = len(names)
        if time_column is None and detect_time:
            time_column = next((name for name in names if name.lower() in TIME_COLUMN_NAMES), None)
        if time_column is not None and time_column not in names:
            raise DataFileError(f"time column {time_column!r} not found in the header {names}; pass --time-column COLUMN, or none.")
        if columns is None and fitted is not None and all(str(n) in names for n in fitted):
            columns = [str(n) for n in fitted]
        if columns is None:
            columns = [name for name in names if name != time_column]
        absent = [name for name in columns if name not in names]
        if absent:
            raise DataFileError(f"column(s) {absent} not found in the header {names}; pass --columns with the model's columns.")
        if len(columns) != scorer.n_features:
            raise DataFileError(
                f"the header has {len(columns)} value column(s) {columns} but the model was fitted on "
                f"{scorer.n_features}; pass --columns naming the model's columns."
            )
        self.time_name = time_column
        self.time_at = None if time_column is None else names.index(time_column)
        self.value_at = [names.index(name) for name in columns]
        self.names = columns

    def parse(self, line: str) -> tuple[list[float], Any, str | None]:
        """(values, time or None, the time's text) of one data line; DataError naming what is wrong."""
        fields = next(csv.reader([line], delimiter=self.delimiter), [])
        if len(fields) != self.width:
            raise DataError(f"it has {len(fields)} field(s), the header {self.width}")
        values = []
        for at, name in zip(self.value_at, self.names):
            text = fields[at].strip()
            try:
                values.append(float(text) if text else np.nan)
            except ValueError:
                raise DataError(f"column {name!r} holds {text!r}, not a number") from None
        if self.time_at is None:
            return values, None, None
        text = fields[self.time_at].strip()
        try:
            return values, float(text), text
        except ValueError:
            pass
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                stamp = pd.Timestamp(text)
        except (ValueError, TypeError, OverflowError):
            stamp = pd.NaT
        if pd.isna(stamp):
            raise DataError(f"time column {self.time_name!r} holds {text!r}, not a date/time")
        return values, stamp.tz_convert("UTC") if stamp.tz is not None else stamp, text


def follow(
    scorer: StreamScorer,
    source: Path,
    *,
    time_column: str | None,
    detect_time: bool,
    columns: list[str] | None,
    missing: str,
    idle_timeout: float | None,
    output: IO[str],
    provisional: bool = False,
    notes: IO[str] | None = None,
) -> None:
    """Score the rows of ``source`` (``-``: standard input) as they arrive with ``scorer`` (`LSTMAutoencoder.stream`
    with the same ``missing``); see the module docstring. ``notes``: where the delay is said (default: none)."""
    strict = missing == "error"
    if str(source) == "-":
        fd, is_file, opened = sys.stdin.fileno(), False, None
    else:
        try:
            opened = open(source, "rb")  # noqa: SIM115: closed in the finally below
        except OSError as exc:
            raise DataFileError(f"cannot read {str(source)!r}: {exc.strerror or exc}.") from None
        fd, is_file = opened.fileno(), True
    try:
        lines = read_lines(fd, is_file, idle_timeout)
        header = next((line for line in lines if line.strip()), None)
        if header is None:
            return
        layout = Columns(header, scorer, time_column, columns, detect_time)
        marks = ",1" if provisional else ""  # the `final` column of --provisional
        output.write(f"{layout.time_name or 'index'},score,anomaly{',final' if provisional else ''}\n")
        output.flush()
        delay = Delay(scorer.delay, notes)
        times: deque[str] = deque()  # the time text of each accepted row not written yet
        try:
            for number, line in enumerate(lines, start=2):
                if line.strip():
                    final, stamp = _one(scorer, layout, line, number, strict, times)
                    _write(output, final, times, marks)
                    if final is not None:
                        delay.seen(stamp)
                        if provisional:
                            _write_provisional(output, scorer, times)
        except KeyboardInterrupt:
            _write(output, scorer.flush(), times, marks)  # what is final, and the rest as the end of the series
            raise
        _write(output, scorer.flush(), times, marks)
    finally:
        if opened is not None:
            opened.close()


def _one(scorer: StreamScorer, layout: Columns, line: str, number: int, strict: bool,
         times: deque) -> tuple[pd.DataFrame | None, Any]:
    """(the final points after one line, the line's time); a bad line is skipped with a warning (refused when
    ``strict``): (None, None)."""
    try:
        values, stamp, text = layout.parse(line)
        final = scorer.update(np.asarray(values)[None, :], None if stamp is None else [stamp])
        if text is not None:
            times.append(text)
        return final, stamp
    except (DataError, ParameterError) as exc:
        if strict:
            raise DataFileError(f"line {number} of the input is malformed ({exc}); --missing error refuses it.") from None
        warnings.warn(f"line {number} skipped: {exc}", LstmaeWarning, stacklevel=2)
        return None, None


class Delay:
    """Says once, on ``notes``, how many rows (and, with timestamps, how long) a score waits to be final."""

    def __init__(self, rows: int, notes: IO[str] | None) -> None:
        self.rows, self.notes, self.first, self.done = rows, notes, None, False
        self._say(f"lstmae: each score is written {rows} rows after its row arrives (the model's window and the "
                  "centred mean around each point); --provisional also writes a first score at once.")

    def seen(self, stamp: Any) -> None:
        """After an accepted row with time ``stamp`` (None without times): at the second one, the delay in time."""
        if self.done or stamp is None:
            return
        if self.first is None:
            self.first = stamp
            return
        self.done = True
        step = stamp - self.first
        if isinstance(step, pd.Timedelta):
            self._say(f"lstmae: at one row every {step}, a score comes about {step * self.rows} after its row's time.")
        else:
            self._say(f"lstmae: at one row every {step:g} time units, a score comes about {step * self.rows:g} after its row's time.")

    def _say(self, text: str) -> None:
        if self.notes is not None:
            self.notes.write(text + "\n")
            self.notes.flush()


def _write(output: IO[str], final: pd.DataFrame | None, times: deque, marks: str = "") -> None:
    """One line per final point: its time as the input wrote it (or its position), score, anomaly (and the
    ``marks`` of --provisional); flushed."""
    if final is None or final.empty:
        return
    labels = [times.popleft() for _ in range(len(final))] if times else [str(p) for p in final.index]
    output.write("".join(f"{label},{score!r},{flag}{marks}\n"
                         for label, score, flag in zip(labels, final["score"].tolist(), final["anomaly"].tolist())))
    output.flush()


def _write_provisional(output: IO[str], scorer: StreamScorer, times: deque) -> None:
    """The newest scored row's provisional score (`StreamScorer.provisional`), marked ``final`` = 0; nothing
    before the stream holds one full window. ``times`` holds the time texts of the rows from the first
    one not final on, so the newest released row (position n - 1) is at n - 1 - scored."""
    guess = scorer.provisional()
    if guess.empty:
        return
    at = scorer.n - 1 - scorer.scored
    label = times[at] if 0 <= at < len(times) else str(scorer.n - 1)
    score = float(guess.iloc[-1])
    output.write(f"{label},{score!r},{int(score > scorer.threshold)},0\n")
    output.flush()


__all__ = ["follow", "read_lines"]
