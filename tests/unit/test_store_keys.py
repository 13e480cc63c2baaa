import re
import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from gatewayd.sma import keys
from gatewayd.sma.keys import (
    INVALID_RECORDING_DESTINATION,
    InvalidDestination,
    parse_call_recording_destination,
    parse_recording_destination,
    recording_destination_error,
    recording_key,
)

UUID_WAV = r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\.wav"


def dest(prefix: object = None, bucket: object = "my-bucket", **extra: object) -> dict[str, object]:
    d: dict[str, object] = {"Type": "S3", "BucketName": bucket, **extra}
    if prefix is not None:
        d["Prefix"] = prefix
    return d


@pytest.mark.parametrize(("prefix", "expected"), [
    (None, rf"{UUID_WAV}"),
    ("", rf"{UUID_WAV}"),
    ("voicemail", rf"voicemail/{UUID_WAV}"),
    ("voicemail/", rf"voicemail/{UUID_WAV}"),
    ("a/b/c", rf"a/b/c/{UUID_WAV}"),
    ("meeting-mp3/abc.2024", rf"meeting-mp3/abc\.2024/{UUID_WAV}"),
    ("!-_.*'()", rf"!-_\.\*'\(\)/{UUID_WAV}"),
])
def test_key_shape(prefix: str | None, expected: str) -> None:
    key = parse_recording_destination(dest(prefix)).new_key()
    assert re.fullmatch(expected, key), key
    assert "//" not in key


def test_each_key_is_a_fresh_uuid4() -> None:
    ks = {recording_key("p") for _ in range(100)}
    assert len(ks) == 100
    assert uuid.UUID(next(iter(ks))[2:-4]).version == 4


def test_summarizer_style_prefix_parses_back() -> None:
    # aws-samples meeting summarizer: key.split('/')[1].split('.') recovers MeetingId and time
    key = recording_key("meeting-mp3/MEETING123.1700000000")
    assert key.split("/")[1].split(".") == ["MEETING123", "1700000000"]


def test_prefix_length_limit() -> None:
    ok = "a" * 979
    key = recording_key(ok)
    assert key.startswith(ok + "/") and len(key.encode()) <= 1024
    assert recording_destination_error(dest(ok)) is None
    assert recording_destination_error(dest("a" * 980)) == INVALID_RECORDING_DESTINATION


@pytest.mark.parametrize("prefix", [
    "/leading", "a/../b", "..", "../a", "a/..", "tab\there", "nl\nx", "nul\0x", "del\x7fx", "space here",
    "ümlaut", "a?b", "a#b", "a%2f", "a\\b", "a&b", "a$b", "a@b", "a=b", "a+b", "a,b", "a:b", "a;b",
    "a{b}", "a[b]", "a^b", "a~b", "a`b", 'a"b', "a<b>", "a|b", 7, ["x"],
])
def test_invalid_prefixes(prefix: object) -> None:
    with pytest.raises(InvalidDestination) as e:
        parse_recording_destination(dest(prefix))
    assert e.value.message == "RecordingDestination parameter value is invalid."
    assert e.value.error_type == "InvalidActionParameter"
    assert str(e.value) == "RecordingDestination parameter value is invalid."
    assert recording_destination_error(dest(prefix)) == "RecordingDestination parameter value is invalid."


@pytest.mark.parametrize("prefix", ["a..b", "...", "a/.../b", "a/.b", ".hidden", "a/./b"])
def test_dots_that_are_not_a_dotdot_segment_are_fine(prefix: str) -> None:
    assert recording_destination_error(dest(prefix)) is None


@pytest.mark.parametrize("value", [
    None, "my-bucket", {"BucketName": "my-bucket"}, {"Type": "s3", "BucketName": "my-bucket"},
    {"Type": "S3"}, dest(bucket="My-Bucket"), dest(bucket="ab"), dest(bucket="a" * 64), dest(bucket="-ab"),
    dest(bucket="ab-"), dest(bucket="a..b"), dest(bucket="192.168.1.1"), dest(bucket="xn--abc"),
    dest(bucket="abc-s3alias"), dest(bucket="a_b"), dest(bucket=5),
])
def test_invalid_destinations(value: object) -> None:
    assert recording_destination_error(value) == INVALID_RECORDING_DESTINATION
    with pytest.raises(InvalidDestination):
        parse_recording_destination(value)


def test_valid_destination() -> None:
    d = parse_recording_destination(dest("x/", bucket="rec.bucket-1"))
    assert (d.bucket, d.prefix) == ("rec.bucket-1", "x/")


# ---------------------------------------------------------------------------- StartCallRecording
def test_call_recording_key_shape() -> None:
    loc = parse_call_recording_destination({"Type": "S3", "Location": "my-bucket"})
    assert (loc.bucket, loc.prefix) == ("my-bucket", "Amazon-Chime-SMA-Call-Recordings")
    t = datetime(2024, 3, 7, 9, 5, 2, 45_678, tzinfo=UTC)
    key = loc.key(t, "tx-1", "call-2")
    assert key == "Amazon-Chime-SMA-Call-Recordings/2024/03/07/2024-03-07-09-05-02-045_tx-1_call-2.wav"
    # the on-demand-recording sample parses the transaction id like this
    assert key.split("/", 4)[4].split("_", 2)[1] == "tx-1"


def test_call_recording_key_with_prefix_and_timezone() -> None:
    loc = parse_call_recording_destination({"Type": "S3", "Location": "my-bucket/calls/"})
    assert loc.prefix == "calls"
    t = datetime(2024, 12, 31, 23, 30, 0, 999_999, tzinfo=timezone(timedelta(hours=-2)))
    assert loc.key(t, "t", "c") == "calls/2025/01/01/2025-01-01-01-30-00-999_t_c.wav"


@pytest.mark.parametrize("location", ["", "/x", "Bad_Bucket/x", "my-bucket/../x", "my-bucket/a b", 5])
def test_invalid_call_recording_location(location: object) -> None:
    with pytest.raises(InvalidDestination) as e:
        parse_call_recording_destination({"Type": "S3", "Location": location})
    assert e.value.message == keys.INVALID_CALL_RECORDING_DESTINATION


def test_call_recording_key_refuses_ids_that_break_the_key() -> None:
    t = datetime(2024, 1, 1, tzinfo=UTC)
    with pytest.raises(InvalidDestination):
        keys.call_recording_key("p", t, "tx/../x", "c")
    with pytest.raises(InvalidDestination):
        keys.call_recording_key("p" * 979, t, "t" * 36, "c" * 36)
