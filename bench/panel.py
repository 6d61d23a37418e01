"""Whole-sequence novelty on panels (issue 16, items 3 and 4): lstmae against peers on aeon's classification datasets.

Protocol (item 3): for each dataset and each class c, fit on the training
samples of class c, score every test sample, anomaly = any other class;
AUC-ROC and AUC-PR per class, then their mean over the classes. Peers: the
k-nearest-neighbour distance (k=1) on z-normalised raw samples, IsolationForest
on flattened samples, PCA reconstruction error (components explaining 90% of
the variance, standardised samples) and a one-class SVM (RBF, nu=0.1,
standardised samples), all scikit-learn. lstmae and IsolationForest are random:
the mean over the seeds (default 0, 1, 2) is reported.

lstmae's panel score has three terms, each over its level on the training data:
the reconstruction error, the latent distance to the nearest training sample's
embedding and the input-space distance to the nearest training sample. The
weights of the default (`lstmae.scoring.state.PANEL_WEIGHTS`) are chosen by leave-one-dataset-out over a small grid (`--cv` prints each
fold's pick and the out-of-fold AUC-ROC).

Item 4: fit one model on all training samples (no labels), `encode` the train
and test samples, and report the test accuracy of a 1-nearest-neighbour
classifier and of logistic regression on the embeddings and on the raw samples.

Data: aeon's bundled ``.ts`` files, read with lstmae's own reader
(`lstmae.data.ts`); aeon is not a dependency of lstmae. Install it, without its
dependencies (only its data files are read), into a separate venv::

    python3 -m venv bench/.venv-aeon && bench/.venv-aeon/bin/pip install --no-deps aeon

or point ``--data`` / ``LSTMAE_AEON_DATA`` at a folder holding ``Name/Name_TRAIN.ts``.
Panels of hundreds to a thousand training samples (PLAID from sktime's wheel,
cycles of UCR dev series) are `bench/panel_large.py`'s, which runs them through
`score_task` below; sktime's data the same way::

    python3 -m venv bench/.venv-sktime && bench/.venv-sktime/bin/pip install --no-deps sktime

Only the development datasets (`DEV`) may be used to choose anything; others are
held out for outside checks.

    PYTHONPATH=src .venv/bin/python bench/panel.py --cv --markdown bench/panel-tables.md
"""

from __future__ import annotations

import argparse
import glob
import itertools
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

DEV = ("GunPoint", "ItalyPowerDemand", "ArrowHead", "BasicMotions", "JapaneseVowels")
PEERS = ("knn", "iforest", "pca", "ocsvm")
#: (reconstruction, latent, input) weight triples tried by leave-one-dataset-out.
WEIGHT_GRID = tuple(
    w for w in itertools.product((0.0, 0.25, 1.0), (0.0, 0.25, 1.0), (0.0, 0.5, 1.0, 2.0, 4.0)) if any(w)
)
HERE = Path(__file__).resolve().parent


def aeon_data_dir(given: str | None = None) -> Path:
    """The folder of aeon's bundled datasets: ``given``, $LSTMAE_AEON_DATA, or the one in bench/.venv-aeon."""
    for candidate in (given, os.environ.get("LSTMAE_AEON_DATA")):
        if candidate:
            return Path(candidate)
    found = sorted(glob.glob(str(HERE / ".venv-aeon" / "lib" / "python*" / "site-packages" / "aeon" / "datasets" / "data")))
    if not found:
        sys.exit("aeon's data not found: python3 -m venv bench/.venv-aeon && bench/.venv-aeon/bin/pip install --no-deps aeon "
                 "(or pass --data FOLDER)")
    return Path(found[-1])


def load(name: str, root: Path):
    """(train, test) `LabelledPanel`s; the test samples get the training length."""
    from lstmae.data.ts import read_ts

    folder = root / name if (root / name).is_dir() else root  # aeon's layout, or the files side by side
    train = read_ts(folder / f"{name}_TRAIN.ts")
    return train, read_ts(folder / f"{name}_TEST.ts", length=train.values.shape[1])


# ------------------------------------------------------------------ peers
def znorm(x: np.ndarray) -> np.ndarray:
    """(S, T, F) -> (S, T*F), each sample's features z-normalised over time."""
    return ((x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-8)).reshape(len(x), -1)


def flat(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1)


