"""The growth chain's configuration and its array layout (fusion.growth): the state, the sample flags and
the noise and calibration parameters, shared by the chain's steps in biomass and in log coordinates."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

STATE_NAMES = ("biomass_g_per_l", "growth_rate_per_h", "od_baseline", "od_drift_per_h")
BIOMASS, GROWTH_RATE, BASELINE, DRIFT = range(4)
N_GROWTH_STATE = 4

FLAG_NAMES = ("used", "missing", "downweighted", "rejected_outlier", "invalid_value", "time_not_increasing",
              "level_jump")
USED, MISSING, DOWNWEIGHTED, REJECTED, INVALID, TIME_NOT_INCREASING, LEVEL_JUMP = range(7)


@dataclass(frozen=True, slots=True)
class GrowthModel:
    """Noise and calibration of the growth chain; one configuration for every culture (see module doc)."""

    od_per_g_per_l: float = 1.0  # calibration slope a
    od_quadratic: float = 0.0  # calibration curvature c (OD per (g/L)²): OD = c0 + a X + c X² + b
    od_intercept: float = 0.0  # calibration intercept c0: the baseline's prior mean
    od_noise_sd: float = 0.005  # σ_abs, OD
    od_relative_noise: float = 0.01  # σ_rel
    growth_rate_diffusion: float = 6e-5  # σ_μ², (1/h)² per h
    informed_growth_rate_diffusion: float = 1e-6  # σ_μ² of the model's error δ when the model informs μ
    log_biomass_diffusion: float = 2e-5  # σ_ℓ², per h
    baseline_diffusion: float = 1e-6  # σ_b², OD² per h
    drift_diffusion: float = 1e-10  # σ_d², (OD/h)² per h
    initial_growth_rate_sd: float = 0.1  # 1/h
    initial_baseline_sd: float = 0.01  # OD: a blanked photometer's offset (sensor_growth_model: catalog offset_sd)
    initial_drift_sd: float = 4e-4  # OD/h (0.01 OD per day)
    student_t_dof: float = 4.0
    gate_sigma: float = 8.0
    od_plausible_min: float = -0.05
    od_plausible_max: float = 10.0
    jump_confirmations: int = 5  # consecutive consistent rejections that mean the level really moved

    def __post_init__(self) -> None:
        for name in ("od_per_g_per_l", "od_noise_sd", "growth_rate_diffusion", "initial_growth_rate_sd",
                     "student_t_dof", "gate_sigma"):  # fmt: skip
            if not getattr(self, name) > 0:
                raise ValueError(f"GrowthModel.{name} must be > 0 (got {getattr(self, name)})")
        for name in ("od_relative_noise", "log_biomass_diffusion", "baseline_diffusion", "initial_baseline_sd",
                     "drift_diffusion", "initial_drift_sd"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"GrowthModel.{name} must be ≥ 0 (got {getattr(self, name)})")

    def informed(self) -> GrowthModel:
        """This factor where the reactor model informs μ (fusion.expected_rate): μ's random walk is then the
        model's error, with the smaller diffusion ``informed_growth_rate_diffusion``."""
        return replace(self, growth_rate_diffusion=self.informed_growth_rate_diffusion)

    def as_array(self) -> np.ndarray:
        return np.array([self.od_per_g_per_l, self.od_noise_sd, self.od_relative_noise, self.growth_rate_diffusion,
                         self.log_biomass_diffusion, self.baseline_diffusion, self.initial_growth_rate_sd,
                         self.initial_baseline_sd, self.student_t_dof, self.gate_sigma, self.od_plausible_min,
                         self.od_plausible_max, self.jump_confirmations, self.drift_diffusion,
                         self.initial_drift_sd, self.od_quadratic, self.od_intercept])  # fmt: skip


(A_SLOPE, SIGMA_ABS, SIGMA_REL, Q_MU, Q_LOG, Q_BASE, MU0_SD, BASE0_SD, DOF, GATE, OD_MIN, OD_MAX,
 JUMP_CONFIRMATIONS, Q_DRIFT, DRIFT0_SD, C_QUADRATIC, C_INTERCEPT) = range(17)
