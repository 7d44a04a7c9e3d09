"""The gas-balance route of CO2 captured: exact integrals, DIC against the carbonate solver, its error bars by
Monte Carlo, and agreement with the biomass route on a simulated reactor whose CO2 all passes the analysers."""

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from algaflow.catalog import SENSORS
from algaflow.cli.main import app
from algaflow.fusion.gas_balance import (
    GasBalanceUncertainty,
    agreement,
    co2_from_gas_balance,
    dic_storage,
    dissolved_inorganic_carbon,
)
from algaflow.model.chemistry import carbonate_system
from algaflow.model.gas import CO2_MOLAR_MASS_G, MOLAR_GAS_VOLUME_L

NO_CALIBRATION_ERROR = GasBalanceUncertainty(0.0, 0.0, 0.0, 0.0)


def test_uptake_integral_is_exact_for_a_linear_rate():
    """x_in − x_out rising linearly from 0 to 2,000 ppm over 10 h at 5 L/min: U = ṅ · 1,000 ppm · 10 h."""
    times = np.linspace(0.0, 10.0, 601)
    readings = {"co2_gas_in": np.full(times.size, 20000.0), "co2_gas_out": 20000.0 - 200.0 * times,
                "air_flow": np.full(times.size, 5.0)}  # fmt: skip
    balance = co2_from_gas_balance(times, readings, volume_l=80.0, salinity=0.0, uncertainty=NO_CALIBRATION_ERROR)
    molar_flow = 5.0 * 60.0 / MOLAR_GAS_VOLUME_L
    expected = molar_flow * 1e-6 * 100.0 * times**2 * CO2_MOLAR_MASS_G  # ∫ 200 t dt = 100 t²
    np.testing.assert_allclose(balance.captured_g, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(balance.stored_g, 0.0)


def test_missing_gas_sensor_gives_no_balance():
    times = np.arange(10.0)
    assert co2_from_gas_balance(times, {"co2_gas_out": times, "air_flow": times}, 80.0, 0.0) is None


def test_dissolved_inorganic_carbon_matches_the_carbonate_solver():
    """DIC from (CO2*, pH) inverts carbonate_system(ph, dic): it returns the CO2* we feed back in."""
    ph = np.array([6.5, 7.0, 7.8, 8.6, 9.2])
    temperature = np.array([15.0, 20.0, 25.0, 30.0, 35.0])
    for salinity in (0.0, 35.0):
        reference = carbonate_system(ph=ph, temperature_c=temperature, salinity=salinity,
                                     dic_umol_per_kg=np.full(ph.size, 2000.0))  # fmt: skip
        dic, _ = dissolved_inorganic_carbon(reference.co2, ph, temperature, salinity)
        np.testing.assert_allclose(dic, 2000.0, rtol=1e-9)


def test_dic_slope_is_the_derivative_in_ph():
    ph, temperature = np.array([6.8, 7.5, 8.3]), np.array([22.0, 22.0, 22.0])
    co2 = np.ones(3)
    _, slope = dissolved_inorganic_carbon(co2, ph, temperature, 0.0)
    step = 1e-6
    up, _ = dissolved_inorganic_carbon(co2, ph + step, temperature, 0.0)
    down, _ = dissolved_inorganic_carbon(co2, ph - step, temperature, 0.0)
    np.testing.assert_allclose(slope, (np.log(up) - np.log(down)) / (2 * step), rtol=1e-6)


def test_storage_is_the_change_in_dic_except_across_harvests():
    """DIC on plateaus (10 → 12 mmol/L, a harvest at 4 h swapping in medium → 9, then 11): stored DIC is
    +2 before the harvest and +4 at the end; the −3 step across the harvest is not counted."""
    times = np.arange(0.0, 8.01, 0.25)
    dic = np.select([times < 2, times < 4, times < 6], [10.0, 12.0, 9.0], 11.0)
    ph = np.full(times.size, 7.5)
    temperature = np.full(times.size, 25.0)
    factor, _ = dissolved_inorganic_carbon(np.ones(times.size), ph, temperature, 0.0)
    readings = {"co2_gas_in": np.full(times.size, 20000.0), "co2_gas_out": np.full(times.size, 20000.0),
                "air_flow": np.full(times.size, 5.0), "ph_tank": ph,
                "dco2_tank": dic / factor * CO2_MOLAR_MASS_G, "temp_tank": temperature}  # fmt: skip
    balance = co2_from_gas_balance(times, readings, 50.0, 0.0, harvest_times_h=[4.0])
    to_grams = 50.0 * 1e-3 * CO2_MOLAR_MASS_G
    for time, expected in ((1.0, 0.0), (3.75, 2.0), (5.0, 2.0), (5.75, 2.0), (8.0, 4.0)):
        np.testing.assert_allclose(balance.stored_g[np.searchsorted(times, time)], expected * to_grams, rtol=1e-9,
                                   atol=1e-9)


def test_storage_error_bar_matches_monte_carlo():
    """Noise on every DIC sample: the sd of the stored change (window means, a harvest) by Monte Carlo."""
    rng = np.random.default_rng(2)
    times = np.arange(0.0, 12.0, 1 / 60)
    segment_start = np.where(times >= 5.0, np.searchsorted(times, 5.0), 0)
    variance = np.full(times.size, 0.3**2)
    draws = [dic_storage(times, 10.0 + 0.3 * rng.standard_normal(times.size), variance, segment_start, 1.0)[0]
             for _ in range(3000)]  # fmt: skip
    _, predicted = dic_storage(times, np.full(times.size, 10.0), variance, segment_start, 1.0)
    np.testing.assert_allclose(np.std(draws, axis=0)[1:], np.sqrt(predicted[1:]), rtol=0.08)
    assert predicted[0] == 0.0


def test_random_error_bar_matches_monte_carlo():
    """Analyser noise only: the sd of the integral at each time equals the spread over 2,000 noisy records."""
    rng = np.random.default_rng(1)
    times = np.sort(rng.uniform(0.0, 6.0, 200))
    flow = 4.0 + np.sin(times)
    truth_out = 20000.0 - 500.0 * np.sin(times) ** 2
    noise_in, noise_out = SENSORS["co2_gas_in"].noise_sd, SENSORS["co2_gas_out"].noise_sd
    totals = []
    for _ in range(2000):
        readings = {"co2_gas_in": 20000.0 + noise_in * rng.standard_normal(times.size),
                    "co2_gas_out": truth_out + noise_out * rng.standard_normal(times.size), "air_flow": flow}
        totals.append(co2_from_gas_balance(times, readings, 80.0, 0.0, uncertainty=NO_CALIBRATION_ERROR).captured_g)
    predicted = co2_from_gas_balance(times, {"co2_gas_in": np.full(times.size, 20000.0), "co2_gas_out": truth_out,
                                             "air_flow": flow}, 80.0, 0.0,
                                     uncertainty=NO_CALIBRATION_ERROR).captured_sd  # fmt: skip
    spread = np.std(totals, axis=0)
    np.testing.assert_allclose(spread[1:], predicted[1:], rtol=0.08)


def test_agreement_is_a_z_score():
    np.testing.assert_allclose(agreement(np.array([100.0]), np.array([3.0]), np.array([110.0]), np.array([4.0])),
                               [2.0])  # fmt: skip


SEALED_TUBES = """
name = "sealed tubes"
strain = "chlorella_vulgaris"
days = 3
units = 2
seed = 5
[reactor]
kla_lit_per_h = 0.0
[[events]]
time_h = 40
kind = "harvest"
value = 0.5
[sensors]
include = ["od750", "co2_gas_in", "co2_gas_out", "air_flow", "ph_tank", "dco2_tank", "temp_tank"]
"""


@pytest.fixture(scope="module")
def sealed(tmp_path_factory):
    """A tubular loop whose tubes exchange no gas: every mole of CO2 fixed passes the two analysers."""
    folder = tmp_path_factory.mktemp("sealed")
    (folder / "sealed.toml").write_text(SEALED_TUBES)
    runner = CliRunner()
    result = runner.invoke(app, ["simulate", "--scenario", str(folder / "sealed.toml"), "--out", str(folder)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["fuse", str(folder / "telemetry.parquet"), "--events", str(folder / "events.parquet"),
                                 "--out", str(folder / "estimates.parquet")])  # fmt: skip
    assert result.exit_code == 0, result.output
    return folder


def test_both_routes_cover_the_true_co2_and_agree(sealed):
    estimates = pd.read_parquet(sealed / "estimates.parquet")
    truth = pd.read_parquet(sealed / "truth.parquet")
    events = pd.read_parquet(sealed / "events.parquet")
    assert (events["kind"] == "harvest").any(), "the scenario should harvest, so storage skips a harvest step"
    for unit, rows in estimates.groupby("unit_id"):
        true = truth[truth["unit_id"] == unit]
        late = rows[rows["time"] >= rows["time"].iloc[0] + pd.Timedelta(hours=6)]
        true_co2 = np.interp(late["time"].astype("int64"), true["time"].astype("int64"), true["co2_captured_g"])
        gas_error = (late["co2_gas_balance_g"] - true_co2) / late["co2_gas_balance_sd"]
        biomass_error = (late["co2_captured_g"] - true_co2) / late["co2_captured_sd"]
        assert np.mean(np.abs(gas_error) < 1.96) > 0.9, unit
        assert np.mean(np.abs(biomass_error) < 1.96) > 0.9, unit
        assert np.mean(np.abs(late["co2_routes_z"]) < 2.0) > 0.9, unit
        assert late["co2_gas_balance_g"].iloc[-1] > 20.0  # a real uptake, not zero against zero
