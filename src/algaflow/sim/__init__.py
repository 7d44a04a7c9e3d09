"""Simulation: integrator with events, forcing, sensor models, scenarios."""
