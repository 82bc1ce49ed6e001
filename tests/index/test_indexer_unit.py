"""Vector table names: stable for a model and layout, distinct when either changes."""

from __future__ import annotations

import re

from agent_memory.embedding import chunking
from agent_memory.index.indexer import table_name

MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def test_the_table_name_is_the_same_every_time_for_a_model_and_dimension() -> None:
    assert table_name(MODEL, 384) == table_name(MODEL, 384)


def test_the_table_name_says_the_model_dimension_and_chunking_version() -> None:
    name = table_name(MODEL, 384)
    assert name.startswith("memories_sentence_transformers_all_minilm_l6_v2_")
    assert name.endswith(f"_384_c{chunking.VERSION}")


def test_a_different_dimension_gets_a_different_table() -> None:
    assert table_name(MODEL, 384) != table_name(MODEL, 768)


def test_models_whose_names_differ_only_in_case_or_punctuation_get_different_tables() -> None:
    names = {table_name(m, 384) for m in (MODEL, MODEL.upper(), MODEL.replace("-", "_"), MODEL + "/")}
    assert len(names) == 4


def test_models_sharing_a_long_name_suffix_get_different_tables() -> None:
    suffix = "x" * 60
    assert table_name("org-a/" + suffix, 384) != table_name("org-b/" + suffix, 384)


def test_a_table_name_is_a_short_plain_identifier_whatever_the_model_name() -> None:
    for model in (MODEL, "/models/My Model (v2)!", "ü" * 200, "", "../../etc/passwd"):
        name = table_name(model, 64)
        assert re.fullmatch(r"memories_[a-z0-9_]*_[0-9a-f]{8}_64_c\d+", name), name
        assert len(name) <= 80
