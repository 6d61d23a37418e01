"""Cross-validated selection of the score over source families: the engine of ``bench/quality.py --cv``.

Each series is fitted once per seed (``LSTMAutoencoder(random_state=seed)``
with the given params); the per-timestep score *components* of that one fit
are cached on disk (``bench/.cache/cv/``): the reconstruction and latent parts
and their held-out levels, exactly as `lstmae.scoring.state.ScoringState` computes
them, and the input-space nearest-neighbour part (`lstmae.scoring.neighbours`) at
several window scales. Every candidate score (`CANDIDATES`: which parts, with
which weights) is then a cheap post-hoc combination of the same arrays, and
its VUS-PR per series and seed is cached too.

Selection: the dev series are grouped into folds by source family
(`family`). For each fold, the candidate with the best mean over the OTHER
folds (the mean of the univariate and the multivariate means, over seeds) is
chosen and evaluated on the held-out fold. The out-of-fold numbers are what
the report gives as lstmae's; labels are used only in the metrics.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lstmae.scoring import inference

from lstmae.evaluation import metrics
from lstmae.scoring.parts import TrainingData, part_class
from lstmae.scoring.parts.base import LEVEL_SHARE
from lstmae.scoring.parts.reconstruction import ERROR_FLOOR
from lstmae.scoring.seen import TrainingRows
from lstmae.scoring.state import SCORE_WINDOWS_PER_STEP, training_split

#: UCR series name -> family (the recording's domain); the dev UCR names, grouped by what they measure.
UCR_FAMILIES = {
    "ecg": ("ECG", "apneaecg", "ltstdbs", "mit14134", "CHARIS"),
    "bleeding": ("InternalBleeding",),
    "epg": ("insectEPG", "EPG"),
    "mars": ("MARS",),
    "other": ("CIMIS", "GP711", "PowerDemand"),
}


def family(name: str) -> str:
    """The fold of a series: its UCR domain, its NAB folder, or its SMAP/MSL channel letter."""
    group, rest = name.split("/", 1)
    if group == "ucr":
        domain = rest.split("_")[3]
        for fam, keys in UCR_FAMILIES.items():
            if any(k in domain for k in keys):
                return f"ucr:{fam}"
        return f"ucr:{domain}"
    if group == "nab":
        folder = rest.split("/")[0]
        return "nab:artificial" if folder.startswith("artificial") else f"nab:{folder}"
    return f"{group}:{rest[0]}"


# ------------------------------------------------------------ components
def components(series, params: dict, seed: int) -> dict[str, np.ndarray]:
    """Fit once, and every score part the candidates combine, per timestep (n,), with levels and seconds."""
    from lstmae.estimator import LSTMAutoencoder

    began = time.perf_counter()
    model = LSTMAutoencoder(**{"verbose": 0, **params, "random_state": seed}).fit(series.values[: series.train_end])
    fitted = time.perf_counter()
    state, network = model.scoring_state_, model.module_
    settings = state.settings
    network_parts = [part for part in state.parts if part.from_network]  # reconstruction, latent
    scaled = state.scale(series.values)
    merged = inference.parts_pass(network, scaled, False, settings.score_stride, network_parts, state.locate(scaled))
    values = {part.name: part.values(merged[part.name], False, settings)[0] for part in network_parts}
    scored = time.perf_counter()
    extra = {}
    if series.values.shape[1] > 1:  # per-feature reconstruction scores, for aggregations over features other than the mean
        extra["reconstruction_features"] = state.part("reconstruction").values(merged["reconstruction"], False, settings)[1]
    # As before the training-edge rule (the variant "plain"): the training windows found themselves.
    plain = inference.parts_pass(network, scaled, False, settings.score_stride, network_parts)
    values.update({f"{part.name}_plain": part.values(plain[part.name], False, settings)[0] for part in network_parts})
    # The levels before their floors (the variant "unfloored"): the held-out means, as fit_state measures them.
    train = series.values[: series.train_end]
    _, held_rows = training_split(train.shape[0], False, settings.timesteps, model.validation_split)
    held = inference.parts_pass(network, state.scale(train[held_rows]), False, settings.score_stride, network_parts)
    raw = [max(float(part.values(held[part.name], False, settings)[0].mean()), 1e-12) for part in network_parts]
    if series.values.shape[1] > 1:
        extra["held_features"] = state.part("reconstruction").values(held["reconstruction"], False, settings)[1]
    return {
        **values, **extra, "levels": np.asarray([part.level for part in network_parts]), "raw_levels": np.asarray(raw),
        "floors": np.asarray([part.level_floor() for part in network_parts]),
        "feature_floored": np.asarray(bool(np.any(state.part("reconstruction").feature_levels <= ERROR_FLOOR))),
        "timesteps": np.asarray(settings.timesteps), "fit_seconds": np.asarray(fitted - began),
        "score_seconds": np.asarray(scored - fitted),
    }


def neighbour_part(series, timesteps: int, validation_split: float) -> dict[str, np.ndarray]:
    """The library's nearest-neighbour part of a series (per timestep (n,), not over its level), its level, seconds.

    What `lstmae.scoring.state.fit_state` and `ScoringState.score` compute for it, from
    the data and the model's timesteps alone (it does not depend on the
    network, so not on the seed): the training data's scaler, the windows
    trained on as the reference, the held-out part's mean as the level.
    """
    import torch

    from lstmae.data.scaling import fit_scaler, transform
    from lstmae.scoring.state import ScoringSettings

    began = time.perf_counter()
    train = series.values[: series.train_end]
    settings = ScoringSettings("neighbours", "window", max(1, timesteps // SCORE_WINDOWS_PER_STEP), timesteps, True)
    scaler = fit_scaler(train)
    scale = lambda values: torch.from_numpy(transform(values, *scaler))  # noqa: E731
    fit_rows, held_rows = training_split(train.shape[0], False, timesteps, validation_split)
    part = part_class("neighbours")()
    part.fit_reference(TrainingData(scale(train), False, fit_rows, held_rows, settings), None)

    training_rows = TrainingRows.of(scale(train))

    def merged(values: np.ndarray, seen: bool = False) -> np.ndarray:
        scaled = scale(values)
        near = inference.input_pass(scaled, part, False, settings.score_stride, timesteps,
                                    training_rows.locate(scaled) if seen else None)
        return part.values(near, False, settings)[0]

    held = merged(train[held_rows])
    part.fit_level(merged(train), held)
    extra = {}
    continuous = [j for j in range(train.shape[1]) if len(np.unique(train[:, j])) > 2]  # not flags (two values or one)
    if 0 < len(continuous) < train.shape[1]:  # the part over the continuous features alone
        import dataclasses

        found = neighbour_part(dataclasses.replace(series, values=series.values[:, continuous]), timesteps, validation_split)
        extra = {"neighbours_continuous": found["neighbours"], "neighbour_continuous_raw_level": found["neighbour_raw_level"]}
    if train.shape[1] > 1:
        extra["continuous_features"] = np.asarray(len(continuous))
    return {**extra, "neighbours": merged(series.values, seen=True), "neighbours_plain": merged(series.values),
            "neighbour_level": np.asarray(part.level), "neighbour_raw_level": np.asarray(max(float(held.mean()), 1e-12)),
            "neighbour_seconds": np.asarray(time.perf_counter() - began)}


# ------------------------------------------------------------ candidates
@dataclass(frozen=True)
class Candidate:
    """A score: reconstruction / level + latent_weight x latent / level + neighbour_weight x neighbours / level.

    For series of several features two more choices: ``features``, how the per-feature reconstruction scores
    make one ("mean", the library's, or "max"), and ``neighbours_on``, the features the nearest-window part
    compares ("all", the library's, or "continuous": those with more than two distinct training values, not
    flags). ``aggregation``: the per-timestep score as the parts give it ("window", their centred means) or
    each timestep's most anomalous window ("peak", `lstmae.scoring.aggregation.containing_max` of the sum).
    ``covered``: the nearest-window weight times `lstmae.scoring.combination.coverage` of that part's level.
    ``label`` names a part alone (``PARTS_ALONE``), which is shown, never selected.
    """

    latent_weight: float
    neighbour_weight: float
    reconstruction_weight: float = 1.0
    features: str = "mean"
    neighbours_on: str = "all"
    label: str = ""
    aggregation: str = "window"
    covered: bool = False

    @property
    def multivariate_only(self) -> bool:
        return self.features != "mean" or self.neighbours_on != "all"

    @property
    def name(self) -> str:
        peak = ("; peak" if self.aggregation == "peak" else "") + ("; covered" if self.covered else "")
        if self.label:
            return self.label + peak
        extras = [f"features {self.features}"] * (self.features != "mean") + [f"neighbours on {self.neighbours_on}"] * (self.neighbours_on != "all")
        return f"latent {self.latent_weight:g}, neighbours {self.neighbour_weight:g}" + ("; " + ", ".join(extras) if extras else "") + peak


#: The candidate scores: the "combined" scorer's two weights on a grid (0.25 / 0: the score before round 2).
GRID = tuple(Candidate(lw, nw) for lw in (0.25, 0.5, 1.0, 2.0) for nw in (0.0, 1.0, 2.0, 4.0, 8.0, 16.0))
#: For series of several features, the same grid with the per-feature scores' maximum and the nearest-window
#: part over the continuous features only (issue 25: "multivariate scoring that uses what multivariate data is";
#: chosen in 15 of 17 folds on seed 0 against either choice alone, bench/RESULTS.md).
MULTIVARIATE_GRID = tuple(Candidate(c.latent_weight, c.neighbour_weight, features="max", neighbours_on="continuous") for c in GRID)
#: Each part alone: what it is worth (shown, not selected).
PARTS_ALONE = (Candidate(0.0, 0.0, 1.0, label="reconstruction alone"), Candidate(1.0, 0.0, 0.0, label="latent alone"),
               Candidate(0.0, 1.0, 0.0, label="neighbours alone"))


def peaked(candidates: tuple) -> tuple:
    """The same candidates scored by each timestep's most anomalous window (aggregation "peak")."""
    import dataclasses

    return tuple(dataclasses.replace(c, aggregation="peak") for c in candidates)


def covered(candidates: tuple) -> tuple:
    """The same candidates with the nearest-window weight scaled by the part's coverage (`lstmae.scoring.combination.coverage`)."""
    import dataclasses

    return tuple(dataclasses.replace(c, covered=True) for c in candidates if c.neighbour_weight)


#: Every candidate twice: the parts' centred means ("window") and each timestep's most anomalous window ("peak");
#: the latter also with the nearest-window weight scaled by how well the training windows cover held-out ones.
CANDIDATES = (GRID + MULTIVARIATE_GRID + PARTS_ALONE + peaked(GRID + MULTIVARIATE_GRID + PARTS_ALONE)
              + covered(peaked(GRID + MULTIVARIATE_GRID)))
#: The candidates the cross-validation selects from.
SELECTABLE = frozenset(c.name for c in CANDIDATES if not c.label)
#: The parts alone, in each aggregation.
ALONE = PARTS_ALONE + peaked(PARTS_ALONE)


#: Which of the cached variants `compose` uses: the training windows scored leave-self-out ("seen", the
#: library's rule since issue 23) or matching themselves ("plain", before); the parts' levels with their
#: floors (the library's) or the raw held-out means. Set by ``bench/quality.py --edge/--floor``.
VARIANT = {"edge": "seen", "floor": True}


def compose(candidate: Candidate, parts: dict, nn: dict) -> np.ndarray:
    """The candidate's score per timestep, as `lstmae.scoring.combination.Combination` computes it with these weights."""
    suffix = "" if VARIANT["edge"] == "seen" else "_plain"
    levels = parts["levels"] if VARIANT["floor"] else parts["raw_levels"]
    score = np.zeros(len(nn["labels"]))
    if candidate.reconstruction_weight:
        values, level = parts["reconstruction"], levels[0]
        if candidate.features == "max" and "reconstruction_features" in parts:
            values = parts["reconstruction_features"].astype(np.float64).max(axis=1)
            raw = max(float(parts["held_features"].astype(np.float64).max(axis=1).mean()), 1e-12)
            level = max(raw, float(parts["floors"][0])) if VARIANT["floor"] else raw  # the part's floor, as fit_level
        score = score + candidate.reconstruction_weight * values / level
    if candidate.latent_weight:
        score = score + candidate.latent_weight * parts["latent" + suffix] / levels[1]
    if candidate.neighbour_weight:
        values, level = nn["neighbours" + suffix], float(nn["neighbour_level"] if VARIANT["floor"] else nn["neighbour_raw_level"])
        if candidate.neighbours_on == "continuous" and "neighbours_continuous" in nn and not suffix:
            raw = float(nn["neighbour_continuous_raw_level"])
            values, level = nn["neighbours_continuous"], max(raw, LEVEL_SHARE) if VARIANT["floor"] else raw
        weight = candidate.neighbour_weight
        if candidate.covered:  # as `lstmae.scoring.combination.covered_weights`, on the part's level
            from lstmae.scoring.combination import coverage

            weight = weight * coverage(level)
        score = score + weight * values / level
    if candidate.aggregation == "peak":  # as `lstmae.scoring.state.ScoringState.scores_of`
        from lstmae.scoring.aggregation import containing_max

        score = containing_max(score, int(parts["timesteps"]))
    return score


# ------------------------------------------------------------ the run
UNIVARIATE, MULTIVARIATE = ("ucr", "nab"), ("smap", "msl")


def safe(name: str) -> str:
    return name.replace("/", "__")


def cached_parts(name: str, load, params: dict, seeds: list[int], folder: Path, log) -> tuple[dict, dict]:
    """({seed: components}, neighbour part) of a series, from ``folder`` or computed (and saved) now."""
    folder.mkdir(parents=True, exist_ok=True)
    series, parts = None, {}
    for seed in seeds:
        path = folder / f"{safe(name)}-s{seed}.npz"
        if not path.is_file():
            series = series or load()
            found = components(series, params, seed)
            _save(path, found)
            log(f"{name} seed {seed}: timesteps {int(found['timesteps'])}, fit {float(found['fit_seconds']):.1f} s, "
                f"score {float(found['score_seconds']):.1f} s")
        parts[seed] = dict(np.load(path))
    path = folder / f"{safe(name)}-neighbours.npz"
    if not path.is_file():
        series = series or load()
        timesteps = int(parts[seeds[0]]["timesteps"])
        found = neighbour_part(series, timesteps, params.get("validation_split", 0.1))
        found.update(labels=series.labels, train_end=np.asarray(series.train_end),
                     window=np.asarray(metrics.sliding_window(series.values)))
        _save(path, found)
    return parts, dict(np.load(path))


def _save(path: Path, arrays: dict) -> None:
    from lstmae.persistence.atomic import atomic_target

    with atomic_target(path, "a cache file") as temporary:
        with open(temporary, "wb") as stream:
            np.savez(stream, **arrays)


def metric_rows(name: str, parts: dict, nn: dict, skip: set = frozenset(), candidates=CANDIDATES) -> list[dict]:
    """VUS-PR and UCR top-1 of every candidate on every seed of one series, but the (seed, candidate name) in ``skip``."""
    labels, window, train_end = nn["labels"], int(nn["window"]), int(nn["train_end"])
    group = name.split("/")[0]
    rows = []
    if not labels.any() or labels.all():  # NAB's artificialNoAnomaly: no VUS-PR without both classes
        return rows
    for seed, found in parts.items():
        seconds = float(found["fit_seconds"] + found["score_seconds"] + nn["neighbour_seconds"])
        for candidate in candidates:
            if (seed, candidate.name) in skip or (candidate.multivariate_only and kind_of(group) != "multivariate"):
                continue
            score = compose(candidate, found, nn)
            rows.append({
                "name": name, "group": group, "family": family(name), "seed": seed, "candidate": candidate.name,
                "vus_pr": metrics.vus_pr(labels, score, window),
                "ucr_top1": metrics.ucr_top1(labels, score, train_end) if group == "ucr" else math.nan,
                "seconds": seconds,
            })
    return rows


KINDS = {"univariate": UNIVARIATE, "multivariate": MULTIVARIATE}


def kind_of(group: str) -> str:
    """The weights' kind of a series group: one feature (UCR, NAB) or several (SMAP, MSL), as `lstmae.scoring.combination.kind_weights`."""
    return "univariate" if group in UNIVARIATE else "multivariate"


def library_candidate(kind: str) -> Candidate:
    """The library's default for that kind of series: its weights (`lstmae.scoring.combination.SERIES_WEIGHTS`) and
    how its parts are fitted (`lstmae.scoring.combination.SERIES_OPTIONS`: the reconstruction's reduction over
    features, the features the nearest-window part compares)."""
    from lstmae.scoring.combination import SERIES_COVERAGE, SERIES_OPTIONS, SERIES_WEIGHTS

    from lstmae.params import SPECS

    options = SERIES_OPTIONS[kind]
    return Candidate(SERIES_WEIGHTS[kind]["latent"], SERIES_WEIGHTS[kind]["neighbours"],
                     features=options.get("reconstruction", {}).get("features", "mean"),
                     neighbours_on=options.get("neighbours", {}).get("features", "all"),
                     aggregation=SPECS["aggregation"].default, covered=SERIES_COVERAGE[kind])


def selection_seeds(table) -> list[int]:
    """The seeds on which every candidate was scored (``--select-seeds``): the others score only the choices."""
    counts = table.groupby("seed")["candidate"].nunique()
    return sorted(counts.index[counts == counts.max()])


def _best(table) -> str:
    """The candidate with the best mean over seeds of the mean VUS-PR over ``table``'s series (ties: the earlier
    candidate), on the seeds that scored every candidate (`selection_seeds`), among those that beat every part
    alone (`ALONE`, either aggregation) in every group of ``table`` (issue 25: "the default combination must beat
    each part alone in every group"); all of them when none does."""
    order = {c.name: i for i, c in enumerate(CANDIDATES)}
    table = table[table["seed"].isin(selection_seeds(table))]
    by_group = table.groupby(["group", "candidate", "seed"])["vus_pr"].mean().groupby(["group", "candidate"]).mean()
    selectable = table[table["candidate"].isin(SELECTABLE)]
    scores = selectable.groupby(["candidate", "seed"])["vus_pr"].mean().groupby("candidate").mean()
    alone = {c.name for c in ALONE}
    best_part = {group: max((by_group[(group, a)] for a in alone if (group, a) in by_group), default=-math.inf)
                 for group in table["group"].unique()}
    eligible = [c for c in scores.index if all(by_group[(g, c)] > best_part[g] for g in best_part if (g, c) in by_group)]
    return max(eligible or scores.index, key=lambda c: (round(scores[c], 12), -order[c]))


def cross_validate(table):
    """(out-of-fold rows, {fold: chosen candidate}): each fold's series scored by the candidate best on the
    other folds of the same kind (one feature or several: the weights are chosen per kind)."""
    import pandas as pd

    chosen, rows = {}, []
    kinds = table["group"].map(kind_of)
    for fold in sorted(table["family"].unique()):
        kind = kind_of(table.loc[table["family"] == fold, "group"].iloc[0])
        others = table[(table["family"] != fold) & (kinds == kind)]
        if others.empty:  # a kind with one fold only: nothing to choose from
            continue
        chosen[fold] = _best(others)
        rows.append(table[(table["family"] == fold) & (table["candidate"] == chosen[fold])])
    return pd.concat(rows, ignore_index=True), chosen


def best_overall(table) -> dict[str, str]:
    """{kind: the candidate best on all its folds together}: what the library's defaults should be."""
    kinds = table["group"].map(kind_of)
    return {kind: _best(table[kinds == kind]) for kind in KINDS if (kinds == kind).any()}


# ------------------------------------------------------------ the report
def _fmt(value, digits: int = 3) -> str:
    return "–" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


#: A peer counts as "best peer" of a group when it has results on at least this share of its series
#: (MatrixProfile failed on 2 of the 138 UCR series); the lead is measured on the series it has.
PEER_COVERAGE = 0.9


def group_lines(title: str, groups: tuple[str, ...], oof, table, default: str, before: str, peers) -> list[str]:
    """One row of the summary table: out-of-fold means (over seeds, with the seed range) beside the best peer."""
    mine = oof[oof["group"].isin(groups)]
    if mine.empty:
        return []
    per_seed = mine.groupby("seed")["vus_pr"].mean()
    top1 = mine.groupby("seed")["ucr_top1"].mean() if "ucr" in groups else None  # out of fold too
    names = sorted(mine["name"].unique())

    def in_sample(candidate: str) -> float:
        part = table[table["group"].isin(groups) & (table["candidate"] == candidate)]
        return float(part.groupby("seed")["vus_pr"].mean().mean())

    # The best peer among those run on at least PEER_COVERAGE of the group's series, compared on the series it has.
    best, lead = ("–", math.nan, 0), math.nan
    if peers is not None:
        theirs = peers[peers["series"].isin(names) & (peers["status"] == "ok")]
        for method, rows in theirs.groupby("method"):
            if rows["series"].nunique() >= PEER_COVERAGE * len(names) and rows["vus_pr"].mean() > (best[1] if not math.isnan(best[1]) else -1):
                best = (method, float(rows["vus_pr"].mean()), rows["series"].nunique())
                common = mine[mine["name"].isin(set(rows["series"]))].groupby("seed")["vus_pr"].mean().mean()
                lead = float(common) - best[1]
    mean = float(per_seed.mean())
    covered = "" if best[2] in (0, len(names)) else f" ({best[2]} of {len(names)})"
    return [f"| {title} | {len(names)} | **{_fmt(mean)}** ({_fmt(per_seed.min())}–{_fmt(per_seed.max())}) | "
            f"{_fmt(float(top1.mean()), 2) if top1 is not None else '–'} | {_fmt(in_sample(default))} | {_fmt(in_sample(before))} | "
            f"{best[0]} {_fmt(best[1])}{covered} | {lead:+.3f} |"]


GROUPS = (("univariate (UCR + NAB)", UNIVARIATE), ("multivariate (SMAP + MSL)", MULTIVARIATE),
          ("UCR", ("ucr",)), ("NAB", ("nab",)), ("SMAP", ("smap",)), ("MSL", ("msl",)))


def parts_lines(table, oof, library: dict) -> list[str]:
    """What each part is worth: each alone (nothing to select: out of fold as it is), the library's default
    (in-sample) and the out-of-fold selection, per group and per family (issue 25 item 4)."""
    def mean(rows) -> float:
        return float(rows.groupby("seed")["vus_pr"].mean().mean()) if len(rows) else math.nan

    from lstmae.params import SPECS

    shown = [part for part in ALONE if part.aggregation == SPECS["aggregation"].default]  # as the default aggregates

    def row(title: str, where) -> str:
        cells = [mean(table[where(table) & (table["candidate"] == part.name)]) for part in shown]
        either = [mean(table[where(table) & (table["candidate"] == part.name)]) for part in ALONE]
        default = table[where(table) & table.apply(lambda r: r["candidate"] == library.get(kind_of(r["group"])), axis=1)] \
            if len(table[where(table)]) else table.iloc[:0]
        out_of_fold = mean(oof[where(oof)])
        beats = "yes" if out_of_fold > max(either) else "**no**"
        return (f"| {title} | {table[where(table)]['name'].nunique()} | " + " | ".join(_fmt(c) for c in cells)
                + f" | {_fmt(mean(default))} | **{_fmt(out_of_fold)}** | {beats} |")

    lines = ["", "### What each part is worth", "",
             "VUS-PR, mean over series (and seeds): each part alone (aggregated as the default aggregates), the library's "
             "default weights (in-sample) and the out-of-fold selection above; the last column says whether the out-of-fold "
             "combination beats every part alone, aggregated either way.",
             "", "| group / family | series | reconstruction alone | latent alone | nearest-window alone | default | "
             "out-of-fold | beats each part |", "|---|---:|---:|---:|---:|---:|---:|---|"]
    for title, groups in GROUPS:
        if table["group"].isin(groups).any():
            lines.append(row(title, lambda t, g=groups: t["group"].isin(g)))
    for fold in sorted(oof["family"].unique()):
        lines.append(row(fold, lambda t, f=fold: t["family"] == f))
    return lines


def report(table, peers, seeds: list[int], params: dict, check: list[dict], machine: str) -> str:
    import json
    from datetime import datetime, timezone

    oof, chosen = cross_validate(table)
    overall = best_overall(table)
    library = {kind: library_candidate(kind).name for kind in overall}
    before = Candidate(0.25, 0.0).name
    seconds = table.drop_duplicates(["name", "seed"]).groupby("name")["seconds"].mean()
    lines = [
        "# Detection quality of lstmae on the dev benchmark, by cross-validation over source families",
        "",
        f"Written by `bench/quality.py --cv` on {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; estimator params "
        f"`{json.dumps(params, sort_keys=True)}` (empty = the defaults), seeds {', '.join(map(str, seeds))}. {machine}",
        "",
        f"Protocol: as `bench/quality.py` (fit on `values[:train_end]`, score all points, TSB-AD's VUS-PR), on the "
        f"{table['name'].nunique()} dev series (every series of `reference_peers_dev.csv`). "
        "Each series is fitted once per seed; the score candidates are the \"combined\" scorer's two weights "
        f"(latent in {{{', '.join(sorted({f'{c.latent_weight:g}' for c in GRID}))}}}, nearest-neighbour in "
        f"{{{', '.join(sorted({f'{c.neighbour_weight:g}' for c in GRID}, key=float))}}}), computed from the same fit; for "
        "series of several features also the maximum over features instead of the mean, and the nearest-window part over "
        "the continuous features only (not the two-valued flags). "
        "The weights are chosen separately for series of one feature (UCR, NAB) and of several (SMAP, MSL), as "
        "`lstmae.scoring.combination.kind_weights` applies them. Folds are source families (UCR domains, NAB folders, SMAP/MSL "
        "channel letters). For each fold the candidate with the best mean VUS-PR (mean over seeds) over the OTHER folds "
        "of its kind is chosen and scored on the held-out fold: lstmae's numbers below are these out-of-fold numbers. "
        "Labels are used only in the metrics and in this selection. "
        + ("" if selection_seeds(table) == sorted(seeds) else
           f"The choice is made on seed{'s' * (len(selection_seeds(table)) > 1)} {', '.join(map(str, selection_seeds(table)))} "
           "alone, where every candidate was scored; the other seeds score only each fold's choice, the defaults and the "
           "parts alone, so every out-of-fold number below is the mean over all the seeds of a choice made without them. ")
        + "Each candidate is scored two ways: the parts' centred means as they are (\"window\", the aggregation before this "
        "round) and each timestep's most anomalous window (\"; peak\", `aggregation=\"peak\"`).",
        "",
        "**The defaults** (`lstmae.scoring.combination.SERIES_WEIGHTS`): "
        + "; ".join(f"{kind} **{library[kind]}** (best on all its folds together: {overall[kind]}"
                    + ("" if library[kind] == overall[kind] else ", **not** the library's default") + ")" for kind in overall)
        + f". The score before this round was {before} for every series.",
        "",
        "| group | series | lstmae out-of-fold VUS-PR, mean of seeds (seed range) | UCR top-1 | default (in-sample) | "
        "before (in-sample) | best peer (on at least 90% of the series) | out-of-fold minus best peer, on the series it has |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for title, groups in GROUPS:
        lines += group_lines(title, groups, oof, table, library_candidate(kind_of(groups[0])).name, before, peers)
    lines += [
        "",
        f"Seconds per series (fit + score, incl. the nearest-neighbour part; mean over seeds): median {seconds.median():.1f}, "
        f"max {seconds.max():.1f}.",
        "",
        "### Folds",
        "",
        "| fold | series | candidate chosen on the other folds | out-of-fold VUS-PR (mean of seeds) | range over seeds | "
        "best peer on this fold |",
        "|---|---:|---|---:|---:|---|",
    ]
    for fold, candidate in chosen.items():
        rows = oof[oof["family"] == fold]
        per_seed = rows.groupby("seed")["vus_pr"].mean()
        names = rows["name"].unique()
        peer = "–"
        if peers is not None:
            theirs = peers[peers["series"].isin(names) & (peers["status"] == "ok")].groupby("method")["vus_pr"].mean()
            if len(theirs):
                peer = f"{theirs.idxmax()} {theirs.max():.3f}"
        lines.append(f"| {fold} | {len(names)} | {candidate} | {per_seed.mean():.3f} | {per_seed.min():.3f}–{per_seed.max():.3f} | {peer} |")
    lines += parts_lines(table, oof, library)
    if check:
        lines += ["", "### Check: the library's default end to end", "",
                  "`lstmae.evaluation.series.evaluate_series` (what `lstmae evaluate` runs) with `random_state=0`, against the "
                  "VUS-PR composed here from the cached parts for the library's default candidate:", "",
                  "| series | evaluate_series VUS-PR | composed VUS-PR | seconds |", "|---|---:|---:|---:|"]
        lines += [f"| {c['name']} | {c['library']:.6f} | {c['composed']:.6f} | {c['seconds']:.1f} |" for c in check]
    lines += ["", "### Candidates on all folds (in-sample, mean over seeds)", "",
              "| candidate | univariate | multivariate | UCR | NAB | SMAP | MSL | UCR top-1 |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for candidate in CANDIDATES:
        rows = table[table["candidate"] == candidate.name]
        mean = lambda groups: float(rows[rows["group"].isin(groups)].groupby("seed")["vus_pr"].mean().mean())  # noqa: E731
        top = float(rows[rows["group"] == "ucr"].groupby("seed")["ucr_top1"].mean().mean())
        lines.append(f"| {candidate.name} | {_fmt(mean(UNIVARIATE))} | {_fmt(mean(MULTIVARIATE))} | {_fmt(mean(('ucr',)))} | "
                     f"{_fmt(mean(('nab',)))} | {_fmt(mean(('smap',)))} | {_fmt(mean(('msl',)))} | {_fmt(top, 2)} |")
    lines += ["", "### Per series (out-of-fold, mean over seeds)", "", "| series | fold | VUS-PR | seed range | top-1 |", "|---|---|---:|---:|---:|"]
    for name, rows in oof.groupby("name"):
        lines.append(f"| {name} | {rows['family'].iloc[0]} | {rows['vus_pr'].mean():.3f} | {rows['vus_pr'].min():.3f}–"
                     f"{rows['vus_pr'].max():.3f} | {_fmt(float(rows['ucr_top1'].mean()), 2)} |")
    return "\n".join(lines) + "\n"
