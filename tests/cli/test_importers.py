"""Import readers: format detection and what each format's records become."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agent_memory.cli.importers import (
    FORMATS,
    MEM0_SESSION,
    SERVER_MEMORY_SESSION,
    Format,
    Parsed,
    Skipped,
    count,
    detect,
    read,
)
from agent_memory.errors import InvalidInput

FIXTURES = Path(__file__).parent.parent / "fixtures"


def parsed(text: str, fmt: Format) -> list[Parsed]:
    """Return the memories read from `text`, failing on any skipped part."""
    entries = list(read(text, fmt))
    assert all(isinstance(e, Parsed) for e in entries), entries
    return [e for e in entries if isinstance(e, Parsed)]


def skipped(text: str, fmt: Format) -> list[Skipped]:
    """Return the skipped parts of `text`."""
    return [e for e in read(text, fmt) if isinstance(e, Skipped)]


def jsonl(*records: object) -> str:
    """Return one JSON document per line."""
    return "\n".join(json.dumps(r) for r in records) + "\n"


# detect


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        (jsonl({"type": "header", "version": 1}, {"type": "memory", "content": "x"}), "agent-memory"),
        (jsonl({"type": "memory", "content": "x"}), "agent-memory"),
        (jsonl({"content": "x"}), "agent-memory"),
        (jsonl({"type": "entity", "name": "A", "entityType": "t", "observations": []}), "server-memory"),
        (jsonl({"type": "relation", "from": "A", "to": "B", "relationType": "knows"}), "server-memory"),
        ('[{"memory": "x"}]', "mem0"),
        ('  \n [\n  {"memory": "x"}\n]', "mem0"),
        ('{"results": []}', "mem0"),
        ('{"memories": []}', "mem0"),
        ('{"memory": "x", "id": "1"}', "mem0"),
        ('{\n  "results": [\n    {"memory": "x"}\n  ]\n}\n', "mem0"),
    ],
)
def test_detect_tells_each_format_from_its_first_record(text: str, fmt: str) -> None:
    assert detect(text) == fmt


def test_detect_tells_the_fixture_files_apart() -> None:
    assert detect((FIXTURES / "mem0.json").read_text()) == "mem0"
    assert detect((FIXTURES / "server-memory.jsonl").read_text()) == "server-memory"


@pytest.mark.parametrize("text", ['"just a string"\n', "42\n", "null\n"])
def test_a_file_that_does_not_start_with_an_object_is_rejected_asking_for_the_format(text: str) -> None:
    with pytest.raises(InvalidInput, match="--format"):
        detect(text)


def test_an_object_of_no_known_shape_is_rejected_listing_the_formats() -> None:
    with pytest.raises(InvalidInput, match="--format agent-memory, server-memory or mem0"):
        detect('{"name": "x"}\n')


def test_text_that_is_not_json_is_read_as_mem0_and_rejected_there() -> None:
    # A multi-line document cannot be told from junk by its first line; mem0's reader says what is wrong.
    assert detect("hello world\n") == "mem0"
    with pytest.raises(InvalidInput, match="not valid JSON"):
        list(read("hello world\n", "mem0"))


def test_formats_lists_every_format_once() -> None:
    assert sorted(FORMATS) == ["agent-memory", "chatgpt", "claude-ai", "claude-code", "mem0", "server-memory"]


# agent-memory export


def test_an_agent_memory_export_keeps_every_field_and_the_owner() -> None:
    record = {
        "type": "memory",
        "id": "m1",
        "user": "alex",
        "content": "Prefers dark mode",
        "role": "fact",
        "tags": ["ui"],
        "session_id": "s1",
        "namespace": "work",
        "metadata": {"k": 1},
        "created_at": "2024-05-01T00:00:00Z",
    }
    [entry] = parsed(jsonl({"type": "header", "version": 1}, record), "agent-memory")
    assert entry.line == 2
    assert entry.user == "alex"
    memory = entry.memory
    assert (memory.id, memory.content, memory.role, memory.tags) == ("m1", "Prefers dark mode", "fact", ["ui"])
    assert (memory.session_id, memory.namespace, memory.metadata) == ("s1", "work", {"k": 1})
    assert memory.created_at == "2024-05-01T00:00:00Z"


def test_an_agent_memory_record_without_type_or_role_is_a_user_memory_of_no_known_owner() -> None:
    [entry] = parsed(jsonl({"content": "hello", "user": 7}), "agent-memory")
    assert entry.user is None
    assert entry.memory.role == "user"
    assert entry.memory.id is None


def test_agent_memory_lines_that_are_not_memories_are_skipped_with_their_line_and_reason() -> None:
    text = '{"type": "memory", "content": "kept"}\n\nnot json\n[1, 2]\n{"type": "summary"}\n'
    entries = list(read(text, "agent-memory"))
    assert [(type(e).__name__, e.line) for e in entries] == [
        ("Parsed", 1),
        ("Skipped", 3),
        ("Skipped", 4),
        ("Skipped", 5),
    ]
    reasons = [e.reason for e in entries if isinstance(e, Skipped)]
    assert reasons[0].startswith("not JSON (")
    assert reasons[1] == "not a JSON object"
    assert reasons[2] == "unknown record type 'summary'"


# server-memory


def test_each_observation_of_an_entity_becomes_a_fact_tagged_with_the_entity() -> None:
    record = {"type": "entity", "name": "Dana", "entityType": "person", "observations": ["Likes tea", "  Codes  "]}
    entries = parsed(jsonl(record), "server-memory")
    assert [e.memory.content for e in entries] == ["Dana: Likes tea", "Dana: Codes"]
    for entry in entries:
        assert entry.user is None
        assert entry.memory.role == "fact"
        assert entry.memory.tags == ["dana", "person"]
        assert entry.memory.session_id == SERVER_MEMORY_SESSION
        assert entry.memory.metadata == {"imported_from": "server-memory", "entity": "Dana", "entity_type": "person"}
    assert len({e.memory.id for e in entries}) == 2


def test_an_entity_without_observations_becomes_one_fact_saying_what_it_is() -> None:
    [typed] = parsed(jsonl({"type": "entity", "name": "PostgreSQL", "entityType": "technology"}), "server-memory")
    assert typed.memory.content == "PostgreSQL is a technology."
    [untyped] = parsed(jsonl({"type": "entity", "name": "X", "entityType": " ", "observations": []}), "server-memory")
    assert untyped.memory.content == "X is a known entity."
    assert untyped.memory.tags == ["x"]
    assert "entity_type" not in untyped.memory.metadata


def test_a_relation_becomes_a_fact_in_words_tagged_with_both_ends() -> None:
    record = {"type": "relation", "from": "Dana", "to": "Acme", "relationType": "works_at"}
    [entry] = parsed(jsonl(record), "server-memory")
    assert entry.memory.content == "Dana works at Acme"
    assert entry.memory.tags == ["dana", "acme", "relation"]
    assert entry.memory.metadata == {
        "imported_from": "server-memory",
        "from": "Dana",
        "to": "Acme",
        "relation_type": "works_at",
    }


def test_a_very_long_entity_name_is_not_a_tag_but_stays_in_the_text() -> None:
    name = "n" * 65
    [entry] = parsed(jsonl({"type": "entity", "name": name, "entityType": "t", "observations": ["o"]}), "server-memory")
    assert entry.memory.tags == ["t"]
    assert entry.memory.content == f"{name}: o"


def test_the_same_server_memory_file_always_yields_the_same_ids() -> None:
    text = (FIXTURES / "server-memory.jsonl").read_text()
    first = [e.memory.id for e in read(text, "server-memory") if isinstance(e, Parsed)]
    again = [e.memory.id for e in read(text, "server-memory") if isinstance(e, Parsed)]
    assert first == again
    assert len(set(first)) == len(first)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"type": "entity", "name": "", "observations": ["x"]}, "entity without a name"),
        ({"type": "entity", "name": "A", "observations": "not a list"}, "observations that are not a list"),
        ({"type": "entity", "name": "A", "observations": ["ok", 3, " "]}, "an observation of 'A' is not text"),
        ({"type": "relation", "from": "A", "to": "B"}, "relation without from, to and relationType"),
        ({"type": "relation", "from": "A", "to": " ", "relationType": "r"}, "relation without"),
        ({"type": "note"}, "unknown record type 'note'"),
        ({"name": "A"}, "unknown record type 'None'"),
    ],
)
def test_bad_server_memory_records_are_skipped_with_the_reason(record: dict[str, object], reason: str) -> None:
    reasons = [s.reason for s in skipped(jsonl(record), "server-memory")]
    assert reasons and all(reason in r for r in reasons), reasons


def test_the_server_memory_fixture_reads_into_facts_and_reports_its_bad_lines() -> None:
    entries = list(read((FIXTURES / "server-memory.jsonl").read_text(), "server-memory"))
    facts = [e for e in entries if isinstance(e, Parsed)]
    assert len(facts) == 3 + 2 + 2 + 1 + 3  # observations, one bare entity, relations
    assert "Dana_Whitfield works at Acme Robotics" in [f.memory.content for f in facts]
    assert [(s.line, s.reason.split(" (")[0]) for s in entries if isinstance(s, Skipped)] == [
        (8, "entity without a name or with observations that are not a list"),
        (9, "not JSON"),
    ]


# mem0


def test_a_mem0_item_becomes_a_fact_with_its_id_and_scope_in_metadata() -> None:
    item = {
        "id": "abc",
        "memory": "Is vegetarian",
        "user_id": "alex",
        "agent_id": "chef",
        "run_id": "dinner",
        "hash": "h",
        "metadata": {"source": "chat"},
        "categories": ["Food", 3, "x" * 65],
        "created_at": "2024-07-20T01:25:44-07:00",
        "updated_at": "2024-07-22T00:00:00Z",
    }
    [entry] = parsed(json.dumps([item]), "mem0")
    memory = entry.memory
    assert (entry.line, entry.user) == (1, None)
    assert (memory.id, memory.content, memory.role) == ("abc", "Is vegetarian", "fact")
    assert memory.tags == ["food"]
    assert memory.session_id == "dinner"
    assert memory.created_at == "2024-07-20T01:25:44-07:00"
    assert memory.metadata == {
        "source": "chat",
        "imported_from": "mem0",
        "user_id": "alex",
        "agent_id": "chef",
        "run_id": "dinner",
        "updated_at": "2024-07-22T00:00:00Z",
        "hash": "h",
    }


def test_a_bare_mem0_item_gets_the_import_session_and_no_id() -> None:
    [entry] = parsed('{"results": [{"memory": "m", "id": 5, "updated_at": "2024-01-01"}]}', "mem0")
    assert entry.memory.session_id == MEM0_SESSION
    assert entry.memory.id is None
    assert entry.memory.tags == []
    assert entry.memory.created_at == "2024-01-01"
    assert entry.memory.metadata == {"imported_from": "mem0", "updated_at": "2024-01-01"}


def test_a_mem0_list_and_a_results_object_read_the_same() -> None:
    items = [{"id": "1", "memory": "one"}, {"id": "2", "memory": "two"}]
    as_list = [e.memory for e in parsed(json.dumps(items), "mem0")]
    as_results = [e.memory for e in parsed(json.dumps({"results": items}), "mem0")]
    as_memories = [e.memory for e in parsed(json.dumps({"memories": items}), "mem0")]
    assert as_list == as_results == as_memories
    assert [m.content for m in as_list] == ["one", "two"]


def test_mem0_items_without_memory_text_are_skipped_by_position() -> None:
    text = json.dumps([{"memory": "ok"}, {"memory": 3}, "text", {"id": "x"}])
    assert [(s.line, s.reason) for s in skipped(text, "mem0")] == [
        (2, "item has no 'memory' text"),
        (3, "item has no 'memory' text"),
        (4, "item has no 'memory' text"),
    ]


def test_the_mem0_fixture_reads_three_memories_and_skips_the_bad_one() -> None:
    entries = list(read((FIXTURES / "mem0.json").read_text(), "mem0"))
    assert [e.memory.content for e in entries if isinstance(e, Parsed)] == [
        "Is vegetarian and allergic to peanuts",
        "Planning a trip to Lisbon in October",
        "Prefers window seats on long flights",
    ]
    assert [(s.line, s.reason) for s in entries if isinstance(s, Skipped)] == [(4, "item has no 'memory' text")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[{"memory": "x"}', "not valid JSON (line 1"),
        ('{"items": []}', "neither"),
        ('{"results": {"memory": "x"}}', "neither"),
        ('"text"', "neither"),
    ],
)
def test_a_mem0_file_of_the_wrong_shape_is_rejected_saying_what_is_expected(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(")):
        list(read(text, "mem0"))


# count


def test_count_is_the_number_of_lines_for_line_formats_and_unknown_for_mem0() -> None:
    text = jsonl({"content": "a"}, {"content": "b"}) + "\n"
    assert count(text, "agent-memory") == 3
    assert count(text, "server-memory") == 3
    assert count("", "agent-memory") == 0
    assert count('[{"memory": "x"}]', "mem0") is None
