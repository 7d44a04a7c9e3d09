"""The growth chain over whole series: the batch filter and the RTS smoother, every unit in parallel, and the
known dilution per sample they take.

Per unit, samples k = 0 … K−1 of (t_k, OD_k) with NaN gaps, each a step of the chain (fusion.growth_step:
the state z = (X, μ, b, d), its process and robust OD factors, the sample flags). The chain starts at the
first sample that can start it, from the prior of its reading, with one step from the first sample's time
over the dilutions announced before it, so a live chain (fusion.online) is this filter exactly; samples
before it carry the starting belief with F = I. The usual step is taken on scalars
(fusion.growth_linear_step), every other through growth_step; the two give the same numbers (tests).

A known harvest of fraction f_h at t_h acts on the first sample at or after it, several on one sample as

    f_k = 1 − Π_h (1 − f_h)

Smoother: the extended RTS pass from the last step back over the filter's stored priors and transitions
(so known harvests scale the smoothed X exactly as they scaled the filtered one),

    G_k = P_k F_{k+1}ᵀ (P⁻_{k+1})⁻¹,  m^s_k = m_k + G_k (m^s_{k+1} − m⁻_{k+1}),
    P^s_k = P_k + G_k (P^s_{k+1} − P⁻_{k+1}) G_kᵀ

each step back in the coordinates its forward step was taken in: before a step in ℓ = ln X, in ℓ too, with
F_ℓ = diag(1/X⁻, 1, 1, 1) F_X diag(X_k, 1, 1, 1) and G_X = diag(X^s_k) G_ℓ diag(1/X^s_{k+1}).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from algaflow.fusion.gaussian import FAST_FINITE_SAFE, SmootherResult, rts_step
from algaflow.fusion.growth_linear_step import SYMMETRIC_ENTRY, linear_step
from algaflow.fusion.growth_log_step import (
    change_to_log,
    from_log_coordinates,
    lowest_log_biomass_point,
    to_log_coordinates,
)
from algaflow.fusion.growth_model import (
    A_SLOPE,
    BASELINE,
    BIOMASS,
    C_QUADRATIC,
    DOF,
    DOWNWEIGHTED,
    DRIFT,
    GATE,
    GROWTH_RATE,
    JUMP_CONFIRMATIONS,
    N_GROWTH_STATE,
    OD_MAX,
    OD_MIN,
    Q_BASE,
    Q_DRIFT,
    Q_LOG,
    Q_MU,
    SIGMA_ABS,
    SIGMA_REL,
    USED,
    GrowthModel,
)
from algaflow.fusion.growth_step import (
    LAST_STEP_IN_LOG,
    LAST_TIME,
    LOG_STEP_ABOVE_GROWTH_SPREAD,
    N_CLOCK,
    PENDING_SURVIVAL,
    REJECTED_RUN_LENGTH,
    dry_weight_update,
    first_finite_time,
    first_valid_index,
    growth_step,
    initial_belief,
    pre_start_flag,
    start_clock,
    step_scratch,
)
from algaflow.fusion.timeline import place_on_samples


@njit(cache=True, error_model="numpy", fastmath=FAST_FINITE_SAFE)
def _filter_unit(times, od, dilution, rate_input, dry_weight, dry_weight_variance, model, mean, cov, predicted_mean,
                 predicted_cov, transitions, log_steps, flags):  # fmt: skip
    """The chain starts at the first sample that can start it, with :func:`initial_belief` of its reading,
    from the clock of the first finite time: one step over the samples before it, whose dilutions are
    pending (so a live chain, fusion.online, which sees them one by one, is this exactly). Before, each
    sample carries the chain's starting belief, with the identity as transition."""
    steps = times.shape[0]
    n = N_GROWTH_STATE
    scratch = step_scratch()
    prior_mean = np.zeros(n)
    prior_cov = np.zeros((n, n))
    first = first_valid_index(times, od, model)
    initial_belief(od[first] if first >= 0 else math.nan, model, prior_mean, prior_cov)
    clock = np.empty(N_CLOCK)
    start_clock(first_finite_time(times), clock)
    rejected_run = np.zeros(max(int(model[JUMP_CONFIRMATIONS]), 1))
    keep = predicted_mean.shape[0] == steps  # store every step's prior (smoothing needs them), or only the last
    for k in range(steps):
        stored = k if keep else 0
        if first < 0 or k < first:
            flags[k] = pre_start_flag(times[k], od[k])
            clock[PENDING_SURVIVAL] *= 1.0 - dilution[k]
            mean[k] = prior_mean
            cov[k] = prior_cov
            predicted_mean[stored] = prior_mean
            predicted_cov[stored] = prior_cov
            transitions[stored] = np.eye(n)
            log_steps[stored] = False
            continue
        # The usual step on scalars (linear_step), where growth_step would take that path: a valid reading at a
        # later time, a step short enough for X, the gate passed. Outputs are read and written entry by entry:
        # no array is handed to a call, so no reference is taken (an atomic operation) per step.
        time, value = times[k], od[k]
        dt = time - clock[LAST_TIME]
        if (k > first and dt >= 0.0 and math.isfinite(time) and math.isfinite(value)
                and model[OD_MIN] <= value <= model[OD_MAX]
                and dt * math.sqrt(max(cov[k - 1, GROWTH_RATE, GROWTH_RATE], 0.0)) <= LOG_STEP_ABOVE_GROWTH_SPREAD):
            removed = 1.0 - clock[PENDING_SURVIVAL] * (1.0 - dilution[k])
            step = linear_step(mean[k - 1, 0], mean[k - 1, 1], mean[k - 1, 2], mean[k - 1, 3], cov[k - 1, 0, 0],
                               cov[k - 1, 0, 1], cov[k - 1, 0, 2], cov[k - 1, 0, 3], cov[k - 1, 1, 1], cov[k - 1, 1, 2],
                               cov[k - 1, 1, 3], cov[k - 1, 2, 2], cov[k - 1, 2, 3], cov[k - 1, 3, 3], dt,
                               1.0 - removed, rate_input[k], value, model[A_SLOPE], model[C_QUADRATIC],
                               model[SIGMA_ABS], model[SIGMA_REL], model[Q_MU], model[Q_LOG], model[Q_BASE],
                               model[Q_DRIFT], model[DOF], model[GATE])  # fmt: skip
            weight = step[1]
            if weight == weight:  # not gated (a gated reading goes through growth_step: rejection, level jump)
                clock[LAST_TIME] = time
                clock[PENDING_SURVIVAL] = 1.0
                clock[REJECTED_RUN_LENGTH] = 0.0
                clock[LAST_STEP_IN_LOG] = 0.0
                prior, posterior = step[3:17], step[17:31]
                for i in range(n):
                    predicted_mean[stored, i] = prior[i]
                    mean[k, i] = posterior[i]
                    for j in range(n):
                        entry = SYMMETRIC_ENTRY[i][j]
                        predicted_cov[stored, i, j] = prior[4 + entry]
                        cov[k, i, j] = posterior[4 + entry]
                        transitions[stored, i, j] = 1.0 if i == j else 0.0
                transitions[stored, BIOMASS, BIOMASS] = step[2]
                transitions[stored, BIOMASS, GROWTH_RATE] = prior[BIOMASS] * dt
                transitions[stored, BASELINE, DRIFT] = dt
                flags[k] = DOWNWEIGHTED if weight < 0.5 else USED
                log_steps[stored] = False
                if math.isfinite(dry_weight[k]):
                    dry_weight_update(mean[k], cov[k], dry_weight[k], dry_weight_variance)
                continue
        previous_mean = prior_mean if k == first else mean[k - 1]
        previous_cov = prior_cov if k == first else cov[k - 1]
        flags[k] = growth_step(times[k], od[k], dilution[k], rate_input[k], model, previous_mean, previous_cov,
                               clock, rejected_run, mean[k], cov[k], predicted_mean[stored], predicted_cov[stored],
                               transitions[stored], scratch)  # fmt: skip
        log_steps[stored] = clock[LAST_STEP_IN_LOG] != 0.0
        if math.isfinite(dry_weight[k]):
            dry_weight_update(mean[k], cov[k], dry_weight[k], dry_weight_variance)


