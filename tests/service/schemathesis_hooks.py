"""Loaded by the schemathesis CLI (SCHEMATHESIS_HOOKS) in test_openapi.py: JSON Schema cannot say "not after
now", so generated ``date-time`` values are times from 2000 to an hour ago, with a zone (the API refuses
later ones by the clock; tests/service/test_hostile.py covers those)."""

from datetime import UTC, datetime, timedelta, timezone

import schemathesis
from hypothesis import strategies as st

LATEST = (datetime.now(UTC) - timedelta(hours=1)).replace(tzinfo=None)
ZONES = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-5, minutes=-30))])
schemathesis.openapi.format("date-time", st.datetimes(datetime(2000, 1, 2), LATEST, timezones=ZONES).map(
    lambda moment: moment.isoformat()))  # fmt: skip
