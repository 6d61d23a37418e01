"""Tests for `lstmae.training`: datasets, loaders, callbacks and the quiet Trainer set-up.

Datasets are compared with plain Python slicing loops on series whose values
are all distinct (so a wrong row cannot match by accident); callbacks are
driven by a fake trainer; `train` is run for real on tiny networks.
"""

from __future__ import annotations

import io
import logging
import subprocess
import sys
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from lstmae import LSTMAutoencoder, window_starts
from lstmae.config import NetworkConfig
from lstmae.errors import DegenerateModelWarning
from lstmae.backends.network import LSTMAutoencoder as Network
from lstmae.training import (
    AutoencoderTask,
    BestWeights,
    HistoryRecorder,
    PanelSamples,
    SeriesWindows,
    ShuffleOrder,
    TrainingPlan,
    make_loader,
    progress_bar_wanted,
    train,
)


def distinct_series(n: int, features: int) -> torch.Tensor:
    """(n, features) float32 whose every value is different: row t, feature f holds t + f / 10."""
    return torch.tensor([[t + f / 10 for f in range(features)] for t in range(n)], dtype=torch.float32)


def slice_window(series: torch.Tensor, start: int, T: int) -> torch.Tensor:
    """One window by a row-by-row loop."""
    return torch.stack([series[start + k] for k in range(T)])


# ---------------------------------------------------------------------------
# Datasets
# ---------------------------------------------------------------------------
def test_series_windows_match_a_slicing_loop():
    series = distinct_series(40, 3)
    T = 6
    starts = torch.from_numpy(window_starts(40, T, 4))  # 0, 4, ..., 32, 34
    dataset = SeriesWindows(series, starts, T)
    assert len(dataset) == len(starts) == 10
    indices = [3, 0, 9, 9, 5]  # unordered, repeated, last one included
    batch = dataset.__getitems__(indices)
    assert batch.shape == (5, T, 3)
    expected = torch.stack([slice_window(series, int(starts[i]), T) for i in indices])
    assert torch.equal(batch, expected)
    for i in range(len(dataset)):
        assert torch.equal(dataset[i], slice_window(series, int(starts[i]), T))


def test_series_windows_of_a_subset_of_starts():
    # The estimator hands training and validation different slices of the same starts.
    series = distinct_series(25, 1)
    starts = torch.from_numpy(window_starts(25, 5, 1))
    validation = SeriesWindows(series, starts[18:], 5)
    assert len(validation) == 3
    assert torch.equal(validation.__getitems__([0, 1, 2]), torch.stack([slice_window(series, s, 5) for s in (18, 19, 20)]))


def test_panel_samples_pick_the_indexed_samples():
    panel = torch.arange(10 * 4 * 2, dtype=torch.float32).reshape(10, 4, 2)
    dataset = PanelSamples(panel, torch.tensor([7, 2, 9, 0]))
    assert len(dataset) == 4
    assert torch.equal(dataset.__getitems__([1, 3, 1]), torch.stack([panel[2], panel[0], panel[2]]))
    assert torch.equal(dataset[2], panel[9])


# ---------------------------------------------------------------------------
# Loaders
# ---------------------------------------------------------------------------
def first_values(loader) -> list[list[float]]:
    """Each batch as the list of its windows' first values (they identify the windows)."""
    return [batch[:, 0, 0].tolist() for batch in loader]


@pytest.fixture()
def windows() -> SeriesWindows:
    series = distinct_series(30, 1)
    return SeriesWindows(series, torch.from_numpy(window_starts(30, 4, 1)), 4)  # 27 windows, starts 0..26


def test_unshuffled_loader_keeps_order_and_batch_size(windows):
    batches = list(make_loader(windows, batch_size=8, shuffle=False, seed=0))
    assert [b.shape for b in batches] == [(8, 4, 1)] * 3 + [(3, 4, 1)]
    assert sum(first_values(batches), []) == [float(s) for s in range(27)]


def test_shuffled_loader_is_a_permutation_that_depends_only_on_the_seed(windows):
    def two_epochs(seed):
        loader = make_loader(windows, batch_size=8, shuffle=True, seed=seed)
        return [sum(first_values(loader), []) for _ in range(2)]

    first, again, other = two_epochs(7), two_epochs(7), two_epochs(8)
    for epoch in first + other:
        assert sorted(epoch) == [float(s) for s in range(27)]  # every window once per epoch
    assert first == again  # same seed, fresh loader: same order, epoch after epoch
    assert first[0] != first[1]  # reshuffled every epoch
    assert first != other  # the seed matters
    assert first[0] != [float(s) for s in range(27)]


