"""Ranking functions: keyword queries, rank fusion, length and recency factors, token budgets."""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Collection

import pytest

from agent_memory.recall.score import (
    LENGTH_REFERENCE,
    RECENCY_WEIGHT,
    RRF_K,
    WEIGHTS,
    Ranking,
    asking_prior,
    estimate_tokens,
    fuse,
    length_prior,
    lift_named_speakers,
    lift_sessions,
    pack,
    recency_boost,
    rrf,
    speaker,
    without_names,
)
from agent_memory.recall.terms import STOPWORDS, keyword_terms, search_terms
from agent_memory.store.sqlite import fts_match


def fts_query(text: str, ignore: Collection[str] = ()) -> str | None:
    """Return the FTS5 expression keyword search runs for a query (None: nothing to search for)."""
    terms = search_terms(text, ignore)
    return fts_match(terms) if terms else None


# keyword_terms / fts_query


def test_keyword_terms_drop_stopwords_and_keep_topic_words_in_order() -> None:
    assert keyword_terms("What did I say about the Lisbon trip?") == ["lisbon", "trip"]


def test_keyword_terms_are_lower_cased_and_distinct() -> None:
    assert keyword_terms("Rust rust RUST cargo Cargo") == ["rust", "cargo"]


def test_a_query_of_only_stopwords_keeps_its_words() -> None:
    assert keyword_terms("what did you say") == ["what", "did", "you", "say"]


def test_a_query_without_words_has_no_terms_and_no_match_expression() -> None:
    assert keyword_terms("?! ... --") == []
    assert fts_query("?! ... --") is None
    assert fts_query("") is None


def test_ignore_words_are_dropped_like_stopwords() -> None:
    assert keyword_terms("lisbon trip in october", ignore={"october"}) == ["lisbon", "trip"]
    assert fts_query("lisbon trip in october", ignore={"october"}) == '"lisbon" OR "trip"'


def test_ignoring_every_topic_word_falls_back_to_all_words() -> None:
    assert keyword_terms("the trip", ignore={"trip"}) == ["the", "trip"]


def test_unicode_words_are_terms() -> None:
    assert keyword_terms("Café in München") == ["café", "münchen"]


def test_fts_query_joins_quoted_terms_with_or() -> None:
    assert fts_query("dark mode editor") == '"dark" OR "mode" OR "editor"'


@pytest.mark.parametrize(
    "text",
    ["NEAR(alpha beta) AND gamma", "alpha OR NOT beta", "col:value*", '"unbalanced quote', "a^b -c +d", "x' OR 1=1 --"],
)
def test_fts_operators_and_quotes_in_user_text_lose_their_meaning(text: str) -> None:
    match = fts_query(text)
    assert match is not None
    # Every term is a quoted literal; operators survive only as the words between them.
    for part in match.split(" OR "):
        assert part.startswith('"') and part.endswith('"'), match
    db = sqlite3.connect(":memory:")
    db.execute("CREATE VIRTUAL TABLE t USING fts5(content)")
    db.execute("INSERT INTO t VALUES ('alpha beta gamma near not and value')")
    db.execute("SELECT rowid FROM t WHERE t MATCH ?", (match,)).fetchall()  # a valid expression: no error


def test_double_quotes_in_user_text_never_reach_a_term() -> None:
    assert keyword_terms('say "hello" to ""dana') == ["hello", "dana"]
    assert fts_query('"hello" ""') == '"hello"'


def test_fts_query_caps_the_expression_at_32_terms() -> None:
    words = [f"topic{n}" for n in range(50)]
    match = fts_query(" ".join(words))
    assert match is not None
    assert match.split(" OR ") == [f'"{w}"' for w in words[:32]]


def test_stopwords_are_lower_case_single_words() -> None:
    assert all(w == w.lower() and w.isalpha() for w in STOPWORDS)


# rrf


def test_rrf_scores_an_item_by_its_reciprocal_ranks_summed_over_rankings() -> None:
    fused = rrf([["a", "b"], ["b", "c"]])
    assert fused["a"] == pytest.approx(1 / (RRF_K + 1))
    assert fused["b"] == pytest.approx(1 / (RRF_K + 2) + 1 / (RRF_K + 1))
    assert fused["c"] == pytest.approx(1 / (RRF_K + 2))
    assert max(fused, key=fused.__getitem__) == "b"


