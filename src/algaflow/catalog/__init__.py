"""Vocabulary shared by every layer: the sensor catalog and the strain library."""

from algaflow.catalog.sensors import SENSORS, SensorSpec, sensor, sensor_names
from algaflow.catalog.strains import Strain, load_strain, strain_names

__all__ = ["SENSORS", "SensorSpec", "Strain", "load_strain", "sensor", "sensor_names", "strain_names"]
