"""A biomass probe that moves faster than any culture can: drift found on a unit's only biomass sensor.

One probe cannot tell a slow drift from growth (an additive drift and a slightly faster culture fit the same
curve), but growth has a ceiling. Between two times τ₁ < τ₂ with no known harvest or dilution between
them, a culture of true biomass X₁ at τ₁ ends between

    X₁ e^{−λ (τ₂ − τ₁)}  ≤  X₂  ≤  X₁ e^{μ (τ₂ − τ₁)}

with μ = m μ_max the fastest net growth (the strain's μ_max times a margin m for strain variability and the
fit: no light, temperature or nutrient level makes a culture outgrow it) and λ = m μ_max the fastest net
loss (dark respiration is a few 10⁻³ 1/h; a crash by lysis or grazers takes a day or more; a sudden drop
is an unannounced harvest, a step, which the chain's level jump handles and this test leaves alone).

Test, causal, on the probe's calibrated readings x = h⁻¹(s) (h the calibration curve; stuck stretches and
missing samples left out). At each sample k and each scale w (an odd number of samples), four adjacent
trailing windows W₀ … W₃ of w readings end at k; m_j their medians and τ_j their middle times. With U_j
the highest level the culture in window j can have,

    U_j = max(m_j, 0) + 3 σ_β + 3 · 1.2533 σ/√w               (σ_β the probe's offset sd in g/L)
    rise_j = (m_{j+1} − m_j) − U_j (e^{μ (τ_{j+1} − τ_j)} − 1)      growth beyond the fastest possible
    fall_j = (m_j − m_{j+1}) − U_j (1 − e^{−λ (τ_{j+1} − τ_j)})     loss beyond the fastest possible

the probe is flagged at k where min_j rise_j > k_σ se or min_j fall_j > k_σ se (j = 0, 1, 2),
se = 1.2533 σ √(2/w) the sd of a difference of two medians of w readings of noise sd σ (the chain's noise
model at the level of the last window, σ = √(σ_abs² + (σ_rel s)²) / h'(x), or the probe's own, if larger:
1.4826 MAD of the first differences / √2 over its first 243 readings, or those so far), k_σ = 5. All three
steps must exceed it: that is a ramp. A step in the probe (a knock, an unlogged harvest) lies inside one
window at most and moves that window's median partway at most (a bubble spike at its middle rank can put
it halfway), so it accounts for two steps at most; a single spike barely moves a median. Windows that meet
a known harvest, or the transient after it (the catalog's ``transient_h``: the tube drains and refills, a
reading lands mid-mix), are not tested.

A ramp of r (g/L per h) beyond the bound, sampled every Δ h, is flagged at the smallest scale w with
(r − μ U) w Δ > k_σ se(w) comfortably, about 4w − 1 samples after it starts: at 1-min OD samples
(σ = 0.005 AU) a drift of 1 noise sd a minute on a 0.3 g/L culture is found within 35 minutes (27–34 in
the simulator). A drift slower than the culture could grow is not found here; only a second biomass sensor
(fusion.sensor_health.drifting_samples) or dry weights can see it.
"""

from __future__ import annotations

import numpy as np

from algaflow.fusion.sensor_health import robust_noise_sd, trailing_median

SCALES = (3, 9, 27, 81)  # w, samples per window (odd)
LIMIT_SIGMAS = 5.0  # k_σ
GROWTH_MARGIN = 1.5  # m: how far a culture may outgrow its strain's catalog μ_max
LEVEL_SIGMAS = 3.0  # how far above its readings a culture's true level can lie (offset and median noise)
MEDIAN_SD = 1.2533  # sd of a median of w normal readings × √w / σ
WINDOWS = 4  # adjacent windows: three steps in a row
REFERENCE_READINGS = 243  # the probe's own noise is read off its first readings


def window_medians(values: np.ndarray, window: int) -> np.ndarray:
    """m_i = median(values[i : i + window]) for every full window (values.size − window + 1 of them)."""
    return trailing_median(values, window)[window - 1 :]


def reference_noise_sd(values: np.ndarray, readings: int = REFERENCE_READINGS) -> np.ndarray:
    """The probe's own noise sd at each reading, causally: 1.4826 MAD(first differences)/√2 over the readings
    so far, up to the first ``readings`` (then held: a later ramp or fault does not inflate it); 0 before the
    third reading."""
    noise = np.zeros(values.size)
    for k in range(2, min(values.size, readings)):
        noise[k] = robust_noise_sd(values[: k + 1], 0.0)  # no catalog floor: the caller takes the larger
    if values.size > readings:
        noise[readings:] = noise[readings - 1]
    return noise


