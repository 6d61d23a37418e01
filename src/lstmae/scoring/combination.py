"""The weights table: which score parts a scorer reads, and the weighted sum that makes one score of them.

A score part (`lstmae.scoring.parts`) gives one value per timestep (series) or
per sample (panel). ``scorer="combined"`` sums them, each over its level on
held-out training data (its mean there), times its weight::

    score = sum over parts p of  w_p * value_p / level_p

A scorer named after a part scores by that part alone, unweighted and in its own
units. Scores are always "higher = more anomalous".

This module and the parameter table (`lstmae.params.SCORERS`) are the only places
besides each part's own module that name parts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lstmae.errors import ParameterError

#: scorer="combined" on a series: the weight of each part beside the reconstruction error, for a series of
#: one feature and of several. Selected by cross-validation over source families (leave one family out;
#: bench/quality.py --cv, bench/RESULTS-quality.md): on one feature the nearest z-normalised training window
#: finds the odd cycles the network rebuilds well. On several, selected on the 69 SMAP/MSL dev channels
#: (folds by channel letter) together with `SERIES_OPTIONS`' multivariate row: the nearest-window part over the
#: continuous features weighs most. Both rows were chosen on all 251 labelled dev series (mean of seeds 0-2)
#: with aggregation="peak", among the weights that beat every part alone in every group (UCR and NAB; SMAP
#: and MSL), together with `SERIES_COVERAGE`.
SERIES_WEIGHTS: dict[str, dict[str, float]] = {
    "univariate": {"reconstruction": 1.0, "latent": 0.25, "neighbours": 4.0},
    "multivariate": {"reconstruction": 1.0, "latent": 2.0, "neighbours": 16.0},
}
#: scorer="combined" on a series with the table's weights: the nearest-window part weighs as much as the training
#: windows cover new normal windows. Its level is the mean distance (in [0, 2]) of the held-out windows to their
#: nearest training window: up to the first value the weight is the table's, from the second it is 0, linear in
#: between. Most periodic series are far below (dev UCR: at most 0.33); on a short prefix of a drifting or noisy
#: series (half of NAB's) even normal windows find no close match, every window looks new, and the part ranks
#: nothing (bench/RESULTS-quality.md, "; covered").
NEIGHBOUR_COVERAGE: tuple[float, float] = (0.3, 0.45)
#: Whether the table's nearest-window weight follows `coverage`, for a series of one feature and of several:
#: chosen with `SERIES_WEIGHTS` (on SMAP/MSL, whose nearest windows compare the telemetry alone, it cost VUS-PR).
SERIES_COVERAGE: dict[str, bool] = {"univariate": True, "multivariate": False}


def coverage(level: float) -> float:
    """The share of the nearest-window part's weight kept at this held-out ``level`` (`NEIGHBOUR_COVERAGE`), in [0, 1]."""
    low, high = NEIGHBOUR_COVERAGE
    return float(min(1.0, max(0.0, (high - level) / (high - low))))


def covered_weights(weights: Mapping[str, float], levels: Mapping[str, float | None], n_features: int = 1) -> dict[str, float]:
    """``weights`` with the nearest-window part's scaled by its `coverage` (as fitted: ``levels`` {part: level}),
    for the kinds of series `SERIES_COVERAGE` says (by ``n_features``); the others' as they are."""
    covered = dict(weights)
    if not SERIES_COVERAGE["univariate" if n_features == 1 else "multivariate"]:
        return covered
    if covered.get("neighbours") and levels.get("neighbours") is not None:
        covered["neighbours"] = covered["neighbours"] * coverage(float(levels["neighbours"]))
    return covered


#: scorer="combined" on a series: how each part is fitted for this kind of series, {part name: {option: value}},
#: passed to the part's constructor (`lstmae.scoring.state.fit_state`); a part not named keeps its defaults.
#: Selected with `SERIES_WEIGHTS` (same cross-validation): on several features (SMAP/MSL: one telemetry channel
#: beside 0/1 command flags) an anomaly is usually in one feature, which the mean over features dilutes, so the
#: reconstruction part takes the maximum over features; and the nearest-window part compares the continuous
#: features alone (more than two distinct training values), as z-normalised flags mostly match noise. A part
#: scored alone (scorer="reconstruction", ...) and a panel keep the defaults (the mean, every feature).
SERIES_OPTIONS: dict[str, dict[str, dict[str, str]]] = {
    "univariate": {},
    "multivariate": {"reconstruction": {"features": "max"}, "neighbours": {"features": "continuous"}},
}
#: scorer="combined" on a panel: the reconstruction error, the latent distance and the input-space distance
#: (a sample's distance to the nearest training sample, in scaled units), each over its level on the
#: training data. Chosen by leave-one-dataset-out over a grid on bench/panel.py's development datasets
#: (bench/RESULTS-panel.md): every fold gave the reconstruction weight 0, and the input-space distance
#: carried most of the score. On panels of a few dozen training samples the reconstruction ranked other
#: classes no better than chance, and so it did on PLAID's 799 to 948 training samples a class (issue 25, large
#: panels: 0.506 alone, nothing added to the input-space distance); it still gives ``top_features``. The latent
#: term adds little there (+0.003 AUC-ROC over nine datasets, out of fold) but helps on six of nine.
PANEL_WEIGHTS: dict[str, float] = {"reconstruction": 0.0, "latent": 0.25, "input": 4.0}
#: Models saved before the weights were fitted per kind of input: the reconstruction error and the latent
#: distance, weighted 1 and 0.25.
LEGACY_WEIGHTS: dict[str, float] = {"reconstruction": 1.0, "latent": 0.25}
#: The part every model fits whatever its scorer: it gives the per-feature scores (``top_features``).
BASE_PART = "reconstruction"