def test_shuffled_loader_does_not_touch_the_global_rng(windows):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    list(make_loader(windows, batch_size=8, shuffle=True, seed=0))
    assert torch.equal(torch.rand(3), expected)


def test_unshuffled_loader_does_not_touch_the_global_rng(windows):
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    list(make_loader(windows, batch_size=8, shuffle=False, seed=0))
    assert torch.equal(torch.rand(3), expected)


# ---------------------------------------------------------------------------
# Progress bar decision
# ---------------------------------------------------------------------------
class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("verbose", "stdout", "stderr", "wanted"),
    [
        (0, FakeTerminal(), FakeTerminal(), False),  # verbose=0 is silent even at a terminal
        (1, FakeTerminal(), FakeTerminal(), True),
        (2, FakeTerminal(), FakeTerminal(), True),
        (1, FakeTerminal(), io.StringIO(), False),  # stderr to a pipe or a log file
        (1, io.StringIO(), FakeTerminal(), False),  # stdout redirected: the bar would fill the file
        (1, FakeTerminal(), None, False),  # pythonw: no stderr at all
    ],
)
def test_progress_bar_wanted(monkeypatch, verbose, stdout, stderr, wanted):
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(sys, "stderr", stderr)
    assert progress_bar_wanted(verbose) is wanted


def test_progress_bar_not_wanted_under_pytest_capture(capfd):
    assert not sys.stderr.isatty()
    assert progress_bar_wanted(1) is False


# ---------------------------------------------------------------------------
# Callbacks, with a fake trainer
# ---------------------------------------------------------------------------
def fake_trainer(current_epoch: int = 0, **metrics) -> SimpleNamespace:
    return SimpleNamespace(callback_metrics={k: torch.tensor(v) for k, v in metrics.items()}, current_epoch=current_epoch)


def test_history_recorder_keeps_epoch_metrics_by_name():
    recorder = HistoryRecorder()
    recorder.on_train_epoch_end(fake_trainer(loss=0.5, mae=0.4, val_loss=0.7, val_mae=0.6, lr=1e-3), None)
    recorder.on_train_epoch_end(fake_trainer(loss=0.25, mae=0.2, val_loss=0.35, val_mae=0.3), None)
    assert recorder.history == {
        "loss": [0.5, 0.25],
        "val_loss": [pytest.approx(0.7), pytest.approx(0.35)],
        "mae": [pytest.approx(0.4), pytest.approx(0.2)],
        "val_mae": [pytest.approx(0.6), pytest.approx(0.3)],
    }
    assert all(type(v) is float for values in recorder.history.values() for v in values)


def test_history_recorder_without_validation_leaves_val_lists_empty():
    recorder = HistoryRecorder()
    recorder.on_train_epoch_end(fake_trainer(loss=1.0, mae=0.8), None)
    assert recorder.history == {"loss": [1.0], "val_loss": [], "mae": [pytest.approx(0.8)], "val_mae": []}


def test_best_weights_restores_the_epoch_with_the_lowest_validation_loss():
    module = torch.nn.Linear(2, 1)
    callback = BestWeights("val_loss")
    losses = [3.0, 1.0, 2.0, 1.0, 5.0]  # best at epoch 1; the tie at epoch 3 is not better
    for epoch, loss in enumerate(losses):
        with torch.no_grad():
            module.weight.fill_(epoch)  # in place: a saved state that aliases the weights would follow
            module.bias.fill_(-epoch)
        callback.on_validation_epoch_end(fake_trainer(epoch, val_loss=loss), module)
    with torch.no_grad():
        module.weight.fill_(99.0)
    callback.on_fit_end(None, module)
    assert torch.equal(module.weight, torch.full((1, 2), 1.0))
    assert torch.equal(module.bias, torch.tensor([-1.0]))
    assert callback.best == 1.0
    assert callback.epoch == 2  # counted from 1, as the history's entries are


def test_best_weights_without_the_metric_leaves_the_module_alone():
    module = torch.nn.Linear(2, 1)
    before = {k: v.clone() for k, v in module.state_dict().items()}
    callback = BestWeights("val_loss")
    callback.on_validation_epoch_end(fake_trainer(loss=0.1), module)  # no val_loss logged
    callback.on_fit_end(None, module)
    assert callback.state is None
    assert all(torch.equal(module.state_dict()[k], v) for k, v in before.items())


