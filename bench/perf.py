"""Speed and memory of lstmae against the seed Keras recipe and a plain PyTorch nn.LSTM, in one run.

Run from the repository root (lstmae importable, e.g. ``pip install -e .`` or ``PYTHONPATH=src``)::

    python bench/perf.py            # everything, about 10-15 minutes on 2 cores
    python bench/perf.py --quick    # a short smoke run (fewer epochs, smaller series)
    python bench/perf.py --skip-keras --skip-memory ...   # parts; see --help

Measures training throughput (steady-state epochs), scoring time, peak RSS while
scoring 10M points and the effective FLOP rate of training against a large
float32 matmul, then rewrites the ``perf`` section of bench/RESULTS.md. Every
measurement runs in its own child process (clean thread settings, clean RSS).
Training is compared with Keras in paired rounds (``--rounds``, default 3): one
Keras run and one lstmae run per batch size, adjacent in time, so that the
machine's drift over minutes does not favour either side.
The Keras side runs in ``bench/.venv-keras`` (created on first use with
``tensorflow-cpu``); TensorFlow is never a dependency of lstmae.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
KERAS_VENV = HERE / ".venv-keras"
TENSORFLOW = "tensorflow-cpu==2.18.0"
SAMPLES, TIMESTEPS, UNITS = 2000, 40, 100  # the seed configuration
START, END = "<!-- perf:start -->", "<!-- perf:end -->"
#: fit with one idea switched off (worker_fit --variant), for the ideas table
FIT_VARIANTS = ("nn_lstm", "adam_loop")


# ----------------------------------------------------------------------------- data
def seed_panel() -> np.ndarray:
    """(2000, 40, 1) float32: noisy sines with random phase and period, inside tanh's range."""
    rng = np.random.default_rng(0)
    t = np.arange(TIMESTEPS)
    period = rng.uniform(10, 30, size=(SAMPLES, 1))
    phase = rng.uniform(0, 2 * np.pi, size=(SAMPLES, 1))
    values = 0.8 * np.sin(2 * np.pi * t / period + phase) + 0.05 * rng.standard_normal((SAMPLES, TIMESTEPS))
    return values[..., None].astype(np.float32)


def long_series(n: int, seed: int = 1) -> np.ndarray:
    """(n,) float32: a period-40 sine with noise."""
    rng = np.random.default_rng(seed)
    return (0.8 * np.sin(2 * np.pi * np.arange(n) / 40) + 0.05 * rng.standard_normal(n)).astype(np.float32)


# ----------------------------------------------------------------------------- FLOPs
def lstm_flops(steps: int, inputs: int, hidden: int) -> int:
    """Multiply-adds x 2 of one LSTM layer's gate products over ``steps`` (element-wise work not counted)."""
    return steps * 2 * 4 * hidden * (inputs + hidden)


def seed_train_flops_per_window(steps: int = TIMESTEPS, units: int = UNITS, features: int = 1) -> dict:
    """Training FLOPs per window: forward x 3 (forward, gradient wrt inputs, gradient wrt weights).

    ``model``: the seed model's arithmetic as Keras runs it (the repeated latent
    projected at every step). ``executed``: what lstmae computes (that projection once).
    """
    forward = lstm_flops(steps, features, units) + lstm_flops(steps, units, units) + steps * 2 * units * features
    saved = (steps - 1) * 2 * 4 * units * units  # decoder input projection done once, not T times
    return {"model": 3 * forward, "executed": 3 * (forward - saved)}


# ----------------------------------------------------------------------------- workers (child processes)
def _threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


def worker_matmul(args: argparse.Namespace) -> dict:
    import torch

    _threads(args.threads)
    n = 2048
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return {"gflops": 2 * n**3 / min(times) / 1e9, "gflops_median": 2 * n**3 / float(np.median(times)) / 1e9}


def worker_fit(args: argparse.Namespace) -> dict:
    """lstmae through the real LSTMAutoencoder.fit; per-epoch wall times from a timing callback.

    ``--variant`` switches one idea off: nn_lstm (LSTMAE_KERNELS=0: torch's nn.LSTM, the path
    GPUs and machines without the kernels take, instead of the C path), adam_loop (Adam without
    fused=True).
    """
    if args.variant == "nn_lstm":
        os.environ["LSTMAE_KERNELS"] = "0"
    _threads(args.threads)
    import lstmae
    import lstmae.training as training

    if args.variant == "adam_loop":
        training.AutoencoderTask.configure_optimizers = lambda self: __import__("torch").optim.Adam(self.parameters(), lr=self.learning_rate)

    seconds: list[float] = []

    class TimedHistory(training.HistoryRecorder):  # bench-only: times each training epoch
        def on_train_epoch_start(self, trainer, pl_module) -> None:
            self._start = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            seconds.append(time.perf_counter() - self._start)
            super().on_train_epoch_end(trainer, pl_module)

    training.HistoryRecorder = TimedHistory
    panel = seed_panel()
    model = lstmae.LSTMAutoencoder(
        timesteps=TIMESTEPS, units=UNITS, architecture="repeat", validation_split=0, shuffle=True,
        batch_size=args.batch, epochs=args.epochs, random_state=0, verbose=0,
    )
    model.fit(panel)
    steady = seconds[1:]
    return {"epoch_seconds": seconds, "windows_per_s": SAMPLES / float(np.median(steady)), "final_loss": model.history_["loss"][-1]}


