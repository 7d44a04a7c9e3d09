"""Peak memory of two large runs (each in a fresh process, peak RSS from the kernel):

1. truth of 10,000 units × 30 days at 10-minute resolution (telemetry off), streamed to Parquet;
2. telemetry of 100 units × 30 days, every catalog sensor at 1 minute (~100 million readings).
The peer is the raw size the same data would take held in memory at once (float64 arrays).
Usage: .venv/bin/python bench/memory.py [truth_units] [telemetry_units]
"""

import subprocess
import sys
import tempfile

CHILD = """
import resource, sys, time
from algaflow.catalog import SENSORS
from algaflow.sim.scenario import parse_scenario
from algaflow.sim.simulate import simulate
units, telemetry, out = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
table = {"units": units, "days": 30, "seed": 1}
if telemetry:
    table["sensors"] = {"period_s": {name: 60 for name in SENSORS}, "dry_weight_every_h": 24}
started = time.perf_counter()
summary = simulate(parse_scenario(table), out, telemetry=telemetry)
print(summary.telemetry_rows, time.perf_counter() - started,
      resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2)
"""


def run(units: int, telemetry: bool) -> tuple[int, float, float]:
    with tempfile.TemporaryDirectory() as out:
        done = subprocess.run([sys.executable, "-c", CHILD, str(units), "1" if telemetry else "0", out],
                              capture_output=True, text=True, check=True)  # fmt: skip
    rows, seconds, peak_gib = done.stdout.split()
    return int(rows), float(seconds), float(peak_gib)


def main() -> None:
    truth_units = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    telemetry_units = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    _, seconds, truth_peak = run(truth_units, telemetry=False)
    truth_in_memory = truth_units * 4321 * 26 * 8 / 1024**3
    print(f"truth {truth_units} units x 30 d: peak {truth_peak:.2f} GiB in {seconds:.0f} s "
          f"(held at once: {truth_in_memory:.1f} GiB)")
    rows, seconds, telemetry_peak = run(telemetry_units, telemetry=True)
    telemetry_in_memory = rows * 32 / 1024**3
    print(f"telemetry {telemetry_units} units x 30 d: {rows:,} readings, peak {telemetry_peak:.2f} GiB "
          f"in {seconds:.0f} s (held at once: {telemetry_in_memory:.1f} GiB)")
    ratio = min(truth_in_memory / truth_peak, telemetry_in_memory / telemetry_peak)
    within = "within" if max(truth_peak, telemetry_peak) <= 4.0 else "OVER"
    print(f"memory: {ratio:.1f}x vs holding the data in memory (peak {max(truth_peak, telemetry_peak):.2f} GiB, "
          f"{within} the 4 GiB budget; truth {truth_peak:.2f} GiB, telemetry {telemetry_peak:.2f} GiB)")


if __name__ == "__main__":
    main()
