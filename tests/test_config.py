from pathlib import Path

import pytest

from marsad.config import ConfigError, load_config, parse_duration
from tests.conftest import child_env, marsad


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "marsad.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_run_embedded_with_seeds_and_abu_kamal():
    config = load_config(env={})
    assert config.broker.url == "embedded"
    assert config.broker.topic_prefix == "marsad"
    assert [t.name for t in config.towns] == ["البوكمال"]
    assert config.ingest.replay and Path(config.ingest.replay[0]).name == "seeds"
    assert config.sinks.jsonl == "marsad-data/alerts.jsonl"
    assert config.metrics.port == 9108


def test_contract_example_loads(tmp_path):
    path = write(tmp_path, '''
[broker]
url = "kafka://host1:9092,host2:9092"
topic_prefix = "marsad"

[[feeds]]
name = "example"
url = "https://example.com/rss.xml"
interval = "5m"

[[towns]]
name = "البوكمال"
aliases = ["أبو كمال", "البو كمال"]

[sinks]
jsonl = "marsad-data/alerts.jsonl"
webhooks = ["https://hooks.example.com/marsad"]

[metrics]
port = 9108
''')
    config = load_config(path, env={})
    assert config.broker.bootstrap() == "host1:9092,host2:9092"
    assert config.feeds[0].name == "example"
    assert config.towns[0].aliases == ["أبو كمال", "البو كمال"]
    assert config.sinks.webhooks == ["https://hooks.example.com/marsad"]
    # A config file without replay does not replay the seeds: it is a real deployment.
    assert config.ingest.replay == []


@pytest.mark.parametrize("text, named", [
    ('[broker]\nurll = "embedded"\n', "'urll'"),
    ('[brokr]\nurl = "embedded"\n', "'brokr'"),
    ('[metrics]\nport = "ninety"\n', "metrics.port"),
    ('[metrics]\nport = 70000\n', "metrics.port"),
    ('[broker]\nurl = "http://x:1"\n', "broker.url"),
    ('[[feeds]]\nname = "a"\nurl = "ftp://x"\n', "feeds.url"),
    ('[[feeds]]\nname = "a"\nurl = "http://x"\ninterval = "often"\n', "feeds.interval"),
    ('[novelty]\nwindow = "-3d"\n', "novelty.window"),
    ('[sinks]\nwebhooks = "http://x"\n', "sinks.webhooks"),
    ('[sinks]\nwebhooks = ["http://x/h", "http://x/h"]\n', "listed twice"),
])
def test_bad_keys_and_values_name_the_key(tmp_path, text, named):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, text), env={})
    assert named in str(info.value)


def test_environment_overrides_file_and_defaults(tmp_path):
    path = write(tmp_path, '[metrics]\nport = 9200\n')
    env = {"MARSAD_METRICS_PORT": "9300", "MARSAD_BROKER_URL": "kafka://k:9092",
           "MARSAD_SINKS_WEBHOOKS": "https://a.example/h, https://b.example/h"}
    config = load_config(path, env=env)
    assert config.metrics.port == 9300
    assert config.broker.url == "kafka://k:9092"
    assert config.sinks.webhooks == ["https://a.example/h", "https://b.example/h"]
    # Without a file the built-in default (seed replay) stays, with the override on top.
    default = load_config(env={"MARSAD_METRICS_PORT": "0"})
    assert default.metrics.port == 0 and default.ingest.replay


@pytest.mark.parametrize("env, named", [
    ({"MARSAD_METRICS_PORT": "abc"}, "MARSAD_METRICS_PORT"),
    ({"MARSAD_BROKER_URLL": "x"}, "MARSAD_BROKER_URLL"),
    ({"MARSAD_NOPE": "x"}, "MARSAD_NOPE"),
    # Set but empty: a service watching no town would never alert, and never say why.
    ({"MARSAD_TOWNS": " , "}, "MARSAD_TOWNS"),
])
def test_bad_environment_names_the_variable(env, named):
    with pytest.raises(ConfigError) as info:
        load_config(env=env)
    assert named in str(info.value)


def test_durations():
    assert parse_duration("5m", "k") == 300
    assert parse_duration("14d", "k") == 14 * 86400
    assert parse_duration(30, "k") == 30


def test_cli_reports_config_errors_in_one_line(tmp_path):
    bad = write(tmp_path, '[broker]\nurll = "embedded"\n')
    result = marsad("run", "--config", str(bad), cwd=tmp_path, env=child_env())
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0
    assert "unknown key 'urll'" in result.stderr

    missing = marsad("run", "--config", str(tmp_path / "nope.toml"), cwd=tmp_path, env=child_env())
    assert missing.returncode == 2 and "config file not found" in missing.stderr


def test_unknown_town_is_a_clear_error(tmp_path):
    doc = tmp_path / "doc.txt"
    doc.write_text("عنوان\nنص الخبر\n", encoding="utf-8")
    result = marsad("process", str(doc), "--alerts-out", str(tmp_path / "a.jsonl"),
                    "--town", "مدينةلاتوجد", cwd=tmp_path, env=child_env())
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "not in the gazetteer" in result.stderr
    # `alerts` resolves --town the same way, before it looks for a broker.
    result = marsad("alerts", "--town", "Atlantis", cwd=tmp_path, env=child_env())
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "marsad alerts: town 'Atlantis' is not in the gazetteer" in result.stderr


