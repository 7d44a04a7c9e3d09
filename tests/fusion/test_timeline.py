"""What a live reader knows at a time: the last sample at or before it, and a reading held for a while; where a
late input lands: the first sample at or after it."""

import numpy as np

from algaflow.fusion.timeline import held_values, last_sample_index, place_on_samples


def test_the_last_sample_at_or_before_each_time():
    np.testing.assert_array_equal(last_sample_index([1.0, 2.0, 4.0], [0.5, 1.0, 3.9, 9.0]), [-1, 0, 1, 2])


def test_a_reading_is_held_for_its_hold_time_and_no_longer():
    held = held_values([1.0, 2.0, 4.0], [10.0, 20.0, 40.0], [0.5, 1.0, 2.2, 2.25, 2.3, 4.1], hold_h=0.25)
    np.testing.assert_array_equal(held, [np.nan, 10.0, 20.0, 20.0, np.nan, 40.0])
    assert np.isnan(held_values([], [], [1.0, 2.0], hold_h=1.0)).all()


def test_an_item_lands_on_the_first_sample_at_or_after_it():
    samples = np.array([1.0, 2.0, 4.0])
    index, placed = place_on_samples([0.5, 1.0, 1.5, 2.0, 4.0, 4.5, np.nan], samples)
    # before the first sample: on it; at a sample's time: on that sample; after the last or NaN: on none
    np.testing.assert_array_equal(index, [0, 0, 1, 1, 2, 3, 3])
    np.testing.assert_array_equal(placed, [True, True, True, True, True, False, False])
    np.testing.assert_array_equal(samples[index[placed]], [1.0, 1.0, 2.0, 2.0, 4.0])


def test_items_and_samples_may_be_empty_and_integer_times_stay_exact():
    index, placed = place_on_samples([], [1.0, 2.0])
    assert index.shape == placed.shape == (0,)
    index, placed = place_on_samples([0.0, 3.0], [])
    np.testing.assert_array_equal(index, [0, 0])
    assert not placed.any()
    base = 2**53  # past it a float cannot tell t from t + 1: integer times are not cast
    index, placed = place_on_samples(np.array([base + 1, base + 2], dtype=np.int64),
                                     np.array([base + 1, base + 3], dtype=np.int64))  # fmt: skip
    np.testing.assert_array_equal(index, [0, 1])
    assert placed.all()
