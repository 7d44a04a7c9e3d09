import numpy as np
import pytest

from algaflow.model.gas import AIR_O2_FRACTION, gas_limited_kla, oxygen_saturation

# Dissolved O2 at saturation with air, fresh water, 1 atm (Benson & Krause; APHA Standard Methods 4500-O).
APHA_TABLE = {0: 14.62, 10: 11.29, 20: 9.09, 30: 7.56, 40: 6.41}


def test_oxygen_saturation_matches_the_standard_table_within_one_percent():
    for temperature, mg_per_l in APHA_TABLE.items():
        assert oxygen_saturation(float(temperature), 0.0, AIR_O2_FRACTION) == pytest.approx(mg_per_l, rel=0.01)


def test_seawater_holds_less_oxygen_and_pure_oxygen_more():
    fresh = oxygen_saturation(20.0, 0.0, AIR_O2_FRACTION)
    assert oxygen_saturation(20.0, 35.0, AIR_O2_FRACTION) < 0.85 * fresh
    assert oxygen_saturation(20.0, 0.0, 1.0) == pytest.approx(fresh / AIR_O2_FRACTION)


def test_gas_limited_kla_never_removes_more_than_the_gas_carries():
    # Exhaust x_out = x_in − kLa_eff V (H x_in − C)/ṅ must stay ≥ 0 when C = 0, for any kLa.
    for kla in (1.0, 10.0, 1000.0, 1e6):
        effective = gas_limited_kla(kla, 20.0, 30.0, 500.0)
        x_out = 1.0 - effective * 20.0 * 30.0 * 1.0 / 500.0
        assert 0.0 <= x_out <= 1.0
    assert gas_limited_kla(10.0, 20.0, 30.0, 0.0) == 0.0
    np.testing.assert_allclose(gas_limited_kla(10.0, 20.0, 1e-9, 500.0), 10.0)
