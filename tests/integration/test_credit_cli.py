"""``yunrong world generate`` and ``yunrong credit evaluate/train`` on small data the tests make."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from yunrong.credit.cli import credit_app, world_app

runner = CliRunner()


@pytest.fixture(scope="module")
def world_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("world")
    result = runner.invoke(
        world_app,
        ["generate", "--enterprises", "1500", "--years", "5", "--seed", "7", "--out", str(folder), "--json"],
    )
    assert result.exit_code == 0, result.output
    return folder


def test_world_is_calibrated_and_synthetic(world_dir: Path) -> None:
    cal = json.loads((world_dir / "calibration.json").read_text())
    assert cal["synthetic"] is True
    assert 2.5 <= cal["mean_lifetime_years"] <= 3.3  # published: 2.9 years
    assert 0.26 <= cal["annual_closure_rate"] <= 0.34  # published: about 30 %
    assert 0.26 <= cal["funds_share"] <= 0.38  # published: about 32 %
    assert "synthetic" in (world_dir / "README.md").read_text().lower()
    ent = pd.read_csv(world_dir / "enterprises.csv")
    assert set(ent["size"]) <= {"micro", "small", "medium"}
    assert len(ent) == 1500
    loans = pd.read_csv(world_dir / "loans.csv")
    assert set(loans["defaulted"]) <= {-1, 0, 1}
    training = pd.read_csv(world_dir / "training.csv")
    assert training["id"].is_unique
    assert set(training["default"]) == {0, 1}


def test_world_is_deterministic(tmp_path: Path, world_dir: Path) -> None:
    again = tmp_path / "again"
    assert (
        runner.invoke(
            world_app,
            ["generate", "--enterprises", "1500", "--years", "5", "--seed", "7", "--out", str(again)],
        ).exit_code
        == 0
    )
    for name in ("enterprises.csv", "monthly.csv", "loans.csv", "training.csv"):
        assert (again / name).read_bytes() == (world_dir / name).read_bytes()


def test_evaluate_json_on_the_world(world_dir: Path) -> None:
    result = runner.invoke(
        credit_app,
        [
            "evaluate",
            "--data",
            str(world_dir / "training.csv"),
            "--target",
            "default",
            "--bad",
            "1",
            "--folds",
            "3",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["rows"] > 200
    assert 0 < found["bad_rate"] < 0.5
    assert set(found["models"]) == {"scorecard", "gbm", "ensemble"}
    for m in found["models"].values():
        assert set(m) == {"auc", "ks", "gini", "brier"}
        assert m["auc"] > 0.65  # the world's features carry signal


def small_csv(path: Path, n: int = 400) -> Path:
    rng = np.random.default_rng(3)
    income = rng.lognormal(3, 0.5, n)
    home = rng.choice(["own", "rent", "family"], n)
    z = -1 - 0.04 * (income - 20) + 0.8 * (home == "rent")
    frame = pd.DataFrame(
        {
            "loan": [f"L{i}" for i in range(n)],
            "income": income.round(1),
            "home": home,
            "status": np.where(rng.uniform(0, 1, n) < 1 / (1 + np.exp(-z)), "bad", "good"),
        }
    )
    frame.loc[::37, "income"] = np.nan
    frame.to_csv(path, index=False)
    return path


def test_evaluate_table_and_html_report(tmp_path: Path) -> None:
    data = small_csv(tmp_path / "history.csv")
    result = runner.invoke(
        credit_app,
        [
            "evaluate",
            "--data",
            str(data),
            "--target",
            "status",
            "--bad",
            "bad",
            "--id",
            "loan",
            "--folds",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "scorecard" in result.stdout
    assert "AUC" in result.stdout
    html = (tmp_path / "history-report.html").read_text()
    assert html.count("<svg") == 4
    assert "<script" not in html
    assert "http" not in html.replace("http://www.w3.org/2000/svg", "")


def test_train_writes_artifact_and_card(tmp_path: Path) -> None:
    data = small_csv(tmp_path / "history.csv")
    out = tmp_path / "models" / "m.joblib"
    result = runner.invoke(
        credit_app,
        [
            "train",
            "--data",
            str(data),
            "--target",
            "status",
            "--bad",
            "bad",
            "--id",
            "loan",
            "--folds",
            "3",
            "--out",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    card = json.loads(result.stdout)
    assert card["training_data"]["rows"] == 400
    assert len(card["training_data"]["sha256"]) == 64
    assert {f["name"] for f in card["features"]} == {"income", "home"}
    assert set(card["metrics"]) == {"scorecard", "gbm", "ensemble"}
    assert out.exists()
    assert out.with_suffix(".json").exists()


BAD_INPUTS = {
    "missing_target": ("a,b\n1,x\n2,y\n", ["target column 'status' not found"]),
    "single_class": ("a,status\n1,good\n2,good\n3,good\n", ["single class"]),
    "garbage_and_missing_target": (
        "a,b,status\n1,x,bad\n2,y,good\n3,x,\n4,y,good\n5,x,bad\n6,y,good\n7,x,bad\n8,y,good\n9,x,good\nabc,y,bad\n",
        ["target missing in 1 rows", "'abc'"],
    ),
    "duplicate_ids": (
        "id,a,status\n1,1,bad\n2,2,good\n2,3,good\n4,4,bad\n5,5,good\n6,6,bad\n",
        ["duplicate ids"],
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
@pytest.mark.parametrize("command", ["evaluate", "train"])
def test_bad_input_refused_listing_every_problem(tmp_path: Path, case: str, command: str) -> None:
    content, expected = BAD_INPUTS[case]
    data = tmp_path / f"{case}.csv"
    data.write_text(content)
    out = tmp_path / "m.joblib"
    args = [command, "--data", str(data), "--target", "status", "--bad", "bad", "--folds", "2"]
    result = runner.invoke(credit_app, [*args, "--out", str(out)] if command == "train" else args)
    assert result.exit_code == 2
    for text in expected:
        assert text in result.output
    assert not out.exists()


def test_registered_on_the_main_command_line() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "yunrong.cli",
            "credit",
            "evaluate",
            "--data",
            "/nonexistent.csv",
            "--target",
            "t",
            "--bad",
            "1",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "cannot read /nonexistent.csv" in proc.stderr