# ---------------------------------------------------------------------------
# train(), for real
# ---------------------------------------------------------------------------
def noise_datasets(T: int = 5, n: int = 200, split: float = 0.2, seed: int = 0):
    series = torch.from_numpy(np.random.default_rng(seed).standard_normal((n, 1)).astype(np.float32))
    starts = torch.from_numpy(window_starts(n, T, 1))
    n_train = int(len(starts) * (1 - split))
    return SeriesWindows(series, starts[:n_train], T), SeriesWindows(series, starts[n_train:], T)


def network(T: int = 5, units=(4,), seed: int = 0) -> Network:
    torch.manual_seed(seed)
    return Network(NetworkConfig(n_features=1, timesteps=T, units=units, architecture="repeat"))


def plan(**changes) -> TrainingPlan:
    base = dict(
        epochs=2, batch_size=32, learning_rate=1e-2, shuffle=True, seed=0, patience=5, accelerator="cpu", verbose=0
    )
    return TrainingPlan(**{**base, **changes})


def metrics_on(net: Network, dataset) -> tuple[float, float]:
    """Mean squared and mean absolute reconstruction error of ``net`` over every window of ``dataset``."""
    windows = dataset.__getitems__(list(range(len(dataset))))
    net.eval()
    with torch.no_grad():
        difference = net(windows) - windows
    return float(difference.pow(2).mean()), float(difference.abs().mean())


def test_train_returns_per_epoch_history_and_changes_the_weights():
    train_set, val_set = noise_datasets()
    net = network()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    history = train(net, train_set, val_set, plan(epochs=3))
    assert set(history) == {"loss", "val_loss", "mae", "val_mae"}
    assert all(len(values) == 3 for values in history.values())
    assert any(not torch.equal(net.state_dict()[k], v) for k, v in before.items())


def test_train_without_validation_has_no_val_keys():
    train_set, _ = noise_datasets()
    history = train(network(), train_set, None, plan(epochs=2))
    assert set(history) == {"loss", "mae"} and len(history["loss"]) == 2
    empty = SeriesWindows(torch.zeros(10, 1), torch.zeros(0, dtype=torch.int64), 5)
    assert set(train(network(), train_set, empty, plan(epochs=1))) == {"loss", "mae"}


def test_train_stops_early_and_returns_the_best_epochs_weights():
    # Noise and a learning rate of 1: the validation loss bounces, so patience=1 stops well before 30 epochs.
    train_set, val_set = noise_datasets()
    net = network()
    history = train(net, train_set, val_set, plan(epochs=30, patience=1, learning_rate=1.0))
    epochs_run = len(history["val_loss"])
    assert 2 <= epochs_run < 30
    best = int(np.argmin(history["val_loss"]))
    # patience=1: every epoch before the last improved, the last did not.
    assert all(history["val_loss"][i] < min(history["val_loss"][:i]) for i in range(1, epochs_run - 1))
    assert history["val_loss"][-1] >= min(history["val_loss"][:-1])
    val_loss, val_mae = metrics_on(net, val_set)
    assert val_loss == pytest.approx(history["val_loss"][best], rel=1e-5)
    assert val_mae == pytest.approx(history["val_mae"][best], rel=1e-5)
    assert not val_loss == pytest.approx(history["val_loss"][-1], rel=1e-5)  # the restore changed something


def test_validation_history_is_the_error_of_that_epochs_weights():
    # A small learning rate on a sine: the loss falls every epoch, so the last epoch is the best and is kept.
    t = np.arange(300, dtype=np.float32)
    series = torch.from_numpy(np.sin(2 * np.pi * t / 20)[:, None])
    starts = torch.from_numpy(window_starts(300, 10, 1))
    train_set, val_set = SeriesWindows(series, starts[:260], 10), SeriesWindows(series, starts[260:], 10)
    net = network(T=10, units=(8,))
    history = train(net, train_set, val_set, plan(epochs=3, learning_rate=1e-3))
    assert history["val_loss"] == sorted(history["val_loss"], reverse=True)
    val_loss, val_mae = metrics_on(net, val_set)
    assert val_loss == pytest.approx(history["val_loss"][-1], rel=1e-5)
    assert val_mae == pytest.approx(history["val_mae"][-1], rel=1e-5)
    # The training loss is a mean of squares and the MAE a mean of absolute values: MAE^2 <= MSE.
    for mse, mae in zip(history["loss"] + history["val_loss"], history["mae"] + history["val_mae"]):
        assert mae**2 <= mse * (1 + 1e-6)


