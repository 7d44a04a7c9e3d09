"""Reading a long-format table (telemetry or events) so that no row is lost in silence: every row that cannot
be used is counted by reason (unparseable time, unparseable value, unknown sensor, duplicate) and reported;
``strict`` refuses the file instead.

Times: ``time_format`` (strftime, e.g. ``%d/%m/%Y %H:%M``) when given; else ISO 8601; else dates written with
``/`` or ``.`` are read day-first or month-first by what their fields allow (a first field above 12 is a day,
a second field above 12 is a day), and a file where neither can be told apart is refused with a request for
``--time-format``. A time without a zone is taken as UTC.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

REASONS = ("unparseable time", "unparseable value", "unknown sensor", "duplicate")


@dataclass(slots=True)
class SkippedRows:
    """Rows set aside while reading, by reason, with a few examples of each."""

    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def add(self, reason: str, rows: pd.Series) -> None:
        """Count the rows where ``rows`` (a boolean Series) holds, keeping up to three examples (their index)."""
        count = int(rows.sum())
        if count:
            self.counts[reason] = self.counts.get(reason, 0) + count
            self.examples.setdefault(reason, []).extend(str(i) for i in rows[rows].index[:3])

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def summary(self) -> str:
        """One line: ``12 rows not used: 10 unparseable time (rows 4, 9, 17), 2 duplicate (rows ...)``."""
        parts = [f"{count:,} {reason} (rows {', '.join(self.examples[reason][:3])})"
                 for reason, count in self.counts.items()]  # fmt: skip
        return f"{self.total:,} rows not used: " + "; ".join(parts)


def day_first(text: pd.Series) -> bool | None:
    """Whether dates like 03/04/2026 are day-first (True), month-first (False) or cannot be told (None), from
    the fields of every row; a file whose rows contradict each other is refused."""
    fields = text.str.extract(r"^\s*(\d{1,2})[/.](\d{1,2})[/.]\d{2,4}").dropna().astype(int)
    if fields.empty:
        return False
    first_is_day, second_is_day = bool((fields[0] > 12).any()), bool((fields[1] > 12).any())
    if first_is_day and second_is_day:
        raise ValueError("the dates put a day above 12 in both the first and the second field; give --time-format")
    if first_is_day or second_is_day:
        return first_is_day
    return None


def parse_times(raw: pd.Series, time_format: str | None = None) -> pd.Series:
    """UTC times of ``raw`` (module doc); NaT where a row cannot be read."""
    if pd.api.types.is_datetime64_any_dtype(raw):
        return raw.dt.tz_localize("UTC") if raw.dt.tz is None else raw.dt.tz_convert("UTC")
    if time_format is not None:
        return pd.to_datetime(raw, format=time_format, utc=True, errors="coerce")
    text = raw.astype("string")
    iso = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    given = text.notna() & (text.str.strip() != "")
    if not given.any() or iso[given].notna().mean() >= 0.5:  # ISO 8601 (a few broken rows are counted)
        return iso
    order = day_first(text[given])
    if order is None:
        raise ValueError("the dates could be day-first or month-first (no field above 12); give --time-format, "
                         "e.g. '%d/%m/%Y %H:%M'")  # fmt: skip
    return pd.to_datetime(text, dayfirst=order, utc=True, errors="coerce", format="mixed")


def checked_rows(table: pd.DataFrame, skipped: SkippedRows, time_format: str | None = None,
                 sensors: frozenset[str] | None = None) -> pd.DataFrame:  # fmt: skip
    """``table`` with parsed UTC times (and numeric values and catalog sensors when it has those columns),
    without the rows that cannot be used, each counted in ``skipped``; of duplicate (unit, sensor, time)
    rows the last is kept."""
    table = table.copy()
    table["time"] = parse_times(table["time"], time_format)
    bad_time = table["time"].isna()
    skipped.add("unparseable time", bad_time)
    keep = ~bad_time
    if "value" in table.columns:
        values = pd.to_numeric(table["value"], errors="coerce")
        skipped.add("unparseable value", keep & values.isna() & table["value"].notna())
        keep &= values.notna() | table["value"].isna()
        table["value"] = values
    if sensors is not None and "sensor" in table.columns:
        unknown = keep & ~table["sensor"].astype(str).isin(sensors)
        skipped.add("unknown sensor", unknown)
        keep &= ~unknown
    if "sensor" in table.columns:
        repeated = keep & table[keep].duplicated(["unit_id", "sensor", "time"], keep="last").reindex(
            table.index, fill_value=False)  # fmt: skip
        skipped.add("duplicate", repeated)
        keep &= ~repeated
    return table[keep]


__all__ = ["REASONS", "SkippedRows", "checked_rows", "day_first", "parse_times"]
