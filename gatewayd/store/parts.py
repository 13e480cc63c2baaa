"""Multipart planning for a WAV that is still growing (pure).

The object is cut into parts of ``part_size`` bytes: part n covers ``[(n-1)·P, n·P)`` and the last part
whatever remains (S3: every part but the last is at least 5 MiB). Part 1 holds the 44-byte WAV header,
whose size fields are known only when the recording stops, so it is uploaded last; parts 2, 3, ... are
uploaded while recording as soon as they are complete on disk *and* ``holdback`` bytes more have been
written (trimming the terminator tone from the end then never touches an uploaded part). When the
recording stops, the parts still missing are the tail and part 1. A recording that fits in one part is
sent with a single PUT.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Part:
    number: int
    offset: int
    size: int

    @property
    def end(self) -> int:
        return self.offset + self.size


def part_for(number: int, part_size: int, total: int | None = None) -> Part:
    """Part ``number`` (1-based) of an object of ``total`` bytes (None: a full part)."""
    offset = (number - 1) * part_size
    size = part_size if total is None else min(part_size, total - offset)
    return Part(number, offset, size)


def streamable_parts(synced: int, holdback: int, part_size: int, done: Iterable[int]) -> list[Part]:
    """Full middle parts (number >= 2) that may be uploaded while recording, in order, excluding ``done``.

    ``synced`` is how many bytes of the file are on disk; a part is ready when ``synced >= end + holdback``.
    """
    done_set = set(done)
    out: list[Part] = []
    n = 2
    while n * part_size + holdback <= synced:
        if n not in done_set:
            out.append(part_for(n, part_size))
        n += 1
    return out


def single_put(total: int, part_size: int) -> bool:
    """Whether a finished object of ``total`` bytes is sent with one PUT (it fits in one part)."""
    return total <= part_size


def final_parts(total: int, part_size: int) -> list[Part]:
    """Every part of a finished object of ``total`` bytes (> part_size), part 1 first."""
    if single_put(total, part_size):
        raise ValueError("an object that fits in one part is not sent in parts")
    count = -(-total // part_size)
    return [part_for(n, part_size, total) for n in range(1, count + 1)]


@dataclass(frozen=True)
class FinalPlan:
    keep: tuple[Part, ...]  # parts already uploaded that belong to the final object
    upload: tuple[Part, ...]  # parts to send now: the missing middle parts and the tail, part 1 last
    drop: tuple[int, ...]  # numbers of uploaded parts that are not part of the final object

    @property
    def numbers(self) -> list[int]:
        return sorted(p.number for p in (*self.keep, *self.upload))


def plan_final(total: int, part_size: int, uploaded: Mapping[int, tuple[int, int]]) -> FinalPlan:
    """What to upload now that the object is ``total`` bytes long.

    ``uploaded`` maps part numbers already sent to their (offset, size). A part is kept only when it is
    exactly the planned part of the same number; part 1 (the header) is kept only if it was sent after
    the file was closed, which the caller ensures by recording it only then.
    """
    want = final_parts(total, part_size)
    keep: list[Part] = []
    todo: list[Part] = []
    for p in want:
        if uploaded.get(p.number) == (p.offset, p.size):
            keep.append(p)
        else:
            todo.append(p)
    todo.sort(key=lambda p: (p.number == 1, p.number))  # part 1 last
    wanted = {p.number for p in want}
    drop = tuple(sorted(n for n in uploaded if n not in wanted))
    return FinalPlan(tuple(keep), tuple(todo), drop)