def test_epoch_metrics_are_means_over_all_windows():
    # A learning rate of 1e-9 leaves the weights as they were: each epoch's "loss" and "mae" must then be the
    # error of the initial network over every training window (batch means weighted by batch size, ragged last
    # batch included), and the validation metrics the same over the validation windows.
    train_set, val_set = noise_datasets()  # 156 training windows: batches of 32 x 4 + 28
    net = network()
    initial_train = metrics_on(network(), train_set)
    initial_val = metrics_on(network(), val_set)
    history = train(net, train_set, val_set, plan(epochs=2, learning_rate=1e-9))
    for epoch in range(2):
        assert history["loss"][epoch] == pytest.approx(initial_train[0], rel=1e-5)
        assert history["mae"][epoch] == pytest.approx(initial_train[1], rel=1e-5)
        assert history["val_loss"][epoch] == pytest.approx(initial_val[0], rel=1e-5)
        assert history["val_mae"][epoch] == pytest.approx(initial_val[1], rel=1e-5)


@pytest.mark.parametrize("clip", [1e-3, 0.0])
def test_gradients_are_clipped_by_norm_before_each_step(clip):
    """The optimizer sees gradients of total norm <= the clip value (plan.gradient_clip); 0 turns clipping off."""
    import lightning.pytorch as pl

    norms: list[float] = []

    class Norms(pl.Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            grads = [p.grad for p in pl_module.parameters() if p.grad is not None]
            norms.append(float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))))

    train_set, _ = noise_datasets()
    train(network(), train_set, None, plan(epochs=1, gradient_clip=clip, callbacks=[Norms()]))
    assert len(norms) >= 2  # every batch was seen
    if clip:
        assert max(norms) <= clip * (1 + 1e-4)
    else:
        assert max(norms) > 10 * 1e-3  # unclipped gradients of this noise are far larger


def test_task_forward_is_the_network_and_optimizer_is_adam():
    net = network()
    task = AutoencoderTask(net, learning_rate=0.02)
    x = torch.randn(3, 5, 1)
    with torch.no_grad():
        assert torch.equal(task(x), net(x))
    optimizer = task.configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam) and optimizer.param_groups[0]["lr"] == 0.02


# ---------------------------------------------------------------------------
# Quiet: nothing printed, no files, logging levels restored
# ---------------------------------------------------------------------------
@pytest.mark.parametrize("validation_split", [0.1, 0.0])
def test_verbose_fit_in_a_pipe_prints_nothing_and_writes_no_files(
    capfd, caplog, tmp_path, monkeypatch, validation_split
):
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG)  # the root logger: see whatever Lightning lets through
    # Lightning advises more DataLoader workers only on machines with more than two cores; pretend to be one.
    monkeypatch.setattr(
        "lightning.pytorch.trainer.connectors.data_connector.suggested_max_num_workers", lambda *args, **kwargs: 8
    )
    x = np.sin(np.arange(120) / 3.0)
    levels = {name: logging.getLogger(name).level for name in ("lightning", "lightning.pytorch", "lightning.fabric")}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = LSTMAutoencoder(
            timesteps=6, units=4, epochs=2, validation_split=validation_split, random_state=0, verbose=1
        ).fit(x)
    out, err = capfd.readouterr()
    assert out == "" and err == ""
    assert [str(w.message) for w in caught if w.category is not DegenerateModelWarning] == []
    # Under pytest Lightning's messages go to the root logger (pytest's handlers), not to stderr: check there too.
    assert [r.getMessage() for r in caplog.records if r.name.startswith(("lightning", "pytorch_lightning"))] == []
    assert list(tmp_path.iterdir()) == []  # no lightning_logs/, no checkpoints/
    assert {name: logging.getLogger(name).level for name in levels} == levels
    assert len(model.history_["loss"]) == 2


def test_train_restores_logging_levels_after_an_error():
    # Two-feature windows into a one-feature network: torch fails inside trainer.fit.
    series = torch.zeros(40, 2)
    dataset = SeriesWindows(series, torch.from_numpy(window_starts(40, 5, 1)), 5)
    logger = logging.getLogger("lightning.pytorch")
    before = logger.level
    with pytest.raises(RuntimeError, match=r"input.size\(-1\) must be equal to input_size"):
        train(network(), dataset, None, plan(epochs=1))
    assert logger.level == before


