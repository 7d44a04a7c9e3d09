import numpy as np

from algaflow.sim.forcing import lamp_table
from algaflow.sim.tables import jump_times, pack_tables, table_value


def test_lamp_table_is_right_continuous_with_left_limits_and_clamped_ends():
    times, values = lamp_table(500.0, 16.0, 6.0, 72.0)
    n = times.size
    assert table_value(times, values, n, 5.999, False) == 0.0
    assert table_value(times, values, n, 6.0, False) == 500.0
    assert table_value(times, values, n, 6.0, True) == 0.0  # left limit at the switch
    assert table_value(times, values, n, 22.0, False) == 0.0
    assert table_value(times, values, n, 22.0, True) == 500.0
    assert table_value(times, values, n, -10.0, False) == 0.0
    assert table_value(times, values, n, 1e6, False) == values[-1]
    assert list(jump_times(times)[:4]) == [6.0, 22.0, 30.0, 46.0]


def test_lamp_on_at_start_and_continuous_light():
    times, values = lamp_table(300.0, 16.0, 20.0, 48.0)  # on from 20:00 to 12:00 next day
    assert table_value(times, values, times.size, 1.0, False) == 300.0
    assert table_value(times, values, times.size, 15.0, False) == 0.0
    times, values = lamp_table(300.0, 24.0, 0.0, 48.0)
    assert jump_times(times).size == 0 and table_value(times, values, times.size, 30.0, False) == 300.0


def test_pack_tables_pads_without_changing_values():
    a = (np.array([0.0, 1.0, 1.0, 2.0]), np.array([0.0, 0.0, 1.0, 1.0]))
    b = (np.array([0.0, 10.0]), np.array([5.0, 6.0]))
    times, values, counts, _jumps, jump_counts = pack_tables([a, b])
    assert counts.tolist() == [4, 2] and jump_counts.tolist() == [1, 0]
    assert table_value(times[1], values[1], counts[1], 50.0, False) == 6.0
