"""The math of the culture, pure and vectorised over a batch of reactors (NumPy/SciPy/Numba only)."""
