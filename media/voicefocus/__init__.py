"""VoiceFocus noise suppression (see :mod:`media.voicefocus.core` and :mod:`media.voicefocus.learned`).

Backends: ``builtin`` (numpy MMSE-LSA, :class:`VoiceFocus`) and ``learned`` (the same suppressor with its
gain refined by a small GRU, numpy inference, weights shipped as package data:
:class:`media.voicefocus.learned.LearnedVoiceFocus`). Both: int16[160] in, int16[160] out, 20 ms latency.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from media.voicefocus.core import FRAME, VoiceFocus, VoiceFocusConfig, enhance, run_offline

__all__ = ["BACKENDS", "DEFAULT_BACKEND", "FRAME", "Backend", "VoiceFocus", "VoiceFocusConfig", "create", "enhance",
           "enhance_with", "make_learned_suppressor", "make_suppressor"]

Backend = Literal["builtin", "learned"]
BACKENDS: tuple[str, ...] = get_args(Backend)
DEFAULT_BACKEND: Backend = "learned"  # meets every bound of issue 4 and beats builtin (docs/voicefocus.md)


def create(backend: str = DEFAULT_BACKEND, *, enabled: bool = True) -> VoiceFocus:
    """A new per-leg suppressor of the given backend (``ValueError`` for an unknown one)."""
    if backend == "builtin":
        return VoiceFocus(enabled=enabled)
    if backend == "learned":
        from media.voicefocus.learned import LearnedVoiceFocus

        return LearnedVoiceFocus(enabled=enabled)
    raise ValueError(f"unknown VoiceFocus backend {backend!r} (one of {', '.join(BACKENDS)})")


def enhance_with(samples: npt.ArrayLike, backend: str = DEFAULT_BACKEND) -> npt.NDArray[np.int16]:
    """:func:`enhance` with the given backend: whole signal, same streaming code, latency removed."""
    return run_offline(create(backend), samples)


def make_suppressor(**_ctx: Any) -> VoiceFocus:
    """Factory for the shared noise-suppression harness (``eval_ns.py --methods media.voicefocus:make_suppressor``)."""
    return VoiceFocus()


def make_learned_suppressor(**_ctx: Any) -> VoiceFocus:
    """Harness factory for the ``learned`` backend (``--methods media.voicefocus:make_learned_suppressor``)."""
    return create("learned")
