"""The reactor estimator: each biomass sensor's factor from the catalog; dry weights from the telemetry join the
biomass chain as factors on X."""

import numpy as np
import pytest

from algaflow.catalog import SENSORS, load_strain
from algaflow.fusion.calibration import fit_biomass_calibration
from algaflow.fusion.estimator import BIOMASS_SENSORS, dry_weight_at_samples, estimate_unit, sensor_growth_model
from algaflow.sim.suites import simulate_cases

STRAIN = load_strain("chlorella_vulgaris")


@pytest.mark.parametrize("sensor", BIOMASS_SENSORS)
def test_the_baseline_prior_is_the_catalogs_offset_and_a_curve_adds_its_intercept_variance(sensor):
    """The offset a calibration leaves on the probe (the catalog's offset_sd, which the simulator draws) is the
    prior sd of the chain's baseline; a fitted curve's intercept variance adds to it."""
    spec = SENSORS[sensor]
    model = sensor_growth_model(sensor, STRAIN)
    assert model.initial_baseline_sd == spec.offset_sd and model.od_noise_sd == spec.noise_sd
    biomass = np.linspace(0.1, 2.0, 12)
    signal = 0.02 + 0.9 * biomass + 0.01 * np.sin(7 * biomass)
    curve = fit_biomass_calibration(biomass, signal, sensor=sensor, strain="chlorella_vulgaris")
    with_curve = sensor_growth_model(sensor, STRAIN, calibration=curve)
    assert with_curve.initial_baseline_sd == pytest.approx(np.hypot(spec.offset_sd, np.sqrt(curve.covariance[0][0])))


def test_a_dry_weight_is_placed_on_the_first_chain_sample_at_or_after_it():
    times_h = np.array([0.0, 0.5, 1.0, 1.2, 2.0, 3.5])
    readings = {"dry_weight": np.array([np.nan, 0.4, np.nan, 0.5, np.nan, 0.9])}
    placed = dry_weight_at_samples(times_h, readings, np.array([0.0, 1.0, 1.5, 3.0]))
    np.testing.assert_array_equal(placed, [np.nan, 0.4, 0.5, np.nan])  # 0.9 at 3.5 h is after the last sample
    np.testing.assert_array_equal(dry_weight_at_samples(times_h, {}, np.array([0.0, 1.0])), [np.nan, np.nan])


@pytest.mark.parametrize("profile", ["logistic", "constant", "lag_exponential_stationary"])
def test_simulated_dry_weights_tighten_a_drifting_probes_biomass(profile):
    """The drifting-probe family (OD drifting up to 3 noise sd a day, dropouts, gaps), with the simulator's
    daily dry weights (sd 0.02 g/L, no probe to drift) in the telemetry: the estimate's biomass error falls
    and its band narrows, and the band covers the truth at least as often as without them."""
    errors, sds, covers = {}, {}, {}
    for case in simulate_cases(profile, "drift_dropouts_gaps", sensors=("od750", "dry_weight"), units=2, seed=5):
        od_times, od = case.readings["od750"]
        dw_times, dw = case.readings["dry_weight"]
        times_h = np.union1d(od_times, dw_times)
        on_grid = {"od750": np.full(times_h.size, np.nan), "dry_weight": np.full(times_h.size, np.nan)}
        on_grid["od750"][np.searchsorted(times_h, od_times)] = od
        on_grid["dry_weight"][np.searchsorted(times_h, dw_times)] = dw
        for name, readings in (("od", {"od750": on_grid["od750"]}), ("od+dw", on_grid)):
            estimates = estimate_unit(times_h, readings, [], STRAIN, 80.0)
            truth, _ = case.truth_at(estimates.times_h)
            late = estimates.times_h > 30.0
            error = (estimates.biomass_g_per_l - truth)[late]
            errors.setdefault(name, []).append(error)
            sds.setdefault(name, []).append(estimates.biomass_sd[late])
            covers.setdefault(name, []).append(np.abs(error) <= 1.96 * estimates.biomass_sd[late])
    rmse = {name: np.sqrt(np.mean(np.concatenate(e) ** 2)) for name, e in errors.items()}
    band = {name: np.median(np.concatenate(s)) for name, s in sds.items()}
    cover = {name: np.mean(np.concatenate(c)) for name, c in covers.items()}
    assert rmse["od+dw"] < 0.7 * rmse["od"]
    assert band["od+dw"] < 0.9 * band["od"]
    assert cover["od+dw"] >= min(cover["od"], 0.9)
