from consumers.engine.schedule import retry_delay


def test_retry_backoff_grows_and_honours_retry_after() -> None:
    assert retry_delay(1, 1.0, 60.0, None) <= 1.0
    assert retry_delay(6, 1.0, 60.0, None) >= 16.0
    assert retry_delay(1, 1.0, 60.0, 30.0) == 30.0
    assert retry_delay(30, 1.0, 60.0, None) <= 60.0
