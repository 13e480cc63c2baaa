"""Benchmarks behind ``gatewayd bench NAME``: each module here defines ``register(subparsers)``.

A benchmark prints its figures (``--json`` for machine-readable output) and exits non-zero when a
stated bound is missed.
"""
