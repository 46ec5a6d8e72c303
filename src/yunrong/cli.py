"""The ``yunrong`` command line. Errors print one line and exit non-zero."""

from __future__ import annotations

import getpass
import json
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.orm import Session

from yunrong.config import Settings, get_settings
from yunrong.credit.cli import credit_app, world_app
from yunrong.db import make_engine, make_sessionmaker, unit_of_work
from yunrong.identity.model import Actor, Context, InvestorKind, OrgType, Role
from yunrong.kit.clock import SystemClock
from yunrong.kit.errors import YunrongError
from yunrong.parties.model import REVIEWED_TYPES

app = typer.Typer(help="Yunrong (云融): SME financing under government supervision.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
demo_app = typer.Typer(help="The demo world.", no_args_is_help=True)
users_app = typer.Typer(help="Users.", no_args_is_help=True)
orgs_app = typer.Typer(
    help="Organisations (custodian banks and the operator are created here).", no_args_is_help=True
)
audit_app = typer.Typer(help="The hash-chained audit log.", no_args_is_help=True)
ledger_app = typer.Typer(help="The double-entry ledger.", no_args_is_help=True)
lpr_app = typer.Typer(
    help="The one-year Loan Prime Rate table behind the interest cap.", no_args_is_help=True
)
app.add_typer(db_app, name="db")
app.add_typer(demo_app, name="demo")
app.add_typer(users_app, name="users")
app.add_typer(orgs_app, name="orgs")
app.add_typer(audit_app, name="audit")
app.add_typer(lpr_app, name="lpr")
app.add_typer(ledger_app, name="ledger")
app.add_typer(credit_app, name="credit")
app.add_typer(world_app, name="world")

from yunrong.servicing.cli import eod_command  # noqa: E402

app.command("eod")(eod_command)

out = Console()
err = Console(stderr=True)


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def cli_session(settings: Settings, who: str = "cli") -> Iterator[tuple[Session, Context]]:
    engine = make_engine(settings.database_url)
    try:
        factory = make_sessionmaker(engine)
        ctx = Context(actor=Actor.system(who), clock=SystemClock(), request_id=f"cli:{who}")
        with unit_of_work(factory) as session:
            yield session, ctx
    except YunrongError as exc:
        problems = "; ".join(f"{'.'.join(map(str, p.loc))}: {p.msg}" for p in exc.problems)
        raise fail(f"{exc.detail}{' (' + problems + ')' if problems else ''}", 2) from None
    finally:
        engine.dispose()


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option(help="Web worker processes.")] = 1,
) -> None:
    """Serve the web portals and the JSON API."""
    import uvicorn

    from yunrong.observability import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    out.print(f"Yunrong serving on http://{host}:{port} (API docs at /docs)", highlight=False)
    uvicorn.run(
        "yunrong.asgi:app",
        host=host,
        port=port,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=False,
    )


@app.command()
def worker() -> None:
    """Deliver the transactional outbox (e-mails, webhooks) with retries until stopped."""
    from yunrong.messaging.worker import run_worker
    from yunrong.observability import configure_logging

    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    engine = make_engine(settings.database_url)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    run_worker(make_sessionmaker(engine), settings=settings, clock=SystemClock(), stop=stop)
    engine.dispose()


@db_app.command("upgrade")
def db_upgrade(revision: Annotated[str, typer.Argument(help="Target revision.")] = "head") -> None:
    """Apply migrations to the configured database (SQLite or PostgreSQL)."""
    from yunrong.migrate import upgrade

    settings = get_settings()
    try:
        upgrade(settings.database_url, revision)
    except Exception as exc:
        raise fail(f"migration failed: {type(exc).__name__}: {exc}".splitlines()[0]) from None
    out.print(f"database at {revision}", highlight=False)


@demo_app.command("seed")
def demo_seed() -> None:
    """Create the demo world (idempotent: running it twice creates nothing twice)."""
    from yunrong.demo.seed import seed_demo

    settings = get_settings()
    with cli_session(settings, "demo-seed") as (session, ctx):
        report = seed_demo(session, ctx=ctx, settings=settings, with_demands=True)
    out.print(
        f"demo world ready: {report.organisations_created} organisations and "
        f"{report.users_created} users created",
        highlight=False,
    )


