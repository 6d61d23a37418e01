"""Thresholds from training scores: "auto" (the training maximum times a margin), Peaks-Over-Threshold, a contamination rate.

Scores are always "higher = more anomalous"; a timestep (or sample) is anomalous
when its score is strictly above the threshold.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import genpareto

from lstmae.errors import ParameterError
from lstmae.params import n_train

#: The default threshold rule ("auto"): the largest per-timestep score seen on
#: the training data, times this margin. The training data is taken as normal,
#: so what the model reconstructs clearly worse than everything it was trained
#: on is flagged. The margin is there because the maximum of noisy scores grows
#: with the number of timesteps: scoring as much new normal data as was trained
#: on exceeds the training maximum about half the time by chance, usually by a
#: few percent (measured on noisy sines: 1.01x and 1.2x). Simple and
#: documented; threshold="pot" fits the tail of held-out scores instead.
AUTO_THRESHOLD_MARGIN = 1.25


def auto_threshold(train_scores: np.ndarray) -> float:
    """Threshold of the ``"auto"`` rule from the training data's scores.

    Parameters
    ----------
    train_scores : ndarray of shape (n,)
        Per-timestep (or per-sample) scores of the training data.
    """
    return float(np.max(train_scores) * AUTO_THRESHOLD_MARGIN)


#: threshold="pot": the probability that a normal timestep's score exceeds the
#: threshold (the risk q of Siffer et al., KDD 2017), and the quantile of the
#: held-out scores where the tail fit starts.
POT_RISK = 1e-4
POT_INITIAL_QUANTILE = 0.98


def pot_threshold(normal_scores: np.ndarray, risk: float = POT_RISK, initial_quantile: float = POT_INITIAL_QUANTILE) -> float:
    """Peaks-Over-Threshold: an extreme-value threshold from scores of normal data.

    The excesses of the scores over their ``initial_quantile`` are fitted with
    a generalized Pareto distribution (shape xi, scale sigma, by maximum
    likelihood); the threshold is the score exceeded with probability ``risk``
    under that tail (Siffer et al., "Anomaly Detection in Streams with Extreme
    Value Theory", KDD 2017)::

        z = t + sigma / xi * ((risk * n / n_t) ** -xi - 1)     (xi != 0)
        z = t - sigma * log(risk * n / n_t)                      (xi == 0)

    with t the initial threshold, n the number of scores and n_t the number
    above t. Never below t. When the tail fit is degenerate (fewer than 10
    excesses, all excesses equal, or a non-finite level) the largest normal
    score is returned instead.

    Parameters
    ----------
    normal_scores : ndarray of shape (n,)
        Scores of data believed normal, ideally not trained on (held out).
    risk : float in (0, 1)
    initial_quantile : float in (0, 1)
    """
    if not 0 < risk < 1:
        raise ParameterError(f"risk must be in (0, 1), got {risk!r}.")
    if not 0 < initial_quantile < 1:
        raise ParameterError(f"initial_quantile must be in (0, 1), got {initial_quantile!r}.")
    scores = np.asarray(normal_scores, dtype=np.float64).ravel()
    scores = scores[np.isfinite(scores)]
    if scores.size == 0:
        raise ParameterError("threshold='pot' needs at least one finite normal score; got none.")
    start = float(np.quantile(scores, initial_quantile))
    excesses = scores[scores > start] - start
    if excesses.size < 10 or np.ptp(excesses) == 0:
        return float(scores.max())
    xi, _, sigma = genpareto.fit(excesses, floc=0.0)
    ratio = risk * scores.size / excesses.size
    if abs(xi) < 1e-9:
        level = start - sigma * np.log(ratio)
    else:
        level = start + sigma / xi * (ratio ** (-xi) - 1.0)
    if not np.isfinite(level):
        return float(scores.max())
    return float(max(level, start))


def contamination_threshold(train_scores: np.ndarray, contamination: float) -> float:
    """The score exceeded by a ``contamination`` fraction of the training scores (a quantile).

    Parameters
    ----------
    train_scores : ndarray of shape (n,)
    contamination : float in (0, 0.5]
        Expected share of anomalous timesteps (pyod's ``contamination``).
    """
    if not (isinstance(contamination, (int, float, np.number)) and 0 < contamination <= 0.5):
        raise ParameterError(f"contamination must be in (0, 0.5], got {contamination!r}.")
    # "higher": a training score itself, with at most a contamination share strictly above it.
    return float(np.quantile(np.asarray(train_scores, dtype=np.float64), 1.0 - contamination, method="higher"))


#: threshold="pot" fits the held-out part when it has at least this many scores, else all training scores.
POT_MIN_HELD_OUT = 200


def fit_threshold(train_scores: np.ndarray, rule: float | str, contamination: float | None, validation_split: float) -> float:
    """The threshold from the training scores by a rule: a contamination rate, "auto", "pot" or a number.

    "pot" fits the held-out part (the last ``validation_split`` of the scores,
    which the weights were not fitted on) when it has at least POT_MIN_HELD_OUT
    scores, else all of them.
    """
    if contamination is not None:
        return contamination_threshold(train_scores, contamination)
    if rule == "auto":
        return auto_threshold(train_scores)
    if rule == "pot":
        first = n_train(len(train_scores), validation_split)
        held_out = train_scores[first:] if len(train_scores) - first >= POT_MIN_HELD_OUT else train_scores
        return pot_threshold(held_out)
    return float(rule)