def resolve_scorer(scorer: str, architecture: str) -> str:
    """scorer="auto": "combined" for the bottleneck ("repeat") design, else the reconstruction error alone
    (a model without a bottleneck learns the identity: its embeddings say nothing)."""
    if scorer != "auto":
        return scorer
    return "combined" if architecture == "repeat" else BASE_PART


def kind_weights(is_panel: bool, n_features: int) -> dict[str, float]:
    """The weights of scorer="combined" for this kind of input (`SERIES_WEIGHTS`, `PANEL_WEIGHTS`)."""
    if is_panel:
        return dict(PANEL_WEIGHTS)
    return dict(SERIES_WEIGHTS["univariate" if n_features == 1 else "multivariate"])


def kind_options(scorer: str, is_panel: bool, n_features: int) -> dict[str, dict[str, str]]:
    """{part name: constructor options} for ``scorer`` on this kind of input: `SERIES_OPTIONS`' row for
    scorer="combined" on a series, else none (every part's defaults)."""
    if scorer != "combined" or is_panel:
        return {}
    return {name: dict(options) for name, options in SERIES_OPTIONS["univariate" if n_features == 1 else "multivariate"].items()}


def fitted_parts(scorer: str, weights: Mapping[str, float]) -> list[str]:
    """The parts a model fits for ``scorer``: the base part, then the scorer's own part or every part
    ``weights`` gives a non-zero weight, in the table's order."""
    if scorer == "combined":
        chosen = [name for name, weight in weights.items() if weight or name == BASE_PART]
    else:
        chosen = [scorer]
    return [BASE_PART] + [name for name in chosen if name != BASE_PART]


@dataclass(frozen=True)
class Combination:
    """A weighted sum of parts: ``terms`` ((part name, weight), ...) in the order they are added.

    ``normalised``: each part is divided by its level first (scorer="combined"); otherwise the
    one part is the score, in its own units.
    """

    terms: tuple[tuple[str, float], ...]
    normalised: bool

    def score(self, values: Mapping[str, np.ndarray], levels: Mapping[str, float | None]) -> np.ndarray:
        """The score (n,) of the parts' ``values`` {name: (n,)}; a term of weight 0 adds nothing."""
        score = None
        for name, weight in self.terms:
            if not weight:
                continue
            term = weight * values[name] / levels[name] if self.normalised else values[name]
            score = term if score is None else score + term
        return np.zeros_like(values[BASE_PART]) if score is None else score


def combination_for(scorer: str, weights: Mapping[str, float], available: Mapping[str, float | None],
                    needs: str = "its part") -> Combination:
    """The combination ``scorer`` scores with, given the fitted ``weights`` and the parts a state holds
    ({name: level}); a part the scorer needs but the state lacks (``needs`` says what it is fitted from)
    is a ParameterError that says how to refit."""
    if scorer != "combined":
        if scorer not in available:
            raise ParameterError(
                f"scorer={scorer!r} needs {needs}, which this model was fitted without (it holds the parts "
                f"{list(available)}); refit with scorer={scorer!r} or 'combined', or score with one of those."
            )
        return Combination(((scorer, 1.0),), False)
    terms = tuple((name, float(weight)) for name, weight in weights.items() if name in available)
    if len(terms) > 1 and any(available[name] is None for name, weight in terms if weight):
        raise ParameterError("scorer='combined' needs every part's level, which this model was fitted without; refit it.")
    if len(terms) == 1:  # only the base part: the reconstruction error itself
        return Combination(terms, False)
    return Combination(terms, True)


def format1_weights(stored: list | None, parts: list[str]) -> dict[str, float]:
    """scorer="combined"'s weights of a model file of format 1: a panel's input-space part took `PANEL_WEIGHTS`;
    a series stored (latent, nearest-window) weights; files older than those: `LEGACY_WEIGHTS`."""
    if "input" in parts:
        return dict(PANEL_WEIGHTS)
    if stored is None:
        return dict(LEGACY_WEIGHTS)
    latent, neighbours = (float(weight) for weight in stored)
    return {"reconstruction": 1.0, "latent": latent, "neighbours": neighbours}


__all__ = [
    "BASE_PART",
    "Combination",
    "LEGACY_WEIGHTS",
    "PANEL_WEIGHTS",
    "NEIGHBOUR_COVERAGE",
    "SERIES_COVERAGE",
    "SERIES_OPTIONS",
    "SERIES_WEIGHTS",
    "combination_for",
    "fitted_parts",
    "format1_weights",
    "kind_options",
    "kind_weights",
    "resolve_scorer",
]