@demo_app.command("loan")
def demo_loan() -> None:
    """A demo loan a month into its life (steps 1-6 run as users would; idempotent)."""
    from yunrong.demo.loans import seed_demo_loan
    from yunrong.kit.errors import YunrongError

    try:
        made = seed_demo_loan(get_settings())
    except YunrongError as exc:
        raise fail(f"no demo loan: {exc.detail}", 2) from None
    what = "paid out a month ago" if made.created else "already there"
    out.print(f"demo loan {made.ref}: {what}", highlight=False)


@demo_app.command("logins")
def demo_logins(as_json: Annotated[bool, typer.Option("--json", help="Print a JSON list.")] = False) -> None:
    """The demo logins: role, e-mail, password, organisation."""
    from yunrong.demo.seed import DEMO_LOGINS

    rows = [login.as_dict() for login in DEMO_LOGINS]
    if as_json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False) + "\n")
        return
    table = Table(title="Demo logins (password for all: " + DEMO_LOGINS[0].password + ")")
    for column in ("role", "email", "organisation"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["role"], row["email"], row["organisation"])
    out.print(table)


@orgs_app.command("create")
def orgs_create(
    type: Annotated[OrgType, typer.Option("--type", help="Organisation type.")],
    name: Annotated[str, typer.Option(help="Legal name.")],
    investor_kind: Annotated[
        InvestorKind | None, typer.Option(help="person or institution (investors).")
    ] = None,
) -> None:
    """Create an organisation (the operator creates custodian banks, regulators and itself here)."""
    from yunrong.identity import service

    settings = get_settings()
    with cli_session(settings) as (session, ctx):
        org = service.create_organisation(
            session,
            ctx=ctx,
            org_type=type,
            name=name,
            investor_kind=investor_kind,
        )
        review = ""
        if type in REVIEWED_TYPES:
            from yunrong.parties.service import open_qualification

            open_qualification(session, ctx=ctx, org=org)
            review = " (waiting for the regulator's admittance review)"
        out.print(f"created {org.type} {org.ref} {org.name} ({org.id}){review}", highlight=False)


@users_app.command("create")
def users_create(
    email: Annotated[str, typer.Option(help="Login e-mail.")],
    name: Annotated[str, typer.Option(help="Full name.")],
    organisation: Annotated[str, typer.Option(help="Organisation reference (ORG-…) or id.")],
    role: Annotated[list[Role], typer.Option(help="Role; repeat for several.")],
    password: Annotated[str | None, typer.Option(help="Password; asked for when omitted.")] = None,
) -> None:
    """Create a user. Roles that need two-factor get a TOTP secret, printed once."""
    import uuid as _uuid

    from sqlalchemy import select

    from yunrong.identity import service
    from yunrong.identity.tables import Organisation

    settings = get_settings()
    secret_word = password or getpass.getpass("Password: ")
    with cli_session(settings) as (session, ctx):
        query = select(Organisation).where(Organisation.ref == organisation)
        org = session.scalars(query).first()
        if org is None:
            try:
                org = session.get(Organisation, _uuid.UUID(organisation))
            except ValueError:
                org = None
        if org is None:
            raise fail(f"no organisation {organisation!r}", 2)
        user, secret = service.create_user(
            session,
            ctx=ctx,
            settings=settings,
            organisation_id=org.id,
            email=email,
            name=name,
            password=secret_word,
            roles=frozenset(role),
        )
        out.print(f"created user {user.email} ({user.id}) in {org.name}", highlight=False)
        if secret:
            from yunrong.identity.security import totp_uri

            out.print(f"TOTP secret (shown once): {secret}\notpauth URI: {totp_uri(secret, user.email)}")


