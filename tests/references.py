"""Independent numerical references shared by the tests: central differences and Gauss–Hermite quadrature."""

from collections.abc import Callable

import numpy as np


def central_difference_jacobian(function: Callable[[np.ndarray], np.ndarray], point: np.ndarray, relative: float,
                                floor: float) -> np.ndarray:  # fmt: skip
    """Plain central differences, one column at a time: column j steps by relative · max(|x_j|, floor)."""
    columns = []
    for j in range(point.size):
        step = relative * max(abs(point[j]), floor)
        up, down = point.copy(), point.copy()
        up[j] += step
        down[j] -= step
        columns.append((function(up) - function(down)) / (2 * step))
    return np.stack(columns, axis=-1)


def gauss_hermite_regression(mean: float, variance: float, curve: Callable[[np.ndarray], np.ndarray],
                             nodes: int = 60) -> tuple[float, float, float]:  # fmt: skip
    """Statistical linear regression of curve(x), x ~ N(mean, variance), by Gauss–Hermite quadrature:
    (E h, Cov(x, h)/variance, Var h − slope² variance)."""
    points, weights = np.polynomial.hermite_e.hermegauss(nodes)
    weights = weights / weights.sum()
    x = mean + np.sqrt(variance) * points
    values = curve(x)
    expected = weights @ values
    slope = (weights @ ((x - mean) * values)) / variance
    return expected, slope, weights @ (values - expected) ** 2 - slope**2 * variance