def peer_scores(name: str, train: np.ndarray, test: np.ndarray, seed: int) -> np.ndarray:
    """A peer's anomaly scores of ``test`` (higher = more anomalous) after fitting on ``train`` (S, T, F)."""
    from sklearn.decomposition import PCA
    from sklearn.ensemble import IsolationForest
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import OneClassSVM

    if name == "knn":
        a, b = znorm(train), znorm(test)
        rows = max(1, 2**26 // max(1, a.size))  # test rows per block: (rows, S_train, T*F) stays under 512 MiB
        return np.concatenate([np.sqrt(((b[i:i + rows, None, :] - a[None, :, :]) ** 2).sum(axis=2)).min(axis=1)
                               for i in range(0, len(b), rows)])
    if name == "iforest":
        return -IsolationForest(random_state=seed).fit(flat(train)).score_samples(flat(test))
    scaler = StandardScaler().fit(flat(train))
    a, b = scaler.transform(flat(train)), scaler.transform(flat(test))
    if name == "pca":
        pca = PCA(n_components=0.9, svd_solver="full").fit(a)
        return ((b - pca.inverse_transform(pca.transform(b))) ** 2).sum(axis=1)
    if name == "ocsvm":
        return -OneClassSVM(gamma="scale", nu=0.1).fit(a).score_samples(b)
    raise ValueError(f"unknown peer {name!r}; known: {PEERS}")


# ----------------------------------------------------------------- lstmae
def lstmae_terms(train: np.ndarray, test: np.ndarray, seed: int, params: dict) -> tuple[dict[str, np.ndarray], np.ndarray, float]:
    """({"reconstruction", "latent", "input"}: each term over its level, (S,)), the default score, fit seconds."""
    from lstmae import LSTMAutoencoder

    began = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # degenerate-model warnings on a dozen samples: measured, not hidden from users
        model = LSTMAutoencoder(**{"verbose": 0, "random_state": seed, **params}).fit(train)
    seconds = time.perf_counter() - began
    default = model.anomaly_score(test)
    terms: dict[str, np.ndarray] = {}
    for part in model.scoring_state_.parts:  # each part alone, over its level
        terms[part.name] = model.set_params(scorer=part.name).anomaly_score(test) / part.level
    model.set_params(scorer="combined")
    return terms, default, seconds


def weighted(terms: dict[str, np.ndarray], weights: tuple[float, float, float]) -> np.ndarray:
    return weights[0] * terms["reconstruction"] + weights[1] * terms["latent"] + weights[2] * terms["input"]


def auc(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    from sklearn.metrics import average_precision_score, roc_auc_score

    return float(roc_auc_score(labels, scores)), float(average_precision_score(labels, scores))


def score_task(normal: np.ndarray, test: np.ndarray, truth: np.ndarray, seeds: list[int], params: dict) -> dict:
    """One novelty task: fit on ``normal`` (S, T, F), score ``test`` (S', T, F) against ``truth`` (S',) 0/1.

    {"methods": {method: [(AUC-ROC, AUC-PR), ...]} (one pair per seed for lstmae's terms, one for the rest),
    "grid": {weights: mean AUC-ROC over seeds}, "seconds": [fit seconds per seed], "seed_auc_roc": {seed: AUC-ROC}}.
    """
    rows: dict[str, list[tuple[float, float]]] = {}
    for peer in PEERS:
        runs = [auc(truth, peer_scores(peer, normal, test, seed)) for seed in (seeds if peer == "iforest" else seeds[:1])]
        rows[peer] = [tuple(np.mean(runs, axis=0))]
    runs, per_grid, seconds = [], {w: [] for w in WEIGHT_GRID}, []
    for seed in seeds:
        terms, default, took = lstmae_terms(normal, test, seed, params)
        seconds.append(took)
        runs.append(auc(truth, default))
        for w in WEIGHT_GRID:
            per_grid[w].append(auc(truth, weighted(terms, w))[0])
        for term, values in terms.items():
            rows.setdefault(f"lstmae:{term}", []).append(auc(truth, values))
    rows["lstmae"] = [tuple(np.mean(runs, axis=0))]
    return {"methods": rows, "grid": {w: float(np.mean(v)) for w, v in per_grid.items()}, "seconds": seconds,
            "seed_auc_roc": {seed: run[0] for seed, run in zip(seeds, runs)}}


def summarise(tasks: list[dict], classes: int) -> dict:
    """A dataset's result from its tasks (`score_task`): every number the mean over its tasks (and seeds)."""
    methods = list(tasks[0]["methods"])
    seeds = list(tasks[0]["seed_auc_roc"])
    return {
        "methods": {m: np.mean([pair for task in tasks for pair in task["methods"][m]], axis=0).tolist() for m in methods},
        "grid": {",".join(map(str, w)): float(np.mean([task["grid"][w] for task in tasks])) for w in WEIGHT_GRID},
        "median_fit_seconds": float(np.median([s for task in tasks for s in task["seconds"]])),
        "seed_auc_roc": {str(seed): float(np.mean([task["seed_auc_roc"][seed] for task in tasks])) for seed in seeds},
        "classes": classes,
    }


def novelty(name: str, root: Path, seeds: list[int], params: dict, log=print) -> dict:
    """Item 3 on one dataset: {method: (AUC-ROC, AUC-PR) means over classes (and seeds)}, grid AUC-ROCs, seconds."""
    train, test = load(name, root)
    tasks = []
    for label in train.classes:
        tasks.append(score_task(train.values[train.labels == label], test.values, (test.labels != label).astype(int), seeds, params))
        lstmae, knn = tasks[-1]["methods"]["lstmae"][0][0], tasks[-1]["methods"]["knn"][0][0]
        log(f"  {name} class {label}: lstmae AUC-ROC {lstmae:.3f}, knn {knn:.3f}", flush=True)
    return summarise(tasks, len(train.classes))


def leave_one_dataset_out(grid: dict[str, dict[str, float]]) -> list[dict]:
    """For each dataset: the weights with the best mean AUC-ROC over the others, and their AUC-ROC on it.

    ``grid``: {dataset: {weights: AUC-ROC}}. Ties go to the first weights in the grid's order.
    """
    folds = []
    for held in grid:
        others = [d for d in grid if d != held]
        keys = list(grid[held])
        best = max(keys, key=lambda k: (np.mean([grid[d][k] for d in others]), -keys.index(k)))
        folds.append({"held_out": held, "weights": best, "auc_roc": grid[held][best],
                      "train_auc_roc": float(np.mean([grid[d][best] for d in others]))})
    return folds


# ------------------------------------------------------------- embeddings
def embedding_accuracy(name: str, root: Path, seeds: list[int], params: dict) -> dict[str, float]:
    """Item 4: test accuracy of 1-NN and logistic regression on `encode` outputs and on raw samples."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from lstmae import LSTMAutoencoder

    train, test = load(name, root)

    def accuracies(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
        nn1 = KNeighborsClassifier(n_neighbors=1).fit(a, train.labels).score(b, test.labels)
        logistic = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(a, train.labels).score(b, test.labels)
        return float(nn1), float(logistic)

    raw = accuracies(flat(train.values), flat(test.values))
    encoded = []
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = LSTMAutoencoder(**{"verbose": 0, "random_state": seed, **params}).fit(train.values)
        encoded.append(accuracies(model.encode(train.values), model.encode(test.values)))
    mean, spread = np.mean(encoded, axis=0), np.std(encoded, axis=0)
    return {"raw_1nn": raw[0], "raw_logistic": raw[1], "encode_1nn": float(mean[0]), "encode_logistic": float(mean[1]),
            "encode_1nn_std": float(spread[0]), "encode_logistic_std": float(spread[1])}


# ------------------------------------------------------------------ report
def markdown(results: dict, folds: list[dict] | None, embeddings: dict, settings: str) -> str:
    """The report's tables."""
    names = list(results)
    methods = ["lstmae", *PEERS, "lstmae:reconstruction", "lstmae:latent", "lstmae:input"]
    lines = [f"Settings: {settings}", ""]
    for metric, position in (("AUC-ROC", 0), ("AUC-PR", 1)):
        lines += [f"### {metric} (mean over classes)", "", "| dataset | " + " | ".join(methods) + " |",
                  "|---" * (len(methods) + 1) + "|"]
        for name in names:
            lines.append(f"| {name} | " + " | ".join(f"{results[name]['methods'][m][position]:.3f}" for m in methods) + " |")
        means = [np.mean([results[n]["methods"][m][position] for n in names]) for m in methods]
        lines += ["| **mean** | " + " | ".join(f"**{v:.3f}**" for v in means) + " |", ""]
    seeds = list(results[names[0]]["seed_auc_roc"])
    if len(seeds) > 1:
        lines += ["### lstmae's AUC-ROC per seed (mean over classes)", "",
                  "| dataset | " + " | ".join(f"seed {s}" for s in seeds) + " | std |", "|---" * (len(seeds) + 2) + "|"]
        per_seed = {n: [results[n]["seed_auc_roc"][s] for s in seeds] for n in names}
        for name in names:
            lines.append(f"| {name} | " + " | ".join(f"{v:.3f}" for v in per_seed[name]) + f" | {np.std(per_seed[name]):.3f} |")
        overall = [np.mean([per_seed[n][i] for n in names]) for i in range(len(seeds))]
        lines += ["| **mean** | " + " | ".join(f"**{v:.3f}**" for v in overall) + f" | **{np.std(overall):.3f}** |", ""]
    if folds:
        lines += ["### Leave-one-dataset-out choice of the weights (reconstruction, latent, input)", "",
                  "| held-out dataset | weights chosen on the others | their AUC-ROC on the others | AUC-ROC on the held-out one |",
                  "|---|---|---|---|"]
        lines += [f"| {f['held_out']} | {f['weights']} | {f['train_auc_roc']:.3f} | {f['auc_roc']:.3f} |" for f in folds]
        lines += [f"| **out-of-fold mean** | | | **{np.mean([f['auc_roc'] for f in folds]):.3f}** |", ""]
    if embeddings:
        lines += ["### Embeddings (item 4): test accuracy", "",
                  "| dataset | 1-NN raw | 1-NN encode | logistic raw | logistic encode |", "|---|---|---|---|---|"]
        for name, e in embeddings.items():
            lines.append(f"| {name} | {e['raw_1nn']:.3f} | {e['encode_1nn']:.3f} ± {e['encode_1nn_std']:.3f} | "
                         f"{e['raw_logistic']:.3f} | {e['encode_logistic']:.3f} ± {e['encode_logistic_std']:.3f} |")
        keys = ("raw_1nn", "encode_1nn", "raw_logistic", "encode_logistic")
        lines += ["| **mean** | " + " | ".join(f"**{np.mean([e[k] for e in embeddings.values()]):.3f}**" for k in keys) + " |", ""]
    seconds = [results[n]["median_fit_seconds"] for n in names]
    lines.append(f"Median lstmae fit per class model: {np.median(seconds):.1f} s (2 shared cores).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", help="folder with Name/Name_TRAIN.ts (default: aeon's in bench/.venv-aeon)")
    parser.add_argument("--datasets", default=",".join(DEV), help="comma-separated (default: the development datasets)")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--params", default="{}", help="LSTMAutoencoder parameters as JSON, e.g. '{\"epochs\": 10}'")
    parser.add_argument("--cv", action="store_true", help="leave-one-dataset-out over the weight grid")
    parser.add_argument("--no-embeddings", action="store_true", help="skip item 4")
    parser.add_argument("--json", help="write all results here")
    parser.add_argument("--markdown", help="write the tables here")
    args = parser.parse_args(argv)
    root = aeon_data_dir(args.data)
    names = [n for n in args.datasets.split(",") if n]
    held = [n for n in names if n not in DEV]
    if held:
        print(f"note: {held} are held-out datasets: report them, never choose anything on them", file=sys.stderr)
    seeds = [int(s) for s in args.seeds.split(",")]
    params = json.loads(args.params)
    results, embeddings = {}, {}
    for name in names:
        print(f"{name}: novelty", flush=True)
        results[name] = novelty(name, root, seeds, params)
        if not args.no_embeddings:
            print(f"{name}: embeddings", flush=True)
            embeddings[name] = embedding_accuracy(name, root, seeds, params)
    folds = leave_one_dataset_out({n: results[n]["grid"] for n in names}) if args.cv and len(names) > 1 else None
    settings = f"datasets {names}, seeds {seeds}, LSTMAutoencoder params {params or 'defaults'}"
    text = markdown(results, folds, embeddings, settings)
    print(text)
    if args.markdown:
        Path(args.markdown).write_text(text)
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "folds": folds, "embeddings": embeddings}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
