"""Forcing tables: lamp schedules, sunlight by site (pvlib), ambient temperature.

Every table covers the whole run and is constant beyond its ends (:mod:`algaflow.sim.tables`).
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np

# PAR photon flux per W/m² of global irradiance: PAR share 0.45 × 4.57 µmol/J (McCree 1972).
PAR_PER_GLOBAL_W = 0.45 * 4.57


def lamp_table(par_umol: float, photoperiod_h: float, on_hour: float, hours: float) -> tuple[np.ndarray, ...]:
    """Lamp at full power: ``par_umol`` for ``photoperiod_h`` each day from ``on_hour``; jumps at switches."""
    if photoperiod_h >= 24.0:
        return np.array([0.0, hours]), np.array([par_umol, par_umol])
    times, values = [0.0], [0.0]
    for day in range(-1, int(np.ceil(hours / 24.0)) + 1):
        start = day * 24.0 + on_hour
        end = start + photoperiod_h
        if end <= 0.0 or start > hours:
            continue
        if start <= 0.0:  # lamp already on at t = 0
            values[0] = par_umol
        else:
            times += [start, start]
            values += [0.0, par_umol]
        times += [end, end]
        values += [par_umol, 0.0]
    return np.asarray(times), np.asarray(values)


def sun_table(
    start: datetime, hours: float, latitude: float, longitude: float, altitude_m: float, transmission: float,
    step_min: float = 10.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Clear-sky PAR on a horizontal surface at the site (pvlib, Haurwitz model) × ``transmission``."""
    try:
        import pandas as pd
        import pvlib
    except ImportError as error:  # pragma: no cover - exercised only without the extra
        raise ImportError("sunlight by site needs pvlib: pip install 'algaflow[sun]'") from error
    times_h = np.arange(0.0, hours + step_min / 60.0, step_min / 60.0)
    stamps = pd.DatetimeIndex([start + timedelta(hours=float(h)) for h in times_h])
    location = pvlib.location.Location(latitude, longitude, tz="UTC", altitude=altitude_m)
    clear = location.get_clearsky(stamps, model="haurwitz")
    par = np.clip(clear["ghi"].to_numpy(), 0.0, None) * PAR_PER_GLOBAL_W * transmission
    return times_h, par


def ambient_table(mean_c: float, amplitude_c: float, peak_hour: float, hours: float) -> tuple[np.ndarray, ...]:
    """Daily sinusoid T = mean + amplitude cos(2π (t − peak) / 24), sampled every 30 minutes."""
    times = np.arange(0.0, hours + 0.5, 0.5)
    return times, mean_c + amplitude_c * np.cos(2.0 * np.pi * (times - peak_hour) / 24.0)
