"""control.decisions against independent references: the daily net growth and its probability (the module
doc's formulas, computed here with numpy/scipy), harvest transients, robust alarms with hysteresis, sensor
faults, and the same decisions however the rows are batched."""

import itertools
import math
import tomllib
from collections import Counter
from importlib.resources import files

import numpy as np
import pytest
from scipy.special import ndtr, ndtri

from algaflow.catalog import SENSORS, load_strain
from algaflow.catalog.decisions import DECISION_KINDS, condition_key, fault_text
from algaflow.control.alarms import (
    degas_threshold_mg_per_l,
    oxygen_growth_loss,
    temperature_growth_loss,
    temperature_thresholds_c,
)
from algaflow.control.decisions import (
    HOUR_US,
    KINDS,
    SENSOR_NAMES,
    STATE_ARRAYS,
    DecisionPolicy,
    DecisionRows,
    DecisionState,
    decide,
    decide_unit,
    stuck_run_length,
)
from algaflow.control.harvest import HarvestPolicy, growth_stopped_probability, harvest_ready
from algaflow.fusion.sensor_information import DARK_SETTLE_H

STRAIN = load_strain("chlorella_vulgaris")
POLICY = DecisionPolicy()
THETA = POLICY.harvest.growth_threshold_per_h
STEP_US = 600_000_000  # 10 min: one row per window bin
DAY_ROWS = 144  # rows in a light cycle at 10 min


def _times(rows: int, step_us: int = STEP_US) -> np.ndarray:
    return np.arange(rows, dtype=np.int64) * step_us


def _estimates(biomass, sd_rel, rate=0.0, rate_sd=1e-3, dilution=None) -> np.ndarray:
    biomass = np.asarray(biomass, dtype=float)
    n = biomass.size
    dilution = np.zeros(n) if dilution is None else np.asarray(dilution, dtype=float)
    return np.column_stack([biomass, np.broadcast_to(sd_rel, n) * biomass, np.broadcast_to(rate, n),
                            np.broadcast_to(rate_sd, n), dilution])  # fmt: skip


def _of(decisions, *kinds):
    return [d for d in decisions if d.kind in kinds]


# --- daily net growth ------------------------------------------------------------------------------------------


def test_daily_growth_of_an_exponential_culture_is_its_rate_once_a_day_of_window_exists():
    rate, sd_rel = 0.02, 0.01
    time_us = _times(3 * DAY_ROWS + 1)
    t_h = time_us / HOUR_US
    decisions, advice = decide_unit("u", STRAIN, time_us, {}, _estimates(0.6 * np.exp(rate * t_h), sd_rel, rate))
    before = t_h < 24.0
    assert before.sum() == DAY_ROWS
    assert np.isnan(advice.daily_growth_per_h[before]).all() and np.isnan(advice.daily_growth_sd[before]).all()
    np.testing.assert_allclose(advice.daily_growth_per_h[~before], rate, rtol=1e-9)
    # σ_r = √((σ_X/X)(t)² + (σ_X/X)(t − 24 h)²) / 24 h, the window sample exactly a day back.
    np.testing.assert_allclose(advice.daily_growth_sd[~before], math.sqrt(2) * sd_rel / 24.0, rtol=1e-9)
    assert not advice.ready.any() and decisions == []


@pytest.mark.parametrize("fraction", [0.05, 0.1, 0.19])
def test_a_small_harvest_inside_the_window_does_not_change_the_daily_growth(fraction):
    """f < restart_fraction: corrected for through L; the transient's rows give no verdict and their (mid-mix)
    biomass never enters the window."""
    rate, harvest_row = 0.015, 30 * 6  # harvest at 30 h
    time_us = _times(4 * DAY_ROWS)
    t_h = time_us / HOUR_US
    biomass = 0.8 * np.exp(rate * t_h) * np.where(t_h >= 30.0, 1.0 - fraction, 1.0)
    transient = (t_h >= 30.0) & (t_h < 30.0 + POLICY.transient_h)
    biomass[transient] *= 1.7  # readings landing mid-mix: never a window sample
    dilution = np.zeros(t_h.size)
    dilution[harvest_row] = fraction
    decisions, advice = decide_unit("u", STRAIN, time_us, {}, _estimates(biomass, 0.01, rate, dilution=dilution))
    assert transient.sum() == 12 and transient[harvest_row]
    assert np.isnan(advice.daily_growth_per_h[transient]).all()
    judged = (t_h >= 24.0) & ~transient
    assert judged[harvest_row + 12]  # the first row after the transient already has a verdict
    np.testing.assert_allclose(advice.daily_growth_per_h[judged], rate, rtol=1e-9)
    assert decisions == []


def test_a_restarting_harvest_clears_the_advice_and_the_next_verdict_comes_a_light_cycle_after_the_transient():
    """A stationary culture (r = 0) is ready from its first verdict; a harvest of 0.5 ≥ restart_fraction clears
    it, and no verdict comes for transient_h + day_h after it: then it is ready again."""
    harvest_row = 40 * 6
    time_us = _times(4 * DAY_ROWS)
    t_h = time_us / HOUR_US
    biomass = np.where(t_h >= 40.0, 1.0, 2.0)
    dilution = np.zeros(t_h.size)
    dilution[harvest_row] = 0.5
    decisions, advice = decide_unit("u", STRAIN, time_us, {}, _estimates(biomass, 0.01, 0.0, dilution=dilution))
    restart_h = 40.0 + POLICY.transient_h + POLICY.day_h
    assert [(d.kind, d.time_us / HOUR_US) for d in decisions] == [
        ("harvest_ready", 24.0), ("harvest_clear", 40.0), ("harvest_ready", restart_h)]  # fmt: skip
    clear = decisions[1]
    assert clear.params == {"fraction": 0.5}
    assert clear.reason == "harvested or diluted (50% removed): the advice starts again"
    quiet = (t_h >= 40.0) & (t_h < restart_h)
    assert np.isnan(advice.daily_growth_per_h[quiet]).all() and not advice.ready[quiet].any()
    assert advice.ready[(t_h >= 24.0) & (t_h < 40.0)].all() and advice.ready[t_h >= restart_h].all()
    np.testing.assert_allclose(advice.daily_growth_per_h[t_h >= restart_h], 0.0, atol=1e-15)


