"""Calibration files (service.calibrations): each fit is the next version, read back as it was fitted."""

import json

import numpy as np
import pytest

from algaflow.fusion.calibration import (
    NERNST_SLOPE_25C_MV,
    BiomassCalibration,
    fit_biomass_calibration,
    fit_ph_calibration,
)
from algaflow.service.calibrations import (
    calibration_stem,
    latest_biomass_calibration,
    latest_calibration,
    load_biomass_calibration,
    load_calibration,
    save_calibration,
)


def _curve(scale=1.0, strain="chlorella_vulgaris"):
    dry_weight = np.linspace(0.05, 2.0, 12)
    reading = 0.02 + 1.1 * dry_weight + 0.01 * np.random.default_rng(0).standard_normal(12)
    return fit_biomass_calibration(dry_weight, reading * scale, "od750", strain)


def _electrode():
    buffers = np.array([4.0, 7.0])
    return fit_ph_calibration(buffers, -NERNST_SLOPE_25C_MV * (buffers - 7.0), 25)


def test_calibrations_are_stored_as_new_versions_and_read_back(tmp_path):
    first, second = _curve(), _curve(1.05)
    paths = [save_calibration(first, tmp_path), save_calibration(second, tmp_path)]
    assert [p.name for p in paths] == ["od750__chlorella_vulgaris.v1.json", "od750__chlorella_vulgaris.v2.json"]
    newest = load_calibration(latest_calibration(tmp_path, "od750__chlorella_vulgaris"))
    assert isinstance(newest, BiomassCalibration) and newest.version == 2
    assert newest.coefficients == pytest.approx(second.coefficients)
    np.testing.assert_allclose(newest.covariance, second.covariance, rtol=1e-12)
    assert newest.dry_weight_range == second.dry_weight_range and newest.created
    electrode = _electrode()
    assert calibration_stem(electrode) == "ph_tank"
    stored = load_calibration(save_calibration(electrode, tmp_path))
    assert stored.buffer_ph == electrode.buffer_ph and stored.version == 1
    assert json.loads(paths[0].read_text())["kind"] == "biomass"
    (tmp_path / "broken.v1.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken"):
        load_calibration(tmp_path / "broken.v1.json")
    (tmp_path / "odd.v1.json").write_text('{"kind": "turbidity"}')
    with pytest.raises(ValueError, match="unknown kind 'turbidity'"):
        load_calibration(tmp_path / "odd.v1.json")


def test_the_pipeline_finds_the_newest_biomass_curve_or_none(tmp_path):
    assert latest_biomass_calibration(None, "od750", "chlorella_vulgaris") is None
    assert latest_biomass_calibration(tmp_path / "absent", "od750", "chlorella_vulgaris") is None
    save_calibration(_curve(), tmp_path)
    save_calibration(_curve(1.05), tmp_path)
    save_calibration(_curve(strain="nannochloropsis_oceanica"), tmp_path)
    curve, path = latest_biomass_calibration(tmp_path, "od750", "chlorella_vulgaris")
    assert path.name == "od750__chlorella_vulgaris.v2.json" and curve.version == 2
    assert latest_biomass_calibration(tmp_path, "od680", "chlorella_vulgaris") is None
    with pytest.raises(ValueError, match="not a biomass curve"):
        load_biomass_calibration(save_calibration(_electrode(), tmp_path))
