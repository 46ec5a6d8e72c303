from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yunrong.parties.risk import (
    LEVEL_BANDS,
    MAX_SCORE,
    QUESTIONS,
    QuestionnaireError,
    RiskLevel,
    level_for,
    max_product_risk,
    score_answers,
)

LEVELS = list(RiskLevel)


def _extreme(pick_max: bool) -> dict[str, str]:
    chosen = {}
    for question in QUESTIONS:
        option = (max if pick_max else min)(question.options, key=lambda o: o.score)
        chosen[question.key] = option.key
    return chosen


def test_questionnaire_shape() -> None:
    assert len(QUESTIONS) == 10
    assert len({q.key for q in QUESTIONS}) == len(QUESTIONS)
    for question in QUESTIONS:
        assert question.text_en
        assert question.text_zh
        assert len({o.key for o in question.options}) == len(question.options) >= 3
        assert min(o.score for o in question.options) == 0
    assert MAX_SCORE == 100


def test_all_minimum_answers_give_c1_with_zero() -> None:
    assessment = score_answers(_extreme(pick_max=False))
    assert assessment.score == 0
    assert assessment.level is RiskLevel.C1
    assert [key for key, _, _ in assessment.breakdown] == [q.key for q in QUESTIONS]


def test_all_maximum_answers_give_c5_with_100() -> None:
    assessment = score_answers(_extreme(pick_max=True))
    assert assessment.score == 100
    assert assessment.level is RiskLevel.C5
    assert sum(points for _, _, points in assessment.breakdown) == 100


def test_every_problem_is_listed_at_once() -> None:
    answers = _extreme(pick_max=True)
    del answers["age"]
    del answers["horizon"]
    answers["objective"] = "get_rich"
    answers["favourite_colour"] = "red"
    with pytest.raises(QuestionnaireError) as caught:
        score_answers(answers)
    assert caught.value.problems == [
        ("age", "not answered"),
        ("horizon", "not answered"),
        ("objective", "unknown option 'get_rich'"),
        ("favourite_colour", "unknown question"),
    ]
    assert isinstance(caught.value, ValueError)


def test_empty_answers_list_every_question() -> None:
    with pytest.raises(QuestionnaireError) as caught:
        score_answers({})
    assert [key for key, _ in caught.value.problems] == [q.key for q in QUESTIONS]


def test_bands_cover_0_to_100_without_gaps() -> None:
    covered = [s for low, high in LEVEL_BANDS.values() for s in range(low, high + 1)]
    assert covered == list(range(101))
    assert level_for(20) is RiskLevel.C1
    assert level_for(21) is RiskLevel.C2
    assert level_for(81) is RiskLevel.C5
    with pytest.raises(ValueError, match="outside"):
        level_for(101)


def test_max_product_risk_maps_c_to_r() -> None:
    assert [max_product_risk(level) for level in RiskLevel] == [1, 2, 3, 4, 5]


answer_sets = st.fixed_dictionaries({q.key: st.sampled_from([o.key for o in q.options]) for q in QUESTIONS})


@given(answer_sets, answer_sets)
def test_score_in_range_and_level_monotone(a: dict[str, str], b: dict[str, str]) -> None:
    first, second = score_answers(a), score_answers(b)
    for assessment in (first, second):
        assert 0 <= assessment.score <= 100
        low, high = LEVEL_BANDS[assessment.level]
        assert low <= assessment.score <= high
    if first.score <= second.score:
        assert LEVELS.index(first.level) <= LEVELS.index(second.level)
    else:
        assert LEVELS.index(first.level) >= LEVELS.index(second.level)


@given(st.integers(0, 100), st.integers(0, 100))
def test_level_for_is_monotone(x: int, y: int) -> None:
    if x <= y:
        assert LEVELS.index(level_for(x)) <= LEVELS.index(level_for(y))
