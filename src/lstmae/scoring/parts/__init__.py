"""Score parts: each measures one way a window or sample is new (`base.ScorePart`), one module each.

`PARTS` maps each part's name to its class; a model file names its parts, and
loading finds them here. `register` adds a part defined elsewhere (a plug-in),
which can then be fitted (`lstmae.scoring.state.fit_state`), scored, streamed
and saved like the built-in ones.
"""

from __future__ import annotations

from lstmae.errors import ParameterError
from lstmae.scoring.parts.base import INPUT, LEVEL_FLOOR, NETWORK, ScorePart, ScoringSettings, TrainingData
from lstmae.scoring.parts.inputs import InputDistance
from lstmae.scoring.parts.latent import Latent
from lstmae.scoring.parts.neighbours import Neighbours
from lstmae.scoring.parts.reconstruction import Reconstruction

#: The known parts by name, in the order a format-1 model file is read.
PARTS: dict[str, type[ScorePart]] = {}


def register(part: type[ScorePart]) -> type[ScorePart]:
    """Make ``part`` known by its ``name`` (usable as a class decorator); a name taken by another class is refused."""
    known = PARTS.get(part.name)
    if known is not None and known is not part:
        raise ParameterError(f"a score part named {part.name!r} exists already ({known.__module__}.{known.__qualname__}); choose another name.")
    PARTS[part.name] = part
    return part


def part_class(name: str) -> type[ScorePart]:
    """The class of the part called ``name``; a ParameterError lists the known ones."""
    if name not in PARTS:
        raise ParameterError(f"no score part is called {name!r}; the known parts are {list(PARTS)} (a plug-in must be registered first).")
    return PARTS[name]


for _part in (Reconstruction, Latent, Neighbours, InputDistance):
    register(_part)

__all__ = ["INPUT", "LEVEL_FLOOR", "NETWORK", "PARTS", "ScorePart", "ScoringSettings", "TrainingData", "part_class", "register"]
