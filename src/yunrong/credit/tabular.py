"""Loading and checking a tabular credit history (one row per loan/application, one target column).

Operators bring their own history as CSV. Before anything is trained, the file is checked and
*every* problem is reported at once (`CreditDataError.problems`), never just the first:

- the target column is missing, or empty in some rows;
- the target has a single class (the ``bad`` value never occurs, or occurs in every row);
- a column that is numeric in most rows holds non-numeric garbage in a few (``"12,0"``, ``"?"``);
- an id column (``--id COLUMN``, or a column named ``id``) has duplicate or missing values;
- there are no feature columns, or too few rows of a class for the requested folds.

Column kinds: a column whose non-missing values all parse as numbers is *numeric*; any other
column is *categorical* (strings). Missing values (empty cells, ``NA``, ``null``, ``NaN``) are
allowed anywhere except the target and the id, and are modelled as their own bin.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from yunrong.kit.errors import FieldProblem, InvalidInput

#: A column is "mostly numeric" (and its non-numbers are garbage) when at least this share parses.
GARBAGE_THRESHOLD = 0.8
#: How many offending rows/values a problem message quotes.
QUOTE = 5


class CreditDataError(InvalidInput):
    """The training data is unusable; ``problems`` lists every reason."""

    code = "credit-data-invalid"
    title = "Credit data invalid"


@dataclass(frozen=True)
class Dataset:
    """A checked table: features, the 0/1 target (1 = bad) and where it came from."""

    X: pd.DataFrame
    y: np.ndarray
    numeric: list[str]
    categorical: list[str]
    target: str
    bad: str
    sha256: str
    source: str = ""
    ids: pd.Series | None = field(default=None, repr=False)

    @property
    def rows(self) -> int:
        return len(self.y)

    @property
    def bad_rate(self) -> float:
        return float(self.y.mean()) if len(self.y) else 0.0


def _rows(index: pd.Index) -> str:
    """CSV line numbers (header = line 1) of the first few offending rows."""
    lines = [str(int(i) + 2) for i in index[:QUOTE]]
    more = f" and {len(index) - QUOTE} more" if len(index) > QUOTE else ""
    return ", ".join(lines) + more


def read_csv(path: Path) -> tuple[pd.DataFrame, str]:
    """The raw table (every cell as text, missing as NaN) and the file's sha256."""
    try:
        content = path.read_bytes()
    except OSError as exc:
        raise CreditDataError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        frame = pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=True, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise CreditDataError(f"{path} is not a readable CSV: {message}") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame, hashlib.sha256(content).hexdigest()


def check_table(
    raw: pd.DataFrame,
    *,
    target: str,
    bad: str,
    id_column: str | None = None,
    folds: int = 2,
    sha256: str = "",
    source: str = "",
) -> Dataset:
    """Check a raw all-text table and split it into features and target; raise with every problem."""
    problems: list[FieldProblem] = []
    columns = list(raw.columns)
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        problems.append(FieldProblem(("columns",), f"duplicate column names: {', '.join(duplicates)}"))
        raise CreditDataError(_summary(problems), problems)
    if id_column is None and "id" in columns:
        id_column = "id"
    y = np.zeros(0, dtype=np.int8)
    if target not in columns:
        problems.append(
            FieldProblem((target,), f"target column {target!r} not found (columns: {', '.join(columns)})")
        )
    else:
        values = raw[target].astype("string").str.strip()
        missing = values.isna() | (values == "")
        if missing.any():
            problems.append(
                FieldProblem(
                    (target,),
                    f"target missing in {int(missing.sum())} rows (lines {_rows(raw.index[missing])})",
                )
            )
        present = values[~missing]
        y = (values == str(bad).strip()).fillna(False).to_numpy(dtype=np.int8)
        n_bad = int((present == str(bad).strip()).sum())
        n_good = int(len(present) - n_bad)
        if n_bad == 0 or n_good == 0:
            seen = ", ".join(sorted(map(str, present.unique()))[:QUOTE]) or "nothing"
            problems.append(
                FieldProblem(
                    (target,),
                    f"target has a single class: {n_bad} rows equal bad value {bad!r}, {n_good} other rows "
                    f"(values seen: {seen})",
                )
            )
        elif min(n_bad, n_good) < folds:
            problems.append(
                FieldProblem(
                    (target,), f"only {min(n_bad, n_good)} rows of the rarer class: too few for {folds} folds"
                )
            )
    ids = None
    if id_column is not None:
        if id_column not in columns:
            problems.append(FieldProblem((id_column,), f"id column {id_column!r} not found"))
        else:
            ids = raw[id_column].astype("string").str.strip()
            missing_ids = ids.isna() | (ids == "")
            if missing_ids.any():
                problems.append(
                    FieldProblem(
                        (id_column,),
                        f"id missing in {int(missing_ids.sum())} rows "
                        f"(lines {_rows(raw.index[missing_ids])})",
                    )
                )
            dup = ids.duplicated(keep=False) & ~missing_ids
            if dup.any():
                quoted = ", ".join(map(str, ids[dup].unique()[:QUOTE]))
                problems.append(
                    FieldProblem(
                        (id_column,),
                        f"duplicate ids: {int(ids[dup].nunique())} values repeated in {int(dup.sum())} rows "
                        f"({quoted}; lines {_rows(raw.index[dup])})",
                    )
                )
    features = [c for c in columns if c not in (target, id_column)]
    if not features:
        problems.append(FieldProblem(("columns",), "no feature columns besides the target and the id"))
    if len(raw) == 0:
        problems.append(FieldProblem(("rows",), "the table has no rows"))
    numeric: list[str] = []
    categorical: list[str] = []
    X = pd.DataFrame(index=raw.index)
    for column in features:
        text = raw[column].astype("string").str.strip()
        text = text.mask(text == "")
        parsed = pd.to_numeric(text, errors="coerce")
        present = text.notna()
        bad_cells = present & parsed.isna()
        n_present = int(present.sum())
        if n_present and not bad_cells.any():
            numeric.append(column)
            X[column] = parsed.astype("float64")
        elif n_present and (n_present - int(bad_cells.sum())) / n_present >= GARBAGE_THRESHOLD:
            quoted = ", ".join(repr(v) for v in text[bad_cells].unique()[:QUOTE])
            problems.append(
                FieldProblem(
                    (column,),
                    f"column {column!r} is numeric but {int(bad_cells.sum())} values are not numbers "
                    f"({quoted}; lines {_rows(raw.index[bad_cells])})",
                )
            )
        else:
            categorical.append(column)
            X[column] = text.astype(object).where(present, np.nan)
    if problems:
        raise CreditDataError(_summary(problems), problems)
    return Dataset(
        X=X.reset_index(drop=True),
        y=y,
        numeric=numeric,
        categorical=categorical,
        target=target,
        bad=str(bad),
        sha256=sha256,
        source=source,
        ids=None if ids is None else ids.reset_index(drop=True),
    )


def load_dataset(
    path: Path, *, target: str, bad: str, id_column: str | None = None, folds: int = 2
) -> Dataset:
    """Read and check a CSV file (see the module docstring for what is refused)."""
    raw, sha = read_csv(path)
    return check_table(
        raw, target=target, bad=bad, id_column=id_column, folds=folds, sha256=sha, source=str(path)
    )


def _summary(problems: list[FieldProblem]) -> str:
    return f"{len(problems)} problem{'s' if len(problems) != 1 else ''} in the data; nothing trained"