def test_rrf_weights_scale_each_rankings_contribution() -> None:
    fused = rrf([["a"], ["b"]], weights=[2.0, 0.5])
    assert fused["a"] == pytest.approx(2.0 / (RRF_K + 1))
    assert fused["b"] == pytest.approx(0.5 / (RRF_K + 1))


def test_rrf_with_a_smaller_k_separates_ranks_more() -> None:
    assert rrf([["a", "b"]], k=0) == {"a": pytest.approx(1.0), "b": pytest.approx(0.5)}


def test_rrf_of_no_rankings_is_empty() -> None:
    assert rrf([]) == {}
    assert rrf([[], []]) == {}


def test_rrf_rejects_weights_that_do_not_match_the_rankings() -> None:
    with pytest.raises(ValueError):
        rrf([["a"], ["b"]], weights=[1.0])


# length_prior


@pytest.mark.parametrize("chars", [0, 1, 100, LENGTH_REFERENCE])
def test_memories_up_to_the_reference_length_get_no_penalty(chars: int) -> None:
    assert length_prior(chars) == 1.0


def test_memories_longer_than_the_reference_are_penalised_more_the_longer_they_are() -> None:
    factors = [length_prior(n) for n in (LENGTH_REFERENCE + 1, 2_000, 20_000, 200_000)]
    assert all(0.0 < f < 1.0 for f in factors)
    assert factors == sorted(factors, reverse=True)
    assert length_prior(2_000) == pytest.approx(0.81, abs=0.01)
    assert length_prior(20_000) == pytest.approx(0.58, abs=0.01)


def test_length_prior_follows_its_reference_and_exponent() -> None:
    assert length_prior(400, reference=100, exponent=0.5) == pytest.approx(0.5)
    assert length_prior(100, reference=100, exponent=0.5) == 1.0


# recency_boost


def test_recency_boost_fades_with_age_and_stays_within_its_weight() -> None:
    ages = [0.0, 1.0, 7.0, 30.0, 365.0, 10_000.0]
    boosts = [recency_boost(a) for a in ages]
    assert boosts == sorted(boosts, reverse=True)
    assert boosts[0] == pytest.approx(RECENCY_WEIGHT)
    assert all(0.0 <= b <= RECENCY_WEIGHT for b in boosts)
    assert recency_boost(30.0) == pytest.approx(RECENCY_WEIGHT / math.e)


def test_a_future_timestamp_counts_as_today() -> None:
    assert recency_boost(-5.0) == recency_boost(0.0)


def test_recency_boost_is_a_small_share_of_what_fusion_gives_never_a_ranking_of_its_own() -> None:
    # Min-max fusion gives a memory at most the sum of the weights; recency only breaks near-ties.
    assert 0 < recency_boost(0.0) <= 0.02 * sum(WEIGHTS.values())


def test_recency_boost_follows_its_half_life_and_weight() -> None:
    assert recency_boost(10.0, half_life_days=10.0, weight=1.0) == pytest.approx(1 / math.e)


# estimate_tokens / pack


@pytest.mark.parametrize(("text", "tokens"), [("", 1), ("abc", 1), ("abcd", 1), ("abcde", 2), ("x" * 400, 100)])
def test_estimate_tokens_counts_about_four_characters_a_token_and_at_least_one(text: str, tokens: int) -> None:
    assert estimate_tokens(text) == tokens


def test_pack_without_a_budget_takes_everything() -> None:
    assert pack(["a" * 1000] * 5, None) == 5


def test_pack_with_a_zero_budget_takes_nothing() -> None:
    assert pack(["a"], 0) == 0


def test_pack_takes_the_leading_texts_that_fit_with_their_overhead() -> None:
    texts = ["x" * 40, "x" * 40, "x" * 40]  # 10 tokens each, 34 with the default overhead
    assert pack(texts, 33) == 0
    assert pack(texts, 34) == 1
    assert pack(texts, 67) == 1
    assert pack(texts, 68) == 2
    assert pack(texts, 102) == 3
    assert pack(texts, 10_000) == 3