def _reference_net(kind: str):
    """Seed model in torch. kind: "nn_lstm" (plain nn.LSTM, fused oneDNN kernel, tanh Dense like the seed),
    "lstmae" (lstmae's network), "lstmae_repeat_input" (lstmae's recurrence, latent projected at every step)."""
    import torch
    from torch import nn

    if kind == "nn_lstm":

        class Seed(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.encoder = nn.LSTM(1, UNITS, batch_first=True)
                self.decoder = nn.LSTM(UNITS, UNITS, batch_first=True)
                self.dense = nn.Linear(UNITS, 1)

            def forward(self, x: torch.Tensor) -> torch.Tensor:  # x (B, T, 1)
                _, (h, _) = self.encoder(x)  # h (1, B, H)
                repeated = h[0].unsqueeze(1).expand(-1, x.shape[1], -1)  # (B, T, H)
                steps, _ = self.decoder(repeated)
                return torch.tanh(self.dense(steps))  # (B, T, 1)

        return Seed()
    from lstmae.config import NetworkConfig
    from lstmae.backends.network import LSTMAutoencoder

    net = LSTMAutoencoder(NetworkConfig(1, TIMESTEPS, (UNITS,), "repeat"))
    if kind == "lstmae_repeat_input":

        def decode(z: torch.Tensor, timesteps: int) -> torch.Tensor:
            steps, _ = net.decoder(z.unsqueeze(1).expand(-1, timesteps, -1))  # (B, T, L): projected T times
            return net.output_layer(steps)

        net.decode = decode
    return net


def worker_loop(args: argparse.Namespace) -> dict:
    """A plain training loop (no Lightning): Adam, MSE, shuffled pre-batched tensors; epochs of each kind interleaved."""
    import torch

    _threads(args.threads)
    torch.manual_seed(0)
    panel = torch.from_numpy(seed_panel())
    kinds = args.kinds.split(",")
    nets = {kind: _reference_net(kind) for kind in kinds}
    optimisers = {kind: torch.optim.Adam(net.parameters(), lr=1e-3) for kind, net in nets.items()}
    seconds: dict[str, list[float]] = {kind: [] for kind in kinds}
    for _ in range(args.epochs):
        for kind in kinds:  # alternating: drift in machine speed hits every kind alike
            net, optimiser = nets[kind], optimisers[kind]
            order = torch.randperm(SAMPLES)
            start = time.perf_counter()
            for first in range(0, SAMPLES, args.batch):
                batch = panel[order[first : first + args.batch]]  # (B, T, 1)
                loss = (net(batch) - batch).pow(2).mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
            seconds[kind].append(time.perf_counter() - start)
    return {kind: {"epoch_seconds": s, "windows_per_s": SAMPLES / float(np.median(s[1:]))} for kind, s in seconds.items()}


def _fitted_on_series(timesteps: int, units: int, score_stride) -> object:
    import lstmae

    model = lstmae.LSTMAutoencoder(
        timesteps=timesteps, units=units, epochs=1, validation_split=0, random_state=0, verbose=0, score_stride=score_stride,
    )
    return model.fit(long_series(2000, seed=3))


def worker_score(args: argparse.Namespace) -> dict:
    """anomaly_score (per timestep, every timestep) of long series, for each score_stride; first call warms up."""
    _threads(args.threads)
    import lstmae.scoring.inference as inference

    if args.chunk_values:
        inference.CHUNK_VALUES = args.chunk_values
    if args.variant == "serial_chunks":  # idea check: chunks one after another, torch's intra-op threads only
        inference.cpu_workers = lambda device: 1
    elif args.variant == "nn_lstm":  # idea check: inference through torch's nn.LSTM instead of the C loop
        os.environ["LSTMAE_KERNELS"] = "0"
    model = _fitted_on_series(TIMESTEPS, UNITS, 1)
    model.anomaly_score(long_series(2000))
    out = {}
    for n in args.lengths:
        series = long_series(n)
        for stride in args.strides:
            model.set_params(score_stride=int(stride) if stride.isdigit() else stride)
            start = time.perf_counter()
            scores = model.anomaly_score(series)
            elapsed = time.perf_counter() - start
            assert scores.shape == (n,) and np.isfinite(scores).all()
            out[f"{n}/{stride}"] = {"seconds": elapsed, "windows": int(lstmae_windows(n, TIMESTEPS, model._settings().score_stride))}
    return out


def lstmae_windows(n: int, timesteps: int, stride: int) -> int:
    from lstmae.data.windows import n_windows

    return n_windows(n, timesteps, stride)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def worker_memory(args: argparse.Namespace) -> dict:
    """Peak RSS while scoring a long series with timesteps=100 (model fitted briefly on a short slice)."""
    _threads(args.threads)
    model = _fitted_on_series(100, args.units, int(args.strides[0]) if args.strides[0].isdigit() else args.strides[0])
    series = long_series(args.lengths[0])
    before = _peak_rss_mb()
    start = time.perf_counter()
    scores = model.anomaly_score(series)
    elapsed = time.perf_counter() - start
    assert scores.shape == series.shape
    return {"peak_rss_mb": _peak_rss_mb(), "peak_before_scoring_mb": before, "seconds": elapsed,
            "score_stride": model._settings().score_stride, "units": args.units, "n": len(series)}


WORKERS = {"matmul": worker_matmul, "fit": worker_fit, "loop": worker_loop, "score": worker_score, "memory": worker_memory}


def child(worker: str, timeout: float = 1800, **options) -> dict:
    """Run one worker in a fresh interpreter; return its JSON (or {"error": ...})."""
    command = [sys.executable, str(Path(__file__).resolve()), "--worker", worker]
    for key, value in options.items():
        flag = "--" + key.replace("_", "-")
        command += [flag, *map(str, value)] if isinstance(value, (list, tuple)) else [flag, str(value)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))}
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr.strip() else f"exit {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- Keras
def keras_python(log) -> Path | None:
    python = KERAS_VENV / "bin" / "python"
    if python.exists() and subprocess.run([python, "-c", "import tensorflow"], capture_output=True).returncode == 0:
        return python
    log(f"creating {KERAS_VENV} with {TENSORFLOW} (first run only; a large download) ...")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(KERAS_VENV)], check=True)
        subprocess.run([python, "-m", "pip", "install", "-q", TENSORFLOW], check=True)
    except (subprocess.CalledProcessError, OSError) as exc:
        log(f"could not create the Keras venv: {exc}")
        return None
    return python


