"""Write tests/files/tsbad_oracle.{json,npz}: TSB-AD 1.5's metric values for lstmae.evaluation.metrics to match.

Run it with a Python that has ``tsb-ad==1.5`` installed (it pins numpy<2, so
keep it in its own virtual environment; lstmae does not depend on it)::

    /tmp/tsbad/bin/python bench/make_metric_oracle.py   # --data DIR; default: lstmae's dev_data_folder()

The fixture holds no benchmark data. For real series it keeps only what the
metrics see: the length, the labelled ranges, train_end, TSB-AD's window for
the series, and one score derived from it (the absolute first difference of
column 0, quantised to 0..255, so the values cannot be read back). Two scores
are evaluated per case: that one, and a hash score computed in the test from
the labels alone. Synthetic cases (ties, constant scores, anomalies at the
edges, close ranges, window 0) carry their scores directly; synthetic series
for the window estimate are stored as float32.

Also used by tests/test_metrics.py's live test: ``--case-file IN --out OUT``
evaluates cases handed over in an .npz and writes the oracle's values as JSON.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
from TSB_AD.evaluation.basic_metrics import basic_metricor, generate_curve
from TSB_AD.evaluation.metrics import get_metrics
from TSB_AD.utils.slidingWindows import find_length_rank

REAL = [
    ("ucr", "144_UCR_Anomaly_InternalBleeding9_4200_6599_6681"),
    ("ucr", "152_UCR_Anomaly_PowerDemand1_9000_18485_18821"),
    ("ucr", "092_UCR_Anomaly_DISTORTEDtiltAPB4_20000_67995_67996"),
    ("ucr", "229_UCR_Anomaly_mit14134longtermecg_16363_57960_57970"),
    ("nab", "realKnownCause/nyc_taxi"),
    ("nab", "realTraffic/speed_t4013"),
    ("smap", "E-2"),
    ("msl", "C-1"),
]


def hash_score(labels: np.ndarray) -> np.ndarray:
    """A deterministic pseudo-random score in [0, 1.5), raised on and near the labels. Exact in float64."""
    t = np.arange(labels.size, dtype=np.uint64)
    noise = ((t * np.uint64(2654435761)) % np.uint64(2**32)).astype(np.float64) / 2.0**32
    near = np.convolve(labels.astype(np.float64), np.ones(9), mode="same") > 0
    return noise + 0.5 * near


def ranges_of(labels: np.ndarray) -> list[list[int]]:
    edges = np.diff(np.concatenate(([0], labels.astype(np.int8), [0])))
    return [[int(s), int(e)] for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1)]


def labels_from(ranges, n: int) -> np.ndarray:
    labels = np.zeros(n, dtype=int)
    for s, e in ranges:
        labels[s : e + 1] = 1
    return labels


def oracle(score: np.ndarray, labels: np.ndarray, window: int, full: bool) -> dict:
    """TSB-AD's four threshold-free metrics and its R-based-F1 (pred=None: best of 100 thresholds)."""
    grader = basic_metricor()
    labels = labels.astype(int)
    *_, vus_roc, vus_pr = generate_curve(labels, score, window, "opt", 250)
    values = {
        "auc_roc": float(grader.metric_ROC(labels, score)),
        "auc_pr": float(grader.metric_PR(labels, score)),
        "vus_roc": float(vus_roc),
        "vus_pr": float(vus_pr),
        "r_based_f1": float(grader.metric_RF1(labels, score, preds=None)),
    }
    if full:  # the documented entry point must give the same numbers
        got = get_metrics(score, labels, slidingWindow=window, pred=None, version="opt", thre=250)
        for key, name in [("auc_roc", "AUC-ROC"), ("auc_pr", "AUC-PR"), ("vus_roc", "VUS-ROC"),
                          ("vus_pr", "VUS-PR"), ("r_based_f1", "R-based-F1")]:
            assert abs(got[name] - values[key]) < 1e-12, (key, got[name], values[key])
    return values