@users_app.command("enrol-totp")
def users_enrol_totp(email: Annotated[str, typer.Argument(help="The user's e-mail.")]) -> None:
    """(Re)enrol a user's TOTP two-factor and print the new secret once."""
    from yunrong.identity import service
    from yunrong.identity.security import totp_uri

    settings = get_settings()
    with cli_session(settings) as (session, ctx):
        secret = service.enrol_totp_by_operator(session, ctx=ctx, settings=settings, email=email)
    out.print(f"TOTP secret (shown once): {secret}\notpauth URI: {totp_uri(secret, email)}")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check every link of the audit chain; exit 1 naming the first broken record."""
    from yunrong.supervision.service import verify_chain

    settings = get_settings()
    with cli_session(settings) as (session, _ctx):
        checked, broken = verify_chain(session)
    if broken is not None:
        raise fail(f"audit chain broken at {broken}")
    out.print(f"audit chain intact: {checked} records verified", highlight=False)


@ledger_app.command("verify")
def ledger_verify() -> None:
    """Check every ledger invariant; exit 1 naming the first violation."""
    from yunrong.ledger.verify import verify

    settings = get_settings()
    with cli_session(settings, "ledger-verify") as (session, _ctx):
        results = verify(session)
    for name, violation in results:
        mark = "[green]ok[/green]" if violation is None else "[red]BROKEN[/red]"
        out.print(f"{mark}  {name}", highlight=False)
    broken = next((v for _, v in results if v is not None), None)
    if broken is not None:
        raise fail(f"ledger invariant broken: {broken}")
    out.print("ledger intact: every invariant holds", highlight=False)


@lpr_app.command("set")
def lpr_set(
    effective_on: Annotated[str, typer.Argument(help="Effective date, YYYY-MM-DD.")],
    percent: Annotated[str, typer.Argument(help="One-year LPR in percent, e.g. 3.00.")],
    source: Annotated[str, typer.Option(help="Where the fixing was published.")] = "NIFC announcement",
) -> None:
    """Record a one-year LPR fixing (the operator maintains this table; the cap follows it)."""
    from datetime import date
    from decimal import Decimal, InvalidOperation

    from yunrong.supervision import rates

    try:
        on = date.fromisoformat(effective_on)
    except ValueError:
        raise fail(f"effective date {effective_on!r} is not YYYY-MM-DD", 2) from None
    try:
        value = Decimal(percent)
    except InvalidOperation:
        raise fail(f"rate {percent!r} is not a number", 2) from None
    if not Decimal(0) < value < Decimal(100) or value.as_tuple().exponent < -4:  # type: ignore[operator]
        raise fail("rate must be a percentage between 0 and 100 with at most 4 decimals", 2)
    settings = get_settings()
    with cli_session(settings, "lpr") as (session, ctx):
        rates.set_rate(session, ctx=ctx, effective_on=on, percent=value, source=source)
        cap = rates.cap_on(session, settings.policy, on)
    out.print(
        f"one-year LPR {value}% from {on}; interest cap under {settings.policy_profile}: "
        f"{cap if cap is not None else 'none'}%",
        highlight=False,
    )


@lpr_app.command("list")
def lpr_list() -> None:
    """Show the LPR table, newest first."""
    from yunrong.supervision import rates

    settings = get_settings()
    with cli_session(settings, "lpr") as (session, _ctx):
        rows = [
            (r.effective_on.isoformat(), str(r.one_year_percent), r.source) for r in rates.list_rates(session)
        ]
    table = Table(title="One-year LPR")
    for column in ("effective on", "percent", "source"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    out.print(table)


bank_app = typer.Typer(help="The custodian bank (the simulated one in development).", no_args_is_help=True)
app.add_typer(bank_app, name="bank")


class StatementFormat(StrEnum):
    camt053 = "camt053"
    csv = "csv"


@app.command("reconcile")
def reconcile(
    statement: Annotated[Path, typer.Option("--statement", help="The bank statement file.")],
    format: Annotated[
        StatementFormat | None, typer.Option("--format", help="camt053 or csv (detected when omitted).")
    ] = None,
    on: Annotated[
        str | None, typer.Option("--date", help="A CSV statement's date, YYYY-MM-DD (default: its last row).")
    ] = None,
) -> None:
    """Import a custodian statement and match it to the ledger; exit 1 when there are breaks."""
    from datetime import date

    from yunrong.custody import reconciliation

    try:
        content = statement.read_bytes()
    except OSError as exc:
        raise fail(f"cannot read {statement}: {exc.strerror or exc}", 2) from None
    try:
        statement_date = date.fromisoformat(on) if on else None
    except ValueError:
        raise fail(f"date {on!r} is not YYYY-MM-DD", 2) from None
    settings = get_settings()
    with cli_session(settings, "reconcile") as (session, ctx):
        run = reconciliation.import_statement(
            session,
            ctx=ctx,
            content=content,
            format="csv" if format is StatementFormat.csv else "camt053" if format else None,
            statement_date=statement_date,
        )
        counts = {
            "matched": run.matched,
            "ledger only": run.ledger_only,
            "bank only": run.bank_only,
            "  of which duplicates": run.duplicates,
            "amount mismatch": run.amount_mismatch,
            "breaks": run.breaks,
        }
        title = f"Reconciliation {run.ref}: {run.statement_date} {run.currency}"
    table = Table(title=title)
    table.add_column("outcome")
    table.add_column("count", justify="right")
    for label, value in counts.items():
        table.add_row(label, str(value))
    out.print(table)
    if counts["breaks"]:
        raise typer.Exit(1)


@bank_app.command("statement")
def bank_statement(
    on: Annotated[str, typer.Option("--date", help="Business date, YYYY-MM-DD.")],
    format: Annotated[
        StatementFormat, typer.Option("--format", help="camt053 or csv.")
    ] = StatementFormat.camt053,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write here instead of stdout.")
    ] = None,
    currency: Annotated[str, typer.Option(help="Currency of the escrow account.")] = "CNY",
) -> None:
    """The simulated custodian bank's statement of the escrow account for a business date."""
    from datetime import date

    from yunrong.custody import reconciliation
    from yunrong.custody.camt053 import to_camt053, to_csv

    try:
        statement_date = date.fromisoformat(on)
    except ValueError:
        raise fail(f"date {on!r} is not YYYY-MM-DD", 2) from None
    settings = get_settings()
    with cli_session(settings, "bank-statement") as (session, ctx):
        statement = reconciliation.simulated_statement(
            session, ctx=ctx, settings=settings, on=statement_date, currency=currency
        )
    content = to_csv(statement) if format is StatementFormat.csv else to_camt053(statement)
    if output is None:
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
        return
    output.write_bytes(content)
    err.print(f"wrote {len(statement.entries)} entries to {output}", highlight=False)


