"""What a live reader knows at a time: the last sample at or before it, and a reading held for a while."""

import numpy as np

from algaflow.fusion.timeline import held_values, last_sample_index


def test_the_last_sample_at_or_before_each_time():
    np.testing.assert_array_equal(last_sample_index([1.0, 2.0, 4.0], [0.5, 1.0, 3.9, 9.0]), [-1, 0, 1, 2])


def test_a_reading_is_held_for_its_hold_time_and_no_longer():
    held = held_values([1.0, 2.0, 4.0], [10.0, 20.0, 40.0], [0.5, 1.0, 2.2, 2.25, 2.3, 4.1], hold_h=0.25)
    np.testing.assert_array_equal(held, [np.nan, 10.0, 20.0, 20.0, np.nan, 40.0])
    assert np.isnan(held_values([], [], [1.0, 2.0], hold_h=1.0)).all()
