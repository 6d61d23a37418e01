"""Explain, with the user's own numbers, what happens to the shapes (Keras vocabulary).

`explain_shapes` walks from the data (a long series cut into windows, or a
panel of samples) through every layer of `lstmae.backends.network.LSTMAutoencoder`, naming
the Keras equivalent of each layer, its input and output shapes and its
parameter count in this package and in Keras. It ends with a bottleneck check
that warns when the model can learn to copy its input.

Nothing here builds a network or touches data: shapes and parameter counts
follow from the arguments alone, so the walk is instant even for huge models.
The tests check every number against the real torch module.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from lstmae import params
from lstmae.config import NetworkConfig
from lstmae.data.windows import n_windows as count_windows
from lstmae.errors import ParameterError, describe

__all__ = ["Explanation", "LayerRow", "explain_shapes"]

WIDTH = 100  # the text must stay readable in a 100-column terminal
INDENT = "  "
BATCH = "batch"  # the leading dimension, named rather than numbered: it varies per step


@dataclass(frozen=True)
class LayerRow:
    """One layer of the autoencoder, as a Keras user would write it.

    Attributes
    ----------
    name : str
        Role and position, e.g. ``"encoder LSTM 1"``, ``"repeat"``, ``"output"``.
    keras : str
        The Keras layer that does the same, e.g. ``"LSTM(100, return_sequences=True)"``.
    input_shape, output_shape : tuple
        Shapes with the string ``"batch"`` as first entry, e.g. ``("batch", 40, 1)``.
    params : int
        Trainable parameters of this layer in lstmae (PyTorch).
    keras_params : int
        Trainable parameters of the same layer in Keras (one LSTM bias vector
        instead of PyTorch's two).
    """

    name: str
    keras: str
    input_shape: tuple
    output_shape: tuple
    params: int
    keras_params: int


@dataclass(frozen=True)
class Explanation:
    """The result of `explain_shapes`; ``str()`` gives the readable walk.

    Attributes
    ----------
    layers : list of LayerRow
        Encoder LSTMs, the RepeatVector (``"repeat"`` design only), decoder LSTMs, output.
    n_windows : int
        Windows (long series) or samples (panel); 0 when no data size was given.
    n_train, n_val : int
        Keras ``validation_split`` semantics: the last fraction, before shuffling,
        validates. Both 0 when no data size was given.
    batches_per_epoch : int
        ``ceil(n_train / batch_size)``; 0 when no data size was given.
    warnings : list of str
        Bottleneck (and data) problems, one sentence each, without the ``WARNING:`` prefix.
    text : str
        The full human-readable walk.
    """

    layers: list[LayerRow]
    n_windows: int
    n_train: int
    n_val: int
    batches_per_epoch: int
    warnings: list[str]
    text: str

    def __str__(self) -> str:
        return self.text


# ---------------------------------------------------------------------------
# Validation


def _notes(value: object) -> tuple[str, ...]:
    # A bare string is a Sequence too; iterating it would print one character per line.
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ParameterError(f"notes must be a sequence of strings, got {describe(value)}.")
    if not all(isinstance(note, str) for note in value):
        raise ParameterError(f"notes must contain only strings, got {describe(value)}.")
    return tuple(value)


# ---------------------------------------------------------------------------
# Counting


def torch_lstm_params(n_inputs: int, units: int) -> int:
    """Parameters of ``nn.LSTM(n_inputs, units)``: 4 gates, weights, two bias vectors."""
    return 4 * (units * (n_inputs + units) + 2 * units)


def keras_lstm_params(n_inputs: int, units: int) -> int:
    """Parameters of Keras ``LSTM(units)`` on ``n_inputs`` features: one bias vector."""
    return 4 * (units * (n_inputs + units) + units)


def dense_params(n_inputs: int, n_outputs: int) -> int:
    """Parameters of ``Dense(n_outputs)`` / ``nn.Linear``: weights plus one bias."""
    return n_outputs * (n_inputs + 1)


def split_counts(n_windows: int, validation_split: float, batch_size: int) -> tuple[int, int, int]:
    """Keras ``validation_split``: the last fraction of windows, before shuffling, validates.

    Returns
    -------
    n_train, n_val, batches_per_epoch : int
    """
    n_train = params.n_train(n_windows, validation_split)
    n_val = n_windows - n_train
    return n_train, n_val, -(-n_train // batch_size)  # ceil, exact for any int


def max_coverage(n_timesteps: int, timesteps: int, stride: int) -> int:
    """Most windows any one timestep belongs to (the windows of `lstmae.data.windows`).

    The regular grid ``0, stride, 2*stride, ...`` puts at most ``ceil(T / stride)``
    windows over a timestep (reached at timestep ``T - 1``). The extra window
    that makes the last window end on the last timestep can add one more there.
    """
    last = n_timesteps - timesteps
    n_grid = last // stride + 1
    best = min(-(-timesteps // stride), n_grid)
    if last % stride:
        last_grid = (n_grid - 1) * stride
        for t in range(last, n_timesteps):  # the timesteps the extra window covers
            low, high = max(0, t - timesteps + 1), min(t, last_grid)
            on_grid = max(0, high // stride - (-(-low // stride)) + 1)
            best = max(best, on_grid + 1)
    return best


# ---------------------------------------------------------------------------
# Layers


def _lstm_keras(units: int, return_sequences: bool) -> str:
    return f"LSTM({units}, return_sequences=True)" if return_sequences else f"LSTM({units})"


def layer_rows(config: NetworkConfig) -> list[LayerRow]:
    """The layers of ``LSTMAutoencoder(config)`` in order, with shapes and parameter counts."""
    steps, features, units = config.timesteps, config.n_features, config.units
    repeat = config.architecture == "repeat"
    rows: list[LayerRow] = []

    width = features
    for i, u in enumerate(units, start=1):
        # In the repeat design only the last encoder LSTM drops the time axis.
        sequences = not (repeat and i == len(units))
        out = (BATCH, steps, u) if sequences else (BATCH, u)
        rows.append(LayerRow(
            f"encoder LSTM {i}", _lstm_keras(u, sequences), (BATCH, steps, width), out,
            torch_lstm_params(width, u), keras_lstm_params(width, u),
        ))
        width = u

    if repeat:
        rows.append(LayerRow(
            "repeat", f"RepeatVector({steps})", (BATCH, width), (BATCH, steps, width), 0, 0,
        ))

    for i, u in enumerate(reversed(units), start=1):  # the decoder mirrors the encoder
        rows.append(LayerRow(
            f"decoder LSTM {i}", _lstm_keras(u, True), (BATCH, steps, width), (BATCH, steps, u),
            torch_lstm_params(width, u), keras_lstm_params(width, u),
        ))
        width = u

    rows.append(LayerRow(
        "output", f"TimeDistributed(Dense({features}))", (BATCH, steps, width),
        (BATCH, steps, features), dense_params(width, features), dense_params(width, features),
    ))
    return rows


# ---------------------------------------------------------------------------
# Text


def _shape(shape: tuple) -> str:
    return "(" + ", ".join(str(d) for d in shape) + ")"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _wrap(text: str, first: str = INDENT, rest: str | None = None) -> list[str]:
    """Wrap prose to `WIDTH`; continuation lines are indented two more than the first."""
    rest = first + "  " if rest is None else rest
    return textwrap.wrap(
        text, WIDTH, initial_indent=first, subsequent_indent=rest,
        break_long_words=False, break_on_hyphens=False,
    )


def _title(config: NetworkConfig) -> list[str]:
    units = config.units[0] if len(config.units) == 1 else config.units
    return [
        "lstmae explain: what happens to the shapes, in Keras terms",
        f'model: architecture="{config.architecture}", timesteps={config.timesteps}, '
        f"n_features={config.n_features}, units={units}",
    ]


def _axes_lines(steps: int, features: int, panel: bool) -> list[str]:
    what, inside = ("your sequences", "sample") if panel else ("the windows", "window")
    return [
        f"{INDENT}samples   = {what}, one training example each (the first axis; batches take some)",
        f"{INDENT}timesteps = consecutive rows inside one {inside} (T={steps}, the sequence length)",
        f"{INDENT}features  = values per timestep, the numeric columns (F={features})",
    ]


def _series_lines(n_timesteps: int, config: NetworkConfig, stride: int, n: int) -> list[str]:
    steps, features = config.timesteps, config.n_features
    lines = [
        f"{INDENT}{n_timesteps} timesteps x {_plural(features, 'feature')} -> "
        f"{_plural(n, 'window')} of {steps} timesteps:",
        f"{INDENT}  array (samples={n}, timesteps={steps}, features={features})",
        *_axes_lines(steps, features, panel=False),
    ]
    every = "every timestep" if stride == 1 else f"every {stride} timesteps"
    lines += _wrap(
        f"stride={stride}: a new window starts {every}; the last window always ends at the last "
        f"timestep, so the end of the series is never dropped."
    )
    if stride > steps:
        lines += _wrap(
            f"stride={stride} is larger than timesteps={steps}: the timesteps between windows "
            f"belong to no window and get no score."
        )
    cover = max_coverage(n_timesteps, steps, stride)
    if cover > 1:
        lines += _wrap(
            f"Windows overlap, so each timestep appears in up to {cover} windows; lstmae averages "
            f"the windows' results (reconstructions, errors) back per timestep, so you get one "
            f"score per original timestep."
        )
    else:
        lines += _wrap("Windows do not overlap: each timestep appears in at most one window.")
    return lines


def _panel_lines(n_samples: int, config: NetworkConfig, stride: int) -> list[str]:
    steps, features = config.timesteps, config.n_features
    lines = [
        f"{INDENT}{n_samples} samples x {steps} timesteps x {_plural(features, 'feature')}: "
        f"each sample is already one sequence,",
        f"{INDENT}  so {_plural(n_samples, 'window')}: "
        f"array (samples={n_samples}, timesteps={steps}, features={features})",
        *_axes_lines(steps, features, panel=True),
        f"{INDENT}No windows are cut and none overlap: each timestep of a sample is seen once.",
    ]
    if stride != 1:
        lines += _wrap(f"stride={stride} is ignored: it only applies to a long series.")
    return lines


def _split_lines(
    n: int, split: float, batch_size: int, counts: tuple[int, int, int], panel: bool
) -> list[str]:
    n_train, n_val, batches = counts
    unit = "samples" if panel else "windows"
    if split == 0.0:
        lines = _wrap(
            f"validation_split=0: all {n} {unit} train, none validate. (With validation_split=v, "
            f"Keras semantics apply: the LAST v of the {unit}, taken before shuffling, validate.)"
        )
    else:
        held_out = "the last samples in their given order" if panel else "the end of the series"
        # Formulas are written without spaces so that wrapping never splits them.
        lines = _wrap(
            f"validation_split={split:g} (Keras semantics): the LAST {split * 100:g}% of the "
            f"{unit}, taken before shuffling, validate, i.e. {held_out}: "
            f"int({n}*{1 - split:g}) = {n_train} train + {n_val} validation."
        )
    last = n_train - (batches - 1) * batch_size
    lines += _wrap(
        f"batch_size={batch_size}: {unit} per gradient step -> ceil({n_train}/{batch_size}) = "
        f"{batches} {'batch' if batches == 1 else 'batches'} per epoch (the last holds {last}). "
        f"The batch size does not change the model's shapes, only their leading "
        f'"{BATCH}" dimension.'
    )
    return lines


def _data_section(
    config: NetworkConfig, n_timesteps: int | None, n_samples: int | None, stride: int,
    split: float, batch_size: int, counts: tuple[int, int, int], n: int,
    source: str | None, notes: tuple[str, ...],
) -> list[str]:
    lines = ["1. DATA -> WINDOWS"]
    if source is not None:
        lines += _wrap(f"data: {source}")
    if n_timesteps is not None:
        lines += _series_lines(n_timesteps, config, stride, n)
    elif n_samples is not None:
        lines += _panel_lines(n_samples, config, stride)
    else:
        lines += _wrap(
            "No data size given, so only the model is explained. Give n_timesteps (a long series) "
            "or n_samples (a panel) to see the windows, the split and the batches per epoch."
        )
    for note in notes:
        lines += _wrap(note)
    if n_timesteps is not None or n_samples is not None:
        lines += _split_lines(n, split, batch_size, counts, panel=n_samples is not None)
    else:
        lines += _wrap(
            f"batch_size={batch_size}: windows per gradient step; it does not change the model's "
            f'shapes, only their leading "{BATCH}" dimension.'
        )
    return lines


def _table(rows: list[LayerRow]) -> list[str]:
    """Plain-text table whose column widths follow the content.

    One line per layer when that fits in `WIDTH`; for big models the shapes
    move to a second line under the Keras column so nothing wraps.
    """
    header = ("layer", "Keras equivalent", "input -> output", "params", "Keras")
    body = [
        (
            row.name.replace(" LSTM", ""),  # the Keras column already says LSTM
            row.keras,
            f"{_shape(row.input_shape)} -> {_shape(row.output_shape)}",
            str(row.params),
            str(row.keras_params),
        )
        for row in rows
    ]
    total = (
        "total", "", "",
        str(sum(r.params for r in rows)), str(sum(r.keras_params for r in rows)),
    )
    widths = [max(len(cells[i]) for cells in (header, *body, total)) for i in range(5)]
    one_line = len(INDENT) + sum(widths) + 2 * 4 <= WIDTH
    if not one_line:  # the shapes get their own line, so their column takes no width
        widths[2] = 0

    def line(cells: tuple[str, ...]) -> str:
        shown = cells[:3] if one_line else cells[:2]
        left = "  ".join(c.ljust(w) for c, w in zip(shown, widths))
        right = "  ".join(c.rjust(w) for c, w in zip(cells[3:], widths[3:]))
        return f"{INDENT}{left}  {right}".rstrip()

    def layer(cells: tuple[str, ...]) -> list[str]:
        if one_line:
            return [line(cells)]
        return [line(cells), (INDENT + " " * (widths[0] + 2) + cells[2]).rstrip()]

    rule = INDENT + "-" * (len(line(header)) - len(INDENT))
    lines = [*layer(header), rule]
    for cells in body:
        lines += layer(cells)
    return [*lines, rule, line(total)]


def _layers_section(rows: list[LayerRow], batch_size: int) -> list[str]:
    return [
        f'2. LAYERS ("{BATCH}" = the windows of one gradient step, {batch_size} here)',
        *_table(rows),
        *_wrap(
            "params = this package (PyTorch); Keras = the same layer in Keras. A PyTorch LSTM "
            "keeps two bias vectors (b_ih, b_hh) where Keras keeps one, so each LSTM here has "
            "4 x units more parameters; both compute the same kind of function."
        ),
    ]


def _meanings_section(config: NetworkConfig) -> list[str]:
    steps, features, latent = config.timesteps, config.n_features, config.latent
    if config.architecture == "repeat":
        repeat = (
            f"copies the latent vector {steps} times, (batch, {latent}) -> "
            f"(batch, {steps}, {latent}), so the decoder has an input at every step."
        )
    else:
        repeat = (
            'not used by the "sequence" design: the encoder already outputs every step, '
            "so the decoder gets one input per step without it."
        )
    entries = [
        ("units", f"hidden size: the size of h, the LSTM's output, at each step. The last "
                  f"encoder units ({latent}) are the latent size."),
        ("return_sequences", "True: output h at every step, (batch, T, units); False: only the "
                             "last step's h, (batch, units)."),
        ("RepeatVector", repeat),
        ("TimeDistributed", f"TimeDistributed(Dense({features})) applies the same Dense to each "
                            f"of the {steps} steps; in lstmae a Linear on the last axis."),
        ("unroll", "Keras unroll=True builds T copies of the cell instead of a loop: can be "
                   "faster for short sequences, uses more memory, never changes results. "
                   "PyTorch's nn.LSTM runs a fused loop, so there is nothing to set in lstmae."),
        ("output activation", "the Keras model this mirrors ends with Dense(..., "
                              "activation='tanh'); lstmae's output is linear because inputs "
                              "are standardised and can exceed [-1, 1]."),
    ]
    key_width = max(len(key) for key, _ in entries)
    lines = ["3. WHAT THE KERAS WORDS MEAN"]
    for key, text in entries:
        lines += _wrap(text, INDENT + key.ljust(key_width + 2), INDENT + " " * (key_width + 2))
    return lines


def _bottleneck(config: NetworkConfig) -> tuple[list[str], str]:
    """Warnings (empty when fine) and the line that states the compression."""
    steps, features, units = config.timesteps, config.n_features, config.units
    window = steps * features
    if config.architecture == "sequence":
        narrow = min(units)
        if narrow >= features:
            smaller = "" if features == 1 else f", or units smaller than {features} (the features)"
            return [
                f'no bottleneck: with architecture="sequence" every layer keeps all {steps} '
                f"timesteps and the narrowest has {narrow} units >= {_plural(features, 'feature')}, "
                f"so every timestep keeps at least as many numbers as the input has. The model can "
                f"learn the identity and will reconstruct anomalies well too, which makes the "
                f'reconstruction error useless for detection. Use architecture="repeat"{smaller}.'
            ], ""
        return [], (
            f"OK: bottleneck: a window of {steps} x {features} = {window} numbers -> "
            f"{steps} x {narrow} = {steps * narrow} numbers ({features} -> {narrow} per timestep)."
        )
    latent = config.latent
    if latent >= window:
        return [
            f"weak bottleneck: the latent vector has {latent} numbers, at least as many as the "
            f"{steps} x {features} = {window} numbers of a window, so it is no smaller than the "
            f"window; compression comes only from the LSTM's recurrence. Use a last units value "
            f"below {window} (e.g. {max(1, window // 4)})."
        ], ""
    return [], (
        f"OK: bottleneck: a window of {steps} x {features} = {window} numbers -> {latent} latent "
        f"numbers ({window / latent:.1f}x smaller)."
    )


def _bottleneck_section(warnings: list[str], ok: str) -> list[str]:
    lines = ["4. BOTTLENECK CHECK"]
    for warning in warnings:
        lines += _wrap(f"WARNING: {warning}", INDENT, INDENT + " " * len("WARNING: "))
    if ok:
        lines += _wrap(ok, INDENT, INDENT + "    ")
    return lines


# ---------------------------------------------------------------------------
# Entry point


def explain_shapes(
    *,
    timesteps: int,
    n_features: int,
    units: int | Sequence[int],
    architecture: str = "repeat",
    n_timesteps: int | None = None,
    n_samples: int | None = None,
    stride: int = 1,
    batch_size: int = 32,
    validation_split: float = 0.0,
    source: str | None = None,
    notes: Sequence[str] = (),
    frame: int | str = 1,
) -> Explanation:
    """Walk from the data through every layer, with these numbers, in Keras terms.

    Parameters
    ----------
    timesteps : int
        Window length T (>= 2).
    n_features : int
        Values per timestep F (>= 1).
    units : int or sequence of int
        Hidden size of each encoder LSTM; the last one is the latent size.
        The decoder mirrors them.
    architecture : {"repeat", "sequence"}
        ``"repeat"``: LSTM -> RepeatVector -> LSTM -> TimeDistributed(Dense).
        ``"sequence"``: ``return_sequences=True`` everywhere, no RepeatVector.
    n_timesteps : int, optional
        Length of a long series that is cut into windows (>= timesteps).
    n_samples : int, optional
        Number of samples of a panel already shaped (samples, timesteps, features);
        each sample is one window. At most one of n_timesteps and n_samples.
    stride : int
        Step between window starts of a long series (>= 1).
    batch_size : int
        Windows per gradient step (>= 1).
    validation_split : float
        In [0, 1). Keras semantics: the last fraction of windows, taken before
        shuffling, validates: ``n_train = int(n_windows * (1 - validation_split))``.
    source : str, optional
        Where the data comes from (a file name), printed in the data section.
    notes : sequence of str
        Extra lines for the data section (e.g. how timesteps were chosen).
    frame : int or "auto"
        Timesteps the LSTM reads as one step; must divide timesteps. "auto": as
        `LSTMAutoencoder` chooses it (at most `lstmae.params.MAX_LSTM_STEPS` steps).

    Every argument the estimator also has is checked by its table
    (`lstmae.params`), with the same messages; only ``stride > timesteps``,
    which the estimator refuses, is explained here (the timesteps it skips).

    Returns
    -------
    Explanation
        Layer rows, window/split/batch counts (0 when no data size was given),
        warnings and the text.

    Raises
    ------
    ParameterError
        An argument has the wrong type or is outside its allowed range.
    """
    # The estimator's own table (`lstmae.params`): the same message for the same bad value.
    # stride goes around the rule stride <= timesteps: the walk shows what a wider stride skips.
    checked = params.validate({
        "timesteps": timesteps, "units": units, "architecture": architecture,
        "batch_size": batch_size, "validation_split": validation_split, "frame": frame,
    })
    params.check("stride", stride)
    if timesteps == "auto":
        raise ParameterError(
            "timesteps='auto' is found from the data; give an integer >= 2 here, "
            "or call LSTMAutoencoder(timesteps='auto').explain(X)."
        )
    timesteps, stride, batch_size = int(timesteps), int(stride), int(batch_size)
    n_features = params.check_integer("n_features", n_features, 1)
    config = NetworkConfig(n_features, timesteps, checked["units"], architecture)
    split = float(validation_split)
    notes = _notes(notes)
    if source is not None and not isinstance(source, str):
        raise ParameterError(f"source must be a string or None, got {describe(source)}.")
    if n_timesteps is not None and n_samples is not None:
        raise ParameterError(
            f"give at most one of n_timesteps (a long series, got {describe(n_timesteps)}) and "
            f"n_samples (a panel, got {describe(n_samples)}), not both."
        )

    warnings: list[str] = []
    n = 0
    if n_timesteps is not None:
        n_timesteps = params.check_integer(
            "n_timesteps", n_timesteps, timesteps,
            f" A window needs {timesteps} timesteps; use a longer series or a smaller timesteps.",
        )
        n = count_windows(n_timesteps, timesteps, stride)
    elif n_samples is not None:
        n = params.check_integer("n_samples", n_samples, 1)

    counts = (0, 0, 0)
    if n:
        counts = split_counts(n, split, batch_size)
        if counts[0] == 0:
            raise ParameterError(
                f"validation_split={describe(validation_split)} leaves no training window out of "
                f"{n} (int({n}*(1-validation_split)) must be >= 1); use a smaller "
                f"validation_split or more data."
            )
        if split > 0 and counts[1] == 0:
            warnings.append(
                f"validation_split={split:g} of {_plural(n, 'window')} leaves no validation "
                f"window; use a larger validation_split or more data."
            )

    frame = params.resolve_frame(frame, timesteps)
    # The LSTMs see each window as T/k steps of k*F values; the layer walk is in those steps.
    rows = layer_rows(NetworkConfig(n_features * frame, timesteps // frame, config.units, config.architecture))
    if frame > 1:
        notes = [
            *notes,
            f"frame={frame}: the LSTMs read {frame} consecutive timesteps as one step, so each window "
            f"({timesteps}, {n_features}) is read as ({timesteps // frame}, {frame * n_features}) and the "
            f"output is read back as ({timesteps}, {n_features}); the layers below count LSTM steps",
        ]
    bottleneck_warnings, ok = _bottleneck(config)
    warnings = bottleneck_warnings + warnings
    sections = [
        _title(config),
        _data_section(config, n_timesteps, n_samples, stride, split, batch_size, counts, n,
                      source, notes),
        _layers_section(rows, batch_size),
        _meanings_section(config),
        _bottleneck_section(warnings, ok),
    ]
    text = "\n\n".join("\n".join(section) for section in sections)
    return Explanation(rows, n, counts[0], counts[1], counts[2], warnings, text)

