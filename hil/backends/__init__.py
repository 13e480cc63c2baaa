"""Line-simulator backends, by name: ``emulator`` (CI: device emulators and a loopback SIP far end) and
``lab`` (the bench rig, :mod:`hil.backends.lab`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hil.simulator import LineSimulator

PATHS = ("modem", "fxo", "sip")


def make_simulator(backend: str, path: str, rig: Any = None, workdir: Path | None = None) -> LineSimulator:
    """The simulator for ``path`` (modem, fxo or sip) on ``backend``. ``rig``: the lab's ``hil.rig.Rig``
    (``--rig``); ``workdir``: where an emulator keeps its ptys and FIFOs."""
    if path not in PATHS:
        raise ValueError(f"path {path!r}: one of {PATHS}")
    if backend == "emulator":
        if workdir is None:
            raise ValueError("the emulator backend needs a work directory")
        if path == "modem":
            from hil.backends.emulator_modem import EmulatorModem

            return EmulatorModem(workdir / "modem")
        if path == "fxo":
            from hil.backends.emulator_fxo import EmulatorFxo

            return EmulatorFxo(workdir / "fxo")
        from hil.backends.emulator_sip import EmulatorSip

        return EmulatorSip(workdir / "sip")
    if backend == "lab":
        from hil.backends.lab import LabSimulator  # type: ignore[import-not-found,import-untyped,unused-ignore]

        sim: LineSimulator = LabSimulator(rig)
        return sim
    raise ValueError(f"backend {backend!r}: emulator or lab")
