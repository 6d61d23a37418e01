"""Scoring a series as it arrives: `scorer.StreamScorer` (``model.stream()``) and the
line reader of ``lstmae score --follow`` (`follow`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lstmae.streaming.scorer import StreamScorer

__all__ = ["StreamScorer"]


def __getattr__(name: str) -> Any:
    if name == "StreamScorer":  # loaded on first use: it imports torch
        from lstmae.streaming.scorer import StreamScorer

        return StreamScorer
    raise AttributeError(f"module 'lstmae.streaming.scorer' has no attribute {name!r}")