def outgrowing_onsets(times_h: np.ndarray, biomass_g_per_l: np.ndarray, noise_sd_g_per_l: np.ndarray,
                       offset_sd_g_per_l: float, max_growth_rate_per_h: float, max_loss_rate_per_h: float,
                       harvest_times_h: np.ndarray | list[float] = (), scales: tuple[int, ...] = SCALES,
                       sigmas: float = LIMIT_SIGMAS,
                       transient_h: np.ndarray | list[float] | float = 0.0) -> np.ndarray:  # fmt: skip
    """The causal test of the module doc on one probe's calibrated readings ``biomass_g_per_l`` at ``times_h``
    (NaN: no usable reading), each with its noise sd; ``max_growth_rate_per_h`` and ``max_loss_rate_per_h``
    are μ and λ; ``transient_h`` (one, or one per harvest) how long after each harvest the culture is
    mid-change: windows that reach into [t_h, t_h + transient] are not tested. Returns, per sample, −1, or
    where the probe has risen faster than the culture can grow or fallen faster than it can be lost by that
    sample, the index of the first reading of the earliest first window that showed it (where the ramp the
    test saw began)."""
    times_h = np.asarray(times_h, dtype=float)
    values = np.asarray(biomass_g_per_l, dtype=float)
    noise = np.broadcast_to(np.asarray(noise_sd_g_per_l, dtype=float), values.shape)
    if times_h.shape != values.shape:
        raise ValueError(f"times {times_h.shape} and readings {values.shape} must match")
    if not (max_growth_rate_per_h > 0 and max_loss_rate_per_h > 0 and offset_sd_g_per_l >= 0):
        raise ValueError("the growth and loss limits must be > 0 and the offset sd ≥ 0")
    if any(w < 1 or w % 2 == 0 for w in scales):
        raise ValueError(f"scales must be odd window lengths (got {scales})")
    onsets = np.full(values.size, -1, dtype=np.int64)
    finite = np.flatnonzero(np.isfinite(values) & np.isfinite(times_h))
    present, times, present_noise = values[finite], times_h[finite], noise[finite]
    starts = np.asarray(harvest_times_h, dtype=float)
    ends = np.sort(starts + np.broadcast_to(np.asarray(transient_h, dtype=float), starts.shape))
    starts = np.sort(starts)
    own_noise = reference_noise_sd(present)
    for w in scales:
        span = WINDOWS * w  # readings in the windows that end at k
        count = present.size - span + 1
        if count <= 0:
            continue
        medians, middles = window_medians(present, w), window_medians(times, w)
        first = np.arange(count)  # index of the first window's first reading
        last = first + span - 1
        sigma = np.maximum(present_noise[last], own_noise[last])
        standard_error = MEDIAN_SD * sigma * np.sqrt(2.0 / w)
        level_margin = LEVEL_SIGMAS * (offset_sd_g_per_l + MEDIAN_SD * sigma / np.sqrt(w))
        rise = fall = np.full(count, np.inf)
        for j in range(WINDOWS - 1):
            earlier, later = medians[first + j * w], medians[first + (j + 1) * w]
            elapsed = middles[first + (j + 1) * w] - middles[first + j * w]
            ceiling = np.maximum(earlier, 0.0) + level_margin
            rise = np.minimum(rise, (later - earlier) - ceiling * np.expm1(max_growth_rate_per_h * elapsed))
            fall = np.minimum(fall, (earlier - later) + ceiling * np.expm1(-max_loss_rate_per_h * elapsed))
        # A known harvest at t_h is applied at the first sample at or after it: windows over (t_first, t_k]
        # that meet [t_h, t_h + transient] are not tested: #(t_h ≤ t_k) − #(t_h + transient ≤ t_first) > 0.
        spans_harvest = (np.searchsorted(starts, times[last], side="right")
                         - np.searchsorted(ends, times[first], side="right")) > 0
        flagged = (np.maximum(rise, fall) > sigmas * standard_error) & ~spans_harvest
        at, start = finite[last[flagged]], finite[first[flagged]]
        onsets[at] = np.where(onsets[at] >= 0, np.minimum(onsets[at], start), start)
    return onsets