def test_a_town_is_named_by_any_spelling_its_english_name_or_its_id():
    from processors.gazetteer import Gazetteer, MonitoredTowns

    gazetteer = Gazetteer.default()
    ids = {place.id for name in ("البوكمال", "البو كمال", "Albu Kamal", "albu kamal",
                                 "Abu Kamal", "Al-Bukamal", "geonames:174448")
           for place in gazetteer.lookup(name)[:1]}
    assert ids == {"geonames:174448"}
    towns = MonitoredTowns(gazetteer, [("Albu Kamal", []), ("Mosul", []), ("Damascus", []),
                                       ("Amman", [])])
    # Alerts show the Arabic name a place is commonly spelt with, never a Kurdish or
    # transliterated one GeoNames lists first (Mosul), a broken one (Damascus: "د مشق") or a rare
    # one (Amman: "امان").
    assert [p.name_ar for p in towns.places.values()] == ["أبو كمال", "الموصل", "دمشق", "عمان"]


def test_the_alerts_file_follows_data_dir_unless_set(tmp_path):
    assert load_config(env={}).sinks.jsonl == str(Path("marsad-data") / "alerts.jsonl")
    moved = load_config(env={"MARSAD_SERVICE_DATA_DIR": str(tmp_path / "second")})
    assert moved.sinks.jsonl == str(tmp_path / "second" / "alerts.jsonl")
    config = tmp_path / "marsad.toml"
    config.write_text('[service]\ndata_dir = "d2"\n[sinks]\njsonl = "elsewhere.jsonl"\n')
    assert load_config(config, env={}).sinks.jsonl == "elsewhere.jsonl"
    config.write_text('[service]\ndata_dir = "d2"\n[sinks]\njsonl = ""\n')
    assert load_config(config, env={}).sinks.jsonl == ""


@pytest.mark.parametrize("flags, named", [
    (["--last", "-3"], "--last"), (["--from-beginning", "--last", "2"], "--last"),
    (["--town", " "], "--town"),
])
def test_alerts_refuses_a_start_it_cannot_honour(tmp_path, flags, named):
    result = marsad("alerts", *flags, cwd=tmp_path, env=child_env())
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert named in result.stderr.splitlines()[-1]


def test_towns_and_feeds_from_the_environment_replace_the_file(tmp_path):
    config = tmp_path / "marsad.toml"
    config.write_text('[[towns]]\nname = "حلب"\n[[feeds]]\nname = "x"\nurl = "https://x.example/rss"\n',
                      encoding="utf-8")
    env = {"MARSAD_TOWNS": "البوكمال, Mosul",
           "MARSAD_FEEDS": "https://a.example/rss,https://a.example/atom,http://b.example/f"}
    for loaded in (load_config(config, env=env), load_config(env=env)):
        assert [t.name for t in loaded.towns] == ["البوكمال", "Mosul"]
        assert [(f.name, f.url) for f in loaded.feeds] == [
            ("a.example", "https://a.example/rss"), ("a.example-2", "https://a.example/atom"),
            ("b.example", "http://b.example/f")]
    with pytest.raises(ConfigError, match="feeds.url"):
        load_config(env={"MARSAD_FEEDS": "ftp://a.example/rss"})


def test_a_mistyped_flag_is_reported_with_the_commands_own_usage(tmp_path):
    result = marsad("feeds", "list", "--jsn", cwd=tmp_path, env=child_env())
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith("usage: marsad feeds list")
    assert "unrecognized arguments: --jsn" in result.stderr


def test_outputs_that_cannot_be_written_are_one_line_errors_before_any_work(tmp_path):
    # A path under a regular file cannot be created, whoever runs the tests (root too).
    blocked = tmp_path / "a-file"
    blocked.write_text("x", encoding="utf-8")
    seeds = str(Path(__file__).resolve().parents[1] / "seeds")
    runs = {
        "process": marsad("process", seeds, "--alerts-out", str(blocked / "alerts.jsonl"),
                          cwd=tmp_path, env=child_env()),
        "process into a folder": marsad("process", seeds, "--alerts-out", str(tmp_path),
                                        cwd=tmp_path, env=child_env()),
        "dedup": marsad("dedup", seeds, "--out", str(blocked / "out.jsonl"), cwd=tmp_path,
                        env=child_env()),
        "run": marsad("run", "--config", str(write(tmp_path, f'[service]\ndata_dir = "{blocked}/d"\n')),
                      cwd=tmp_path, env=child_env()),
    }
    for name, result in runs.items():
        assert result.returncode == 2, (name, result.stderr)
        assert "Traceback" not in result.stderr and result.stderr.strip().count("\n") == 0, name
        assert "a-file" in result.stderr or "is a folder" in result.stderr, name
    # Nothing readable: the output file is not created (or emptied).
    missing = marsad("dedup", str(tmp_path / "nope"), "--out", str(tmp_path / "o.jsonl"),
                     cwd=tmp_path, env=child_env())
    assert missing.returncode == 1 and not (tmp_path / "o.jsonl").exists()


def test_configuration_errors_never_show_credentials(tmp_path):
    config = write(tmp_path, '[[feeds]]\nname = "x"\n'
                             'url = "ftp://bob:hunter2@example.com/rss?a=1&token=SECRETTOK"\n')
    result = marsad("run", "--config", str(config), cwd=tmp_path, env=child_env())
    assert result.returncode == 2 and "feeds.url" in result.stderr
    assert "hunter2" not in result.stderr and "SECRETTOK" not in result.stderr
    shown = marsad("alerts", "--broker", "kafka://bob:hunter2@127.0.0.1:1x", cwd=tmp_path,
                   env=child_env())
    assert shown.returncode == 2 and "--broker" in shown.stderr and "hunter2" not in shown.stderr
