from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from yunrong.parties.codes import (
    INDUSTRY_DIVISIONS,
    INDUSTRY_SECTIONS,
    PROVINCES,
    USCC_CHARSET,
    IndustryCode,
    birth_date_of,
    make_resident_id,
    make_uscc,
    parse_industry,
    region_name,
    resident_id_check_char,
    uscc_check_char,
    validate_region,
    validate_resident_id,
    validate_uscc,
)

TODAY = datetime.date(2025, 6, 30)

# --- unified social credit code ---------------------------------------------------------------

uscc_bodies = st.builds(
    lambda head, region, tail: head + region + tail,
    st.text(alphabet=USCC_CHARSET, min_size=2, max_size=2),
    st.text(alphabet="0123456789", min_size=6, max_size=6),
    st.text(alphabet=USCC_CHARSET, min_size=9, max_size=9),
)


def test_known_credit_code_is_valid_and_its_check_character_computes() -> None:
    assert validate_uscc("91350100M000100Y43") == []
    assert uscc_check_char("91350100M000100Y4") == "3"
    assert make_uscc("91350100M000100Y4") == "91350100M000100Y43"


def test_credit_code_problems_are_reported() -> None:
    assert validate_uscc("91350100M000100Y44") == ["check character should be 3"]
    assert "must be 18 characters (got 17)" in validate_uscc("91350100M000100Y4")
    bad_chars = validate_uscc("91350100M00010OY43")
    assert any("not allowed" in p and "'O'" in p for p in bad_chars)
    assert any("not allowed" in p for p in validate_uscc("91350100m000100Y43"))
    assert any("positions 3–8" in p for p in validate_uscc(make_uscc("9135A100M000100Y4")))
    # nothing is normalised: surrounding spaces are the caller's job
    assert validate_uscc(" 91350100M000100Y43") != []


@given(uscc_bodies)
def test_generated_credit_codes_validate(body: str) -> None:
    code = make_uscc(body)
    assert len(code) == 18
    assert validate_uscc(code) == []


@given(uscc_bodies, st.integers(0, 17), st.integers(1, 30))
def test_every_single_substitution_in_a_credit_code_is_detected(body: str, position: int, shift: int) -> None:
    code = make_uscc(body)
    if 2 <= position <= 7:  # region digits: substitute another digit
        replacement = str((int(code[position]) + shift % 9 + 1) % 10)
    else:
        replacement = USCC_CHARSET[(USCC_CHARSET.index(code[position]) + shift) % 31]
    assert replacement != code[position]
    changed = code[:position] + replacement + code[position + 1 :]
    assert validate_uscc(changed) != []


def test_all_single_substitutions_of_one_credit_code_fail_exhaustively() -> None:
    code = "91350100M000100Y43"
    for position, original in enumerate(code):
        for replacement in USCC_CHARSET:
            if replacement != original:
                assert validate_uscc(code[:position] + replacement + code[position + 1 :]) != []


# --- resident identity number ----------------------------------------------------------------


@st.composite
def resident_bodies(draw: st.DrawFn) -> str:
    province = draw(st.sampled_from(sorted(PROVINCES)))
    rest_of_region = draw(st.text(alphabet="0123456789", min_size=4, max_size=4))
    born = draw(st.dates(min_value=datetime.date(1900, 1, 1), max_value=TODAY))
    sequence = draw(st.text(alphabet="0123456789", min_size=3, max_size=3))
    return province + rest_of_region + born.strftime("%Y%m%d") + sequence


def test_known_resident_id_is_valid() -> None:
    number = "11010519491231002X"
    assert validate_resident_id(number, today=TODAY) == []
    assert resident_id_check_char(number[:17]) == "X"
    assert birth_date_of(number) == datetime.date(1949, 12, 31)


def test_resident_id_problems_are_all_reported() -> None:
    assert validate_resident_id("11010519491231002", today=TODAY) == ["must be 18 characters (got 17)"]
    assert validate_resident_id("11010519491231002x", today=TODAY) == [
        "the last character must be a digit or X"
    ]
    assert validate_resident_id("110105194912310021", today=TODAY) == ["check character should be X"]
    unknown_province = make_resident_id("99010519491231002")
    assert validate_resident_id(unknown_province, today=TODAY) == ["unknown province code 99"]
    not_a_date = make_resident_id("11010519490230002")
    assert any("real birth date" in p for p in validate_resident_id(not_a_date, today=TODAY))
    future = make_resident_id("11010520250701002")
    assert validate_resident_id(future, today=TODAY) == ["birth date 2025-07-01 is in the future"]
    assert validate_resident_id(make_resident_id("11010520250630002"), today=TODAY) == []
    too_old = make_resident_id("11010518991231002")
    assert validate_resident_id(too_old, today=TODAY) == ["birth date 1899-12-31 is before 1900-01-01"]
    assert validate_resident_id(make_resident_id("11010519000101002"), today=TODAY) == []


