"""The call runtime: media worker, per-leg media pipelines, and the execution of SMA actions."""
