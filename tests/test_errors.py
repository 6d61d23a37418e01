"""Tests for lstmae.errors: the class hierarchy and `describe`."""

from __future__ import annotations

import inspect

import pytest

import lstmae
from lstmae import errors
from lstmae.errors import (
    DataError,
    DataFileError,
    FeatureMismatchError,
    LstmaeError,
    ModelFileError,
    NotFittedError,
    ParameterError,
    describe,
)

ALL = [ParameterError, DataError, FeatureMismatchError, DataFileError, ModelFileError, NotFittedError]


def test_every_error_class_in_the_module_is_listed_here():
    defined = {
        obj for _, obj in inspect.getmembers(errors, inspect.isclass) if issubclass(obj, BaseException) and obj.__module__ == errors.__name__
    }
    assert defined == {LstmaeError, *ALL, errors.LstmaeWarning, errors.DegenerateModelWarning, errors.ResumeWarning, errors.Interrupted}


def test_warning_and_interruption_are_not_errors():
    """Repaired input warns; an interruption is a KeyboardInterrupt carrying its signal, neither is an LstmaeError."""
    import signal

    assert issubclass(errors.LstmaeWarning, UserWarning) and not issubclass(errors.LstmaeWarning, LstmaeError)
    with pytest.raises(KeyboardInterrupt) as caught:
        raise errors.Interrupted(signal.SIGTERM)
    assert caught.value.signum == 15 and not isinstance(caught.value, LstmaeError)


@pytest.mark.parametrize("cls", ALL)
def test_every_class_is_an_lstmae_error(cls):
    assert issubclass(cls, LstmaeError)
    with pytest.raises(LstmaeError, match=r"^something was wrong$"):
        raise cls("something was wrong")


@pytest.mark.parametrize("cls", [ParameterError, DataError, FeatureMismatchError, DataFileError])
def test_value_errors(cls):
    assert issubclass(cls, ValueError)
    with pytest.raises(ValueError, match="bad value"):
        raise cls("bad value")


def test_data_error_family():
    assert issubclass(FeatureMismatchError, DataError)
    assert issubclass(DataFileError, DataError)
    assert not issubclass(ParameterError, DataError)


def test_model_file_error_is_not_a_value_error():
    assert not issubclass(ModelFileError, ValueError)


def test_not_fitted_error_is_value_and_attribute_error():
    assert issubclass(NotFittedError, ValueError)
    assert issubclass(NotFittedError, AttributeError)
    # so that hasattr()/getattr(default) treat an unfitted attribute as missing
    class Model:
        @property
        def fitted_thing(self):
            raise NotFittedError("call fit first")

    assert not hasattr(Model(), "fitted_thing")
    assert getattr(Model(), "fitted_thing", "default") == "default"
    with pytest.raises(AttributeError, match="call fit first"):
        Model().fitted_thing


def test_errors_are_exported_at_top_level():
    for cls in [LstmaeError, *ALL]:
        assert getattr(lstmae, cls.__name__) is cls
        assert cls.__name__ in lstmae.__all__


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (5, "5"),
        ("abc", "'abc'"),
        ([1, 2], "[1, 2]"),
        (None, "None"),
        ("x" * 58, "'" + "x" * 58 + "'"),  # exactly 60 characters: kept whole
    ],
)
def test_describe_short_values_are_the_repr(value, expected):
    assert describe(value) == expected


def test_describe_cuts_long_values():
    value = list(range(100))
    text = describe(value)
    assert len(text) == 60
    assert text == repr(value)[:57] + "..."
    # one character over the limit is cut too
    assert describe("x" * 59) == "'" + "x" * 56 + "..."


def test_describe_custom_limit():
    assert describe("abcdefghij", limit=8) == "'abcd..."
    assert len(describe(list(range(1000)), limit=20)) == 20
    assert describe("ab", limit=8) == "'ab'"
