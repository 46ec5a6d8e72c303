"""``yunrong eod``: close business dates from the command line, one line per step on the terminal.

Refusals (a date in the future, a skipped date, a date already closed) print one line and exit 2;
nothing is booked. Wired into ``yunrong.cli`` as ``app.command("eod")(eod_command)``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

import typer
from rich.console import Console

out = Console()
err = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _parse(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _fail(f"{option} {value!r} is not YYYY-MM-DD / 日期格式应为 YYYY-MM-DD") from None


def _describe(counts: dict[str, Any]) -> str:
    parts = []
    for key, value in counts.items():
        if isinstance(value, dict):
            inner = ", ".join(f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}" for k, v in value.items())
            parts.append(f"{key} {{{inner}}}")
        else:
            parts.append(f"{key} {value:,}" if isinstance(value, int) else f"{key} {value}")
    return "; ".join(parts)


def eod_command(
    on: Annotated[str | None, typer.Option("--date", help="The business date to close, YYYY-MM-DD.")] = None,
    through: Annotated[
        str | None,
        typer.Option(
            "--through",
            help="Close every date from the next open one (or --date) through this one, YYYY-MM-DD.",
        ),
    ] = None,
) -> None:
    """Run the end of day: accrue interest and penalty, mark instalments due, move loans through
    the delinquency buckets, book the day in the ledger, send reminders and overdue notices."""
    from yunrong.config import get_settings
    from yunrong.db import make_engine, make_sessionmaker
    from yunrong.identity.model import Actor, Context
    from yunrong.kit.clock import SystemClock
    from yunrong.kit.errors import YunrongError
    from yunrong.servicing import eod

    if on is None and through is None:
        raise _fail("give --date YYYY-MM-DD (or --through YYYY-MM-DD) / 请指定 --date 或 --through")
    first = _parse(on, "--date") if on is not None else None
    last = _parse(through, "--through") if through is not None else first
    assert last is not None
    settings = get_settings()
    engine = make_engine(settings.database_url)
    clock = SystemClock()
    ctx = Context(actor=Actor.system("eod-cli"), clock=clock, request_id="cli:eod")
    try:
        factory = make_sessionmaker(engine)
        if first is None:
            with factory() as session:
                first = eod.next_date(session)
            if first is None:
                raise _fail(
                    "no end of day has run yet: give the first date with --date"
                    " / 尚无日终记录，请用 --date 指定首日"
                )
        if last < first:
            raise _fail(f"--through {last} is before {first} / 结束日期早于开始日期")
        day = first
        while day <= last:
            started = day

            def show(step: str, counts: dict[str, Any], seconds: float, _day: date = started) -> None:
                out.print(f"{_day}  {step:<12} {seconds:7.2f} s  {_describe(counts)}", highlight=False)

            result = eod.run_eod(
                factory, business_date=day, settings=settings, clock=clock, ctx=ctx, on_step=show
            )
            if result.already_closed:
                raise _fail(
                    f"the end of day of {day} was already closed; nothing booked / "
                    f"{day} 已完成日终，未重复记账"
                )
            out.print(f"{day}  closed", highlight=False)
            day += timedelta(days=1)
    except YunrongError as exc:
        raise _fail(exc.detail) from None
    finally:
        engine.dispose()


eod_app = typer.Typer(help="The end of day.", no_args_is_help=True)
eod_app.command("eod")(eod_command)


@eod_app.command("status", hidden=True)
def _status() -> None:
    """Show the last closed business date."""
    from yunrong.config import get_settings
    from yunrong.db import make_engine, make_sessionmaker
    from yunrong.servicing import eod

    engine = make_engine(get_settings().database_url)
    try:
        with make_sessionmaker(engine)() as session:
            out.print(f"last closed: {eod.last_closed_date(session)}", highlight=False)
    finally:
        engine.dispose()


if __name__ == "__main__":  # python -m yunrong.servicing.cli eod --date YYYY-MM-DD
    eod_app()
