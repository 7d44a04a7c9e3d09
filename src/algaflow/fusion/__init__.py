"""Sensor fusion: Gaussian message passing on factor graphs, the reactor estimator, calibration curves."""