def test_a_small_dilution_clears_the_advice_and_nothing_changes_until_its_transient_is_over():
    harvest_row = 40 * 6
    time_us = _times(3 * DAY_ROWS)
    t_h = time_us / HOUR_US
    biomass = np.where(t_h >= 40.0, 1.8, 2.0)  # 10 % removed, then stationary again
    dilution = np.zeros(t_h.size)
    dilution[harvest_row] = 0.1
    decisions, advice = decide_unit("u", STRAIN, time_us, {}, _estimates(biomass, 0.01, 0.0, dilution=dilution))
    back_h = 40.0 + POLICY.transient_h  # the window was kept: the verdict comes as soon as the transient is over
    assert [(d.kind, d.time_us / HOUR_US) for d in decisions] == [
        ("harvest_ready", 24.0), ("harvest_clear", 40.0), ("harvest_ready", back_h)]  # fmt: skip
    assert decisions[1].params == {"fraction": 0.1}
    # The fall 2.0 → 1.8 is the dilution's, not growth's: r = 0 through L.
    np.testing.assert_allclose(advice.daily_growth_per_h[t_h >= back_h], 0.0, atol=1e-15)
    assert np.isnan(advice.daily_growth_per_h[(t_h >= 40.0) & (t_h < back_h)]).all()


# --- probability and hysteresis --------------------------------------------------------------------------------


def _reference_advice(time_us, estimates, policy: HarvestPolicy):
    """The module doc's rule, step by step, for rows every 10 min with no harvests: s = t − 24 h."""
    t_h = time_us / HOUR_US
    log_x, var = np.log(estimates[:, 0]), (estimates[:, 1] / estimates[:, 0]) ** 2
    daily, sd = np.full(t_h.size, np.nan), np.full(t_h.size, np.nan)
    back = np.searchsorted(time_us, time_us - 24 * HOUR_US, side="right") - 1  # in µs: no rounding
    has = t_h >= 24.0
    elapsed = t_h[has] - t_h[back[has]]
    daily[has] = (log_x[has] - log_x[back[has]]) / elapsed
    sd[has] = np.sqrt(var[has] + var[back[has]]) / elapsed
    p = ndtr((policy.growth_threshold_per_h - daily) / sd)
    ready, state = np.zeros(t_h.size, dtype=bool), False
    for k in range(t_h.size):
        if has[k]:
            if p[k] >= policy.probability_on and estimates[k, 0] >= policy.min_biomass_g_per_l:
                state = True
            elif p[k] < policy.probability_off:
                state = False
        ready[k] = state
    return daily, sd, p, ready


