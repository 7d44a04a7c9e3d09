"""Vocabulary shared by every layer: the sensor catalog and the strain library."""

from algaflow.catalog.sensors import ROLES, SENSORS, SensorSpec, sensor, sensor_names, sensors_with_role
from algaflow.catalog.strains import Strain, load_strain, strain_names

__all__ = [
    "ROLES",
    "SENSORS",
    "SensorSpec",
    "Strain",
    "load_strain",
    "sensor",
    "sensor_names",
    "sensors_with_role",
    "strain_names",
]
