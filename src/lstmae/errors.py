"""Typed exceptions. Every error lstmae raises on purpose derives from LstmaeError.

Messages follow one pattern: what was wrong, the value received, how to fix it.
The CLI prints ``str(error)`` as a single line and exits with code 2.
"""

from __future__ import annotations


class LstmaeError(Exception):
    """Base class of every error lstmae raises deliberately."""


class ParameterError(LstmaeError, ValueError):
    """A parameter value is invalid (wrong type or outside its allowed range)."""


class DataError(LstmaeError, ValueError):
    """Input data cannot be used: wrong shape, no numeric column, too short, ..."""


class FeatureMismatchError(DataError):
    """The data has a different number of features (or timesteps) than the fitted model."""


class DataFileError(DataError):
    """A data file is missing, unreadable or has an unsupported format."""


class ModelFileError(LstmaeError):
    """A saved model is missing, damaged, or was written in an unsupported format."""


class NotFittedError(LstmaeError, ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit``.

    Same bases as scikit-learn's NotFittedError (ValueError, AttributeError),
    without importing scikit-learn here: the CLI imports this module at start-up.
    """


class LstmaeWarning(UserWarning):
    """Something in the input was repaired (gaps filled, rows sorted) or a fitted model is degenerate;
    the CLI prints each as one ``lstmae: warning:`` line."""


class Interrupted(KeyboardInterrupt):
    """Training stopped on Ctrl-C (SIGINT) or SIGTERM; ``signum`` says which.

    A KeyboardInterrupt, so code that handles Ctrl-C handles it too. It is not
    an LstmaeError: nothing was wrong with the input. The CLI exits with
    ``128 + signum`` (130 for SIGINT, 143 for SIGTERM).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = int(signum)


def describe(value: object, limit: int = 60) -> str:
    """A short ``repr`` of ``value`` for error messages (long values are cut)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class DegenerateModelWarning(LstmaeWarning):
    """A fitted model that cannot be trusted to find anomalies (see `LSTMAutoencoder.diagnostics_`)."""


class ResumeWarning(LstmaeWarning):
    """A resumed fit trained nothing more: its checkpoint already held the epochs asked for, or had
    stopped early; the model has the checkpoint's best weights (the message names their epoch)."""
