"""The .ts reader (lstmae.data.ts) on hand-written files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lstmae.data.ts import read_ts
from lstmae.errors import DataFileError, ParameterError
from paths import FILES

DATA = FILES / "panel"


def test_reads_the_hand_written_training_file():
    panel = read_ts(DATA / "Tiny_TRAIN.ts")
    assert panel.name == "Tiny" and panel.classes == ("up", "down")
    assert panel.values.shape == (6, 6, 2) and not panel.resampled
    assert list(panel.labels) == ["up", "up", "up", "down", "down", "down"]
    np.testing.assert_array_equal(panel.values[0, :, 0], [0, 1, 2, 3, 4, 5])
    np.testing.assert_array_equal(panel.values[4, :, 1], [0] * 6)
    np.testing.assert_array_equal(panel.values[1, :, 0], [0, 1, 2, 3, 4, 5])  # "?" filled between 2 and 4


def test_unequal_samples_are_resampled_linearly_to_the_length_asked():
    panel = read_ts(DATA / "Tiny_TEST.ts", length=6)
    assert panel.resampled and list(panel.lengths) == [6, 11, 6, 11]
    np.testing.assert_allclose(panel.values[1, :, 0], [0, 4, 8, 12, 16, 20])  # 0, 2, ..., 20 at 6 even points
    np.testing.assert_allclose(panel.values[3, :, 0], [5, 4, 3, 2, 1, 0])


def test_the_default_length_is_the_longest_sample():
    panel = read_ts(DATA / "Tiny_TEST.ts")
    assert panel.values.shape == (4, 11, 2)
    np.testing.assert_allclose(panel.values[0, :, 0], np.linspace(0, 5, 11))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "x.ts"
    path.write_text(text)
    return path


HEADER = "@problemName X\n@univariate true\n@classLabel true a b\n@data\n"


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (HEADER + "1,2,3:c\n", r"line 5: class label 'c' is not one of the header's \['a', 'b'\]"),
        (HEADER + "1,x,3:a\n", r"line 5: 'x' is not a number"),
        (HEADER + "1,2,3:1,2:a\n", r"line 5: the dimensions have different lengths \[3, 2\]"),
        (HEADER + "1,2,3:a\n1,2,3:4,5,6:b\n", r"different numbers of dimensions \[1, 2\]"),
        (HEADER + "?,?,?:a\n", r"line 5: a dimension has no value at all"),
        ("@problemName X\n@classLabel false\n", r"has no @data line"),
        ("@problemName X\n@timeStamps true\n@data\n(0,1):a\n", r"uses @timeStamps true"),
        (HEADER, r"has no samples after @data"),
        ("1,2,3\n@data\n", r"line 1: data before @data"),
    ],
)
def test_bad_files_say_what_and_where(tmp_path, text, match):
    with pytest.raises(DataFileError, match=match):
        read_ts(write(tmp_path, text))


def test_a_file_without_labels_has_none(tmp_path):
    panel = read_ts(write(tmp_path, "@classLabel false\n@data\n1,2,3\n4,5,6\n"))
    assert panel.labels is None and panel.classes == ()
    np.testing.assert_array_equal(panel.values[:, :, 0], [[1, 2, 3], [4, 5, 6]])


def test_missing_file_and_bad_length(tmp_path):
    with pytest.raises(DataFileError, match=r"no such \.ts file"):
        read_ts(tmp_path / "absent.ts")
    with pytest.raises(ParameterError, match=r"length must be an integer >= 2.*got 1"):
        read_ts(DATA / "Tiny_TRAIN.ts", length=1)
