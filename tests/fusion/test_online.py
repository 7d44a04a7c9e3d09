"""The live chain, fed sample by sample and interleaved across units, is the batch filter exactly."""

import numpy as np
import pytest

from algaflow.fusion.growth import filter_growth
from algaflow.fusion.growth_model import INVALID, MISSING, GrowthModel
from algaflow.fusion.online import STATE_FORMAT, OnlineGrowthFilter, StateFormatError, growth_rate_and_biomass


def _cultures(seed: int, units: int, steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logistic OD with noise, spikes, gaps, a leading gap, an announced and an unannounced harvest."""
    rng = np.random.default_rng(seed)
    times = np.cumsum(rng.uniform(0.05, 0.3, size=(units, steps)), axis=1)
    rate = rng.uniform(0.02, 0.08, size=(units, 1))
    biomass = 2.0 / (1.0 + 19.0 * np.exp(-rate * times))
    dilution = np.zeros((units, steps))
    dilution[:, steps // 2] = 0.7
    biomass[:, steps // 2:] *= 0.3
    biomass[:, 3 * steps // 4:] *= 0.5  # unannounced: a level jump
    od = biomass + rng.normal(0.0, 0.005, size=biomass.shape)
    od[rng.random(od.shape) < 0.03] = np.nan
    od[rng.random(od.shape) < 0.02] += 0.5  # spikes
    od[0, :4] = np.nan  # the chain starts late
    od[1, 2] = -3.0  # implausible
    dilution[0, 1] = 0.2  # announced before the first valid sample
    return times, od, dilution


def test_interleaved_samples_give_the_batch_filter_exactly():
    times, od, dilution = _cultures(seed=1, units=5, steps=300)
    dry_weight = np.full(od.shape, np.nan)  # manual samples on a few steps (one before unit 0's chain starts)
    dry_weight[:, [2, 120, 250]] = np.nan_to_num(od[:, [2, 120, 250]], nan=0.3) + 0.01
    batch = filter_growth(times, od, dilution, dry_weight=dry_weight, dry_weight_sd=0.03)
    chains = OnlineGrowthFilter()
    for _ in range(5):
        chains.add_unit(GrowthModel())
    units, steps = od.shape
    order = np.argsort(times.ravel(), kind="stable")  # interleave the units by arrival time
    unit_index, step_index = np.unravel_index(order, od.shape)
    means, covs, flags = np.empty((units, steps, 4)), np.empty((units, steps, 4, 4)), np.empty((units, steps), int)
    for chunk in np.array_split(np.arange(order.size), 97):  # uneven batches of arrivals
        u, k = unit_index[chunk], step_index[chunk]
        mean, cov, flag = chains.update(u, times[u, k], od[u, k], dilution[u, k], dry_weight[u, k], dry_weight_sd=0.03)
        means[u, k], covs[u, k], flags[u, k] = mean, cov, flag
    np.testing.assert_array_equal(flags, batch.flags)
    started = ~np.isnan(means[..., 0])
    first_valid = np.argmax(np.isfinite(od) & (od > -0.05), axis=1)
    np.testing.assert_array_equal(started, np.arange(steps) >= first_valid[:, None])
    assert first_valid[0] >= 4
    np.testing.assert_allclose(means[started], batch.mean[started], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(covs[started], batch.cov[started], rtol=1e-7, atol=1e-13)
    assert set(flags[0, :4]) == {MISSING} and flags[1, 2] == INVALID


def test_state_round_trip_resumes_where_it_stopped():
    times, od, dilution = _cultures(seed=2, units=2, steps=120)
    whole = OnlineGrowthFilter()
    resumed = OnlineGrowthFilter()
    for chains in (whole, resumed):
        chains.add_unit(GrowthModel())
        chains.add_unit(GrowthModel(od_noise_sd=0.01))
    u = np.repeat([0, 1], 120).reshape(2, 120).T.ravel()
    k = np.repeat(np.arange(120), 2)
    expected, _, _ = whole.update(u, times[u, k], od[u, k], dilution[u, k])
    resumed.update(u[:100], times[u[:100], k[:100]], od[u[:100], k[:100]], dilution[u[:100], k[:100]])
    restored = OnlineGrowthFilter.from_state({name: value.tolist() for name, value in resumed.state().items()})
    got, _, _ = restored.update(u[100:], times[u[100:], k[100:]], od[u[100:], k[100:]], dilution[u[100:], k[100:]])
    np.testing.assert_array_equal(got, expected[100:])


def test_estimate_columns_and_bad_input():
    chains = OnlineGrowthFilter()
    chains.add_unit(GrowthModel())
    mean, cov, _ = chains.update([0, 0], [0.0, 0.1], [0.5, 0.51])
    columns = growth_rate_and_biomass(mean, cov)
    assert columns["biomass_g_per_l"][-1] == pytest.approx(0.5, rel=0.05)
    assert np.all(columns["growth_rate_sd"] > 0)
    with pytest.raises(IndexError, match="1 units"):
        chains.update([1], [0.2], [0.5])
    with pytest.raises(ValueError, match="one length"):
        chains.update([0, 0], [0.2], [0.5])
    with pytest.raises(ValueError, match="dilution_fraction"):
        chains.update([0], [0.2], [0.5], [1.0])
    with pytest.raises(ValueError, match="lacks"):
        OnlineGrowthFilter.from_state({"mean": np.zeros((1, 4)), "format": [STATE_FORMAT]})
    with pytest.raises(StateFormatError, match="layout 1"):  # an older release's state (the chain on ln X)
        OnlineGrowthFilter.from_state({name: value for name, value in chains.state().items() if name != "format"})


def test_a_reset_unit_starts_afresh_and_replays_to_the_same_chain():
    times, od, dilution = _cultures(seed=3, units=2, steps=100)
    chains = OnlineGrowthFilter()
    for _ in range(2):
        chains.add_unit(GrowthModel())
    u = np.repeat([0, 1], 100)
    k = np.tile(np.arange(100), 2)
    first, _, _ = chains.update(u, times[u, k], od[u, k], dilution[u, k])
    other_before = chains.state()
    chains.reset_unit(0)
    assert np.isnan(chains.mean[0]).all()
    again, _, _ = chains.update(np.zeros(100, int), times[0], od[0], dilution[0])
    np.testing.assert_array_equal(again, first[:100])
    for name in ("mean", "cov", "clock"):
        np.testing.assert_array_equal(chains.state()[name][1], other_before[name][1])
    with pytest.raises(IndexError):
        chains.reset_unit(2)

