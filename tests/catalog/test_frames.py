"""The Frame at the edge: catalog names, finite numbers, aware UTC times not in the future, events with their
parameters; out-of-range readings kept with a quality flag."""

from datetime import UTC, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from algaflow.catalog.frames import GOOD, OUT_OF_RANGE, Frame

NOW = datetime.now(UTC)


def frame(**changes):
    return {"unit_id": "reactor-01", "time": NOW.isoformat(), "seq": 1, "readings": {"od750": 0.4}} | changes


def test_a_valid_frame_is_kept_in_utc_and_out_of_range_readings_are_flagged_not_dropped():
    parsed = Frame.model_validate(frame(time="2026-11-21T09:30:00+01:00", readings={"ph_tank": 23.0, "od750": -0.5,
                                                                                      "temp_tank": 25.0}))
    assert parsed.time == datetime(2026, 11, 21, 8, 30, tzinfo=UTC)
    assert parsed.quality() == {"ph_tank": OUT_OF_RANGE, "od750": OUT_OF_RANGE, "temp_tank": GOOD}
    assert Frame.model_validate_json(parsed.model_dump_json()) == parsed


@pytest.mark.parametrize(("changes", "message"), [
    ({"readings": {"od999": 1.0}}, "unknown sensor"),
    ({"readings": {"od750": "NaN"}}, "must be a number"),
    ({"readings": {"od750": float("nan")}}, "not finite"),
    ({"readings": {"od750": True}}, "must be a number"),
    ({"time": "2026-11-21T08:00:00"}, "time zone"),
    ({"time": (NOW + timedelta(hours=1)).isoformat()}, "in the future"),
    ({"seq": -1}, "greater than or equal"),
    ({"unit_id": "../etc/passwd"}, "should match pattern"),
    ({"unit_id": "a/+/#"}, "should match pattern"),
    ({"events": [{"kind": "harvest"}]}, "params.fraction"),
    ({"events": [{"kind": "harvest", "params": {"fraction": 1.5}}]}, "params.fraction"),
    ({"events": [{"kind": "explode"}]}, "unknown event kind"),
    ({"extra": 1}, "Extra inputs"),
])  # fmt: skip
def test_bad_frames_are_refused_with_the_reason(changes, message):
    with pytest.raises(ValidationError, match=message):
        Frame.model_validate(frame(**changes))


def test_events_take_their_own_time_in_utc():
    eastern = timezone(timedelta(hours=-5))
    parsed = Frame.model_validate(frame(events=[{"kind": "dilution", "params": {"fraction": 0.2},
                                                 "time": datetime(2026, 11, 21, 3, tzinfo=eastern)}]))
    assert parsed.events[0].time == datetime(2026, 11, 21, 8, tzinfo=UTC)
