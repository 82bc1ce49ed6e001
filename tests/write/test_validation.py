"""Input checks: each accepts what it should, and each rejection says what to change."""

from __future__ import annotations

from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agent_memory.config import Settings
from agent_memory.errors import InvalidInput
from agent_memory.write import validation

SMALL = Settings(max_content_chars=20, max_tags=2, max_tag_chars=5, max_metadata_bytes=40, max_metadata_depth=3)


def rejects(*words: str) -> AbstractContextManager[pytest.ExceptionInfo[InvalidInput]]:
    """Expect an InvalidInput whose message holds every one of `words` (case-insensitive)."""
    return pytest.raises(InvalidInput, match="(?is)" + "".join(f"(?=.*{w})" for w in words))


# utf8


def test_utf8_accepts_any_valid_unicode() -> None:
    assert validation.utf8("naïve 日本 🙂", "content") == "naïve 日本 🙂"


def test_utf8_rejects_an_unpaired_surrogate_naming_the_field() -> None:
    with rejects("content", "surrogate", "valid Unicode"):
        validation.utf8("half \ud83d a smile", "content")


# content


def test_content_is_normalised_to_nfc_trimmed_and_stripped_of_control_characters() -> None:
    decomposed = "Cafe\u0301"
    assert validation.content(f"  {decomposed}\x00\x07 bar\x1f\x7f \n", SMALL) == "Café bar"


def test_content_keeps_newlines_and_tabs() -> None:
    assert validation.content("line one\n\tline two", Settings()) == "line one\n\tline two"


@pytest.mark.parametrize("value", [None, 42, b"bytes", ["list"]])
def test_content_that_is_not_a_string_is_rejected(value: Any) -> None:
    with rejects("content", "string"):
        validation.content(value, SMALL)


@pytest.mark.parametrize("value", ["", "   ", "\x00\x01\n\t "])
def test_empty_content_is_rejected_with_what_to_pass(value: str) -> None:
    with rejects("empty", "text"):
        validation.content(value, SMALL)


def test_content_at_the_limit_is_accepted_and_one_more_character_is_rejected_with_how_to_fix() -> None:
    assert validation.content("x" * 20, SMALL) == "x" * 20
    with rejects("21", "limit is 20", "AGENT_MEMORY_MAX_CONTENT_CHARS", "split"):
        validation.content("x" * 21, SMALL)


def test_content_limit_counts_characters_after_cleaning() -> None:
    assert validation.content("  " + "x" * 20 + "\x00\x00  ", SMALL) == "x" * 20


def test_content_with_an_unpaired_surrogate_is_rejected() -> None:
    with rejects("content", "surrogate"):
        validation.content("bad \udc00", SMALL)


# role


@pytest.mark.parametrize("value", validation.ROLES)
def test_every_known_role_is_accepted(value: str) -> None:
    assert validation.role(value) == value


@pytest.mark.parametrize("value", ["User", "bot", "", None, 1])
def test_an_unknown_role_is_rejected_listing_the_choices(value: Any) -> None:
    with rejects("role must be one of", "user", "assistant", "system", "fact"):
        validation.role(value)


# label


def test_a_label_is_trimmed_and_may_hold_any_printable_unicode() -> None:
    assert validation.label("  work/projects: 日本 ", "namespace") == "work/projects: 日本"
    assert validation.label("x" * 128, "session_id") == "x" * 128


@pytest.mark.parametrize("value", ["", "   ", "x" * 129, "tab\there", "new\nline", "nul\x00", "del\x7f", None, 7])
def test_a_bad_label_is_rejected_with_the_rule_and_the_field_name(value: Any) -> None:
    with rejects("namespace", "1-128 printable characters"):
        validation.label(value, "namespace")


def test_a_label_with_an_unpaired_surrogate_is_rejected() -> None:
    with rejects("session_id", "surrogate"):
        validation.label("s\ud800", "session_id")


# tags


def test_no_tags_is_an_empty_tuple() -> None:
    assert validation.tags(None, SMALL) == ()
    assert validation.tags([], SMALL) == ()


def test_tags_are_trimmed_lower_cased_and_de_duplicated_in_order() -> None:
    assert validation.tags([" Food", "food", "TRIP ", "  "], SMALL) == ("food", "trip")
    assert validation.tags(("a",), SMALL) == ("a",)


