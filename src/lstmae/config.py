"""Typed, commented configuration shared by the network, the trainer and the files."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

Architecture = Literal["repeat", "sequence"]
ARCHITECTURES: tuple[str, ...] = ("repeat", "sequence")


@dataclass(frozen=True)
class NetworkConfig:
    """Everything needed to build the torch network, and nothing about data files."""

    n_features: int  # F: values per timestep (columns of the series)
    timesteps: int  # T: window length the network is trained on
    units: tuple[int, ...]  # hidden size of each encoder LSTM; the last one is the latent size
    architecture: str  # "repeat" (bottleneck + RepeatVector) or "sequence" (return_sequences throughout)
    frame: int = 1  # k: consecutive timesteps the LSTM reads as one step (T/k steps of k*F values); divides T

    @property
    def steps(self) -> int:
        """Number of LSTM steps per window: T / k."""
        return self.timesteps // self.frame

    @property
    def step_features(self) -> int:
        """Values the LSTM reads at each step: k * F."""
        return self.frame * self.n_features

    @property
    def latent(self) -> int:
        """Size of the encoder output per window (repeat) or per timestep (sequence)."""
        return self.units[-1]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["units"] = list(self.units)
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "NetworkConfig":
        return cls(
            n_features=int(data["n_features"]),
            timesteps=int(data["timesteps"]),
            units=tuple(int(u) for u in data["units"]),
            architecture=str(data["architecture"]),
            frame=int(data.get("frame", 1)),
        )
