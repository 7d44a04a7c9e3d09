import warnings

import numpy as np
import pytest

from algaflow.model.chemistry import carbonate_system

pyco2 = pytest.importorskip("PyCO2SYS")

PH = np.linspace(6.0, 10.0, 17)
TEMPERATURE = np.array([10.0, 17.5, 25.0, 32.5, 40.0])


def _reference(salinity, par2, par2_type, ph, temperature):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Millero (2010) carbonic constants (opt_k_carbonic=14), total scale, PyCO2SYS defaults otherwise.
        return pyco2.sys(par1=ph, par2=par2, par1_type=3, par2_type=par2_type, temperature=temperature,
                         salinity=salinity, opt_k_carbonic=14, opt_pH_scale=1, pressure=0,
                         total_silicate=0, total_phosphate=0)  # fmt: skip


@pytest.mark.parametrize("salinity", [0.0, 35.0])
@pytest.mark.parametrize("given", ["alkalinity", "dic"])
def test_agrees_with_pyco2sys_within_half_a_percent(salinity, given):
    ph, temperature = np.meshgrid(PH, TEMPERATURE)
    if given == "alkalinity":
        alkalinity = 2300.0 if salinity else 2000.0
        ours = carbonate_system(ph=ph, temperature_c=temperature, salinity=salinity,
                                alkalinity_umol_per_kg=alkalinity)  # fmt: skip
        reference = _reference(salinity, alkalinity, 1, ph, temperature)
    else:
        ours = carbonate_system(ph=ph, temperature_c=temperature, salinity=salinity, dic_umol_per_kg=2000.0)
        reference = _reference(salinity, 2000.0, 2, ph, temperature)
    valid = np.isfinite(reference["dic"]) & (reference["dic"] > 0)
    assert valid.mean() > 0.9
    for ours_name, ref_name in (("dic", "dic"), ("co2", "CO2"), ("hco3", "HCO3"), ("co3", "CO3"),
                                ("pco2", "pCO2"), ("alkalinity", "alkalinity")):  # fmt: skip
        relative = np.abs(getattr(ours, ours_name)[valid] / reference[ref_name][valid] - 1.0)
        assert relative.max() < 0.005, (ours_name, relative.max())


def test_alkalinity_and_dic_round_trip_recovers_ph():
    forward = carbonate_system(ph=8.1, temperature_c=25.0, salinity=35.0, alkalinity_umol_per_kg=2300.0)
    back = carbonate_system(temperature_c=25.0, salinity=35.0, alkalinity_umol_per_kg=2300.0,
                            dic_umol_per_kg=forward.dic)  # fmt: skip
    assert back.ph == pytest.approx(8.1, abs=1e-9)


def test_impossible_ph_for_alkalinity_gives_nan_not_negative_dic():
    result = carbonate_system(ph=10.0, temperature_c=25.0, salinity=35.0, alkalinity_umol_per_kg=300.0)
    assert np.isnan(result.dic)


@pytest.mark.parametrize("kwargs", [
    {"ph": 8.0, "temperature_c": 25.0},
    {"ph": 8.0, "temperature_c": 25.0, "alkalinity_umol_per_kg": 2000.0, "dic_umol_per_kg": 1900.0},
    {"ph": 8.0, "temperature_c": 25.0, "salinity": 45.0, "dic_umol_per_kg": 2000.0},
    {"ph": 8.0, "temperature_c": 70.0, "dic_umol_per_kg": 2000.0},
])  # fmt: skip
def test_bad_input_is_rejected_with_a_message(kwargs):
    with pytest.raises(ValueError):
        carbonate_system(**kwargs)