@pytest.mark.parametrize("value", ["food", {"food": 1}, ["ok", 3], [None]])
def test_tags_that_are_not_a_list_of_strings_are_rejected(value: Any) -> None:
    with rejects("tags must be a list of strings"):
        validation.tags(value, SMALL)


def test_too_many_distinct_tags_are_rejected_naming_the_setting() -> None:
    assert validation.tags(["a", "b", "A", "b "], SMALL) == ("a", "b")
    with rejects("at most 2 tags", "AGENT_MEMORY_MAX_TAGS", "got 3"):
        validation.tags(["a", "b", "c"], SMALL)


def test_a_long_tag_is_rejected_naming_the_setting() -> None:
    assert validation.tags(["fives"], SMALL) == ("fives",)
    with rejects("sixsix", "at most 5", "AGENT_MEMORY_MAX_TAG_CHARS"):
        validation.tags(["sixsix"], SMALL)


def test_a_tag_with_control_characters_is_rejected() -> None:
    with rejects("printable"):
        validation.tags(["a\x01b"], SMALL)


def test_a_tag_with_an_unpaired_surrogate_is_rejected() -> None:
    with rejects("tags", "surrogate"):
        validation.tags(["\udfff"], SMALL)


# metadata


def test_no_metadata_is_an_empty_dict() -> None:
    assert validation.metadata(None, SMALL) == {}


def test_metadata_within_the_limits_comes_back_as_plain_json() -> None:
    assert validation.metadata({"k": [1, "ü"]}, SMALL) == {"k": [1, "ü"]}
    assert validation.metadata({"n": (1, 2)}, SMALL) == {"n": [1, 2]}


@pytest.mark.parametrize("value", [[1, 2], "text", 3])
def test_metadata_that_is_not_an_object_is_rejected(value: Any) -> None:
    with rejects("metadata must be an object"):
        validation.metadata(value, SMALL)


def test_metadata_nested_past_the_depth_limit_is_rejected_with_how_to_fix() -> None:
    assert validation.metadata({"a": {"b": 1}}, SMALL) == {"a": {"b": 1}}
    assert validation.metadata({"a": [1]}, SMALL) == {"a": [1]}
    with rejects("nested more than 3 levels", "AGENT_MEMORY_MAX_METADATA_DEPTH", "flatten"):
        validation.metadata({"a": {"b": {"c": 1}}}, SMALL)
    with rejects("nested"):
        validation.metadata({"a": [[1]]}, SMALL)


def test_hostile_nesting_is_rejected_without_exhausting_the_stack() -> None:
    value: dict[str, Any] = {}
    for _ in range(100_000):
        value = {"a": value}
    with rejects("nested"):
        validation.metadata(value, Settings())


@pytest.mark.parametrize("value", [{"n": float("nan")}, {"n": float("inf")}, {"o": object()}, {"b": b"x"}])
def test_metadata_that_is_not_plain_json_is_rejected(value: dict[str, Any]) -> None:
    with rejects("metadata must be plain JSON"):
        validation.metadata(value, SMALL)


def test_metadata_over_the_byte_limit_is_rejected_with_how_to_fix() -> None:
    with rejects("bytes as JSON", "limit is 40", "AGENT_MEMORY_MAX_METADATA_BYTES", "small fields"):
        validation.metadata({"k": "x" * 40}, SMALL)


def test_metadata_size_counts_utf8_bytes_not_characters() -> None:
    assert validation.metadata({"k": "x" * 20}, SMALL) == {"k": "x" * 20}  # 29 bytes
    with rejects("bytes as JSON"):
        validation.metadata({"k": "é" * 20}, SMALL)  # 29 characters, 49 bytes


def test_metadata_with_an_unpaired_surrogate_is_rejected() -> None:
    with rejects("metadata", "surrogate"):
        validation.metadata({"k": "\ud800"}, SMALL)


# limit


@pytest.mark.parametrize("value", [1, 7, 50])
def test_a_limit_in_range_is_accepted(value: int) -> None:
    assert validation.limit(value, "limit", 50) == value


@pytest.mark.parametrize("value", [0, -1, 51])
def test_a_limit_out_of_range_is_rejected_with_the_range(value: int) -> None:
    with rejects("limit must be between 1 and 50", f"got {value}"):
        validation.limit(value, "limit", 50)