def run_keras(python: Path, epochs: int, lengths: list[int], log, batches: tuple[int, ...] = ()) -> dict:
    """The seed Keras model trained at each of ``batches`` (none: not trained), then scoring each length."""
    with tempfile.TemporaryDirectory() as tmp:
        panel = Path(tmp) / "panel.npy"
        np.save(panel, seed_panel())
        series = []
        for n in lengths:
            path = Path(tmp) / f"series{n}.npy"
            np.save(path, long_series(n))
            series.append(str(path))
        command = [str(python), str(HERE / "keras_seed.py"), str(panel), *series, "--epochs", str(epochs), "--units", str(UNITS),
                   "--batches", *map(str, batches)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        log(done.stderr[-2000:])
        return {"error": "keras run failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def paired_training(python: Path | None, rounds: int, epochs: int, threads: int, log) -> dict:
    """Keras and lstmae training timed side by side: per batch size, ``rounds`` rounds of one Keras
    run and one lstmae run (``threads`` torch threads), adjacent in time, their order alternating.

    This VM's speed drifts by tens of percent over minutes; runs made minutes apart compared the
    two frameworks under different conditions. Each side's windows/s is 2000 / the median of its
    steady epochs pooled over the rounds; the per-round ratios are kept to show the spread.
    Returns {batch: {"keras": [epoch seconds per round], "lstmae": [...], "ratios": [...]}}.
    """
    out: dict = {}
    for batch in (32, 256):
        entry: dict = {"keras": [], "lstmae": [], "ratios": []}
        for r in range(rounds):
            runs = {}
            for side in (("keras", "lstmae") if r % 2 == 0 else ("lstmae", "keras")):
                if side == "keras":
                    result = run_keras(python, epochs, [], log, batches=(batch,)) if python else {"error": "no Keras venv"}
                    runs[side] = result.get("train", {}).get(str(batch), {}).get("epoch_seconds")
                else:
                    runs[side] = child("fit", batch=batch, threads=threads, epochs=epochs).get("epoch_seconds")
            log(f"paired round {r + 1}, batch {batch}: {runs}")
            if runs["keras"] and runs["lstmae"]:
                entry["keras"].append(runs["keras"][1:])  # the first epoch is start-up
                entry["lstmae"].append(runs["lstmae"][1:])
                entry["ratios"].append(float(np.median(runs["keras"][1:]) / np.median(runs["lstmae"][1:])))
        for side in ("keras", "lstmae"):
            pooled = [s for run in entry[side] for s in run]
            entry[f"{side}_windows_per_s"] = SAMPLES / float(np.median(pooled)) if pooled else None
        out[batch] = entry
    return out


# ----------------------------------------------------------------------------- report
def machine() -> dict:
    """The CPU (with family/model and its widest vector instructions: VMs of one name differ), versions."""
    cpu = platform.processor()
    try:
        fields = dict(line.split(":", 1) for line in Path("/proc/cpuinfo").read_text().split("\n\n")[0].splitlines() if ":" in line)
        fields = {key.strip(): value.strip() for key, value in fields.items()}
        flags = set(fields.get("flags", "").split())
        vector = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "no AVX2"
        cpu = f"{fields.get('model name', cpu)} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}, {vector})"
    except (OSError, ValueError):
        pass
    import lightning
    import torch

    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "lightning": lightning.__version__, "numpy": np.__version__, "torch_default_threads": torch.get_num_threads()}


def fmt(value, digits=0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def write_results(text: str, path: Path, start: str = START, end: str = END) -> None:
    """Replace the section between the markers ``start`` and ``end`` of ``path`` (append it if absent)."""
    block = f"{start}\n{text.rstrip()}\n{end}"
    old = path.read_text() if path.exists() else "# Benchmark results\n"
    if start in old and end in old:
        new = old[: old.index(start)] + block + old[old.index(end) + len(end) :]
    else:
        new = old.rstrip() + "\n\n" + block + "\n"
    temporary = path.with_name(f".{path.name}.tmp")  # written whole, then renamed: never a half-written report
    temporary.write_text(new)
    os.replace(temporary, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 epochs, 20k/100k-point series, 1M points for memory")
    parser.add_argument("--skip-keras", action="store_true")
    parser.add_argument("--skip-train", action="store_true")
    parser.add_argument("--skip-score", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-ideas", action="store_true")
    parser.add_argument("--long", action="store_true", help="also score 1M points with stride 1 (lstmae and Keras: minutes)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch thread counts to compare")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of Keras and lstmae training timed side by side")
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS.md")
    # worker options
    parser.add_argument("--worker", choices=sorted(WORKERS))
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--kinds", default="nn_lstm,lstmae")
    parser.add_argument("--lengths", type=int, nargs="+", default=[100_000])
    parser.add_argument("--strides", nargs="+", default=["1"])
    parser.add_argument("--units", type=int, default=UNITS)
    parser.add_argument("--chunk-values", type=int, default=0)
    parser.add_argument("--variant", default="", choices=["", "serial_chunks", *FIT_VARIANTS])
    args = parser.parse_args()
    if args.worker:
        args.threads = args.threads[0]
        print(json.dumps(WORKERS[args.worker](args)))
        return

    began = time.perf_counter()
    log = lambda message: print(f"[{time.perf_counter() - began:6.0f} s] {message}", flush=True)  # noqa: E731
    epochs = 2 if args.quick else 4  # the first epoch is start-up and is excluded
    epochs_paired = 2 if args.quick else 6  # the Keras comparison: 5 steady epochs per run and round
    args.rounds = 1 if args.quick else args.rounds
    score_lengths = [20_000] if args.quick else [100_000, 1_000_000]
    memory_length = 1_000_000 if args.quick else 10_000_000
    info = machine()
    info["load_before"] = os.getloadavg()
    log(f"machine: {info}")
    flops = seed_train_flops_per_window()
    res: dict = {"matmul": {}, "fit": {}, "loop": {}, "score": {}, "memory": {}, "ideas": {}, "keras": None, "paired": {}}

    for threads in args.threads:
        res["matmul"][threads] = child("matmul", threads=threads)
        log(f"matmul {threads} thread(s): {res['matmul'][threads]}")

    if not args.skip_train:
        for batch in (32, 256):
            for threads in args.threads:
                res["fit"][(batch, threads)] = child("fit", batch=batch, threads=threads, epochs=epochs)
                log(f"lstmae fit batch {batch}, {threads} thread(s): {res['fit'][(batch, threads)]}")
            if not args.skip_ideas:
                for variant in FIT_VARIANTS:
                    res["ideas"][(variant, batch)] = child("fit", batch=batch, threads=max(args.threads), epochs=epochs, variant=variant)
                    log(f"lstmae fit batch {batch}, {max(args.threads)} threads, variant {variant}: {res['ideas'][(variant, batch)]}")
            kinds = "nn_lstm,lstmae" if args.skip_ideas else "nn_lstm,lstmae,lstmae_repeat_input"
            res["loop"][batch] = child("loop", batch=batch, threads=min(args.threads), epochs=epochs, kinds=kinds)
            log(f"plain loops batch {batch}, {min(args.threads)} thread(s): {res['loop'][batch]}")

    if not args.skip_score:
        strides = ["1", "auto", str(TIMESTEPS // 2)]
        lengths_stride1 = score_lengths if args.long else score_lengths[:1]
        for threads in args.threads:
            res["score"][threads] = child("score", threads=threads, lengths=lengths_stride1, strides=strides)
            if len(score_lengths) > 1 and not args.long:
                res["score"][threads].update(child("score", threads=threads, lengths=score_lengths[1:], strides=strides[1:]))
            log(f"scoring, {threads} thread(s): {res['score'][threads]}")
        if not args.skip_ideas:
            old_chunk = (1 << 21) // TIMESTEPS * TIMESTEPS * 4 * UNITS  # before: 2^21 / (T x F) = 52,428 windows per chunk
            res["ideas"]["old_chunks"] = child("score", threads=min(args.threads), lengths=score_lengths[:1], strides=["1"],
                                               chunk_values=old_chunk)
            log(f"scoring with the old chunk size: {res['ideas']['old_chunks']}")
            for variant in ("serial_chunks", "nn_lstm"):
                res["ideas"][variant] = child("score", threads=max(args.threads), lengths=score_lengths[:1], strides=["auto"], variant=variant)
                log(f"scoring, {variant}, {max(args.threads)} threads: {res['ideas'][variant]}")

    if not args.skip_memory:
        res["memory"]["strided"] = child("memory", threads=min(args.threads), lengths=[memory_length], strides=["100"])
        log(f"peak RSS, {memory_length:,} points, T=100, units={UNITS}, score_stride=100: {res['memory']['strided']}")
        res["memory"]["overlap"] = {
            stride: child("memory", threads=min(args.threads), lengths=[memory_length // 10], strides=[stride], units=8)
            for stride in ("1", "100")
        }
        log(f"peak RSS, {memory_length // 10:,} points, units=8, score_stride 1 vs 100: {res['memory']['overlap']}")

    if not args.skip_keras:
        python = keras_python(log)
        if python is not None:
            if not args.skip_train:
                res["paired"] = paired_training(python, args.rounds, epochs_paired, max(args.threads), log)
            keras_lengths = score_lengths if args.long else score_lengths[:1]
            res["keras"] = run_keras(python, epochs, keras_lengths, log)
            log(f"keras scoring: {res['keras']}")

    info["load_after"] = os.getloadavg()
    info["seconds"] = time.perf_counter() - began
    text = report(info, flops, res, args, score_lengths, memory_length, epochs_paired)
    print(text)
    write_results(text, args.results)
    log(f"wrote {args.results}")


def report(info: dict, flops: dict, res: dict, args, score_lengths: list[int], memory_length: int, epochs_paired: int) -> str:
    keras = res["keras"] or {}
    lines = [
        "## Speed and memory (`bench/perf.py`)",
        "",
        f"Machine: {info['cpu']}, {info['cores']} cores; Python {info['python']}, torch {info['torch']} "
        f"(default {info['torch_default_threads']} threads), lightning {info['lightning']}, numpy {info['numpy']}, "
        f"tensorflow {keras.get('tensorflow', 'not run')}. Load average before/after: "
        f"{', '.join(f'{x:.1f}' for x in info['load_before'])} / {', '.join(f'{x:.1f}' for x in info['load_after'])}. "
        f"Whole run: {info['seconds']:.0f} s{' (--quick)' if args.quick else ''}.",
        "",
        f"Seed configuration: {SAMPLES} sequences x {TIMESTEPS} timesteps x 1 feature, units {UNITS}, "
        "architecture \"repeat\", validation_split=0, shuffled; windows/s = 2000 / median steady epoch (first epoch excluded).",
        "",
        "### Training throughput (windows/s)",
        "",
        f"Keras against lstmae ({max(args.threads)} torch threads) in {args.rounds} paired round(s) per batch size: one run "
        "of each, adjacent in time, their order alternating; each side's windows/s from the median of its steady epochs "
        f"pooled over the rounds ({epochs_paired - 1} per run). The other columns are single runs made earlier in this run.",
        "",
        "| batch | Keras seed (TF, all cores), paired | lstmae, paired | lstmae / Keras | per-round ratios | plain PyTorch nn.LSTM | "
        + " | ".join(f"lstmae fit, {t} thread{'s' if t > 1 else ''}" for t in args.threads)
        + " |",
        "|---|---|---|---|---|---|" + "---|" * len(args.threads),
    ]
    for batch in (32, 256):
        pair = res["paired"].get(batch, {})
        k, ours_paired = pair.get("keras_windows_per_s"), pair.get("lstmae_windows_per_s")
        ratio = f"{ours_paired / k:.2f}x" if ours_paired and k else "n/a"
        rounds = ", ".join(f"{x:.2f}x" for x in pair.get("ratios", [])) or "n/a"
        ref = res["loop"].get(batch, {}).get("nn_lstm", {}).get("windows_per_s")
        ours = [res["fit"].get((batch, t), {}).get("windows_per_s") for t in args.threads]
        lines.append(f"| {batch} | {fmt(k)} | {fmt(ours_paired)} | {ratio} | {rounds} | {fmt(ref)} ({min(args.threads)} thread) | "
                     + " | ".join(fmt(x) for x in ours) + " |")
    lines += ["", "### Effective FLOP rate of training (batch 256)", ""]
    lines.append(
        f"FLOPs per training window (3 x forward; LSTM and Dense products): {flops['model'] / 1e6:.2f} M as the seed model "
        f"defines them, {flops['executed'] / 1e6:.2f} M actually executed by lstmae (decoder input projected once)."
    )
    lines += ["", "| threads | matmul 2048² GFLOP/s | lstmae GFLOP/s (model FLOPs) | % of matmul | executed GFLOP/s | % of matmul |", "|---|---|---|---|---|---|"]
    for t in args.threads:
        mm = res["matmul"].get(t, {}).get("gflops")
        wps = res["fit"].get((256, t), {}).get("windows_per_s")
        if mm and wps:
            model_rate, exec_rate = wps * flops["model"] / 1e9, wps * flops["executed"] / 1e9
            lines.append(f"| {t} | {mm:.1f} | {model_rate:.1f} | {100 * model_rate / mm:.0f}% | {exec_rate:.1f} | {100 * exec_rate / mm:.0f}% |")
        else:
            lines.append(f"| {t} | {fmt(mm, 1)} | n/a | | | |")
    lines += ["", "### Scoring (`anomaly_score`, per timestep, every timestep scored; seconds)", ""]
    strides = ["1", "auto", str(TIMESTEPS // 2)]
    header = "| series | Keras stride-1 windows | " + " | ".join(
        f"lstmae score_stride={s}{f' (={TIMESTEPS // 8})' if s == 'auto' else ''}, {t} thr" for t in args.threads for s in strides
    ) + " |"
    lines += [header, "|---|---|" + "---|" * (len(strides) * len(args.threads))]
    for n in score_lengths:
        k = keras.get("score", {}).get(str(n), {}).get("seconds")
        cells = []
        for t in args.threads:
            for s in strides:
                v = res["score"].get(t, {}).get(f"{n}/{s}", {}).get("seconds")
                cells.append(fmt(v, 2) + (f" ({k / v:.0f}x)" if v and k else ""))
        lines.append(f"| {n:,} points | {fmt(k, 1) if k else 'not run (use --long)'} | " + " | ".join(c if c != "n/a" else "not run" for c in cells) + " |")
    lines += ["", "### Peak memory (RSS) while scoring", ""]
    mem = res["memory"].get("strided", {})
    if mem.get("peak_rss_mb"):
        lines.append(
            f"- {memory_length:,} points, timesteps=100, units={UNITS}, score_stride={mem['score_stride']}: "
            f"**{mem['peak_rss_mb']:.0f} MB** peak RSS ({mem['peak_before_scoring_mb']:.0f} MB before scoring; {mem['seconds']:.0f} s)."
        )
    overlap = res["memory"].get("overlap", {})
    if overlap:
        parts = [f"score_stride={s}: {v.get('peak_rss_mb', float('nan')):.0f} MB ({v.get('seconds', float('nan')):.0f} s)" for s, v in overlap.items()]
        lines.append(f"- Overlap independence, {memory_length // 10:,} points, timesteps=100, units=8: " + "; ".join(parts) + ".")
    lines += ["", "### Done-when checks (this run)", ""]
    for batch, need in ((32, 3), (256, 2)):
        pair = res["paired"].get(batch, {})
        kw, ours = pair.get("keras_windows_per_s"), pair.get("lstmae_windows_per_s")
        if kw and ours:
            ratio, low = ours / kw, min(pair["ratios"])
            lines.append(f"- training, batch {batch}: {ratio:.2f}x Keras ({max(args.threads)} threads, {len(pair['ratios'])} paired rounds, "
                         f"lowest round {low:.2f}x; need >= {need}x): {'met' if ratio >= need else 'NOT met'}")
    k100 = keras.get("score", {}).get(str(score_lengths[0]), {}).get("seconds")
    for stride in ("1", "auto", str(TIMESTEPS // 2)):
        v = min((res["score"].get(t, {}).get(f"{score_lengths[0]}/{stride}", {}).get("seconds") or float("inf")) for t in args.threads)
        if k100 and v < float("inf"):
            lines.append(f"- scoring {score_lengths[0]:,} points, score_stride={stride}: {k100 / v:.1f}x faster than Keras stride 1 (need >= 10x, with dev-data quality not worse than stride 1: see bench/RESULTS-quality-stride-1.md)")
    mem_mb = res["memory"].get("strided", {}).get("peak_rss_mb")
    if mem_mb:
        lines.append(f"- peak RSS scoring {memory_length:,} points, T=100: {mem_mb:.0f} MB (need <= 1536 MB): {'met' if mem_mb <= 1536 else 'NOT met'}")
    for t in args.threads:
        mm, wps = res["matmul"].get(t, {}).get("gflops"), res["fit"].get((256, t), {}).get("windows_per_s")
        if mm and wps:
            share = wps * flops["model"] / 1e9 / mm
            lines.append(f"- FLOP rate, batch 256, {t} thread{'s' if t > 1 else ''}: {100 * share:.0f}% of the matmul rate with model FLOPs, "
                         f"{100 * share * flops['executed'] / flops['model']:.0f}% with executed FLOPs (need >= 50%)")
    lines += ["", "### Ideas: measured effect, kept or dropped", "", "| idea | measurement | effect | kept |", "|---|---|---|---|"]
    for batch in (32, 256):
        loop = res["loop"].get(batch, {})
        a, b, c = (loop.get(k, {}).get("windows_per_s") for k in ("nn_lstm", "lstmae", "lstmae_repeat_input"))
        if a and b:
            lines.append(f"| hand-written recurrence + decoder projection once, vs fused nn.LSTM (oneDNN) | plain loop, batch {batch}, {min(args.threads)} thread | {fmt(a)} -> {fmt(b)} windows/s ({b / a:.2f}x; nn.LSTM side has the seed's tanh) | yes |")
        if b and c:
            lines.append(f"| decoder input projection once instead of T times (same recurrence) | plain loop, batch {batch} | {fmt(c)} -> {fmt(b)} windows/s ({b / c:.2f}x) | yes |")
        fit = res["fit"].get((batch, min(args.threads)), {}).get("windows_per_s")
        if fit and b:
            lines.append(f"| Lightning loop (fit) vs a plain loop, same network | batch {batch}, {min(args.threads)} thread | plain {fmt(b)} vs fit {fmt(fit)} windows/s (fit costs {100 * (1 - fit / b):.0f}%, incl. gradient clipping and per-epoch metrics) | Lightning kept (foundation) |")
    described = {
        "nn_lstm": ("the CPU C path (training: the whole pass in C, lstmae.backends.fused; inference: the C loop, lstmae.backends.recurrence) vs torch's nn.LSTM (oneDNN), the other path", "yes; nn.LSTM runs on GPUs (cuDNN), in float64 and without the kernels"),
        "adam_loop": ("Adam(fused=True) vs Adam's per-parameter loop", "yes"),
    }
    for variant, (text, kept) in described.items():
        for batch in (32, 256):
            off = res["ideas"].get((variant, batch), {}).get("windows_per_s")
            on = res["fit"].get((batch, max(args.threads)), {}).get("windows_per_s")
            if off and on:
                lines.append(f"| {text} | fit, batch {batch}, {max(args.threads)} threads, separate runs | {fmt(off)} -> {fmt(on)} windows/s ({on / off:.2f}x) | {kept} |")
    for batch in (32, 256):
        vals = [res["fit"].get((batch, t), {}).get("windows_per_s") for t in args.threads]
        if len(vals) > 1 and all(vals):
            lines.append(f"| torch threads {' vs '.join(map(str, args.threads))} | fit, batch {batch} | " + " vs ".join(fmt(v) for v in vals) + " windows/s | torch default kept (user's setting) |")
    old = res["ideas"].get("old_chunks", {}).get(f"{score_lengths[0]}/1", {}).get("seconds")
    new = res["score"].get(min(args.threads), {}).get(f"{score_lengths[0]}/1", {}).get("seconds")
    if old and new:
        lines.append(f"| inference chunks sized to the gate buffers (~260 windows) instead of 52,428 windows | score {score_lengths[0]:,} points, stride 1 | {old:.2f} s -> {new:.2f} s ({old / new:.2f}x) | yes |")
    s1 = res["score"].get(min(args.threads), {}).get(f"{score_lengths[0]}/1", {}).get("seconds")
    sa = res["score"].get(min(args.threads), {}).get(f"{score_lengths[0]}/auto", {}).get("seconds")
    if s1 and sa:
        lines.append(f"| score_stride=\"auto\" (T/8) with an exact per-timestep merge | score {score_lengths[0]:,} points | {s1:.2f} s -> {sa:.2f} s ({s1 / sa:.1f}x) | default: the dev-benchmark quality (bench/RESULTS-quality.md) was measured with it |")
    best = res["score"].get(max(args.threads), {}).get(f"{score_lengths[0]}/auto", {}).get("seconds")
    serial = res["ideas"].get("serial_chunks", {}).get(f"{score_lengths[0]}/auto", {}).get("seconds")
    torch_lstm = res["ideas"].get("nn_lstm", {}).get(f"{score_lengths[0]}/auto", {}).get("seconds")
    if best and serial:
        lines.append(f"| inference chunks on every core (`lstmae.backends.parallel`: one chunk per worker thread, torch single-threaded in each) vs chunks one after another on torch's intra-op threads | score {score_lengths[0]:,} points, stride auto, {max(args.threads)} threads | {serial:.2f} s -> {best:.2f} s ({serial / best:.2f}x) | yes |")
    if best and torch_lstm:
        lines.append(f"| the C inference loop (one reused gate buffer, cache-resident) vs torch's nn.LSTM (oneDNN) | score {score_lengths[0]:,} points, stride auto, {max(args.threads)} threads | {torch_lstm:.2f} s -> {best:.2f} s ({torch_lstm / best:.2f}x) | yes |")
    lines += [
        "| pure-torch path (session 3; removed in session 7, nn.LSTM is the fallback): sigmoids only: tanh(x) = 2·sigmoid(2x) - 1 with the cell-gate rows of W_ih, b and W_hh doubled once per call and the cell kept doubled (tanh costs ~3.5x a sigmoid per element in this torch build); backward factors in half the element-wise passes | recurrence fwd+bwd, 40 steps x 100 units, interleaved A/B, min of 10-20 rounds (session 3) | batch 256: 1.15x (1 thread), 1.20x (2 threads); batch 32: 1.18x (1 thread), 1.09x (2 threads) | yes |",
        "| the same tanh identity as extra per-step ops (session 2, without doubled rows) | forward recurrence, interleaved A/B | 1.08x slower at batch 32, 1.03x slower at 256 | no (superseded by the row above) |",
        "| latent reference from every training window (up to 20,000) instead of every score_stride-th | dev benchmark, seed 0, 46 series, stride auto vs stride 1, same weights | before: auto 0.013 below stride 1 (mean VUS-PR, p = 0.24); after: 0.0004 below (p = 0.96); UCR 121: 0.23 -> 0.77 | yes |",
        "| nearest training embedding: rank by one matrix product, exact distance to the 16 best (centred) vs cdist's exact loop | 262 queries x 2,000 references x 100 units, 1 thread | 35.9 ms -> 6.4 ms per chunk (5.6x); equal to cdist except within rounding beside > 16 near-ties (tests/test_latent.py) | yes |",
        "| latent distances in the consumer thread vs in the scoring workers | repeatability, 15 runs of one scoring pass on 3 threads | in the workers, 14 of 15 runs differed in the last bits (a distance search beside the workers' networks perturbs them); in the consumer, 0 of 15 | yes |",
        "| batch split over 2 Python worker threads inside the pure-torch training recurrence (each half on one core) | recurrence fwd+bwd, batch 256, 2 threads, interleaved A/B | 1,451 (intra-op threads) vs 1,707 us per step (split): slower; no gain at batch 32 either | no (the C loops split rows in OpenMP instead) |",
        "| rows split over 2 Python threads around the per-step kernels (torch product + C call per step) | forward loop, 40 steps, batch 32 / 256, 2 threads | 3.3 -> 4.6 ms (slower: two GIL hand-overs per step) / 16.1 -> 13.9 ms | no |",
        "| Python-thread row split around whole C loops, torch left at 2 OpenMP threads | fit, batch 32, 2 threads | no gain: torch's spinning OpenMP threads and the Python worker fought for the second core | no (OpenMP inside the C loops instead) |",
        "| C loops blocked by 48 rows per step (activate gates while in cache) | C forward/backward loop alone, interleaved, 1 and 2 threads | batch 256: 17.2 -> 18.5 ms fwd (1 thread), 15.9 -> 16.9 (2 threads); batch 32: within noise | no |",
        "| fused nn.LSTM (oneDNN) for inference | encoder + repeat decoder, 2 threads, per-window cost at the best chunk size | 175 us (oneDNN, 256-1,024 windows) vs 164 us (lstmae, 256 windows) | no |",
        "| torch.compile of one step's element-wise work | batch 32, 100 units, 1 thread | 26 s to compile; then 157 us per call vs 115 us eager | no |",
        "| flush denormals to zero (`torch.set_flush_denormal`) | score 20,000 points, 1 thread, 3 interleaved rounds | 267-331 vs 276-390 us per window: within noise | no |",
        "| Lightning's manual optimization (the automatic loop's steps in its order, without its closure machinery) | fit, batch 32, 2 threads, 4 alternating pairs of runs (session 5) | median 15.1-17.1 -> 14.4-16.6 ms per batch (0.5-2.4 ms less in every pair); the same losses to the last bit | yes |",
        "| pooled workspace for the fused pass (a fresh 58 MB tensor per batch is a fresh mapping from the OS: page faults every batch) | plain loop, batch 256, 2 threads (session 5) | forward 39-52 -> 26-28 ms per batch | yes |",
        "| rows handed out dynamically in 6-row items (a thread slowed by the host takes fewer) vs one even share per thread, in the fused pass | C pass alone, batch 32 / 256, 2 threads, the two builds alternating in one process (session 5) | 11.0 vs 11.6 ms / 75.6 vs 75.5 ms median: no gain | no |",
        "| bypassing Lightning's optimizer wrapper and clip_gradients (raw torch calls) | fit, batch 32, 2 threads, timed per part (session 5) | 0.35 ms of a 16 ms batch | no (Lightning's step counting and hooks kept) |",
        "| per-step `self.log` replaced by sums logged once per epoch | cProfile of fit, batch 32 | `self.log` was ~4 ms of a ~50 ms step (8%); whole-process A/B under contention within noise | yes |",
        "| pre-batched loaders (one indexing op per batch, no per-item collation) | already in lstmae before this issue | - | yes |",
        "| Adam(foreach=True) | optimizer step alone (session 3) | 0.69 -> 0.54 ms per step | no (fused=True, above, is faster: clip + step 1.21 -> 0.67 ms) |",
        "| a few input features' weight and bias gradients in one pass over the dgates (no packed product 1-4 columns wide), and the output layer's few-row weight gradient split by columns between threads (kernels.c narrow_grad, few_rows_grad) vs the packed product (gemm_tn) for both | C pass fwd+bwd alone, 2 threads (and 1), the two builds alternating in one process, 12 rounds, 4 runs (session 6) | batch 32: 0.95-0.99x the time; batch 256: 0.94-0.98x; 1 thread 0.97x / 0.96x | yes (the same bits: each element summed in the same order) |",
        "| transparent huge pages for torch's large tensors (`THP_MEM_ALLOC_ENABLE=1`: the fused pass's workspaces and gradients on 2 MB pages) | C pass alone, batch 32 / 256, 2 threads, 3 alternating pairs of processes (session 6) | batch 256 forward 14.2-14.5 ms without, 14.6-16.8 with; batch 32 within noise | no |",
        "| the LSTM paths for training, session 7 (issue 13: one path per device): the whole-autoencoder C pass (kept) vs each layer's whole C loops with torch around them / per-step C calls between torch products / nn.LSTM (oneDNN) | fwd+bwd per batch, seed configuration, the four alternating in one process, 5-8 rounds, the pre-change code; 2-core VM shared with other jobs (load 3-11: absolute times meaningless) | batch 32, 2 threads: 4.52x / 8.43x / 9.06x the time of the C pass (an earlier run: 2.52x / 6.09x / 19.1x); batch 256, 2 threads: 1.40x / 2.16x / 3.03x; 1 thread: batch 32 1.36x / 1.45x / 2.24x, batch 256 1.14x / 0.98x / 1.98x | C pass kept; layer loops (lstmae_backward) and per-step calls removed; nn.LSTM is the other path (GPUs, float64, no kernels, CPUs without AVX2) |",
        "| the LSTM paths for inference, session 7: the whole C forward loop (kept) vs per-step C calls / nn.LSTM (oneDNN) | 1,024 windows, seed configuration, alternating in one process, 5-8 rounds, same VM and load | 2 threads: 1.49x / 1.93x the time; 1 thread: 0.81x / 1.29x | whole loop kept (the default scores' bits come from it); per-step calls removed: CPUs without AVX2 + FMA, the only ones that needed them, now run nn.LSTM, about 1.3-2x slower there than the per-step calls measured here |",
        "| TorchScript for the per-step loop | forward recurrence, batch 32/256 | no gain (op costs, not Python, dominate) | no |",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
