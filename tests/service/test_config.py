"""Configuration: TOML file, ALGAFLOW_<SECTION>__<KEY> overrides, clear errors, and where the lake goes."""

from pathlib import Path

import pytest

from algaflow.service.config import ConfigError, calibrations_path, lake_path, load_settings, to_toml


def test_the_file_is_read_and_the_environment_overrides_one_key(tmp_path):
    path = tmp_path / "algaflow.toml"
    path.write_text('[http]\nport = 9001\n[mqtt]\nmode = "off"\npassword = "s3cret"\n')
    settings = load_settings(path, environ={"ALGAFLOW_HTTP__PORT": "9002"})
    assert settings.http.port == 9002 and settings.mqtt.mode == "off" and settings.http.host == "127.0.0.1"
    shown = to_toml(settings)
    assert "port = 9002" in shown and "s3cret" not in shown and 'password = "********"' in shown


def test_bad_keys_and_values_are_named(tmp_path):
    with pytest.raises(ConfigError, match="no section 'htp'"):
        load_settings(None, environ={"ALGAFLOW_HTP__PORT": "1"})
    with pytest.raises(ConfigError, match=r"http\.port"):
        load_settings(None, environ={"ALGAFLOW_HTTP__PORT": "70000"})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml", environ={})


def test_the_lake_and_the_calibrations_are_beside_a_sqlite_store_unless_configured():
    def settings(**environ):
        return load_settings(None, environ={f"ALGAFLOW_{k.upper()}": v for k, v in environ.items()})

    assert lake_path(settings(store__url="sqlite:///data/x/algaflow.db")) == Path("data/x/lake")
    assert lake_path(settings(store__url="/srv/algaflow.db")) == Path("/srv/lake")
    assert lake_path(settings(store__url="postgresql://postgres@127.0.0.1/test")) is None
    assert lake_path(settings(store__url="postgresql://h/db", lake__path="/lake")) == Path("/lake")
    assert calibrations_path(settings(store__url="/srv/algaflow.db")) == Path("/srv/calibrations")
    assert calibrations_path(settings(store__url="postgresql://h/db")) is None
    assert calibrations_path(settings(pipeline__calibrations="/curves")) == Path("/curves")
