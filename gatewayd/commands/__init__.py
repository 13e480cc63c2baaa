"""Sub-commands of the ``gatewayd`` CLI: each module here defines ``register(subparsers)``."""
