"""Support for tests and benchmarks (real third-party servers started on loopback).

Nothing in the daemon imports this package (an import-linter contract keeps it so).
"""
