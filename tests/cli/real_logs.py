"""The MIT cyanobacteria logs in ../shared/data as long-format telemetry (tests skip where they are absent)."""

from pathlib import Path

import numpy as np
import pandas as pd

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
MIT = DATA / "mit_cyanobacteria_ingie-baho"


def colour_log_telemetry(path: Path, unit: str) -> pd.DataFrame:
    """The authors' OD from the red channel of the colour sensor: OD = log10(37123.4 / Red), as od680."""
    log = pd.read_csv(path, header=None, names=["time", "red", "green", "blue", "clear"])
    with np.errstate(divide="ignore"):
        od = np.log10(37123.4 / log["red"].astype(float))
    return pd.DataFrame({"unit_id": unit, "time": pd.to_datetime(log["time"], utc=True), "sensor": "od680",
                         "value": od})  # fmt: skip


def probe_log_telemetry(path: Path, unit: str, sensor: str) -> pd.DataFrame:
    """A (datetime, value) log of one probe (the DO and pH logs) as ``sensor``."""
    log = pd.read_csv(path, header=None, names=["time", "value"])
    return pd.DataFrame({"unit_id": unit, "time": pd.to_datetime(log["time"], utc=True), "sensor": sensor,
                         "value": log["value"].astype(float)})  # fmt: skip


def mit_telemetry(probes: bool = True) -> pd.DataFrame:
    """Every culture's colour-sensor OD (and, with ``probes``, its DO and pH logs), one unit per culture."""
    frames = []
    for folder in sorted(p for p in (MIT / "culture-data").iterdir() if p.is_dir()):
        unit = folder.name.replace(" ", "_")
        frames += [colour_log_telemetry(p, unit) for p in sorted(folder.glob("color_log_*.txt"))]
        if probes:
            frames += [probe_log_telemetry(p, unit, "do_tank") for p in sorted(folder.glob("do_log_*.csv"))]
            frames += [probe_log_telemetry(p, unit, "ph_tank") for p in sorted(folder.glob("ph_log_*.txt"))]
    return pd.concat(frames, ignore_index=True)