def load_real(root: Path, group: str, name: str):
    """(values (n, d), labels (n,), train_end), per the development data's README.md."""
    if group == "ucr":
        path = next((root / "ucr").glob(name + ".txt*"))
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rt") as stream:
            values = np.array(stream.read().split(), float)
        train_end, start, end = (int(p) for p in name.split("_")[-3:])
        labels = np.zeros(values.size, dtype=int)
        labels[start:end] = 1
        return values.reshape(-1, 1), labels, train_end
    if group == "nab":
        import pandas as pd

        frame = pd.read_csv(root / "nab" / "data" / (name + ".csv"))
        stamps = pd.to_datetime(frame["timestamp"])
        windows = json.loads((root / "nab" / "labels" / "combined_windows.json").read_text())[name + ".csv"]
        labels = np.zeros(len(frame), dtype=int)
        for lo, hi in windows:
            labels[((stamps >= pd.Timestamp(lo)) & (stamps <= pd.Timestamp(hi))).to_numpy()] = 1
        return frame["value"].to_numpy(float).reshape(-1, 1), labels, int(0.15 * len(frame))
    archive = np.load(root / "smap_msl" / (name + ".npz"))
    values = np.concatenate([archive["train"], archive["test"]]).astype(float)
    labels = np.concatenate([np.zeros(len(archive["train"]), int), archive["test_labels"].astype(int)])
    return values, labels, len(archive["train"])


def synthetic_metric_cases() -> list[dict]:
    """Small cases chosen to hit the corners of the definitions."""
    rng = np.random.default_rng(20261129)
    cases = []

    def add(name, labels, score, window):
        cases.append({"name": name, "labels": np.asarray(labels, int), "score": np.asarray(score, float), "window": window})

    n = 600
    y = np.zeros(n, int); y[0:5] = 1; y[n - 3:] = 1  # anomalies touching both ends
    add("edges", y, rng.random(n) + 0.3 * y, 40)
    y = np.zeros(n, int); y[[100, 101, 300, 450]] = 1  # single points, two adjacent
    add("points_ties", y, np.round(rng.random(n) * 4) / 4 + y * 0.25, 25)
    y = np.zeros(n, int); y[200:210] = 1; y[215:220] = 1; y[260:300] = 1  # ranges closer than the window
    add("close_ranges", y, rng.random(n), 30)
    add("constant_score", y, np.full(n, 0.7), 20)
    add("window_zero", y, rng.random(n) + y, 0)
    add("window_odd_large", y, rng.random(n) ** 3 + 0.2 * y, 301)
    y = np.zeros(n, int); y[50:550] = 1  # mostly anomalous
    add("mostly_anomalous", y, rng.random(n) + 0.1 * y, 16)
    m = 3000
    y = (rng.random(m) < 0.01).astype(int)  # many short random anomalies
    y[1500:1540] = 1
    add("many_ranges", y, np.round(rng.random(m) * 20) + 5 * y, 80)
    y = np.zeros(257, int); y[128] = 1
    add("perfect", y, y.astype(float), 7)
    add("inverted", y, 1.0 - y, 7)
    return cases


def synthetic_window_series() -> dict[str, np.ndarray]:
    """Series for the window estimate: periods inside and outside 6..303, noise, a trend, a constant."""
    rng = np.random.default_rng(7)
    t = np.arange(30000)
    series = {
        "sine_50": np.sin(2 * np.pi * t[:5000] / 50) + 0.1 * rng.standard_normal(5000),
        "sine_173_long": np.sin(2 * np.pi * t / 173.3) + 0.3 * rng.standard_normal(30000),
        "sine_4": np.sin(2 * np.pi * t[:3000] / 4),
        "sine_380": np.sin(2 * np.pi * t[:8000] / 380),
        "square_24": np.sign(np.sin(2 * np.pi * t[:4000] / 24)) + 0.05 * rng.standard_normal(4000),
        "noise": rng.standard_normal(2000),
        "random_walk": np.cumsum(rng.standard_normal(6000)),
        "constant": np.ones(1000),
        "short_250": np.sin(2 * np.pi * t[:250] / 20),
    }
    return {name: values.astype(np.float32) for name, values in series.items()}