def test_ready_follows_the_normal_probability_with_hysteresis_and_the_biomass_floor():
    """μ swings around θ and the estimate's sd breathes, so p crosses p_on and p_off both ways several times;
    the culture crosses X_min on the way."""
    time_us = _times(9 * DAY_ROWS)
    t_h = time_us / HOUR_US
    mu = THETA - 0.006 * np.sin(2 * np.pi * t_h / 70.0)  # below θ first, while the culture is below X_min
    log_x = np.log(0.42) + np.concatenate([[0.0], np.cumsum(0.5 * (mu[1:] + mu[:-1]) * np.diff(t_h))])
    sd_rel = 0.004 + 0.003 * np.sin(2 * np.pi * t_h / 31.0) ** 2
    estimates = _estimates(np.exp(log_x), sd_rel, mu)
    decisions, advice = decide_unit("u", STRAIN, time_us, {}, estimates)
    daily, sd, p, ready = _reference_advice(time_us, estimates, POLICY.harvest)
    np.testing.assert_allclose(advice.daily_growth_per_h, daily, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(advice.daily_growth_sd, sd, rtol=1e-9)
    np.testing.assert_array_equal(advice.ready, ready)
    switches = np.flatnonzero(np.diff(np.r_[False, ready].astype(int)))
    assert [d.time_us for d in decisions] == time_us[switches].tolist()
    assert [d.kind for d in decisions] == ["harvest_ready" if ready[k] else "harvest_clear" for k in switches]
    # The sequence exercises what it claims to: two ways on and off, held between p_off and p_on, gated by X_min.
    kinds = Counter(d.kind for d in decisions)
    assert kinds["harvest_ready"] >= 2 and kinds["harvest_clear"] >= 2
    held = (p >= POLICY.harvest.probability_off) & (p < POLICY.harvest.probability_on)
    assert (held & ready).any() and (held & ~ready & (t_h >= 24)).any()
    assert ((p >= POLICY.harvest.probability_on) & (np.exp(log_x) < POLICY.harvest.min_biomass_g_per_l)).any()
    for d in _of(decisions, "harvest_ready"):
        k = int(np.searchsorted(time_us, d.time_us))
        assert d.params["daily_growth_per_d"] == pytest.approx(24 * daily[k], rel=1e-9)
        assert d.reason.startswith(f"growth has stopped: {24 * daily[k]:+.3f} ± {24 * sd[k]:.3f} per day over the last")


@pytest.mark.parametrize(("target", "on"), [(0.9 + 1e-7, True), (0.9 - 1e-7, False)])
def test_ready_turns_on_exactly_at_p_on(target, on):
    """The last row's sd is set so that Φ((θ − r)/σ_r) lands just above or just below p_on."""
    time_us = _times(DAY_ROWS + 1)
    t_h = time_us / HOUR_US
    rate, sd_rel = THETA - 0.002, 0.002
    estimates = _estimates(np.exp(rate * t_h), sd_rel, rate)
    sigma = (THETA - rate) / ndtri(target)
    estimates[-1, 1] = estimates[-1, 0] * math.sqrt((24.0 * sigma) ** 2 - sd_rel**2)
    decisions, advice = decide_unit("u", STRAIN, time_us, {}, estimates)
    assert ndtr((THETA - advice.daily_growth_per_h[-1]) / advice.daily_growth_sd[-1]) == pytest.approx(target, abs=1e-9)
    assert advice.ready[-1] == on and advice.ready.sum() == on
    assert [d.kind for d in decisions] == (["harvest_ready"] if on else [])


@pytest.mark.parametrize(("excess", "off"), [(-1e-7, False), (1e-7, True)])
def test_ready_turns_off_only_below_p_off(excess, off):
    """p_off = 0.5 is r = θ: the advice, on, stays on while r < θ and goes off once r > θ (p < 0.5)."""
    time_us = _times(2 * DAY_ROWS + 1)
    t_h = time_us / HOUR_US
    log_x = np.where(t_h <= 24.0, 0.0, (THETA + excess) * (t_h - 24.0))  # flat a day, then growth at θ + excess
    decisions, advice = decide_unit("u", STRAIN, time_us, {}, _estimates(np.exp(log_x), 0.001))
    assert advice.ready[DAY_ROWS]  # on at the first verdict (r = 0)
    p_last = ndtr((THETA - advice.daily_growth_per_h[-1]) / advice.daily_growth_sd[-1])
    assert (p_last < POLICY.harvest.probability_off) == off
    assert advice.ready[-1] == (not off)
    assert [d.kind for d in decisions] == ["harvest_ready"] + (["harvest_clear"] if off else [])


def test_ready_needs_a_dense_culture():
    time_us = _times(2 * DAY_ROWS)
    flat = _estimates(np.full(time_us.size, POLICY.harvest.min_biomass_g_per_l * 0.99), 0.001)
    assert not decide_unit("u", STRAIN, time_us, {}, flat)[1].ready.any()
    flat[:, 0] = POLICY.harvest.min_biomass_g_per_l
    flat[:, 1] = 0.001 * flat[:, 0]
    assert decide_unit("u", STRAIN, time_us, {}, flat)[1].ready[DAY_ROWS:].all()


def test_the_recommended_fraction_returns_a_logistic_culture_to_its_most_productive_density():
    """μ̂ X̂ is highest at K/2 for a logistic culture; at the advice the fraction is 1 − X*/X, X* the biomass
    of the first highest μ̂ X̂ so far."""
    capacity, mu_max = 2.0, 0.05
    time_us = _times(6 * DAY_ROWS)
    t_h = time_us / HOUR_US
    biomass = capacity / (1.0 + (capacity / 0.2 - 1.0) * np.exp(-mu_max * t_h))
    mu = mu_max * (1.0 - biomass / capacity)
    decisions, _ = decide_unit("u", STRAIN, time_us, {}, _estimates(biomass, 0.002, mu))
    ready = _of(decisions, "harvest_ready")
    assert len(ready) == 1
    k = int(np.searchsorted(time_us, ready[0].time_us))
    best = int(np.argmax(mu[: k + 1] * biomass[: k + 1]))
    assert biomass[best] == pytest.approx(capacity / 2, rel=0.01)
    assert ready[0].params["fraction"] == round(1.0 - biomass[best] / biomass[k], 3)
    assert ready[0].params["biomass_g_per_l"] == biomass[k] and ready[0].params["growth_rate_per_h"] == mu[k]


# --- a night does not flag -------------------------------------------------------------------------------------


def test_a_night_does_not_flag_a_growing_culture_while_the_instantaneous_rule_flags_every_night():
    """μ = +a in 12 h of light, −b in 12 h of dark: daily net growth (12a − 12b)/24 ≫ θ. The old rule on
    the instantaneous μ (control.harvest) calls every dark hour ready; the daily rule never does."""
    a, b, rate_sd = 0.04, 0.005, 0.002
    time_us = _times(6 * DAY_ROWS)
    t_h = time_us / HOUR_US
    light = (t_h % 24.0) < 12.0
    mu = np.where(light, a, -b)
    log_x = np.log(0.6) + np.concatenate([[0.0], np.cumsum(mu[:-1] * np.diff(t_h))])  # μ held over each step
    biomass = np.exp(log_x)
    daily_expected = (12 * a - 12 * b) / 24.0
    assert daily_expected > 4 * THETA
    decisions, advice = decide_unit("u", STRAIN, time_us, {}, _estimates(biomass, 0.01, mu, rate_sd))
    assert not advice.ready.any() and _of(decisions, "harvest_ready") == []
    np.testing.assert_allclose(advice.daily_growth_per_h[t_h >= 24.0], daily_expected, rtol=1e-9)
    old = harvest_ready(growth_stopped_probability(mu, np.full(mu.size, rate_sd), THETA), biomass, POLICY.harvest)
    dark = ~light & (biomass >= POLICY.harvest.min_biomass_g_per_l)
    assert old[dark].all() and not old[light].any()
    assert np.count_nonzero(np.diff(old.astype(int)) == 1) == 6  # every night, flagged


# --- alarms ----------------------------------------------------------------------------------------------------


def _robust(values: np.ndarray, samples: int = POLICY.robust_samples) -> np.ndarray:
    """The median of each reading and the sensor's previous samples − 1 readings (NaN: none)."""
    out = np.full(values.size, np.nan)
    seen: list[float] = []
    for k, v in enumerate(values):
        if np.isfinite(v):
            seen.append(float(v))
            out[k] = float(np.median(seen[-samples:]))
    return out


def _alarm_times(decisions, *kinds):
    return [(d.kind, d.time_us) for d in decisions if d.kind in kinds]


def test_do_glitches_neither_open_nor_close_the_alarm_three_in_a_row_do():
    on = degas_threshold_mg_per_l(STRAIN, POLICY.alarms.loss_on)
    off = degas_threshold_mg_per_l(STRAIN, POLICY.alarms.loss_off)
    low, high = 8.0, 50.0
    assert low < off < on < high <= SENSORS["do_tube"].range[1]
    pattern = ("LLLLL" "H" "LLLL" "H" "L" "H" "LLLL" "HHH" "HHHH" "L" "HHHH" "L" "H" "L" "HHHH" "LLL" "LL")  # fmt: skip
    values = np.array([high if c == "H" else low for c in pattern]) + 0.02 * (np.arange(len(pattern)) % 3)
    time_us = _times(values.size, 60_000_000)
    decisions, _ = decide_unit("u", STRAIN, time_us, {"do_tube": values})
    opened = pattern.index("HHH") + 2
    closed = pattern.index("LLL", opened) + 2
    assert _alarm_times(decisions, "degas_on", "degas_off") == [("degas_on", time_us[opened]),
                                                                 ("degas_off", time_us[closed])]  # fmt: skip
    robust = _robust(values)
    for decision, k in zip(_of(decisions, "degas_on", "degas_off"), (opened, closed), strict=True):
        assert decision.params["do_mg_per_l"] == pytest.approx(robust[k])
        assert decision.params["growth_loss"] == pytest.approx(float(oxygen_growth_loss(np.array(robust[k]), STRAIN)))
        assert decision.reason.startswith(f"dissolved O2 {robust[k]:.1f} mg/L costs")


@pytest.mark.parametrize("strain_name", ["chlorella_vulgaris", "nannochloropsis_oceanica", "arthrospira_platensis"])
def test_do_alarm_thresholds_are_the_strains_degas_thresholds(strain_name):
    """On at DO ≥ DO_max loss_on^(1/n), off at DO < DO_max loss_off^(1/n): plateaus of five equal readings."""
    strain = load_strain(strain_name)
    on = degas_threshold_mg_per_l(strain, POLICY.alarms.loss_on)
    off = degas_threshold_mg_per_l(strain, POLICY.alarms.loss_off)
    levels = [off - 1.0, on - 1e-6, on, off, off - 1e-6]  # off, off, on, held (not < off), off
    values = np.repeat(levels, 5)
    time_us = _times(values.size, 60_000_000)
    decisions, _ = decide_unit("u", strain, time_us, {"do_tank": values})
    # Each plateau's median is its level from its third reading on.
    assert _alarm_times(decisions, "degas_on", "degas_off") == [("degas_on", time_us[2 * 5 + 2]),
                                                                 ("degas_off", time_us[4 * 5 + 2])]  # fmt: skip


def test_do_alarm_follows_the_highest_robust_do_of_the_two_probes():
    on = degas_threshold_mg_per_l(STRAIN, POLICY.alarms.loss_on)
    time_us = _times(10, 60_000_000)
    tank = np.full(10, 7.0) + 0.01 * (np.arange(10) % 2)
    tube = np.where(np.arange(10) >= 4, on + 2.0, 7.0) + 0.01 * (np.arange(10) % 2)
    decisions, _ = decide_unit("u", STRAIN, time_us, {"do_tank": tank, "do_tube": tube})
    assert _alarm_times(decisions, "degas_on", "degas_off") == [("degas_on", time_us[6])]


@pytest.mark.parametrize("strain_name", ["chlorella_vulgaris", "nannochloropsis_oceanica", "arthrospira_platensis"])
def test_temperature_alarm_thresholds_are_the_strains_cardinal_thresholds(strain_name):
    strain = load_strain(strain_name)
    low_on, high_on = temperature_thresholds_c(strain, POLICY.alarms.loss_on)
    low_off, high_off = temperature_thresholds_c(strain, POLICY.alarms.loss_off)
    assert low_on < low_off < strain.t_opt_c < high_off < high_on
    eps = 1e-6
    # plateau levels and whether the alarm is on once each plateau has settled
    plan = [(strain.t_opt_c, False), (high_on - eps, False), (high_on, True), (high_off, True),
            (high_off - eps, False), (low_on + eps, False), (low_on, True), (low_off, True),
            (low_off + eps, False)]  # fmt: skip
    values = np.repeat([level for level, _ in plan], 5)
    time_us = _times(values.size, 60_000_000)
    decisions, _ = decide_unit("u", strain, time_us, {"temp_tube": values})
    expected, state = [], False
    for i, (_, alarm) in enumerate(plan):
        if alarm != state:
            expected.append(("temperature_alarm" if alarm else "temperature_ok", time_us[5 * i + 2]))
            state = alarm
    assert _alarm_times(decisions, "temperature_alarm", "temperature_ok") == expected
    assert len(expected) == 4


def test_one_temperature_glitch_neither_opens_nor_closes_the_alarm_and_either_probe_opens_it():
    _, high_on = temperature_thresholds_c(STRAIN, POLICY.alarms.loss_on)
    normal, hot = STRAIN.t_opt_c, high_on + 1.0
    pattern = "NNNNN" "H" "NNN" "HNH" "NNN" "HHH" "HH" "N" "HHH" "NNN" "N"  # fmt: skip
    tube = np.array([hot if c == "H" else normal for c in pattern]) + 0.02 * (np.arange(len(pattern)) % 2)
    tank = np.full(tube.size, normal) + 0.02 * (np.arange(len(pattern)) % 2)
    time_us = _times(tube.size, 60_000_000)
    decisions, _ = decide_unit("u", STRAIN, time_us, {"temp_tank": tank, "temp_tube": tube})
    opened = pattern.index("HHH") + 2
    closed = pattern.index("NNN", opened) + 2
    assert _alarm_times(decisions, "temperature_alarm", "temperature_ok") == [
        ("temperature_alarm", time_us[opened]), ("temperature_ok", time_us[closed])]  # fmt: skip


def test_the_temperature_alarm_reports_the_robust_temperature_that_raised_it():
    """As the DO alarm reports its robust DO (the median that crossed the threshold), the temperature alarm's
    words and params name the robust temperature, not a glitch that happens to arrive on the same row."""
    _, high_on = temperature_thresholds_c(STRAIN, POLICY.alarms.loss_on)
    normal, hot, glitch = STRAIN.t_opt_c, high_on + 1.0, 59.0
    values = np.array([normal, normal, normal, hot, hot, glitch])  # the median turns hot at the glitch's row
    time_us = _times(values.size, 60_000_000)
    decisions, _ = decide_unit("u", STRAIN, time_us, {"temp_tube": values})
    alarm = _of(decisions, "temperature_alarm")
    assert [d.time_us for d in alarm] == [time_us[5]]
    robust = _robust(values)[5]
    assert robust == hot
    loss = float(temperature_growth_loss(np.array(robust), STRAIN))
    assert alarm[0].params == {"temperature_c": pytest.approx(robust), "growth_loss": pytest.approx(loss)}
    assert alarm[0].reason.startswith(f"temperature {robust:.1f} °C costs {loss:.0%} of growth")


# --- sensor faults ---------------------------------------------------------------------------------------------


def _reference_stuck_run(noise_sd: float, resolution: float, chance: float = 1e-7) -> float:
    if noise_sd <= 0 or noise_sd < resolution:
        return math.inf
    q = resolution / noise_sd
    for n in range(7, 10_000):
        if math.exp((n - 1) * math.log(q) - 0.5 * (n - 1) * math.log(2 * math.pi) - 0.5 * math.log(n)) <= chance:
            return float(n)
    raise AssertionError("no run length found")


@pytest.mark.parametrize("sensor", list(SENSORS))
def test_stuck_run_length_is_the_shortest_run_a_healthy_sensor_repeats_rarely_enough(sensor):
    spec = SENSORS[sensor]
    assert stuck_run_length(spec.noise_sd, spec.resolution) == _reference_stuck_run(spec.noise_sd, spec.resolution)


def test_stuck_run_length_by_hand():
    assert stuck_run_length(0.005, 0.001) == 7  # OD750 (module doc)
    assert stuck_run_length(3.0, 1.0) == 9  # PAR (module doc)
    assert stuck_run_length(0.02, 0.01) == 11  # (1/2)^10 / ((2π)^5 √11) ≈ 3.0e-8; n = 10 gives 1.0e-7 + …
    assert math.isinf(stuck_run_length(0.0, 0.1)) and math.isinf(stuck_run_length(0.05, 0.1))
    assert stuck_run_length(0.1, 0.1) == _reference_stuck_run(0.1, 0.1)


def _distinct_readings(sensor: str, n: int) -> np.ndarray:
    """n healthy readings mid-range, each far from the last (several resolutions apart)."""
    spec = SENSORS[sensor]
    low, high = spec.range
    middle = low + 0.3 * (high - low)
    return middle + 20 * max(spec.resolution, spec.noise_sd) * (np.arange(n) % 4)


@pytest.mark.parametrize("sensor", ["od750", "par_surface", "do_tube", "air_flow"])
def test_a_stuck_sensor_opens_at_its_run_length_and_the_next_different_reading_closes_it(sensor):
    spec = SENSORS[sensor]
    run = int(stuck_run_length(spec.noise_sd, spec.resolution))
    healthy = _distinct_readings(sensor, 9)
    stuck_value = healthy[-1] + 7 * max(spec.resolution, spec.noise_sd)
    values = np.r_[healthy, np.full(run, stuck_value), stuck_value + 10 * spec.resolution, healthy[:3]]
    time_us = _times(values.size, int(spec.period_s * 1e6))
    for cut, opens in ((values.size, True), (9 + run - 1, False)):  # one reading short: not stuck
        decisions, _ = decide_unit("u", STRAIN, time_us[:cut], {sensor: values[:cut]})
        faults = [d for d in decisions if d.params.get("sensor") == sensor]
        if not opens:
            assert faults == []
            continue
        assert [(d.kind, d.time_us, d.params) for d in faults] == [
            ("sensor_fault", time_us[9 + run - 1], {"sensor": sensor, "fault": "stuck"}),
            ("sensor_ok", time_us[9 + run], {"sensor": sensor, "fault": "stuck"})]  # fmt: skip
        assert faults[0].reason == f"{sensor}: {fault_text('stuck')}"
        assert faults[1].reason == f"{sensor}: no longer {fault_text('stuck')}"
        assert values[9 + run - 1] == stuck_value  # the reading it opened at is the stuck one


@pytest.mark.parametrize("sensor", ["od750", "do_tank", "ph_tube"])
def test_readings_at_the_range_end_open_out_of_range_by_their_robust_value(sensor):
    spec = SENSORS[sensor]
    high = spec.range[1]
    healthy = _distinct_readings(sensor, 12)
    over = high + 10 * spec.resolution * np.arange(3)  # at the end, then beyond: never equal (not stuck)
    values = np.r_[healthy[:5], high, healthy[5:9], over, healthy[9:12], healthy[:2]]
    time_us = _times(values.size, int(spec.period_s * 1e6))
    decisions, _ = decide_unit("u", STRAIN, time_us, {sensor: values})
    robust = _robust(values)
    outside = robust >= high
    first = int(np.argmax(outside))
    back = first + int(np.argmax(~outside[first:]))
    assert first == 10 + 2 and outside[first:back].all()  # the lone reading at 5 did not open it; three in a row did
    faults = [(d.kind, d.time_us, d.params["fault"]) for d in decisions if d.params.get("sensor") == sensor]
    assert faults == [("sensor_fault", time_us[first], "out_of_range"), ("sensor_ok", time_us[back], "out_of_range")]
    assert _of(decisions, "sensor_fault")[0].reason == f"{sensor}: {fault_text('out_of_range')}"


@pytest.mark.parametrize("sensor", ["od750", "temp_tube", "nitrate"])
def test_a_sensor_silent_while_the_unit_reports_opens_silent_and_its_next_reading_closes_it(sensor):
    spec = SENSORS[sensor]
    silent_s = max(POLICY.silent_after_h * 3600.0, 10 * spec.period_s)
    period_us = int(spec.period_s * 1e6)
    step_us = 60_000_000  # the unit reports every minute (ph_tank)
    hours = 8
    time_us = _times(hours * 60, step_us)
    last_us = 2 * 3_600_000_000  # the sensor's last reading before it falls silent
    back_us = last_us + int(silent_s * 1e6) + 30 * 60_000_000
    sampled = (time_us % period_us == 0) & ((time_us <= last_us) | (time_us >= back_us))
    values = np.where(sampled, _distinct_readings(sensor, time_us.size), np.nan)
    other = _distinct_readings("ph_tank", time_us.size)
    decisions, _ = decide_unit("u", STRAIN, time_us, {sensor: values, "ph_tank": other})
    silent_from = time_us[time_us - last_us > silent_s * 1e6][0]
    returned = time_us[sampled & (time_us > last_us)][0]
    faults = [(d.kind, d.time_us, d.params) for d in decisions if d.params.get("sensor") == sensor]
    assert faults == [("sensor_fault", silent_from, {"sensor": sensor, "fault": "silent"}),
                      ("sensor_ok", returned, {"sensor": sensor, "fault": "silent"})]  # fmt: skip
    # not one row earlier: exactly the silence allowed is not yet silent
    assert silent_from - step_us - last_us <= silent_s * 1e6
    assert _of(decisions, "sensor_fault")[0].reason == f"{sensor}: {fault_text('silent')}"
    assert all(d.params.get("sensor") != "ph_tank" for d in decisions)


def test_a_dark_par_sensor_at_its_range_bottom_is_neither_stuck_nor_out_of_range_until_below_three_sd():
    """A dark PAR sensor reads 0 (clipped) or ±σ for hours: no evidence of a fault. Robustly below the bottom
    by more than 3 noise sd, it is out of range."""
    spec = SENSORS["par_surface"]
    bottom, floor = spec.range[0], spec.range[0] - 3.0 * spec.noise_sd
    dark = np.r_[np.zeros(60), np.tile([0.0, -1.0, 0.0, 2.0], 15)]
    time_us = _times(dark.size, int(spec.period_s * 1e6))
    assert bottom == 0.0 and decide_unit("u", STRAIN, time_us, {"par_surface": dark})[0] == []
    at_floor = np.r_[np.full(5, 10.0) + np.arange(5), floor, floor - 0.1, floor, floor - 0.1, floor, 5.0, 6.0, 7.0]
    assert decide_unit("u", STRAIN, _times(at_floor.size, 60_000_000), {"par_surface": at_floor})[0] == []
    below = np.r_[np.full(5, 10.0) + np.arange(5), floor - 0.5, floor - 0.6, floor - 0.7, 5.0, 6.0, 7.0]
    time_us = _times(below.size, 60_000_000)
    decisions, _ = decide_unit("u", STRAIN, time_us, {"par_surface": below})
    robust = _robust(below)
    first = int(np.argmax(robust < floor))
    back = first + int(np.argmax(robust[first:] >= floor))
    assert first == 7
    assert [(d.kind, d.time_us, d.params["fault"]) for d in decisions] == [
        ("sensor_fault", time_us[first], "out_of_range"), ("sensor_ok", time_us[back], "out_of_range")]  # fmt: skip


def test_lab_samples_and_actuator_settings_are_never_stuck_nor_silent():
    """dry_weight (a lab sample, once a day) and led_power (an actuator, set and held) beside a probe that
    reports every minute."""
    rows = 3 * 24 * 60
    time_us = _times(rows, 60_000_000)
    dry = np.where(np.arange(rows) % (24 * 60) == 0, 1.0, np.nan)
    led = np.full(rows, 40.0)
    decisions, _ = decide_unit("u", STRAIN, time_us, {"dry_weight": dry, "led_power": led,
                                                      "ph_tank": _distinct_readings("ph_tank", rows)})  # fmt: skip
    assert decisions == []


def test_a_lamp_at_full_power_is_not_out_of_range():
    """led_power is an actuator's setting (catalog role ``actuator``), 0 to 100 %: a lamp run at full power
    reads the range's top all day, which is a setting, not a probe pinned at its end."""
    time_us = _times(120, 60_000_000)
    decisions, _ = decide_unit("u", STRAIN, time_us, {"led_power": np.full(120, SENSORS["led_power"].range[1])})
    assert decisions == []


def test_a_sensor_that_never_reported_is_not_silent():
    time_us = _times(600, 60_000_000)
    decisions, _ = decide_unit("u", STRAIN, time_us, {"ph_tank": _distinct_readings("ph_tank", 600)})
    assert decisions == []


def test_a_healthy_simulated_unit_raises_no_sensor_fault_through_its_nights():
    """Every catalog sensor of the lab loop (16 h lamp) read through the simulator's Gaussian noise (no faults,
    spikes, dropouts or drift) for two days: a healthy unit. A PAR sensor in the dark, a lamp switched off and
    the exhausted nitrate read their range's zero; that is the world, not a probe pinned at its end."""
    from algaflow.sim.build import build_batch
    from algaflow.sim.run import integrate
    from algaflow.sim.scenario import parse_scenario
    from algaflow.sim.sensors import UnitTruth, read_sensor
    from algaflow.sim.simulate import observables_for

    table = tomllib.loads(files("algaflow.scenarios").joinpath("lab_tubular_chlorella.toml").read_text())
    table |= {"days": 2, "units": 1, "faults": [],
              "sensors": {"dropout_probability": 0.0, "spike_probability": 0.0,
                          "drift_per_day": {s: 0.0 for s in SENSORS}}}  # fmt: skip
    scenario = parse_scenario(table)
    batch = build_batch(scenario)
    grid = np.arange(0.0, batch.hours + 1e-9, 1.0 / 60.0)
    result = integrate(batch, grid)
    observables, ambient = observables_for(batch, result)
    truth = UnitTruth(grid, result.states[0], observables[0], result.dynamic[0], ambient[0], batch.params[0])
    rng = np.random.default_rng(12)
    sampled = {s: read_sensor(s, truth, scenario.resolved_strain(), scenario, 0, rng) for s in SENSOR_NAMES}
    times_h = np.unique(np.concatenate([t for t, _ in sampled.values()]))
    readings = {}
    for sensor, (t, v) in sampled.items():
        readings[sensor] = np.full(times_h.size, np.nan)
        readings[sensor][np.searchsorted(times_h, t)] = v
    time_us = np.round(times_h * HOUR_US).astype(np.int64)
    decisions, _ = decide_unit("u", STRAIN, time_us, readings)
    faults = Counter((d.params["sensor"], d.params["fault"]) for d in _of(decisions, "sensor_fault"))
    assert faults == Counter(), f"a healthy unit raised sensor faults (sensor, fault): count {dict(faults)}"


def test_every_decision_kind_is_the_catalogs_and_names_its_condition():
    assert set(KINDS) <= set(DECISION_KINDS)
    assert set(KINDS) == set(DECISION_KINDS)  # the pipeline takes every kind the catalog has
    rows = 400
    time_us = _times(rows, 60_000_000)
    on = degas_threshold_mg_per_l(STRAIN, POLICY.alarms.loss_on)
    k = np.arange(rows)
    do = np.where((k > 50) & (k < 150), on + 5.0, 8.0) + 0.02 * (k % 3)
    temp = np.where((k > 200) & (k < 260), 38.0, 28.0) + 0.02 * (k % 2)
    od = np.where((k > 100) & (k < 110), 1.0, 1.0 + 0.01 * (k % 4))
    estimates = np.full((rows, 5), np.nan)
    decisions, _ = decide_unit("u", STRAIN, time_us, {"do_tube": do, "temp_tube": temp, "od750": od}, estimates)
    seen = {d.kind for d in decisions}
    assert {"degas_on", "degas_off", "temperature_alarm", "temperature_ok", "sensor_fault", "sensor_ok"} <= seen
    for d in decisions:
        assert d.kind in DECISION_KINDS
        entry = DECISION_KINDS[d.kind]
        expected = f"sensor {d.params['sensor']}" if entry.per_sensor else entry.condition
        assert condition_key(d.kind, d.params) == expected
        if d.kind in ("sensor_fault", "sensor_ok"):
            assert fault_text(d.params["fault"]) != d.params["fault"]  # the catalog has plain words for it


# --- batching and state ----------------------------------------------------------------------------------------


def _fleet_rows(seed: int = 3) -> tuple[DecisionRows, list[str], list]:
    """Three units of three strains, three days of rows every 5 min (an estimate every other row),
    with DO and temperature spells and glitches, a stuck and a silent OD probe, harvests and dilutions;
    the units' rows interleaved at random, each unit's in time order."""
    rng = np.random.default_rng(seed)
    strains = [load_strain(n) for n in ("chlorella_vulgaris", "nannochloropsis_oceanica", "arthrospira_platensis")]
    parts = []
    for unit, strain in enumerate(strains):
        n = 900
        time_us = np.arange(n, dtype=np.int64) * 300_000_000 + unit * 7_000_000
        t_h = time_us / HOUR_US
        values = np.full((n, len(SENSOR_NAMES)), np.nan)
        on = degas_threshold_mg_per_l(strain, POLICY.alarms.loss_on)
        do = 0.6 * on + 0.1 * rng.standard_normal(n)
        do[(t_h > 10 + unit) & (t_h < 16 + unit)] += 0.6 * on
        do[rng.random(n) < 0.03] = 55.0
        values[:, SENSOR_NAMES.index("do_tube")] = np.round(do, 2)
        temp = strain.t_opt_c + 0.05 * rng.standard_normal(n)
        temp[(t_h > 30) & (t_h < 33)] += 9.0
        values[:, SENSOR_NAMES.index("temp_tank")] = np.round(temp, 2)
        od = 1.0 + 0.005 * rng.standard_normal(n)
        od[(t_h > 20) & (t_h < 22)] = 1.234
        od[(t_h > 40) & (t_h < 43 + unit)] = np.nan
        values[:, SENSOR_NAMES.index("od750")] = np.round(od, 3)
        mu = 0.03 * np.exp(-t_h / (15.0 + 5 * unit)) - 0.002
        dilution = np.zeros(n)
        dilution[[200, 420 + 20 * unit, 820]] = (0.1, 0.6, 0.3)
        log_x = np.log(2.0) + np.cumsum(mu * 5 / 60) + np.cumsum(np.log1p(-dilution))
        estimates = _estimates(np.exp(log_x), 0.004 + 0.002 * rng.random(n), mu, 1e-3, dilution)
        estimates[1::2] = np.nan
        estimates[1::2, 4] = np.nan
        parts.append((np.full(n, unit), time_us, values, estimates))
    owner = np.concatenate([p[0] for p in parts])
    rng.shuffle(owner)  # a random interleaving; each unit keeps its own order
    taken = [0, 0, 0]
    unit_col, time_col, value_rows, estimate_rows = [], [], [], []
    for u in owner:
        _, time_us, values, estimates = parts[u]
        k = taken[u]
        taken[u] += 1
        unit_col.append(u)
        time_col.append(time_us[k])
        value_rows.append(values[k])
        estimate_rows.append(estimates[k])
    rows = DecisionRows(np.array(unit_col, dtype=np.int64), np.array(time_col, dtype=np.int64),
                        np.array(value_rows), np.array(estimate_rows))  # fmt: skip
    return rows, ["a", "b", "c"], strains


def _slice(rows: DecisionRows, start: int, stop: int) -> DecisionRows:
    return DecisionRows(rows.unit[start:stop], rows.time_us[start:stop], rows.values[start:stop],
                        rows.estimates[start:stop])  # fmt: skip


def _fresh(strains) -> DecisionState:
    state = DecisionState.empty(POLICY)
    for strain in strains:
        state.add_unit(strain, POLICY)
    return state


def _run(rows, ids, strains, cuts, round_trip=False):
    state = _fresh(strains)
    decisions, ready, daily, sd = [], [], [], []
    for start, stop in itertools.pairwise(cuts):
        got, state, advice = decide(state, POLICY, _slice(rows, start, stop), ids, strains)
        decisions += got
        ready.append(advice.ready)
        daily.append(advice.daily_growth_per_h)
        sd.append(advice.daily_growth_sd)
        if round_trip:
            state = DecisionState.from_arrays({k: v.tolist() for k, v in state.arrays().items()})
    return ([(d.unit_id, d.time_us, d.kind, d.reason, repr(d.params)) for d in decisions],
            np.concatenate(ready), np.concatenate(daily), np.concatenate(sd), state)  # fmt: skip


def test_the_same_rows_give_the_same_decisions_however_they_are_batched():
    rows, ids, strains = _fleet_rows()
    n = rows.unit.size
    rng = np.random.default_rng(0)
    random_cuts = np.unique(np.r_[0, rng.integers(0, n, 60), n])
    whole = _run(rows, ids, strains, [0, n])
    kinds = Counter(kind for _, _, kind, _, _ in whole[0])
    assert {"harvest_ready", "harvest_clear", "degas_on", "degas_off", "temperature_alarm", "temperature_ok",
            "sensor_fault", "sensor_ok"} <= set(kinds)  # fmt: skip
    for cuts, round_trip in ((list(range(n + 1)), False), (random_cuts.tolist(), False),
                             (random_cuts.tolist(), True), ([0, 1, 2, n // 2, n], True)):  # fmt: skip
        other = _run(rows, ids, strains, cuts, round_trip)
        assert other[0] == whole[0]
        for got, expected in zip(other[1:4], whole[1:4], strict=True):
            np.testing.assert_array_equal(got, expected)
        for name in STATE_ARRAYS:
            np.testing.assert_array_equal(getattr(other[4], name), getattr(whole[4], name))
    # and each unit alone (decide_unit) decides what it decided in the fleet
    for u in range(3):
        mine = rows.unit == u
        readings = {s: rows.values[mine, j] for j, s in enumerate(SENSOR_NAMES)}
        alone, advice = decide_unit(ids[u], strains[u], rows.time_us[mine], readings, rows.estimates[mine])
        assert [(d.unit_id, d.time_us, d.kind, d.reason, repr(d.params)) for d in alone] == [
            row for row in whole[0] if row[0] == ids[u]]  # fmt: skip
        np.testing.assert_array_equal(advice.ready, whole[1][mine])
        np.testing.assert_array_equal(advice.daily_growth_per_h, whole[2][mine])


def test_decide_leaves_the_state_it_was_given_as_it_was():
    rows, ids, strains = _fleet_rows(seed=8)
    state = _fresh(strains)
    half = _slice(rows, 0, rows.unit.size // 2)
    _, state, _ = decide(state, POLICY, half, ids, strains)
    before = state.arrays()
    _, after, _ = decide(state, POLICY, _slice(rows, rows.unit.size // 2, rows.unit.size), ids, strains)
    for name in STATE_ARRAYS:
        np.testing.assert_array_equal(getattr(state, name), before[name])
    assert not np.array_equal(after.window_count, state.window_count) or not np.array_equal(after.runs, state.runs)
    assert after is not state


def test_state_round_trip_reset_and_refusals():
    rows, ids, strains = _fleet_rows(seed=1)
    _, state, _ = decide(_fresh(strains), POLICY, rows, ids, strains)
    loaded = DecisionState.from_arrays(state.arrays())
    assert loaded.flags.dtype == bool and loaded.faults.dtype == np.int64 and loaded.units == 3
    fresh = _fresh(strains)
    state.reset_unit(1, strains[1], POLICY)
    for name in STATE_ARRAYS:
        np.testing.assert_array_equal(getattr(state, name)[1], getattr(fresh, name)[1])
        np.testing.assert_array_equal(getattr(state, name)[0], getattr(loaded, name)[0])
    arrays = state.arrays()
    del arrays["runs"]
    with pytest.raises(ValueError, match="runs"):
        DecisionState.from_arrays(arrays)
    with pytest.raises(IndexError):
        decide(_fresh(strains[:2]), POLICY, rows, ids, strains)
    bad = DecisionRows(rows.unit, rows.time_us, rows.values[:, :3], rows.estimates)
    with pytest.raises(ValueError, match="values"):
        decide(_fresh(strains), POLICY, bad, ids, strains)
    decisions, same, advice = decide(state, POLICY, _slice(rows, 0, 0), ids, strains)
    assert decisions == [] and advice.ready.size == 0 and same.units == 3


REFUSED = [{"day_h": 0.0}, {"transient_h": -1.0}, {"restart_fraction": 0.0}, {"robust_samples": 4},
           {"robust_samples": 17}, {"silent_after_h": 0.0}]  # fmt: skip


@pytest.mark.parametrize("kwargs", REFUSED)
def test_policy_refuses_what_it_cannot_judge(kwargs):
    with pytest.raises(ValueError):
        DecisionPolicy(**kwargs)


def _dark_pair_rows(days: float, drift_per_day: float, seed: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Tank and tube pH every 5 minutes under 12 h light / 12 h dark: in the light the tube's pH runs 0.2 above
    the tank's (the tubes take CO2 up), in the dark they read one water; the tube probe drifts from day 1."""
    rng = np.random.default_rng(seed)
    hours = np.arange(0.0, days * 24.0, 5.0 / 60.0)
    lit = (hours % 24.0) < 12.0
    tank = 7.5 + rng.normal(0, 0.01, hours.size)
    tube = 7.5 + 0.2 * lit + np.maximum(hours - 24.0, 0.0) / 24.0 * drift_per_day + rng.normal(0, 0.01, hours.size)
    par = np.where(lit, 800.0, 0.0) + np.abs(rng.normal(0, 3.0, hours.size))  # the catalog's PAR noise
    return (hours * 3.6e9).astype(np.int64), {"ph_tank": np.round(tank, 3), "ph_tube": np.round(tube, 3),
                                              "par_surface": np.round(par, 0)}  # fmt: skip


def test_a_ph_pair_drifting_apart_in_the_dark_is_a_disagreeing_fault_on_both_and_a_healthy_pair_never_is():
    """The dark-pair CUSUM (module doc): a tube electrode drifting 0.1 pH a day is flagged on both probes during
    a dark period, never in the light (where the pair differs by physics); a healthy pair over 10 days with
    the same day/night swing raises nothing."""
    strain = load_strain("chlorella_vulgaris")
    times, readings = _dark_pair_rows(4.0, 0.1, seed=3)
    decisions, _ = decide_unit("u", strain, times, readings)
    faults = [d for d in decisions if d.kind == "sensor_fault"]
    assert {(d.params["sensor"], d.params["fault"]) for d in faults} == {("ph_tank", "disagreeing"),
                                                                         ("ph_tube", "disagreeing")}
    hours = [d.time_us / 3.6e9 for d in faults]
    assert all(h % 24.0 >= 12.0 + DARK_SETTLE_H for h in hours)  # in the dark, after the tube has settled
    assert all("disagrees with the unit's other probe" in d.reason for d in faults)
    healthy_times, healthy = _dark_pair_rows(10.0, 0.0, seed=4)
    decisions, _ = decide_unit("u", strain, healthy_times, healthy)
    assert not [d for d in decisions if d.kind == "sensor_fault"]