@njit(cache=True, error_model="numpy", parallel=True)
def _filter_batch(times, od, dilution, rate_input, dry_weight, dry_weight_variance, model, mean, cov, predicted_mean,
                  predicted_cov, transitions, log_steps, flags):  # fmt: skip
    for u in prange(times.shape[0]):
        _filter_unit(times[u], od[u], dilution[u], rate_input[u], dry_weight[u], dry_weight_variance, model, mean[u],
                     cov[u], predicted_mean[u], predicted_cov[u], transitions[u], log_steps[u], flags[u])


@dataclass(slots=True)
class GrowthEstimates:
    """Per unit and sample: state means and covariances, sample flags, and the chain's transitions.

    predicted_* hold each step's prior (after any known dilution); at a level jump, the restarted one.
    log_steps marks the steps taken in log coordinates (:data:`LOG_STEP_ABOVE_GROWTH_SPREAD`); the smoother
    goes back over them in the same coordinates. ``model`` is the chain's GrowthModel as an array.
    """

    times_h: np.ndarray
    mean: np.ndarray  # (units, steps, N_GROWTH_STATE)
    cov: np.ndarray  # (units, steps, N_GROWTH_STATE, N_GROWTH_STATE)
    flags: np.ndarray  # (units, steps) codes of FLAG_NAMES
    predicted_mean: np.ndarray
    predicted_cov: np.ndarray
    transitions: np.ndarray
    log_steps: np.ndarray  # (units, steps kept) bool
    model: np.ndarray

    @property
    def growth_rate_per_h(self) -> np.ndarray:
        return self.mean[..., GROWTH_RATE]

    @property
    def growth_rate_sd(self) -> np.ndarray:
        return np.sqrt(self.cov[..., GROWTH_RATE, GROWTH_RATE])

    @property
    def biomass_g_per_l(self) -> np.ndarray:
        return self.mean[..., BIOMASS]

    @property
    def biomass_sd(self) -> np.ndarray:
        return np.sqrt(self.cov[..., BIOMASS, BIOMASS])


