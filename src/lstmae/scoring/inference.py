"""Chunked passes of a fitted network over the windows of a series or the samples of a panel.

One pass runs each chunk of windows through the network once and yields what
is asked: per-timestep merged squared errors, reconstructions, embeddings, and
every score part's values (`parts_pass`: each part, `lstmae.scoring.parts`, says
what it reads of a chunk; the parts that read only the input run beside the
network, `input_pass`). The estimator, `lstmae.scoring.state` (the
post-training pass) and the stream use it.

Shapes: B = windows in a chunk, T = timesteps, F = features, L = latent size,
n = timesteps of a series, S = samples of a panel.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from lstmae.backends.parallel import cpu_workers, ordered_map
from lstmae.data.windows import TimestepAccumulator, window_starts

if TYPE_CHECKING:
    from lstmae.scoring.parts.base import ScorePart
    from lstmae.scoring.seen import Locator

# Numbers (windows x timesteps x the wider of features and 4 x units, the size of
# the network's gate buffers) per inference chunk: bounds memory whatever the
# series length, and keeps chunks small enough to stay in cache (a few hundred
# windows of 40 x 100 units: about 1.5x faster than 50,000 on a CPU, bench/perf.py).
CHUNK_VALUES = 1 << 22


def network_device(network: torch.nn.Module) -> torch.device:
    return next(network.parameters()).device


def batches(network: torch.nn.Module, scaled: torch.Tensor, is_panel: bool, stride: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(window starts or sample indices (B,), windows (B, T, F)) in bounded chunks.

    ``scaled`` is (n, F) for a series (windows every ``stride`` timesteps, and
    the last), (S, T, F) for a panel (every sample; ``stride`` is ignored).
    """
    config = network.config
    timesteps = config.timesteps
    width = max(scaled.shape[-1], 4 * max(config.units))
    chunk = max(1, CHUNK_VALUES // (timesteps * width))
    if is_panel:
        for first in range(0, scaled.shape[0], chunk):
            index = torch.arange(first, min(first + chunk, scaled.shape[0]))
            yield index, scaled[index]
        return
    view = scaled.unfold(0, timesteps, 1)  # (n - T + 1, F, T): a view, nothing copied
    starts = torch.from_numpy(window_starts(scaled.shape[0], timesteps, stride))
    for first in range(0, len(starts), chunk):
        part = starts[first : first + chunk]
        yield part, view[part].transpose(1, 2)


@dataclass(frozen=True)
class Chunk:
    """What the network gave for one chunk of windows.

    where : (B,) window starts or sample indices
    squared : (B, T, F) float64 squared errors in scaled units, or None (encode only)
    output : (B, T, F) float32 reconstruction, or None
    embedding : (B, L) or (B, T/k, L) float32 encoder output, on the CPU
    """

    where: torch.Tensor
    squared: np.ndarray | None
    output: torch.Tensor | None
    embedding: torch.Tensor


def run(network: torch.nn.Module, jobs: Iterable[tuple[torch.Tensor, torch.Tensor, bool]]) -> Iterator[Chunk]:
    """Each job (where, windows (B, T, F), decode?) through the network, in order, chunks on every core.

    A job that does not decode only encodes (the embeddings). Results come back
    in job order; consume them in the calling thread (see `merged`).
    """
    device = network_device(network)

    def forward(where: torch.Tensor, batch: torch.Tensor, decode: bool) -> Chunk:
        z = network.encode(batch.to(device))  # (B, L) for the repeat design
        if not decode:
            return Chunk(where, None, None, z.cpu())
        output = network.decode(z, batch.shape[1]).cpu()  # (B, T, F)
        return Chunk(where, (output - batch).pow(2).double().numpy(), output, z.cpu())

    with torch.inference_mode():
        yield from ordered_map(forward, jobs, cpu_workers(device))


class Merge:
    """Per-window values (B, T, C) back onto timesteps (series: mean over covering windows) or samples (panel)."""

    def __init__(self, length: int, channels: int, is_panel: bool) -> None:
        self.length, self.channels, self.is_panel = length, channels, is_panel
        if is_panel:
            self.values: np.ndarray | None = None  # (S, T or 1, C), allocated at the first chunk
        else:
            self.accumulator = TimestepAccumulator(length, channels)

    def add(self, where: torch.Tensor, values: np.ndarray) -> None:
        where = where.numpy()
        if self.is_panel:
            if self.values is None:
                self.values = np.empty((self.length, *values.shape[1:]), dtype=np.float64)
            self.values[where] = values
        else:
            self.accumulator.add(where, values)

    def result(self) -> np.ndarray:
        """(n, C) for a series, (S, T or 1, C) for a panel."""
        if self.is_panel:
            return np.zeros((self.length, 1, self.channels)) if self.values is None else self.values
        return self.accumulator.mean()


#: Windows per block of an INPUT part's pass: bounds its memory to a few MB whatever the series length.
INPUT_CHUNK = 1024


def input_stride(stride: int, length: int) -> int:
    """The stride of an INPUT part's windows of ``length`` steps: the score stride, at most the length
    (a longer stride would leave timesteps that no window covers)."""
    return min(stride, length)


def input_pass(scaled: torch.Tensor, part: ScorePart, is_panel: bool, stride: int, timesteps: int,
               seen: Locator | None = None) -> np.ndarray:
    """An INPUT part's merged values: (n, C) per timestep of a series, (S,) per sample of a panel, float64.

    A series' windows of L = ``part.window_length(T)`` steps start every `input_stride` steps
    (and the last ends at n - 1, `window_starts`); each window's value (`ScorePart.window_values`)
    counts for its L steps, and each timestep gets the mean over the windows covering it. No
    network: it runs beside the network's pass, in the calling thread.

    Parameters
    ----------
    scaled : Tensor of shape (n, F), n >= L, or (S, T, F), in training-scaled units
    stride : int >= 1, the score stride
    timesteps : int, the model's window length T
    seen : where the windows that are training windows are (`lstmae.scoring.seen`): each skips its trivial matches
    """
    if is_panel:
        return part.sample_values(scaled, None if seen is None else seen.at(torch.arange(scaled.shape[0]), scaled.shape[1]))
    length = part.window_length(timesteps)
    merge = Merge(scaled.shape[0], part.channels(scaled.shape[1]), False)
    view = scaled.unfold(0, length, 1)  # (n - L + 1, F, L): a view
    starts = torch.from_numpy(window_starts(scaled.shape[0], length, input_stride(stride, length)))
    for first in range(0, len(starts), INPUT_CHUNK):
        where = starts[first : first + INPUT_CHUNK]
        at = None if seen is None else seen.at(where, length)
        value = part.window_values(view[where].transpose(1, 2), where, at).double()  # (B,) or (B, C)
        value = value.reshape(len(where), 1, -1).expand(-1, length, -1)  # (B, L, C)
        merge.add(where, value.numpy())
    return merge.result()


class PassMerger:
    """Merges the chunks of one pass over a series or panel: each NETWORK part's values, and the
    reconstruction when asked (see `parts_pass`)."""

    def __init__(self, shape: tuple[int, ...], is_panel: bool, parts: Sequence[ScorePart], seen: Locator | None = None,
                 reconstruction: bool = False) -> None:
        length, features = shape[0], shape[-1]
        self.is_panel, self.seen = is_panel, seen
        self.parts = [part for part in parts if part.from_network]
        self.merges = {part.name: Merge(length, part.channels(features), is_panel) for part in self.parts}
        self.reconstruction = Merge(length, features, is_panel) if reconstruction else None

    def add(self, chunk: Chunk) -> None:
        at = None if self.seen is None or not self.parts else self.seen.at(chunk.where, chunk.squared.shape[1])
        for part in self.parts:
            self.merges[part.name].add(chunk.where, part.chunk_values(chunk, self.is_panel, at))
        if self.reconstruction is not None:
            self.reconstruction.add(chunk.where, chunk.output.double().numpy())

    def result(self) -> dict[str, np.ndarray]:
        """{part name: merged values (n, C) or (S, ., C)}."""
        return {name: merge.result() for name, merge in self.merges.items()}


def parts_pass(network: torch.nn.Module, scaled: torch.Tensor, is_panel: bool, stride: int, parts: Sequence[ScorePart],
               seen: Locator | None = None) -> dict[str, np.ndarray]:
    """Every part's merged values over a series (n, F) or panel (S, T, F), in ``parts``' order.

    The NETWORK parts read one pass of the network over the series' windows (every
    ``stride``-th and the last) or the panel's samples; the INPUT parts read the
    input (`input_pass`). ``seen``: where the training windows are in ``scaled`` (`lstmae.scoring.seen`):
    each skips its trivial matches, as the threshold's pass did.
    """
    merger = PassMerger(tuple(scaled.shape), is_panel, parts, seen)
    if merger.parts:
        for chunk in run(network, ((where, batch, True) for where, batch in batches(network, scaled, is_panel, stride))):
            merger.add(chunk)
    merged_parts = merger.result()
    for part in parts:
        if not part.from_network:
            merged_parts[part.name] = input_pass(scaled, part, is_panel, stride, network.config.timesteps, seen)
    return {part.name: merged_parts[part.name] for part in parts}


@dataclass
class Merged:
    """A pass's per-timestep (series) or per-sample (panel) errors and reconstruction.

    errors : (n, F) or (S, T, F), squared errors in scaled units, not normalised
    reconstruction : same shape, or None
    """

    errors: np.ndarray
    reconstruction: np.ndarray | None = None


def merged(network: torch.nn.Module, scaled: torch.Tensor, is_panel: bool, stride: int, *, reconstruction: bool = False) -> Merged:
    """One pass over a series (n, F) or panel (S, T, F): the squared errors, and the reconstructions when asked.

    Series windows are every ``stride``-th and the last; each timestep's values
    are averaged over the windows that cover it.
    """
    errors = Merge(scaled.shape[0], scaled.shape[-1], is_panel)
    rebuilt = Merge(scaled.shape[0], scaled.shape[-1], is_panel) if reconstruction else None
    for chunk in run(network, ((where, batch, True) for where, batch in batches(network, scaled, is_panel, stride))):
        errors.add(chunk.where, chunk.squared)
        if rebuilt is not None:
            rebuilt.add(chunk.where, chunk.output.double().numpy())
    return Merged(errors.result(), None if rebuilt is None else rebuilt.result())


def embeddings(network: torch.nn.Module, scaled: torch.Tensor, is_panel: bool, stride: int) -> torch.Tensor:
    """The encoder output of every ``stride``-th window (and the last), or of every sample: (N, L) or (N, T/k, L), float32."""
    jobs = ((where, batch, False) for where, batch in batches(network, scaled, is_panel, stride))
    return torch.cat([chunk.embedding for chunk in run(network, jobs)])
