"""The warm-up compiles every kernel a unit's data can reach: the batch filter and smoother, the online filter,
the live condition readings, the stuck check and the drift check."""

from algaflow.fusion import expected_rate, growth, online, online_rate, sensor_health
from algaflow.fusion.warm_up import warm_up_kernels


def test_warm_up_leaves_the_fusion_kernels_compiled():
    seconds = warm_up_kernels()
    assert seconds > 0
    for kernel in (growth._filter_batch, growth._smooth_batch, online._advance, online_rate._advance,
                   sensor_health._drift_run, sensor_health.stuck_runs, expected_rate.segmented_increments):
        assert kernel.signatures, kernel
    assert warm_up_kernels() < 5.0  # nothing left to compile: a 4-hour record
