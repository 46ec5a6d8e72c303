"""The pure matcher: a list against itself matches; every removal, repeat and 1-fen change is reported
exactly, and nothing else is."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from yunrong.custody.reconciliation import (
    DUPLICATE,
    BankLine,
    ItemKind,
    LedgerLine,
    counts,
    match,
)

DAY = date(2026, 11, 26)


@st.composite
def books(draw: st.DrawFn) -> list[LedgerLine]:
    n = draw(st.integers(min_value=0, max_value=25))
    amounts = draw(st.lists(st.integers(min_value=1, max_value=10**12), min_size=n, max_size=n))
    directions = draw(st.lists(st.sampled_from(["credit", "debit"]), min_size=n, max_size=n))
    ages = draw(st.lists(st.integers(min_value=0, max_value=5), min_size=n, max_size=n))
    return [
        LedgerLine(
            f"JE-{i:06d}", f"BI-{i:06d}", directions[i], amounts[i], "CNY", DAY - timedelta(days=ages[i])
        )
        for i in range(n)
    ]


def as_bank(line: LedgerLine, **changes: Any) -> BankLine:
    bank = BankLine(
        bank_reference=f"SIM-{line.instruction_ref}",
        instruction_ref=line.instruction_ref,
        direction=line.direction,
        amount=line.amount,
        currency=line.currency,
        booked_on=line.value_date,
        value_date=line.value_date,
    )
    return replace(bank, **changes)


@given(books())
def test_a_book_against_itself_is_all_matched(ledger: list[LedgerLine]) -> None:
    items = match([as_bank(line) for line in ledger], ledger, statement_date=DAY)
    assert [i.kind for i in items] == [ItemKind.MATCHED] * len(ledger)
    assert counts(items)["breaks"] == 0
    assert all(i.age_days == (DAY - i.ledger.value_date).days for i in items if i.ledger)


@given(books(), st.data())
def test_removed_repeated_and_perturbed_lines_are_reported_exactly(
    ledger: list[LedgerLine], data: st.DataObject
) -> None:
    indices = list(range(len(ledger)))
    missing = set(data.draw(st.lists(st.sampled_from(indices), unique=True), "missing") if indices else [])
    rest = [i for i in indices if i not in missing]
    perturbed = set(data.draw(st.lists(st.sampled_from(rest), unique=True), "perturbed") if rest else [])
    repeated = set(data.draw(st.lists(st.sampled_from(rest), unique=True), "repeated") if rest else [])
    bank: list[BankLine] = []
    for i in rest:
        line = ledger[i]
        if i in perturbed:
            bank.append(as_bank(line, amount=line.amount + data.draw(st.sampled_from([1, -1]), "fen") or 2))
        else:
            bank.append(as_bank(line))
        if i in repeated:
            bank.append(as_bank(line, bank_reference=f"SIM-DUP-{i}"))
    order = data.draw(st.permutations(range(len(bank))), "order")
    items = match([bank[k] for k in order], ledger, statement_date=DAY)

    by_kind: dict[ItemKind, set[str | None]] = {kind: set() for kind in ItemKind}
    for item in items:
        by_kind[item.kind].add(item.instruction_ref)
    refs = {i: ledger[i].instruction_ref for i in indices}
    assert by_kind[ItemKind.LEDGER_ONLY] == {refs[i] for i in missing}
    assert by_kind[ItemKind.BANK_ONLY] == {refs[i] for i in repeated}
    assert by_kind[ItemKind.MATCHED] == {refs[i] for i in rest if i not in perturbed} | {
        refs[i] for i in repeated
    }
    tally = counts(items)
    assert tally["ledger_only"] == len(missing)
    assert tally["bank_only"] == tally["duplicates"] == len(repeated)
    duplicate_refs = {i.instruction_ref for i in items if i.note == DUPLICATE}
    assert duplicate_refs == {refs[i] for i in repeated}
    mismatched = {refs[i] for i in perturbed if i not in repeated}
    assert by_kind[ItemKind.AMOUNT_MISMATCH] == mismatched
    assert tally["matched"] + tally["amount_mismatch"] == len(rest)


def test_a_repeat_of_a_1_fen_off_line_is_still_the_duplicate() -> None:
    ledger = [LedgerLine("JE-1", "BI-1", "credit", 10_000, "CNY", DAY)]
    items = match(
        [as_bank(ledger[0], amount=10_001, bank_reference="B2"), as_bank(ledger[0])],
        ledger,
        statement_date=DAY,
    )
    assert [(i.kind, i.note) for i in items] == [(ItemKind.BANK_ONLY, DUPLICATE), (ItemKind.MATCHED, None)]


def test_a_lone_altered_line_is_an_amount_mismatch_naming_the_difference() -> None:
    ledger = [LedgerLine("JE-1", "BI-1", "debit", 10_000, "CNY", DAY)]
    (item,) = match([as_bank(ledger[0], amount=9_999)], ledger, statement_date=DAY)
    assert item.kind is ItemKind.AMOUNT_MISMATCH
    assert item.note == "bank -1 minor units"
    (flipped,) = match([as_bank(ledger[0], direction="credit")], ledger, statement_date=DAY)
    assert (flipped.kind, flipped.note) == (ItemKind.AMOUNT_MISMATCH, "direction differs")


def test_ledger_postings_after_the_cutoff_are_in_transit_not_breaks() -> None:
    today = LedgerLine("JE-1", "BI-1", "credit", 500, "CNY", DAY)
    tomorrow = LedgerLine("JE-2", "BI-2", "credit", 700, "CNY", DAY + timedelta(days=1))
    items = match([], [today, tomorrow], statement_date=DAY)
    assert [(i.kind, i.instruction_ref, i.age_days) for i in items] == [(ItemKind.LEDGER_ONLY, "BI-1", 0)]
    # The bank booked it on D while the ledger posted just after midnight: still a match.
    late_ledger = match([as_bank(tomorrow, booked_on=DAY, value_date=DAY)], [tomorrow], statement_date=DAY)
    assert late_ledger[0].kind is ItemKind.MATCHED
    assert late_ledger[0].note == "ledger posted 1 day after the bank"


def test_ages_count_from_the_earliest_date_and_unreferenced_lines_stay_apart() -> None:
    old = LedgerLine("JE-1", "BI-1", "credit", 500, "CNY", DAY - timedelta(days=3))
    stray = BankLine("SIM-X", None, "credit", 500, "CNY", DAY, DAY)
    manual = LedgerLine("JE-2", None, "debit", 100, "CNY", DAY - timedelta(days=1))
    items = match([stray], [old, manual], statement_date=DAY)
    assert [(i.kind, i.age_days, i.note) for i in items] == [
        (ItemKind.BANK_ONLY, 0, "no end-to-end reference"),
        (ItemKind.LEDGER_ONLY, 3, None),
        (ItemKind.LEDGER_ONLY, 1, "no bank instruction"),
    ]
    late = match([as_bank(old, booked_on=DAY, value_date=DAY)], [old], statement_date=DAY)
    assert (late[0].kind, late[0].age_days, late[0].note) == (
        ItemKind.MATCHED,
        3,
        "bank booked 3 days after the ledger",
    )
