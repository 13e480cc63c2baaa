"""VoiceFocus noise suppression (see :mod:`media.voicefocus.core`)."""

from __future__ import annotations

from typing import Any

from media.voicefocus.core import FRAME, VoiceFocus, VoiceFocusConfig, enhance

__all__ = ["FRAME", "VoiceFocus", "VoiceFocusConfig", "enhance", "make_suppressor"]


def make_suppressor(**_ctx: Any) -> VoiceFocus:
    """Factory for the shared noise-suppression harness (``eval_ns.py --methods media.voicefocus:make_suppressor``)."""
    return VoiceFocus()
