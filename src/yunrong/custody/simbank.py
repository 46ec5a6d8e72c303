"""A simulated custodian bank that behaves like a real one.

It keeps its own book of what moved through the escrow account (``simbank_transactions``) — kept
apart from the platform's ledger, so that reconciling the two means something. It answers each
instruction later, through a signed callback: after a random delay (so answers arrive out of
order), sometimes twice, and sometimes with a failure. Its behaviour is seeded by the
instruction's reference, so a run can be replayed.

This is the edge of the world we cannot reach from here; a real bank would sit behind the same
port (``BankPort``): receive an instruction, later call back.
"""

from __future__ import annotations

import hashlib
import random
import uuid
from datetime import date, datetime, timedelta
from typing import Protocol

from sqlalchemy import BigInteger, Date, Integer, String, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, Session, mapped_column

from yunrong.config import Settings
from yunrong.custody.model import InstructionKind
from yunrong.db import GUID, Base, UTCDateTime
from yunrong.identity.model import Actor, Context
from yunrong.kit.clock import Clock, business_date
from yunrong.kit.ids import uuid7
from yunrong.messaging.service import emit

INBOUND = {InstructionKind.DEPOSIT.value, InstructionKind.COLLECTION.value}

FAILURE_REASONS = (
    "beneficiary account closed",
    "rejected by the beneficiary's bank",
    "name does not match the account holder",
)


class SimBankTransaction(Base):
    """The simulated bank's own book of the escrow account."""

    __tablename__ = "simbank_transactions"

    id: Mapped[uuid.UUID] = mapped_column(GUID, primary_key=True, default=uuid7)
    bank_reference: Mapped[str] = mapped_column(String(40), unique=True)
    instruction_ref: Mapped[str] = mapped_column(String(24), index=True)
    direction: Mapped[str] = mapped_column(String(6))  # "credit" into escrow, "debit" out of it
    amount: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    currency: Mapped[str] = mapped_column(String(3))
    counterparty: Mapped[str] = mapped_column(String(200))
    booked_on: Mapped[date] = mapped_column(Date, index=True)
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime)


class BankPort(Protocol):
    def receive(self, session: Session, instruction: dict[str, object]) -> None:
        """Take an instruction; the answer comes later, by callback."""
        ...


def _rng(settings: Settings, ref: str) -> random.Random:
    seed = hashlib.sha256(f"{settings.secret_key.get_secret_value()}|{ref}".encode()).digest()
    return random.Random(int.from_bytes(seed[:8], "big"))


class SimulatedBank:
    def __init__(self, settings: Settings, clock: Clock) -> None:
        self.settings = settings
        self.clock = clock
        self.ctx = Context(actor=Actor.system("simulated-bank"), clock=clock, request_id="simbank")

    def receive(self, session: Session, instruction: dict[str, object]) -> None:
        ref = str(instruction["instruction_ref"])
        if session.scalar(select(SimBankTransaction.id).where(SimBankTransaction.instruction_ref == ref)):
            return  # the same instruction delivered twice: a real bank deduplicates by reference
        rng = _rng(self.settings, ref)
        fails = rng.random() < self.settings.simbank_failure_rate
        delay = timedelta(seconds=rng.uniform(0.5, max(0.5, self.settings.simbank_max_delay_seconds)))
        booked_at = self.clock.now() + delay
        bank_reference = f"SIM{booked_at:%Y%m%d}{rng.getrandbits(40):012X}"
        if not fails:
            try:
                with session.begin_nested():
                    session.add(
                        SimBankTransaction(
                            bank_reference=bank_reference,
                            instruction_ref=ref,
                            direction="credit" if instruction["kind"] in INBOUND else "debit",
                            amount=int(str(instruction["amount"])),
                            currency=str(instruction["currency"]),
                            counterparty=str(instruction.get("owner") or ""),
                            booked_on=business_date(booked_at, self.settings.timezone),
                            booked_at=booked_at,
                        )
                    )
                    session.flush()
            except IntegrityError:
                return
        callback = {
            "callback_id": uuid.uuid4().hex,
            "instruction_ref": ref,
            "status": "failed" if fails else "confirmed",
            "bank_reference": bank_reference,
            "amount": instruction["amount"],
            "currency": instruction["currency"],
            "booked_at": booked_at.isoformat(),
            "reason": rng.choice(FAILURE_REASONS) if fails else None,
        }
        emit(session, ctx=self.ctx, topic="simbank.callback", payload=callback, deliver_after=delay)
        if rng.random() < self.settings.simbank_duplicate_rate:
            later = delay + timedelta(seconds=rng.uniform(0.5, 5.0))
            emit(session, ctx=self.ctx, topic="simbank.callback", payload=callback, deliver_after=later)

    def book(self, session: Session, on: date) -> list[SimBankTransaction]:
        return list(
            session.scalars(
                select(SimBankTransaction)
                .where(SimBankTransaction.booked_on == on)
                .order_by(SimBankTransaction.booked_at, SimBankTransaction.id)
            ).all()
        )

    def balance_before(self, session: Session, on: date, currency: str) -> int:
        rows = session.execute(
            select(SimBankTransaction.direction, SimBankTransaction.amount).where(
                SimBankTransaction.booked_on < on, SimBankTransaction.currency == currency
            )
        ).all()
        return sum(a if d == "credit" else -a for d, a in rows)
