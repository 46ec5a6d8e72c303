"""``yunrong credit …`` and ``yunrong world …``: evaluate and train credit models, generate the
synthetic world. Errors print one line per problem and exit 2; nothing is trained on bad input."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from yunrong.credit.tabular import CreditDataError, Dataset, load_dataset

credit_app = typer.Typer(help="Credit models: evaluate and train on tabular history.", no_args_is_help=True)
world_app = typer.Typer(
    help="The synthetic SME world (synthetic data, not real enterprises).", no_args_is_help=True
)

out = Console()
err = Console(stderr=True)


@world_app.callback()
def _world() -> None:
    """The synthetic SME world (synthetic data, not real enterprises)."""


def _fail(message: str, problems: list[str] | None = None, code: int = 2) -> typer.Exit:
    err.print(f"[red]error:[/red] {message}", highlight=False, soft_wrap=True)
    for problem in problems or []:
        err.print(f"  - {problem}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _load(data: Path, target: str, bad: str, id_column: str | None, folds: int) -> Dataset:
    if folds < 2:
        raise _fail("--folds must be at least 2")
    try:
        return load_dataset(data, target=target, bad=bad, id_column=id_column, folds=folds)
    except CreditDataError as exc:
        raise _fail(exc.detail, [p.msg for p in exc.problems]) from None


Data = Annotated[Path, typer.Option("--data", help="CSV file, one row per loan/application.")]
Target = Annotated[str, typer.Option("--target", help="The outcome column.")]
Bad = Annotated[str, typer.Option("--bad", help="The target value that means bad (default).")]
IdColumn = Annotated[
    str | None, typer.Option("--id", help="Id column (checked for duplicates; not a feature).")
]
Folds = Annotated[int, typer.Option("--folds", help="Cross-validation folds.")]
Seed = Annotated[int, typer.Option("--seed", help="Seed of the folds and the models.")]


@credit_app.command("evaluate")
def evaluate(
    data: Data,
    target: Target,
    bad: Bad,
    id_column: IdColumn = None,
    folds: Folds = 5,
    seed: Seed = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    report: Annotated[
        Path | None,
        typer.Option("--out", help="HTML report path (default: <data>-report.html beside the data)."),
    ] = None,
) -> None:
    """Stratified cross-validation of every model (scorecard, gbm, ensemble): AUC, KS, Gini, Brier."""
    from yunrong.credit.evaluate import cross_validate

    dataset = _load(data, target, bad, id_column, folds)
    evaluation = cross_validate(dataset, folds=folds, seed=seed)
    if as_json:
        sys.stdout.write(json.dumps(evaluation.as_dict()) + "\n")
        return
    from yunrong.credit.report import render

    table = Table(
        title=f"{data.name}: {evaluation.rows} rows, bad rate {evaluation.bad_rate:.2%}, {folds} folds"
    )
    for column in ("model", "AUC", "KS", "Gini", "Brier"):
        table.add_column(column, justify="right" if column != "model" else "left")
    for name, m in evaluation.models.items():
        mark = " (best)" if name == evaluation.best else ""
        table.add_row(name + mark, *(f"{m[k]:.4f}" for k in ("auc", "ks", "gini", "brier")))
    out.print(table)
    path = report or data.with_name(f"{data.stem}-report.html")
    try:
        path.write_text(render(evaluation, f"Credit model evaluation — {data.name}"), encoding="utf-8")
    except OSError as exc:
        raise _fail(f"cannot write {path}: {exc.strerror or exc}", code=1) from None
    out.print(f"report: {path}", highlight=False)


@credit_app.command("train")
def train(
    data: Data,
    target: Target,
    bad: Bad,
    id_column: IdColumn = None,
    name: Annotated[str | None, typer.Option("--name", help="Model name (default: the file's stem).")] = None,
    out_path: Annotated[
        Path | None,
        typer.Option("--out", help="Artifact path (default var/models/<name>-<timestamp>.joblib)."),
    ] = None,
    folds: Folds = 5,
    seed: Seed = 0,
    decision: Annotated[str, typer.Option("--decision", help="scorecard, gbm or ensemble.")] = "ensemble",
) -> None:
    """Cross-validate, fit on all rows, and write the model artifact and its JSON card."""
    from yunrong.credit.artifact import make_card, save_artifact
    from yunrong.credit.evaluate import cross_validate
    from yunrong.credit.model import MODELS, fit_model

    if decision not in MODELS:
        raise _fail(f"--decision must be one of {', '.join(MODELS)}")
    dataset = _load(data, target, bad, id_column, folds)
    model_name = name or re.sub(r"[^A-Za-z0-9_.-]+", "-", data.stem)
    evaluation = cross_validate(dataset, folds=folds, seed=seed)
    model = fit_model(
        dataset.X,
        dataset.y,
        numeric=dataset.numeric,
        categorical=dataset.categorical,
        seed=seed,
        decision=decision,
    )
    now = datetime.now(UTC)
    path = out_path or Path("var/models") / f"{model_name}-{now:%Y%m%dT%H%M%SZ}.joblib"
    card = make_card(model, dataset, name=model_name, metrics=evaluation.models, created_at=now)
    try:
        card = save_artifact(model, path, card)
    except OSError as exc:
        raise _fail(f"cannot write {path}: {exc.strerror or exc}", code=1) from None
    sys.stdout.write(json.dumps(card, indent=2, ensure_ascii=False) + "\n")


@world_app.command("generate")
def generate(
    enterprises: Annotated[
        int, typer.Option("--enterprises", help="Enterprises founded over the window.")
    ] = 2000,
    years: Annotated[int, typer.Option("--years", help="Years simulated.")] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed (same seed, same world).")] = 0,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder.")] = Path("var/world"),
    as_json: Annotated[bool, typer.Option("--json", help="Print the calibration report as JSON.")] = False,
) -> None:
    """Generate a synthetic SME world (CSV files) and print its calibration report."""
    from yunrong.credit import world

    if enterprises < 1 or years < 1:
        raise _fail("--enterprises and --years must be at least 1")
    with Progress(
        TextColumn("simulating months"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("months", total=years * 12)
        built = world.generate(
            enterprises,
            years,
            seed,
            progress=lambda done, total: progress.update(task, completed=done, total=total),
        )
    try:
        world.write(built, out_dir)
    except OSError as exc:
        raise _fail(f"cannot write {out_dir}: {exc.strerror or exc}", code=1) from None
    cal = built.calibration
    if as_json:
        sys.stdout.write(json.dumps({"folder": str(out_dir), "synthetic": True, **cal.as_dict()}) + "\n")
        return
    table = Table(title=f"Synthetic world (not real data): {out_dir}")
    for column in ("measure", "world", "published"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    table.add_row(
        "mean lifetime, years",
        f"{cal.mean_lifetime_years:.2f}",
        f"{world.TARGETS['mean_lifetime_years']:.1f}",
    )
    table.add_row(
        "annual closure rate", f"{cal.annual_closure_rate:.1%}", f"{world.TARGETS['annual_closure_rate']:.0%}"
    )
    table.add_row(
        "closures for lack of funds", f"{cal.funds_share:.1%}", f"{world.TARGETS['funds_share']:.0%}"
    )
    table.add_row("enterprises / closures", f"{cal.enterprises} / {cal.closures}", "")
    table.add_row(
        "loans (known outcome) / default rate",
        f"{cal.loans} ({cal.loans_known}) / {cal.default_rate:.1%}",
        "",
    )
    out.print(table)
