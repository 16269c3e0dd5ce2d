from consumers.engine.schedule import poll_delay, retry_delay


def test_first_poll_is_near_the_typical_duration() -> None:
    delays = [poll_delay(0, 300.0, None, 5.0, 60.0) for _ in range(50)]
    assert all(0.8 * 300 * 0.9 <= d <= 0.8 * 300 * 1.1 for d in delays)


def test_first_poll_override_wins() -> None:
    assert 0.9 <= poll_delay(0, 300.0, 1.0, 5.0, 60.0) <= 1.1


def test_later_polls_back_off_up_to_the_cap() -> None:
    later = [poll_delay(n, 300.0, None, 5.0, 60.0) for n in range(1, 20)]
    assert later[0] <= 5.5 and later[3] > later[0]
    assert max(later) <= 66.0


def test_retry_backoff_grows_and_honours_retry_after() -> None:
    assert retry_delay(1, 1.0, 60.0, None) <= 1.0
    assert retry_delay(6, 1.0, 60.0, None) >= 16.0
    assert retry_delay(1, 1.0, 60.0, 30.0) == 30.0
    assert retry_delay(30, 1.0, 60.0, None) <= 60.0
