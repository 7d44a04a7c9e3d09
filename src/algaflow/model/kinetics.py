"""Growth kinetics: the factors that multiply mu_max, each a pure function of one condition.

    mu_net = mu_max · f_light(I) · f_T(T) · f_pH(pH) · f_O2(DO) · f_N(NO3) · f_C(DIC) − r(T)

Scalar kernels (``*_factor``) are compiled for the reactor right-hand side; the public names without a
leading underscore are NumPy ufuncs built from the same kernels, so they take any batch shape.
"""

from __future__ import annotations

import math

from numba import njit, vectorize


@njit(cache=True, error_model="numpy", inline="always")
def light_factor(par: float, a: float, b: float, c: float) -> float:
    """f_light(I) = I / (a + b I + c I²): Haldane (a=K_s, b=1, c=1/K_i) or Bernard–Rémond (see catalog)."""
    if par <= 0.0:
        return 0.0
    return par / (a + b * par + c * par * par)


@njit(cache=True, error_model="numpy", inline="always")
def cardinal_factor(x: float, x_min: float, x_opt: float, x_max: float, n: float) -> float:
    """Cardinal model with inflexion CMn (Rosso et al. 1993, 1995); 0 outside (x_min, x_max).

        f = (x − x_max)(x − x_min)^n / ((x_opt − x_min)^(n−1) [(x_opt − x_min)(x − x_opt)
                                         − (x_opt − x_max)((n − 1) x_opt + x_min − n x)])

    n = 2 is the CTMI used for temperature; n = 1 is the cardinal pH model (CPM).
    """
    if x <= x_min or x >= x_max:
        return 0.0
    numerator = (x - x_max) * (x - x_min) ** n
    bracket = (x_opt - x_min) * (x - x_opt) - (x_opt - x_max) * ((n - 1.0) * x_opt + x_min - n * x)
    return numerator / ((x_opt - x_min) ** (n - 1.0) * bracket)


@njit(cache=True, error_model="numpy", inline="always")
def oxygen_factor(do_mg_per_l: float, do_max_mg_per_l: float, exponent: float) -> float:
    """f_O2 = max(0, 1 − (DO / DO_max)^m): dissolved O2 suffocates growth (Costache et al. 2013)."""
    if do_mg_per_l <= 0.0:
        return 1.0
    return max(0.0, 1.0 - (do_mg_per_l / do_max_mg_per_l) ** exponent)


@njit(cache=True, error_model="numpy", inline="always")
def monod_factor(substrate: float, half_saturation: float) -> float:
    """f = S / (K + S) for S ≥ 0 (0 for an exhausted or negative substrate)."""
    if substrate <= 0.0:
        return 0.0
    return substrate / (half_saturation + substrate)


@njit(cache=True, error_model="numpy", inline="always")
def respiration_rate(temperature_c: float, rate_at_20c: float, q10: float) -> float:
    """r(T) = r20 · Q10^((T − 20) / 10), in 1/h: maintenance respiration, day and night."""
    return rate_at_20c * math.exp(math.log(q10) * (temperature_c - 20.0) / 10.0)


_SIGNATURE4 = ["float64(float64, float64, float64, float64)"]
light_response = vectorize(_SIGNATURE4, cache=True)(light_factor.py_func)
cardinal_temperature = vectorize(_SIGNATURE4, cache=True)(
    lambda t, t_min, t_opt, t_max: cardinal_factor(t, t_min, t_opt, t_max, 2.0)
)
cardinal_ph = vectorize(_SIGNATURE4, cache=True)(
    lambda ph, ph_min, ph_opt, ph_max: cardinal_factor(ph, ph_min, ph_opt, ph_max, 1.0)
)
oxygen_inhibition = vectorize(["float64(float64, float64, float64)"], cache=True)(oxygen_factor.py_func)
monod = vectorize(["float64(float64, float64)"], cache=True)(monod_factor.py_func)
respiration = vectorize(["float64(float64, float64, float64)"], cache=True)(respiration_rate.py_func)