models_app = typer.Typer(help="The credit model registry.", no_args_is_help=True)
app.add_typer(models_app, name="models")


@models_app.command("register")
def models_register(
    artifact: Annotated[Path, typer.Argument(help="A model file from `yunrong credit train`.")],
) -> None:
    """Register a trained model (it is used only after two operators promote it)."""
    from yunrong.decisions import registry

    settings = get_settings()
    with cli_session(settings, "models") as (session, ctx):
        row = registry.register(session, ctx=ctx, model_dir=settings.model_dir, artifact=artifact)
    out.print(
        f"registered {row.name} v{row.version} ({row.id}); promote it in the operator portal or API",
        highlight=False,
    )


@models_app.command("train-default")
def models_train_default(
    enterprises: Annotated[int, typer.Option(help="Synthetic enterprises to train on.")] = 1500,
    years: Annotated[int, typer.Option(help="Years of synthetic history.")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Train the default model on a synthetic world and register it."""
    from yunrong.decisions import service as decisions

    settings = get_settings()
    with cli_session(settings, "models") as (session, ctx):
        row = decisions.train_default_model(
            session, ctx=ctx, settings=settings, enterprises=enterprises, years=years, seed=seed
        )
    out.print(f"registered {row.name} v{row.version} ({row.id})", highlight=False)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
