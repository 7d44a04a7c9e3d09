"""algaflow: model, simulate, fuse and run algae photobioreactors.

Layers point one way (see DESIGN.md): catalog → model → sim → fusion → control → service → cli.
"""

__version__ = "0.1.0"
