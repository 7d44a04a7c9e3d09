from datetime import UTC, datetime, timedelta

from algaflow.agent.outbox import Outbox
from algaflow.catalog.frames import Frame

T0 = datetime.now(UTC) - timedelta(hours=1)


def test_frames_wait_until_acknowledged_and_seq_survives_a_restart(tmp_path):
    outbox = Outbox(tmp_path / "outbox.db", "r1")
    seqs = outbox.put_many([(T0 + timedelta(seconds=k), {"od750": 0.1 * k}, []) for k in range(10)])
    assert seqs == list(range(10))
    due = outbox.due(limit=4, resend_after_s=30)
    assert [seq for seq, _ in due] == [0, 1, 2, 3]
    assert Frame.model_validate_json(due[1][1]).readings == {"od750": 0.1}
    outbox.mark_sent([0, 1, 2, 3])
    assert [seq for seq, _ in outbox.due(limit=100, resend_after_s=30)] == list(range(4, 10))
    assert [seq for seq, _ in outbox.due(limit=100, resend_after_s=30, window=6)] == [4, 5]  # flow control
    assert [seq for seq, _ in outbox.due(limit=100, resend_after_s=0)][:2] == [0, 1]  # overdue: resent
    outbox.mark_sent([5])
    assert outbox.acknowledge([[0, 2], [5, 5]]) == (4, []) and outbox.pending() == 6
    outbox.resend_all()
    assert [seq for seq, _ in outbox.due(limit=100, resend_after_s=30)] == [3, 4, 6, 7, 8, 9]
    outbox.close()
    reopened = Outbox(tmp_path / "outbox.db", "r1")
    assert reopened.pending() == 6 and reopened.put(T0, {"od750": 1.0}) == 10  # seq keeps growing
