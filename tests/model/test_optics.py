import math

import numpy as np
import pytest
from scipy import integrate

from algaflow.model.optics import average_growth_factor, average_light

CHLORELLA = (16.4, 1.0, 1.0 / 687.0)  # Haldane a, b, c
BERNARD_REMOND = (37.5, 0.8125, 37.5 / 400.0**2)  # b < 1: another branch of the closed form
STEEP = (100.0, -1.5, 0.01)  # b < 0 with 4ac > b²


def _cross_section_reference(par_in, tau, coefficients, light=False):
    """Direct 2-D integration over the disk (D = 1) of f(I0 exp(−τ (x + √(R²−y²)))), lit from x = −R."""
    a, b, c = coefficients
    radius = 0.5

    def chord(y):
        half = math.sqrt(radius * radius - y * y)

        def integrand(x):
            intensity = par_in * math.exp(-tau * (x + half))
            return intensity if light else intensity / (a + b * intensity + c * intensity * intensity)

        points = [-half + min(2 * half, k / tau) for k in (1, 5, 20)] if tau > 0 else None
        return integrate.quad(integrand, -half, half, epsabs=0, epsrel=1e-13, limit=500, points=points)[0]

    return integrate.quad(chord, -radius, radius, epsabs=0, epsrel=1e-12, limit=500)[0] / (math.pi * radius**2)


@pytest.mark.parametrize("coefficients", [CHLORELLA, BERNARD_REMOND, STEEP])
@pytest.mark.parametrize("par_in", [20.0, 400.0, 2500.0])
@pytest.mark.parametrize("tau", [0.0, 0.05, 1.0, 7.0, 30.0, 100.0])
def test_tube_average_matches_cross_section_integration(coefficients, par_in, tau):
    a, b, c = coefficients
    ours = average_growth_factor("tube", par_in, tau, 1.0, 1.0, a, b, c)
    reference = _cross_section_reference(par_in, tau, coefficients)
    assert ours == pytest.approx(reference, rel=1e-6)
    light = average_light("tube", par_in, tau, 1.0, 1.0)
    assert light == pytest.approx(_cross_section_reference(par_in, tau, coefficients, light=True), rel=1e-6)


@pytest.mark.parametrize(
    ("coefficients", "par_in", "tau"),
    [  # peaks 1/(2√(ac) cosh(v − v₀) + b) with poles close to the real axis; worst points of a dense scan
        ((100.0, -1.5, 0.01), 2500.0, 4.83),
        ((100.0, -1.5, 0.01), 1000.0, 2.89),
        ((100.0, -1.8, 0.01), 2500.0, 3.82),
        ((100.0, -1.9, 0.01), 888.0, 2.69),
        ((100.0, -1.9, 0.01), 158.0, 2.13),
    ],
)
def test_tube_average_resolves_sharply_peaked_responses(coefficients, par_in, tau):
    a, b, c = coefficients
    ours = average_growth_factor("tube", par_in, tau, 1.0, 1.0, a, b, c)
    assert ours == pytest.approx(_cross_section_reference(par_in, tau, coefficients), rel=1e-6)


def test_flat_panel_matches_depth_integration():
    a, b, c = CHLORELLA
    for tau in (0.01, 3.0, 100.0):
        reference = integrate.quad(lambda s, t=tau: (lambda i: i / (a + b * i + c * i * i))(900 * math.exp(-t * s)),
                                   0, 1, epsrel=1e-13, limit=500, points=[1 / tau, 10 / tau])[0]  # fmt: skip
        assert average_growth_factor("flat_panel", 900.0, tau, 1.0, 1.0, a, b, c) == pytest.approx(reference, rel=1e-9)


def test_growth_of_the_light_field_is_not_growth_at_mean_light():
    a, b, c = CHLORELLA
    mean_light = average_light("tube", 1500.0, 20.0, 1.0, 1.0)
    at_mean = mean_light / (a + b * mean_light + c * mean_light**2)
    field = average_growth_factor("tube", 1500.0, 20.0, 1.0, 1.0, a, b, c)
    assert abs(field - at_mean) / field > 0.05


def test_batch_broadcasting_and_units():
    # τ = k X D: biomass 2 g/L, D = 0.05 m, k = 150 (m⁻¹ (g/L)⁻¹) → τ = 15, same as X=1, D=0.1.
    values = average_growth_factor("tube", np.array([100.0, 800.0]), np.array([[2.0], [1.0]]),
                                   np.array([[0.05], [0.1]]), 150.0, *CHLORELLA)  # fmt: skip
    assert values.shape == (2, 2)
    np.testing.assert_allclose(values[0], values[1], rtol=1e-12)
    with pytest.raises(ValueError):
        average_light("tube", -1.0, 1.0, 0.05, 150.0)