def dilution_before_samples(sample_times_h: np.ndarray, harvest_times_h: np.ndarray,
                            harvest_fractions: np.ndarray) -> np.ndarray:
    """Fraction removed just before each sample: a harvest at t_h acts on the first sample at or after t_h
    (fusion.timeline.place_on_samples; one after the last sample on none), several on one sample combine as
    1 − Π(1 − f)."""
    sample_times_h = np.asarray(sample_times_h, dtype=float)
    harvest_times_h = np.asarray(harvest_times_h, dtype=float)
    harvest_fractions = np.asarray(harvest_fractions, dtype=float)
    if harvest_times_h.shape != harvest_fractions.shape:
        raise ValueError(f"{harvest_times_h.size} harvest times and {harvest_fractions.size} fractions")
    survival = np.ones(sample_times_h.size)
    index, placed = place_on_samples(harvest_times_h, sample_times_h)
    np.multiply.at(survival, index[placed], 1.0 - harvest_fractions[placed])  # in order, repeats compound
    return 1.0 - survival


def filter_growth(times_h: np.ndarray, od: np.ndarray, dilution_fraction: np.ndarray | None = None,
                  model: GrowthModel | None = None, keep_priors: bool = True, rate_input: np.ndarray | None = None,
                  dry_weight: np.ndarray | None = None, dry_weight_sd: float = 0.02) -> GrowthEstimates:  # fmt: skip
    """Causal estimates for a batch: times_h, od (units, steps) with NaN gaps; dilution_fraction (units, steps)
    is the known fraction removed (and replaced by medium) just before each sample, 0 where none.

    ``rate_input`` (units, steps): the model's expected change of μ just before each sample
    (fusion.expected_rate; the first entry is the model's μ, the prior mean): μ⁻ += u_k, X⁻ ×= e^{u_k Δt / 2}
    (the step's trapezoid on ln X), and μ's random walk is then the model's error, with the smaller diffusion
    ``informed_growth_rate_diffusion``.

    ``dry_weight`` (units, steps): a manual dry-weight sample (g/L, sd ``dry_weight_sd``) taken with each
    sample, NaN where none: a factor on X after the OD factor (:func:`dry_weight_update`); it pins the biomass
    the OD baseline and drift otherwise share with it.

    ``keep_priors=False`` stores only the last step's prior and transition (a live filter that will not be
    smoothed: 60 % less memory traffic); :func:`smooth_growth` needs them all."""
    model = model or GrowthModel()
    times_h = np.ascontiguousarray(np.atleast_2d(times_h), dtype=float)
    od = np.ascontiguousarray(np.atleast_2d(od), dtype=float)
    if times_h.shape != od.shape:
        raise ValueError(f"times_h {times_h.shape} and od {od.shape} must have the same (units, steps) shape")
    if dilution_fraction is None:
        dilution_fraction = np.zeros_like(od)
    dilution_fraction = np.ascontiguousarray(np.atleast_2d(dilution_fraction), dtype=float)
    if dilution_fraction.shape != od.shape:
        raise ValueError(f"dilution_fraction {dilution_fraction.shape} must match od {od.shape}")
    if np.any((dilution_fraction < 0) | (dilution_fraction >= 1)):
        raise ValueError("dilution_fraction must lie in [0, 1): the fraction of culture removed")
    units, steps = od.shape
    n = N_GROWTH_STATE
    mean = np.empty((units, steps, n))
    cov = np.empty((units, steps, n, n))
    kept = steps if keep_priors else 1
    predicted_mean = np.empty((units, kept, n))
    predicted_cov = np.empty((units, kept, n, n))
    transitions = np.empty((units, kept, n, n))
    log_steps = np.zeros((units, kept), dtype=np.bool_)
    flags = np.empty((units, steps), dtype=np.int64)
    if rate_input is None:
        rate_input = np.zeros_like(od)
    else:
        model = model.informed()
    rate_input = np.ascontiguousarray(np.atleast_2d(rate_input), dtype=float)
    if rate_input.shape != od.shape or not np.isfinite(rate_input).all():
        raise ValueError(f"rate_input {rate_input.shape} must be finite and match od {od.shape}")
    dry_weight = np.full_like(od, np.nan) if dry_weight is None else np.atleast_2d(np.asarray(dry_weight, float))
    if dry_weight.shape != od.shape:
        raise ValueError(f"dry_weight {dry_weight.shape} must match od {od.shape}")
    if not dry_weight_sd > 0:
        raise ValueError(f"dry_weight_sd must be > 0 g/L (got {dry_weight_sd})")
    parameters = model.as_array()
    _filter_batch(times_h, od, dilution_fraction, rate_input, np.ascontiguousarray(dry_weight), dry_weight_sd**2,
                  parameters, mean, cov, predicted_mean, predicted_cov, transitions, log_steps, flags)  # fmt: skip
    return GrowthEstimates(times_h, mean, cov, flags, predicted_mean, predicted_cov, transitions, log_steps,
                           parameters)  # fmt: skip


