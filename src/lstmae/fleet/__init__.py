"""Fleets: one model per series of a long table, fitted and scored many at once.

`runner.Fleet` drives the work and keeps the manifest; `engines` runs the jobs
in local processes or as Ray tasks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lstmae.fleet.runner import Fleet

__all__ = ["Fleet"]


def __getattr__(name: str) -> Any:
    if name == "Fleet":  # loaded on first use: it imports torch
        from lstmae.fleet.runner import Fleet

        return Fleet
    raise AttributeError(f"module 'lstmae.fleet.runner' has no attribute {name!r}")
