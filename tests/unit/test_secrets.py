"""Settings that hold credentials never show them (issue 8, item 9)."""

from __future__ import annotations

from consumers.settings import Settings


def test_the_mongodb_url_password_never_shows() -> None:
    settings = Settings(_env_file=None, mongodb_url="mongodb://svc:hunter2@db.internal:27017/x")
    assert "hunter2" not in repr(settings) and "hunter2" not in str(settings)
    assert "hunter2" not in str(settings.model_dump())
    assert settings.mongodb_url.get_secret_value() == "mongodb://svc:hunter2@db.internal:27017/x"


def test_the_mongodb_url_default_is_local() -> None:
    url = Settings(_env_file=None).mongodb_url.get_secret_value()
    assert url == "mongodb://localhost:27017"
