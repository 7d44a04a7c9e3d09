"""Calibration files: a folder of versioned JSON, ``<sensor>[__<strain>].v<N>.json``, written by ``algaflow
calibrate --store`` and read by the live pipeline (``[pipeline] calibrations``) and ``algaflow fuse
--calibration``. A fit is stored as the next version and never overwrites an earlier one.

Why here, in the service layer: the curves and their fits are numeric (fusion.calibration, which does no file
I/O); keeping and finding their files is service file management. The store may not import the numeric core
(tests/test_layers.py), so a store module could only handle plain dicts and every caller would convert them:
the file format would then live in two places. Here one module owns the whole file format, from dataclass to
JSON and back, and the layers still point one way: fusion ← service.calibrations ← service.pipeline, cli.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

from algaflow.fusion.calibration import BiomassCalibration, Calibration, PhCalibration

_VERSIONED = re.compile(r"^(?P<stem>.+)\.v(?P<version>\d+)\.json$")


def calibration_stem(calibration: Calibration) -> str:
    if isinstance(calibration, BiomassCalibration):
        return f"{calibration.sensor}__{calibration.strain}"
    return calibration.sensor


def save_calibration(calibration: Calibration, folder: Path) -> Path:
    """Write ``folder/<sensor>[__<strain>].v<N>.json`` with N one past the newest there; never overwrites."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stem = calibration_stem(calibration)
    versions = [int(m["version"]) for p in folder.glob(f"{stem}.v*.json")
                if (m := _VERSIONED.match(p.name)) and m["stem"] == stem]  # fmt: skip
    version = max(versions, default=0) + 1
    created = datetime.now(UTC).isoformat(timespec="seconds")
    record = asdict(calibration) | {"version": version, "created": created, "kind": calibration.kind}
    path = folder / f"{stem}.v{version}.json"
    with path.open("x", encoding="utf-8") as handle:
        json.dump(record, handle, indent=2)
    return path


def load_calibration(path: Path) -> Calibration:
    """Read a stored calibration file; a folder and stem pick the newest version (``latest_calibration``)."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"calibration file {path}: {error}") from None
    kind = record.pop("kind", None)
    try:
        if kind == "biomass":
            record["coefficients"] = tuple(record["coefficients"])
            record["covariance"] = tuple(tuple(row) for row in record["covariance"])
            record["dry_weight_range"] = tuple(record["dry_weight_range"])
            return BiomassCalibration(**record)
        if kind == "ph":
            record["buffer_ph"] = tuple(record["buffer_ph"])
            record["deviation_mv_25c"] = tuple(record["deviation_mv_25c"])
            return PhCalibration(**record)
    except TypeError as error:
        raise ValueError(f"calibration file {path}: {error}") from None
    raise ValueError(f"calibration file {path}: unknown kind {kind!r} (biomass or ph)")


def latest_calibration(folder: Path, stem: str) -> Path:
    """The newest ``<stem>.v<N>.json`` in ``folder``."""
    candidates = [(int(m["version"]), p) for p in Path(folder).glob(f"{stem}.v*.json")
                  if (m := _VERSIONED.match(p.name)) and m["stem"] == stem]  # fmt: skip
    if not candidates:
        raise ValueError(f"no calibration {stem}.v*.json in {folder}")
    return max(candidates)[1]


def latest_biomass_calibration(folder: Path | None, sensor: str, strain: str) -> tuple[BiomassCalibration, Path] | None:
    """The newest stored curve for ``sensor`` and ``strain`` in ``folder`` and its file (None if the folder or
    the curve is absent: the chain then uses the strain's catalog slope)."""
    if folder is None or not Path(folder).is_dir():
        return None
    try:
        path = latest_calibration(folder, f"{sensor}__{strain}")
    except ValueError:
        return None
    return load_biomass_calibration(path), path


def load_biomass_calibration(path: Path) -> BiomassCalibration:
    """A stored biomass curve (a pH calibration there is an error)."""
    curve = load_calibration(path)
    if not isinstance(curve, BiomassCalibration):
        raise ValueError(f"calibration file {path} is not a biomass curve")
    return curve