# The tiny model collapses to the mean and lstmae says so (DegenerateModelWarning, tested in
# test_diagnostics.py); these tests are about Lightning's noise, so that warning is set aside.
SCRIPT = """
import warnings
import numpy as np
from lstmae import LSTMAutoencoder
from lstmae.errors import DegenerateModelWarning
warnings.simplefilter("ignore", DegenerateModelWarning)
LSTMAutoencoder(timesteps=6, units=4, epochs=2, random_state=0, verbose=1).fit(np.sin(np.arange(120) / 3.0))
"""


@pytest.mark.slow
def test_verbose_fit_in_a_fresh_process_with_piped_output_is_silent(tmp_path):
    # A fresh interpreter, as a user runs it: Lightning then logs to stderr itself unless lstmae quiets it.
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
    assert list(tmp_path.iterdir()) == []


def test_loader_draws_a_fresh_capped_subset_every_epoch():
    series = torch.arange(1000, dtype=torch.float32).reshape(-1, 1)
    dataset = SeriesWindows(series, torch.arange(991), 10)
    loader = make_loader(dataset, batch_size=16, shuffle=True, seed=0, max_items=100)
    epochs = [torch.cat([batch[:, 0, 0] for batch in loader]).long().tolist() for _ in range(2)]
    for starts in epochs:
        assert len(starts) == 100 and len(set(starts)) == 100  # without replacement within an epoch
    assert epochs[0] != epochs[1]
    again = make_loader(dataset, batch_size=16, shuffle=True, seed=0, max_items=100)
    assert torch.cat([b[:, 0, 0] for b in again]).long().tolist() == epochs[0]  # seeded
    # no cap without shuffling, or when the data is smaller than the cap
    assert sum(len(b) for b in make_loader(dataset, 16, shuffle=False, seed=0, max_items=100)) == 991
    assert sum(len(b) for b in make_loader(dataset, 16, shuffle=True, seed=0, max_items=5000)) == 991


# ---------------------------------------------------------------------------
# Callback state carried through a checkpoint (Lightning's state_dict / load_state_dict)
# ---------------------------------------------------------------------------
def test_history_recorder_state_round_trips():
    recorder = HistoryRecorder()
    recorder.on_train_epoch_end(fake_trainer(loss=0.5, mae=0.4, val_loss=0.7, val_mae=0.6), None)
    state = recorder.state_dict()
    recorder.on_train_epoch_end(fake_trainer(loss=9.0, mae=9.0), None)  # the saved state must not follow
    restored = HistoryRecorder()
    restored.load_state_dict(state)
    assert restored.history == {"loss": [0.5], "val_loss": [pytest.approx(0.7)], "mae": [pytest.approx(0.4)], "val_mae": [pytest.approx(0.6)]}


def test_best_weights_state_round_trips_and_restores_the_saved_best():
    module = torch.nn.Linear(2, 1)
    callback = BestWeights("val_loss")
    with torch.no_grad():
        module.weight.fill_(1.0)
    callback.on_validation_epoch_end(fake_trainer(2, val_loss=0.5), module)
    restored = BestWeights("val_loss")
    restored.load_state_dict(callback.state_dict())
    assert restored.best == 0.5 and restored.epoch == 3
    restored.on_validation_epoch_end(fake_trainer(val_loss=0.75), module)  # worse: keeps the restored best
    with torch.no_grad():
        module.weight.fill_(7.0)
    restored.on_fit_end(None, module)
    assert torch.equal(module.weight, torch.ones(1, 2))


def test_shuffle_order_restores_the_generator_so_the_next_epoch_draws_the_same_order(windows):
    loader = make_loader(windows, batch_size=4, shuffle=True, seed=5)
    carrier = ShuffleOrder(loader.generator)
    list(loader)  # one epoch
    state = carrier.state_dict()
    next_epoch = [batch.clone() for batch in loader]
    fresh = make_loader(windows, batch_size=4, shuffle=True, seed=5)  # a resumed fit's new loader
    ShuffleOrder(fresh.generator).load_state_dict(state)
    resumed = list(fresh)
    assert len(resumed) == len(next_epoch)
    assert all(torch.equal(a, b) for a, b in zip(resumed, next_epoch))
    first_epoch = list(make_loader(windows, batch_size=4, shuffle=True, seed=5))
    assert not all(torch.equal(a, b) for a, b in zip(first_epoch, next_epoch))  # the state did matter
