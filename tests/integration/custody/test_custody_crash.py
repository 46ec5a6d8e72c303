"""A crash at any statement of a custody command (withdrawal, deposit, the bank's callback)
leaves the books exactly as they were."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from tests.integration.custody.conftest import Drain
from tests.integration.ledger.test_ledger_properties import _crash_every_step
from yunrong.config import Settings
from yunrong.custody import service as custody
from yunrong.custody.model import sign
from yunrong.db import unit_of_work
from yunrong.identity import repository
from yunrong.identity.model import Actor, Context
from yunrong.identity.service import actor_for
from yunrong.kit.clock import FrozenClock
from yunrong.parties.tables import BankAccount

INVESTOR = "investor@demo.yunrong.cn"


def _investor(factory: sessionmaker[Session], clock: FrozenClock) -> tuple[Context, Any]:
    with unit_of_work(factory) as session:
        user = repository.user_by_email(session, INVESTOR)
        assert user is not None
        org = repository.organisation_by_id(session, user.organisation_id)
        assert org is not None
        account = session.scalars(select(BankAccount).where(BankAccount.organisation_id == org.id)).first()
        assert account is not None
        return Context(actor=actor_for(user, org, "test"), clock=clock, request_id="crash"), account.id


def test_custody_commands_leave_nothing_partial(
    factory: sessionmaker[Session], settings: Settings, clock: FrozenClock, verified: None, drain: Drain
) -> None:
    ctx, bank_account = _investor(factory, clock)
    with unit_of_work(factory) as session:
        custody.create_deposit(session, ctx=ctx, amount=100_000, currency="CNY", bank_account_id=bank_account)
    drain()
    with unit_of_work(factory) as session:
        pending = custody.create_deposit(
            session, ctx=ctx, amount=5_000, currency="CNY", bank_account_id=bank_account
        )
        ref = pending.ref
    body = json.dumps(
        {
            "callback_id": "crash-cb",
            "instruction_ref": ref,
            "status": "confirmed",
            "bank_reference": "B-CRASH",
            "amount": 5_000,
            "currency": "CNY",
        }
    ).encode()
    timestamp = str(int(clock.now().timestamp()))
    signature = sign(custody.callback_secret(settings), timestamp, body)
    bank = Context(actor=Actor.system("bank"), clock=clock, request_id="crash")
    tried = {
        "create_withdrawal": _crash_every_step(
            factory,
            lambda s: custody.create_withdrawal(
                s, ctx=ctx, amount=20_000, currency="CNY", bank_account_id=bank_account
            ),
        ),
        "create_deposit": _crash_every_step(
            factory,
            lambda s: custody.create_deposit(
                s, ctx=ctx, amount=1_000, currency="CNY", bank_account_id=bank_account
            ),
        ),
        "apply_callback": _crash_every_step(
            factory,
            lambda s: custody.apply_callback(
                s, ctx=bank, settings=settings, body=body, timestamp=timestamp, signature=signature
            ),
        ),
    }
    assert all(points >= 5 for points in tried.values()), tried
