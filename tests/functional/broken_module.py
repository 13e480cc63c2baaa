"""Fails at import, like a Lambda with a bad dependency."""

raise RuntimeError("cannot import me")
