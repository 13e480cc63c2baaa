import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gatewayd.store.parts import Part, final_parts, plan_final, single_put, streamable_parts

MIB = 1024 * 1024
P = 5 * MIB


def test_nothing_streams_before_two_full_parts_and_the_holdback() -> None:
    # part 1 (header) is never streamed; part 2 needs its end plus the holdback on disk
    assert streamable_parts(2 * P + 999, 1000, P, []) == []
    assert streamable_parts(2 * P + 1000, 1000, P, []) == [Part(2, P, P)]


def test_streamable_parts_skip_done_ones_and_stay_full_size() -> None:
    got = streamable_parts(5 * P + 10, 10, P, [2, 4])
    assert got == [Part(3, 2 * P, P), Part(5, 4 * P, P)]
    assert all(p.size == P for p in got)


def test_single_put_up_to_one_part() -> None:
    assert single_put(44, P) and single_put(P, P)
    assert not single_put(P + 1, P)
    with pytest.raises(ValueError):
        final_parts(P, P)


def test_final_parts_cover_the_object_exactly() -> None:
    total = 57_600_044  # 60 minutes of 8 kHz 16-bit mono
    parts = final_parts(total, P)
    assert parts[0] == Part(1, 0, P)
    assert [p.number for p in parts] == list(range(1, 12))
    assert all(p.size >= P for p in parts[:-1])  # S3: every part but the last is >= 5 MiB
    assert parts[-1].end == total and 0 < parts[-1].size <= P
    assert all(a.end == b.offset for a, b in itertools.pairwise(parts))


def test_plan_after_streaming_sends_only_tail_and_header_part_last() -> None:
    total = 57_600_044
    uploaded = {n: ((n - 1) * P, P) for n in range(2, 11)}  # streamed while recording
    plan = plan_final(total, P, uploaded)
    assert [p.number for p in plan.upload] == [11, 1]  # the tail, then part 1 (the header)
    assert [p.number for p in plan.keep] == list(range(2, 11))
    assert plan.drop == ()
    assert plan.numbers == list(range(1, 12))


def test_plan_after_a_cut_into_streamed_parts_replans_them() -> None:
    uploaded = {n: ((n - 1) * P, P) for n in range(2, 8)}  # parts 2..7 streamed
    total = 4 * P + 123  # then the recording was cut back (cut_at)
    plan = plan_final(total, P, uploaded)
    assert [p.number for p in plan.keep] == [2, 3, 4]
    assert plan.upload == (Part(5, 4 * P, 123), Part(1, 0, P))
    assert plan.drop == (6, 7)


def test_plan_ignores_a_part_recorded_with_another_geometry() -> None:
    plan = plan_final(3 * P, P, {2: (P, P - 1), 3: (2 * P, P)})
    assert [p.number for p in plan.upload] == [2, 1]
    assert [p.number for p in plan.keep] == [3]


@given(st.integers(min_value=P + 1, max_value=60 * P), st.sets(st.integers(min_value=1, max_value=70)))
def test_plan_is_always_a_valid_complete_upload(total: int, done: set[int]) -> None:
    uploaded = {n: ((n - 1) * P, P) for n in done}
    plan = plan_final(total, P, uploaded)
    parts = sorted((*plan.keep, *plan.upload), key=lambda p: p.number)
    assert [p.number for p in parts] == list(range(1, len(parts) + 1))
    assert parts[0].offset == 0 and parts[-1].end == total
    assert all(a.end == b.offset for a, b in itertools.pairwise(parts))
    assert all(p.size >= P for p in parts[:-1]) and parts[-1].size > 0
    if 1 not in done:
        assert plan.upload[-1].number == 1  # the header part is sent last
    else:
        assert 1 in [p.number for p in plan.keep]  # already sent after the close: not sent again
    assert set(plan.drop).isdisjoint(plan.numbers)