def test_taiwan_residence_permit_prefix_is_accepted() -> None:
    assert validate_resident_id(make_resident_id("83000019900101002"), today=TODAY) == []


@given(resident_bodies())
def test_generated_resident_ids_validate(body: str) -> None:
    assert validate_resident_id(make_resident_id(body), today=TODAY) == []


@given(resident_bodies(), st.integers(0, 17), st.integers(1, 10))
def test_every_single_substitution_in_a_resident_id_is_detected(body: str, position: int, shift: int) -> None:
    number = make_resident_id(body)
    alphabet = "0123456789X" if position == 17 else "0123456789"
    replacement = alphabet[(alphabet.index(number[position]) + shift) % len(alphabet)]
    if replacement == number[position]:
        replacement = alphabet[(alphabet.index(number[position]) + 1) % len(alphabet)]
    changed = number[:position] + replacement + number[position + 1 :]
    assert validate_resident_id(changed, today=TODAY) != []


def test_mod_11_check_detects_every_single_digit_substitution() -> None:
    # The sum changes by weight * delta with weight and delta in 1..10; 11 is prime, so never by 0 mod 11.
    number = "11010519491231002X"
    for position in range(17):
        for digit in "0123456789":
            if digit != number[position]:
                body = number[:position] + digit + number[position + 1 : 17]
                assert resident_id_check_char(body) != "X"


# --- industry ---------------------------------------------------------------------------------


def test_industry_tables_are_complete() -> None:
    assert sorted(INDUSTRY_SECTIONS) == list("ABCDEFGHIJKLMNOPQRST")
    assert sorted(INDUSTRY_DIVISIONS) == [f"{n:02d}" for n in range(1, 98)]
    ranges = {"A": (1, 5), "B": (6, 12), "C": (13, 43), "D": (44, 46), "E": (47, 50), "F": (51, 52)}
    ranges |= {"G": (53, 60), "H": (61, 62), "I": (63, 65), "J": (66, 69), "K": (70, 70), "L": (71, 72)}
    ranges |= {"M": (73, 75), "N": (76, 79), "O": (80, 82), "P": (83, 83), "Q": (84, 85), "R": (86, 90)}
    ranges |= {"S": (91, 96), "T": (97, 97)}
    for section, (low, high) in ranges.items():
        assert [d for d, v in INDUSTRY_DIVISIONS.items() if v[0] == section] == [
            f"{n:02d}" for n in range(low, high + 1)
        ]
    assert INDUSTRY_DIVISIONS["65"][1] == "软件和信息技术服务业"
    assert INDUSTRY_DIVISIONS["70"][1] == "房地产业"


@pytest.mark.parametrize("division", sorted(INDUSTRY_DIVISIONS))
def test_every_division_parses_under_its_section(division: str) -> None:
    section = INDUSTRY_DIVISIONS[division][0]
    for digits in (division, division + "1", division + "11"):
        parsed = parse_industry(section + digits)
        assert parsed == IndustryCode(section, digits)
        assert parsed.division == division
        assert parsed.code == section + digits


def test_industry_examples() -> None:
    code = parse_industry("C1311")
    assert (code.section, code.digits, code.division, code.code) == ("C", "1311", "13", "C1311")
    assert parse_industry("K7010").division == "70"
    assert parse_industry("C131").code == "C131"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("A13", "division 13 belongs to section C, not A"),
        ("Z01", "unknown industry section 'Z'"),
        ("C1", "2, 3 or 4 digits"),
        ("C13111", "2, 3 or 4 digits"),
        ("c13", "unknown industry section 'c'"),
        ("C1a", "2, 3 or 4 digits"),
        ("A98", "unknown industry division 98"),
        ("", "empty"),
    ],
)
def test_bad_industry_codes_fail_clearly(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_industry(text)


def test_industry_code_refuses_invalid_construction() -> None:
    with pytest.raises(ValueError, match="belongs to section"):
        IndustryCode("A", "13")


# --- regions ----------------------------------------------------------------------------------


def test_provinces_are_the_34_provincial_divisions() -> None:
    assert len(PROVINCES) == 34
    assert PROVINCES["11"] == ("北京市", "Beijing")
    assert PROVINCES["65"][1] == "Xinjiang"
    assert {"71", "81", "82"} <= set(PROVINCES)
    for prefix, (zh, _) in PROVINCES.items():
        assert region_name(prefix + "0000") == zh


def test_regions_are_checked_against_the_table() -> None:
    assert validate_region("110105") == []
    assert region_name("110105") == "朝阳区"
    assert validate_region("330113") == []  # 临平区, created 2021
    assert region_name("130502") == "襄都区"  # renamed 2020
    assert validate_region("330103") == ["unknown administrative division code 330103"]  # 下城区, merged 2021
    assert validate_region("110199") == ["unknown administrative division code 110199"]
    assert validate_region("990101") == ["unknown province code 99"]
    assert validate_region("11010") == ["must be 6 digits (got '11010')"]
    assert validate_region("11010A") != []
    assert region_name("999999") is None
