"""``python -m hil.labcheck RIG.yaml [--ring]``: check a rig file, and optionally ring the DUT once.

Without ``--ring`` it loads the rig file (every mistake as ``file:line:col: key: message``, exit 78) and
says what the bench can do. With ``--ring`` it also places one call through the ATA exactly as the
suite would: ring (caller ID ``--number``/``--name``), wait for the DUT to answer, keep what the DUT
sends for ``--seconds``, hang up, write it to ``--out`` and report; exit 0 when the DUT answered, 1 when
not. This is the bench's smoke test before a full run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from hil.rig import ConfigError, Rig, load_rig
from hil.simulator import CallerId
from media.frame import SAMPLE_RATE
from media.levels import dbm0
from media.wav import write_wav

EX_CONFIG = 78


def summary(rig: Rig) -> dict[str, object]:
    from hil.backends.lab import capabilities_of

    prof = rig.ata.profile
    return {"rig": rig.name, "dut": rig.dut.name, "path": rig.dut.path, "ata": rig.ata.model,
            "calls": rig.ata.target_uri(), "profile": prof.name, "cid": prof.cid.value,
            "disconnect": prof.disconnect.value, "country": rig.country, "tle_a": rig.tle_a is not None,
            "capabilities": sorted(capabilities_of(rig))}


def ring_once(rig: Rig, number: str, name: str, seconds: float, out: Path | None) -> dict[str, object]:
    from hil.backends.lab import LabSimulator

    report: dict[str, object] = {"answered": False}
    with LabSimulator(rig) as sim:
        call = sim.ring(CallerId(number or None, name or None))
        if sim.wait_answered(rig.ata.answer_timeout_s):
            report["answered"] = True
            report["rings_estimated"] = call.rings
            with sim.record_far_end() as heard:
                sim.play(np.zeros(int(seconds * SAMPLE_RATE), dtype=np.int16))
            sim.hang_up()
            x = heard.samples if heard.samples is not None else np.zeros(0, dtype=np.int16)
            report["heard_s"] = round(len(x) / SAMPLE_RATE, 2)
            report["heard_dbm0"] = round(dbm0(x), 1) if len(x) else None
            if out is not None:
                write_wav(out, x)
                report["heard_wav"] = str(out)
        else:
            report["result"] = str(call.extra.get("sip_code", "")) + " " + str(call.extra.get("reason", ""))
            sim.reset()
        report["events"] = [(round(e.t, 2), e.kind, e.detail) for e in sim.events()]
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m hil.labcheck", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rig", type=Path)
    p.add_argument("--ring", action="store_true", help="ring the DUT once through the ATA")
    p.add_argument("--number", default="5551234567", help="caller ID number to send")
    p.add_argument("--name", default="HIL CHECK", help="caller ID name to send")
    p.add_argument("--seconds", type=float, default=5.0, help="how long to listen after the answer")
    p.add_argument("--out", type=Path, help="write what the DUT sent to this WAV file")
    args = p.parse_args(argv)
    try:
        rig = load_rig(args.rig)
    except ConfigError as e:
        sys.stderr.write(f"{e}\n")
        return EX_CONFIG
    doc: dict[str, object] = {"summary": summary(rig)}
    if args.ring:
        doc["ring"] = ring_once(rig, args.number, args.name, args.seconds, args.out)
    sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    ring = doc.get("ring")
    return 0 if not isinstance(ring, dict) or ring.get("answered") else 1


if __name__ == "__main__":
    sys.exit(main())
