"""``algaflow calibrate`` (cli.calibrate): pairs file in, the next version of the curve's file out."""

import numpy as np
import pandas as pd
import pytest

from algaflow.cli.calibrate import calibrate_file
from algaflow.fusion.calibration import NERNST_SLOPE_25C_MV
from algaflow.service.calibrations import load_calibration


def test_calibrate_file_stores_each_fit_as_the_next_version(tmp_path):
    dry_weight = np.linspace(0.05, 2.0, 10)
    pairs = tmp_path / "pairs.csv"
    pd.DataFrame({"dry_weight_g_per_l": dry_weight, "reading": 0.03 + 1.2 * dry_weight
                  + 0.01 * np.sin(7 * dry_weight)}).to_csv(pairs, index=False)  # fmt: skip
    store = tmp_path / "calibrations"
    first, lines = calibrate_file(pairs, "od750", store)
    second, _ = calibrate_file(pairs, "od750", store)
    assert (first.name, second.name) == ("od750__chlorella_vulgaris.v1.json", "od750__chlorella_vulgaris.v2.json")
    assert "residual sd" in lines[1]
    assert load_calibration(second).slope == pytest.approx(1.2, abs=0.02)
    buffers = pd.DataFrame({"buffer_ph": [4.0, 7.0, 10.0], "temperature_c": 25.0})
    buffers["millivolts"] = -NERNST_SLOPE_25C_MV * (buffers["buffer_ph"] - 7.0)
    buffers.to_csv(tmp_path / "buffers.csv", index=False)
    electrode, lines = calibrate_file(tmp_path / "buffers.csv", "ph_tank", store)
    assert electrode.name == "ph_tank.v1.json" and "100.0" in lines[1]
    with pytest.raises(ValueError, match="cannot calibrate 'do_tank'"):
        calibrate_file(pairs, "do_tank", store)