@pytest.mark.parametrize("value", [True, 1.0, "5", None])
def test_a_limit_that_is_not_a_whole_number_is_rejected(value: Any) -> None:
    with rejects("limit must be a whole number between 1 and 50"):
        validation.limit(value, "limit", 50)


# timestamp


def test_no_timestamp_is_none() -> None:
    assert validation.timestamp(None, "since") is None


def test_a_bare_date_is_midnight_utc() -> None:
    assert validation.timestamp("2024-05-01", "since") == datetime(2024, 5, 1, tzinfo=UTC)


def test_a_bare_date_as_the_end_of_a_range_covers_the_whole_day() -> None:
    end = validation.timestamp(" 2024-05-01 ", "until", end_of_day=True)
    assert end == datetime(2024, 5, 2, tzinfo=UTC) - timedelta(microseconds=1)


def test_end_of_day_leaves_a_date_time_as_given() -> None:
    moment = validation.timestamp("2024-05-01T13:30:00Z", "until", end_of_day=True)
    assert moment == datetime(2024, 5, 1, 13, 30, tzinfo=UTC)


def test_a_naive_date_time_is_utc() -> None:
    assert validation.timestamp("2024-05-01T13:30:00", "since") == datetime(2024, 5, 1, 13, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "hour"), [("2024-05-01T13:30:00+02:00", 11), ("2024-05-01T13:30:00-07:00", 20), ("2024-05-01 13:30Z", 13)]
)
def test_a_date_time_with_an_offset_is_converted_to_utc(text: str, hour: int) -> None:
    moment = validation.timestamp(text, "since")
    assert moment is not None
    assert moment.tzinfo == UTC
    assert (moment.hour, moment.minute) == (hour, 30)


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01", "2024-02-30", "01/05/2024", "2024-05-01T25:00", "", " "])
def test_an_unparseable_timestamp_is_rejected_with_an_example(value: str) -> None:
    with rejects("since must be an ISO 8601 date", "2024-05-01"):
        validation.timestamp(value, "since")


@pytest.mark.parametrize("value", [20240501, 1.5, ["2024-05-01"]])
def test_a_timestamp_that_is_not_a_string_is_rejected(value: Any) -> None:
    with rejects("until must be an ISO 8601"):
        validation.timestamp(value, "until")


def test_a_timestamp_out_of_the_representable_range_is_rejected() -> None:
    with rejects("ISO 8601", "9999-12-31T23:59:59-14:00"):
        validation.timestamp("9999-12-31T23:59:59-14:00", "until")
    with rejects("ISO 8601"):
        validation.timestamp("0001-01-01T00:00:00+14:00", "since")


# optional_text


def test_optional_text_absent_or_blank_is_none() -> None:
    assert validation.optional_text(None, "focus") is None
    assert validation.optional_text("  \x00 ", "focus") is None


def test_optional_text_is_trimmed_and_stripped_of_control_characters() -> None:
    assert validation.optional_text(" deci\x07sions ", "focus") == "decisions"


@pytest.mark.parametrize("value", [3, ["x"], "x" * 11])
def test_optional_text_that_is_not_a_short_string_is_rejected(value: Any) -> None:
    with rejects("focus must be a string of at most 10 characters"):
        validation.optional_text(value, "focus", max_chars=10)


def test_optional_text_with_an_unpaired_surrogate_is_rejected() -> None:
    with rejects("focus", "surrogate"):
        validation.optional_text("\ud800", "focus")


# query


def test_a_query_is_trimmed_and_stripped_of_control_characters() -> None:
    assert validation.query("  UI\x00 preferences ", SMALL) == "UI preferences"


@pytest.mark.parametrize("value", ["", "   ", "\x00\x01", None, 5])
def test_an_empty_query_is_rejected_with_an_example(value: Any) -> None:
    with rejects("query is empty", "describe what to look for"):
        validation.query(value, SMALL)


def test_a_query_over_the_content_limit_is_rejected_naming_the_setting() -> None:
    assert validation.query("x" * 20, SMALL) == "x" * 20
    with rejects("longer than 20", "AGENT_MEMORY_MAX_CONTENT_CHARS", "shorten"):
        validation.query("x" * 21, SMALL)


def test_a_query_with_an_unpaired_surrogate_is_rejected() -> None:
    with rejects("query", "surrogate"):
        validation.query("find \udc00", SMALL)