def smooth_growth(estimates: GrowthEstimates) -> SmootherResult:
    """Offline estimates: the RTS backward pass over the filter's chain (its stored priors and transitions,
    so known harvests scale the smoothed X exactly as they scaled the filtered one): the extended RTS
    smoother, each step back in the coordinates its forward step was taken in (:func:`_smooth_unit`)."""
    if estimates.predicted_mean.shape[1] != estimates.mean.shape[1]:
        raise ValueError("these estimates were filtered with keep_priors=False; smoothing needs every prior")
    smooth_mean = np.empty_like(estimates.mean)
    smooth_cov = np.empty_like(estimates.cov)
    gain = np.empty_like(estimates.cov)
    _smooth_batch(estimates.mean, estimates.cov, estimates.predicted_mean, estimates.predicted_cov,
                  estimates.transitions, estimates.log_steps, estimates.model, smooth_mean, smooth_cov, gain)
    return SmootherResult(smooth_mean, smooth_cov, gain)


@njit(cache=True, error_model="numpy")
def _smooth_unit(mean, cov, predicted_mean, predicted_cov, transitions, log_steps, model, smooth_mean, smooth_cov,
                 gain) -> None:  # fmt: skip
    """RTS from the last step back (fusion.gaussian.rts_step). Before a step k+1 taken in log coordinates the
    step back is taken there too: the filtered belief at k and the prior at k+1 carried to ℓ at the points
    the forward step used (so F_ℓ = diag(1/X⁻, 1, 1, 1) F_X diag(X_k, 1, 1, 1) is the forward's), the smoothed
    belief at k+1 at its own mean; the result carried back at its own mean, and G_X = diag(X^s_k) G_ℓ
    diag(1/X^s_{k+1})."""
    steps, n = mean.shape
    scratch_a, scratch_b = np.empty((n, n)), np.empty((n, n))
    filtered_mean, filtered_cov = np.empty(n), np.empty((n, n))
    prior_mean, prior_cov = np.empty(n), np.empty((n, n))
    next_mean, next_cov = np.empty(n), np.empty((n, n))
    transition = np.empty((n, n))
    floor = lowest_log_biomass_point(model)
    smooth_mean[steps - 1] = mean[steps - 1]
    smooth_cov[steps - 1] = cov[steps - 1]
    gain[steps - 1] = 0.0
    for k in range(steps - 2, -1, -1):
        if not log_steps[k + 1]:
            rts_step(mean[k], cov[k], predicted_mean[k + 1], predicted_cov[k + 1], transitions[k + 1],
                     smooth_mean[k + 1], smooth_cov[k + 1], smooth_mean[k], smooth_cov[k], gain[k], scratch_a,
                     scratch_b)  # fmt: skip
            continue
        previous = to_log_coordinates(mean[k], cov[k], model, filtered_mean, filtered_cov)
        predicted = predicted_mean[k + 1, BIOMASS]
        change_to_log(predicted_mean[k + 1], predicted_cov[k + 1], predicted, prior_mean, prior_cov)
        following = max(smooth_mean[k + 1, BIOMASS], floor)
        change_to_log(smooth_mean[k + 1], smooth_cov[k + 1], following, next_mean, next_cov)
        transition[:, :] = transitions[k + 1]
        for i in range(n):
            transition[BIOMASS, i] /= predicted
            transition[i, BIOMASS] *= previous
        rts_step(filtered_mean, filtered_cov, prior_mean, prior_cov, transition, next_mean, next_cov, smooth_mean[k],
                 smooth_cov[k], gain[k], scratch_a, scratch_b)  # fmt: skip
        smoothed = from_log_coordinates(smooth_mean[k], smooth_cov[k])
        for i in range(n):
            gain[k, BIOMASS, i] *= smoothed
            gain[k, i, BIOMASS] /= following


@njit(cache=True, error_model="numpy", parallel=True)
def _smooth_batch(mean, cov, predicted_mean, predicted_cov, transitions, log_steps, model, smooth_mean, smooth_cov,
                  gain) -> None:  # fmt: skip
    for u in prange(mean.shape[0]):
        _smooth_unit(mean[u], cov[u], predicted_mean[u], predicted_cov[u], transitions[u], log_steps[u], model,
                     smooth_mean[u], smooth_cov[u], gain[u])