def test_pack_stops_at_the_first_text_that_does_not_fit() -> None:
    assert pack(["x" * 400, "x"], 50, overhead=0) == 0


def test_pack_of_nothing_is_zero() -> None:
    assert pack([], 100) == 0
    assert pack([], None) == 0


# speakers


@pytest.mark.parametrize(
    ("content", "who"),
    [
        ("[1:56 pm on 8 May, 2023] Kate: We should go.", "Kate"),
        ("Mary Ann: hello", "Mary Ann"),
        ("[2024-05-01] user: lowercase roles are not speakers", None),
        ("Note: the office closes at six", "Note"),
        ("no speaker here", None),
        ("Kate said: hi", None),
    ],
)
def test_a_chat_turn_names_its_speaker_at_its_start(content: str, who: str | None) -> None:
    assert speaker(content) == who


def test_a_query_naming_one_of_two_speakers_lifts_that_speakers_turns() -> None:
    fused = {"a": 0.5, "b": 0.4}
    contents = {"a": "Kate: I love hiking", "b": "Elise: I love hiking too"}
    lifted = lift_named_speakers(fused, "What does Elise love?", contents, lift=0.5)
    assert lifted["b"] > lifted["a"] and lifted["a"] == 0.5


def test_a_query_naming_every_speaker_or_none_changes_nothing() -> None:
    fused = {"a": 0.5, "b": 0.4}
    contents = {"a": "Kate: I love hiking", "b": "Elise: I love hiking too"}
    assert lift_named_speakers(fused, "What do Kate and Elise love?", contents, lift=0.5) == fused
    assert lift_named_speakers(fused, "What do they love?", contents, lift=0.5) == fused
    assert lift_named_speakers(fused, "What does Elise love?", contents, lift=0.0) == fused


# fusion and lifts


def test_min_max_fusion_keeps_the_size_of_a_lead() -> None:
    keyword = Ranking("keyword", [("a", 9.0), ("b", 1.0), ("c", 0.5)])
    vector = Ranking("vector", [("b", 0.61), ("a", 0.60), ("c", 0.20)])
    fused = fuse([keyword, vector], "minmax")
    # a leads keyword by far and trails vector by a hair: it wins; c is last in both and scores 0.
    assert fused["a"] > fused["b"] > fused["c"] == 0.0


def test_rank_fusion_weighs_each_search_by_its_source() -> None:
    keyword = Ranking("keyword", [("a", 9.0), ("b", 1.0)])
    vector = Ranking("vector", [("b", 0.6), ("a", 0.5)])
    fused = fuse([keyword, vector], "rrf")
    assert (fused["a"] > fused["b"]) == (WEIGHTS["keyword"] > WEIGHTS["vector"])


def test_a_memory_is_lifted_by_the_best_candidate_of_its_session() -> None:
    scores = {"a": 1.0, "b": 0.2, "c": 0.3}
    lifted = lift_sessions(scores, {"a": "s1", "b": "s1", "c": "s2"}, share=0.2)
    assert lifted["b"] == pytest.approx(0.4) and lifted["c"] == pytest.approx(0.36)
    assert lifted["b"] > lifted["c"]  # b shares a session with the best match


def test_a_query_about_a_speaker_is_embedded_without_the_name() -> None:
    assert without_names("What is Elise's favorite book?", {"Elise"}) == "What is favorite book?"
    assert without_names("Elise", {"Elise"}) == "Elise"  # nothing else to embed: keep the query


@pytest.mark.parametrize(
    "text",
    ["[1:56 pm on 8 May, 2023] Kate: What about you?", "Elise: Have you been to Italy? Did you like it?", "Hey?"],
)
def test_a_short_memory_that_only_asks_is_lowered(text: str) -> None:
    assert asking_prior(text) < 0.5


@pytest.mark.parametrize(
    "text",
    [
        "Kate: I moved to Porto last week.",
        "Kate: We moved to Porto. Have you been?",
        "I adopted a puppy named Max, a golden retriever from the shelter, and he chews everything: what should I feed "
        "him so that his stomach settles and he stops eating my shoes?",
        "What about you",
    ],
)
def test_a_statement_or_a_long_question_keeps_its_score(text: str) -> None:
    assert asking_prior(text) == 1.0