def build(root: Path, out_dir: Path) -> None:
    arrays: dict[str, np.ndarray] = {}
    fixture = {"tsb_ad": "1.5", "version": "opt", "thre": 250, "real": [], "synthetic": [], "windows": {}}
    for group, name in REAL:
        began = time.perf_counter()
        values, labels, train_end = load_real(root, group, name)
        window = int(find_length_rank(values[:, 0].reshape(-1, 1), rank=1))
        diff = np.abs(np.diff(values[:, 0], prepend=values[0, 0]))
        top = np.quantile(diff, 0.999)
        quantised = np.minimum(np.floor(diff / (top if top > 0 else 1.0) * 200.0), 255).astype(np.uint8)
        key = f"{group}/{name}"
        arrays[f"score/{key}"] = quantised
        results = {
            "absdiff_u8": oracle(quantised.astype(np.float64), labels, window, full=False),
            "hash": oracle(hash_score(labels), labels, window, full=False),
        }
        fixture["real"].append({"name": key, "group": group, "n": int(labels.size), "d": int(values.shape[1]),
                                "train_end": int(train_end), "ranges": ranges_of(labels), "window": window,
                                "oracle": results})
        print(f"{key}: n={labels.size} window={window} {time.perf_counter() - began:.1f}s", flush=True)
    for case in synthetic_metric_cases():
        arrays[f"synthetic/{case['name']}"] = case["score"]
        fixture["synthetic"].append({"name": case["name"], "n": int(case["labels"].size), "ranges": ranges_of(case["labels"]),
                                     "window": case["window"],
                                     "oracle": oracle(case["score"], case["labels"], case["window"], full=True)})
    for name, values in synthetic_window_series().items():
        arrays[f"window/{name}"] = values
        fixture["windows"][name] = int(find_length_rank(values.astype(np.float64).reshape(-1, 1), rank=1))
    out_dir.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out_dir / "tsbad_oracle.npz", **arrays)
    (out_dir / "tsbad_oracle.json").write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {out_dir / 'tsbad_oracle.json'} and .npz")


def live(case_file: Path, out: Path) -> None:
    """Evaluate the cases in ``case_file`` (labels/<i>, score/<i>, window/<i>, values/<i>) for the live test."""
    archive = np.load(case_file)
    count = int(archive["count"])
    results = []
    for i in range(count):
        labels = archive[f"labels/{i}"].astype(int)
        entry = oracle(archive[f"score/{i}"].astype(np.float64), labels, int(archive[f"window/{i}"]), full=True)
        entry["sliding_window"] = int(find_length_rank(archive[f"values/{i}"].astype(np.float64).reshape(-1, 1), rank=1))
        results.append(entry)
    out.write_text(json.dumps(results))


def all_windows(root: Path, out: Path) -> None:
    """find_length_rank(values[:, 0], rank=1) of every series in MANIFEST.csv (names and integers only)."""
    windows = {}
    with open(root / "MANIFEST.csv") as stream:
        names = [line.split(",")[0] for line in stream.read().splitlines()[1:] if line]
    for key in names:
        group, name = key.split("/", 1)
        values, _, _ = load_real(root, group, name)
        windows[key] = int(find_length_rank(values[:, 0].reshape(-1, 1), rank=1))
    out.write_text(json.dumps(windows, indent=0, sort_keys=True) + "\n")
    print(f"wrote {len(windows)} windows to {out}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, help="the development data (default: $LSTMAE_BENCH_DATA, else ../shared/data beside the checkout)")
    parser.add_argument("--out-dir", type=Path, default=Path(__file__).resolve().parents[1] / "tests" / "files")
    parser.add_argument("--case-file", type=Path, help="live mode: cases to evaluate (.npz)")
    parser.add_argument("--out", type=Path, help="live mode: where to write the JSON results")
    parser.add_argument("--windows", action="store_true", help="only write tests/files/tsbad_windows.json (every series)")
    args = parser.parse_args()
    if args.data is None and args.case_file is None:
        args.data = _dev_data_folder()
    if args.windows:
        all_windows(args.data, args.out_dir / "tsbad_windows.json")
    elif args.case_file is not None:
        live(args.case_file, args.out)
    else:
        build(args.data, args.out_dir)


def _dev_data_folder() -> Path:
    """lstmae's one lookup of the development data, from this checkout's src/ (this Python need not have lstmae)."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from lstmae.data.benchmarks import dev_data_folder

    return dev_data_folder()


if __name__ == "__main__":
    main()
