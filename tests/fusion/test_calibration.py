"""Calibration curves against independent references: NumPy's polyfit and SciPy's linregress for the
least-squares fit and its covariance, the Nernst equation for pH electrodes, and Monte Carlo for the
propagated uncertainty."""

import numpy as np
import pytest
from scipy import stats

from algaflow.fusion.calibration import (
    NERNST_SLOPE_25C_MV,
    fit_biomass_calibration,
    fit_ph_calibration,
)


def _pairs(seed=0, curvature=0.0, n=12):
    rng = np.random.default_rng(seed)
    dry_weight = np.linspace(0.05, 2.0, n)
    reading = 0.02 + 1.1 * dry_weight + curvature * dry_weight**2 + 0.01 * rng.standard_normal(n)
    return dry_weight, reading


def test_linear_fit_equals_scipy_linregress():
    dry_weight, reading = _pairs()
    curve = fit_biomass_calibration(dry_weight, reading, "od750", "chlorella_vulgaris", degree=1)
    reference = stats.linregress(dry_weight, reading)
    assert curve.intercept == pytest.approx(reference.intercept, rel=1e-10)
    assert curve.slope == pytest.approx(reference.slope, rel=1e-10)
    assert np.sqrt(curve.covariance[1][1]) == pytest.approx(reference.stderr, rel=1e-8)
    assert np.sqrt(curve.covariance[0][0]) == pytest.approx(reference.intercept_stderr, rel=1e-8)


def test_quadratic_fit_and_covariance_equal_numpy_polyfit():
    dry_weight, reading = _pairs(curvature=-0.08)
    curve = fit_biomass_calibration(dry_weight, reading, "turbidity_tank", "chlorella_vulgaris", degree=2)
    coefficients, unscaled = np.polyfit(dry_weight, reading, 2, cov="unscaled")
    np.testing.assert_allclose(curve.coefficients, coefficients[::-1], rtol=1e-9)
    expected = unscaled[::-1, ::-1] * curve.residual_sd**2
    np.testing.assert_allclose(np.asarray(curve.covariance), expected, rtol=1e-8)
    x = np.array([0.1, 1.0, 1.9])
    np.testing.assert_allclose(curve.dry_weight(curve.reading(x)), x, rtol=1e-12)


def test_propagated_log_biomass_variance_matches_monte_carlo():
    dry_weight, reading = _pairs(seed=3, curvature=-0.05, n=8)
    curve = fit_biomass_calibration(dry_weight, reading, "od750", "chlorella_vulgaris", degree=2)
    rng = np.random.default_rng(1)
    draws = rng.multivariate_normal(curve.coefficients, curve.covariance, 200_000)
    x = 1.2
    signal = curve.slope * x + curve.curvature * x**2  # the reading net of the intercept, held fixed
    a, c = draws[:, 1], draws[:, 2]
    recovered = 2.0 * signal / (a + np.sqrt(a * a + 4.0 * c * signal))
    assert curve.log_biomass_variance(x) == pytest.approx(np.var(np.log(recovered)), rel=0.05)


def test_bad_pairs_are_refused_with_a_reason():
    dry_weight, reading = _pairs()
    with pytest.raises(ValueError, match="not a biomass sensor"):
        fit_biomass_calibration(dry_weight, reading, "ph_tank", "chlorella_vulgaris")
    with pytest.raises(ValueError, match="distinct dry weights"):
        fit_biomass_calibration(np.array([0.1, 0.1, 0.2]), np.array([0.1, 0.11, 0.2]), "od750", "x")
    with pytest.raises(ValueError, match="NaN"):
        fit_biomass_calibration(np.r_[dry_weight, np.nan], np.r_[reading, 1.0], "od750", "x")
    with pytest.raises(ValueError, match="does not rise"):
        fit_biomass_calibration(dry_weight, -reading, "od750", "x")


def _nernst_mv(ph, temperature_c, offset_mv=0.0, slope_fraction=1.0):
    return offset_mv - slope_fraction * NERNST_SLOPE_25C_MV * (ph - 7.0) * (temperature_c + 273.15) / 298.15


@pytest.mark.parametrize("buffers", [(4.01, 7.0), (4.01, 7.0, 10.01)])
def test_ph_calibration_inverts_the_nernst_equation(buffers):
    buffers = np.array(buffers)
    electrode = fit_ph_calibration(buffers, _nernst_mv(buffers, 22.0, 12.0, 0.97), 22.0, "ph_tube")
    np.testing.assert_allclose(electrode.slope_percent(), 97.0, rtol=1e-9)
    assert electrode.offset_mv == pytest.approx(12.0, rel=1e-9)
    ph = np.array([3.0, 6.5, 8.2, 11.0])
    np.testing.assert_allclose(electrode.ph(_nernst_mv(ph, 35.0, 12.0, 0.97), 35.0), ph, atol=1e-9)


def test_three_point_calibration_keeps_acid_and_alkaline_slopes_apart():
    buffers = np.array([4.01, 7.0, 10.01])
    millivolts = np.array([_nernst_mv(4.01, 25, 5, 0.99), _nernst_mv(7.0, 25, 5), _nernst_mv(10.01, 25, 5, 0.93)])
    electrode = fit_ph_calibration(buffers, millivolts, 25.0)
    np.testing.assert_allclose(electrode.slope_percent(), [99.0, 93.0], rtol=1e-9)
    np.testing.assert_allclose(electrode.ph(millivolts, 25.0), buffers, atol=1e-12)


def test_worn_electrode_and_bad_buffers_are_refused():
    with pytest.raises(ValueError, match="Nernstian"):
        fit_ph_calibration(np.array([4.0, 7.0]), _nernst_mv(np.array([4.0, 7.0]), 25, 0, 0.8), 25)
    with pytest.raises(ValueError, match="offset"):
        fit_ph_calibration(np.array([4.0, 7.0]), _nernst_mv(np.array([4.0, 7.0]), 25, 90), 25)
    with pytest.raises(ValueError, match="2 or 3 buffers"):
        fit_ph_calibration(np.array([7.0]), np.array([0.0]), 25)
    with pytest.raises(ValueError, match=r"0\.5 pH"):
        fit_ph_calibration(np.array([7.0, 7.1]), np.array([0.0, -6.0]), 25)
