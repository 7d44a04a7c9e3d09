"""``algaflow demo``: the live demo on the embedded defaults, in one process.

It starts the service (SQLite under ``--data``, the embedded MQTT broker, the live pipeline), mounts the
dashboard on it, registers a small fleet (one reactor per shipped scenario: different strains and sites, a
culture without degassing whose dissolved O2 builds up, one with faulty sensors), issues the tokens, and
runs a real agent per reactor (simulated driver, on-device outbox, MQTT) at ``--speed`` times real time
(1,440: a simulated day a minute). The culture's clock starts ``--days`` before now, so the agents play
``--days`` of history quickly and then keep pace with the clock.

Everything is kept in ``--data`` (``demo.json`` holds the start time and the tokens): running the demo again
resumes, each agent skipping what the store already has. Ctrl-C stops the agents, the service and the
broker, and checkpoints the pipeline.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

from rich.console import Console

log = logging.getLogger("algaflow.demo")


@dataclass(frozen=True, slots=True)
class DemoUnit:
    unit_id: str
    scenario: str  # a shipped scenario (algaflow.scenarios)
    site: str
    seed: int


FLEET = (DemoUnit("pbr-01", "lab_tubular_chlorella", "Almería lab", 1),
         DemoUnit("pbr-02", "flat_panel_nannochloropsis", "Wageningen pilot", 2),
         DemoUnit("pbr-03", "spirulina_no_degassing", "Almería lab", 3),
         DemoUnit("pbr-04", "outdoor_scenedesmus_almeria", "Almería outdoor", 4),
         DemoUnit("pbr-05", "faulty_sensors", "Wageningen pilot", 5),
         DemoUnit("pbr-06", "lab_tubular_chlorella", "Almería lab", 6))  # fmt: skip


def free_port(preferred: int, host: str = "127.0.0.1") -> int:
    """``preferred`` if it is free on ``host``, else any free port."""
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind((host, port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise OSError("no free port")


def scenario_path(name: str) -> Path:
    return Path(str(resources.files("algaflow.scenarios") / f"{name}.toml"))


class LiveDemo:
    """The demo's parts (module doc), started by :meth:`start` and stopped by :meth:`stop`."""

    def __init__(self, data: Path, port: int = 8050, days: float = 7.0, speed: float = 1440.0,
                 units: int = len(FLEET), refresh_s: float = 2.0) -> None:  # fmt: skip
        from algaflow.dashboard.app import mount_dashboard
        from algaflow.service.config import Settings
        from algaflow.service.server import Service

        if not 1 <= units <= len(FLEET):
            raise ValueError(f"the demo fleet has 1 to {len(FLEET)} units (got {units})")
        self.data = Path(data)
        self.data.mkdir(parents=True, exist_ok=True)
        self.state_path = self.data / "demo.json"
        state = json.loads(self.state_path.read_text()) if self.state_path.is_file() else {}
        self.start_time = datetime.fromisoformat(state["start"]) if "start" in state else (
            datetime.now(UTC).replace(microsecond=0) - timedelta(days=days))  # fmt: skip
        self.days = float(state.get("days", days))
        self.speed = speed
        self.fleet = FLEET[:units]
        self.mqtt_port = free_port(int(state.get("mqtt_port", 18830)))
        self.settings = Settings.model_validate({
            "store": {"url": f"sqlite:///{self.data / 'algaflow.db'}"},
            "http": {"host": "127.0.0.1", "port": port},
            "mqtt": {"mode": "embedded", "host": "127.0.0.1", "port": self.mqtt_port,
                     "shared_group": "demo", "client_id": "algaflow-demo-service"},
            "limits": {"requests_per_second": 1000, "burst": 2000},
        })  # fmt: skip
        self.service = Service(self.settings)
        self.dashboard = mount_dashboard(self.service.app, self.service.store, self.service.pipeline, refresh_s,
                                         self.service.ingestor.last_heard)  # fmt: skip
        self.tokens: dict[str, str] = dict(state.get("tokens", {}))
        self.user_tokens: dict[str, str] = dict(state.get("user_tokens", {}))
        self._register()
        self.state_path.write_text(json.dumps({"start": self.start_time.isoformat(), "days": self.days,
                                               "mqtt_port": self.mqtt_port, "tokens": self.tokens,
                                               "user_tokens": self.user_tokens}, indent=1))  # fmt: skip
        self.agents: list = []
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def _register(self) -> None:
        from algaflow.service.auth import authenticate, issue_device_token, issue_user_token
        from algaflow.sim.scenario import load_scenario

        store = self.service.store
        for unit in self.fleet:
            if store.unit(unit.unit_id) is None:
                scenario = load_scenario(scenario_path(unit.scenario))
                reactor = scenario.reactor
                store.register_unit(unit.unit_id, {
                    "strain": scenario.resolved_strain().name, "volume_l": reactor.volume_tank_l + reactor.volume_lit_l,
                    "site": {"name": unit.site}, "scenario": unit.scenario,
                    "sensors": list(scenario.sensors.include)})  # fmt: skip
            if authenticate(store, self.tokens.get(unit.unit_id)) is None:
                self.tokens[unit.unit_id] = issue_device_token(store, unit.unit_id, "demo agent")
        for role in ("admin", "reader"):
            if authenticate(store, self.user_tokens.get(role)) is None:
                self.user_tokens[role] = issue_user_token(store, role, f"demo {role}")

    def start(self) -> None:
        """The service (broker, bridge, pipeline), then, in the background, one agent thread per unit as soon as
        its culture is simulated (the dashboard answers meanwhile)."""
        self.service.start()
        self._launcher = threading.Thread(target=self._start_agents, name="demo-agents", daemon=True)
        self._launcher.start()

    def _start_agents(self) -> None:
        try:
            self._start_each_agent()
        except Exception:  # stopped while a culture was being simulated, or a broken scenario: say so, keep serving
            if not self._stopping.is_set():
                log.exception("could not start the demo's agents")

    def _start_each_agent(self) -> None:
        from algaflow.agent.agent import Agent
        from algaflow.agent.drivers import simulated_driver
        from algaflow.agent.outbox import Outbox
        from algaflow.agent.transport import MqttTransport

        for unit in self.fleet:
            if self._stopping.is_set():
                return
            driver = simulated_driver(days=self.days, seed=unit.seed, start=self.start_time, speed=self.speed,
                                      scenario=str(scenario_path(unit.scenario)), frame_period_s=60.0)  # fmt: skip
            last = self.service.store.last_frame(unit.unit_id)
            if last is not None:  # resume: what the store has is not played again
                driver.resume_at(datetime.fromtimestamp(last[1] / 1e6, tz=UTC))
            transport = MqttTransport(unit.unit_id, "127.0.0.1", self.mqtt_port, self.tokens[unit.unit_id],
                                      client_id=f"algaflow-demo-{unit.unit_id}")  # fmt: skip
            agent = Agent(driver, Outbox(self.data / "outbox" / f"{unit.unit_id}.db", unit.unit_id), transport)
            thread = threading.Thread(target=agent.run, name=f"agent-{unit.unit_id}", daemon=True)
            with self._lock:
                if self._stopping.is_set():
                    transport.close()
                    agent.outbox.close()
                    return
                self.agents.append(agent)
                self._threads.append(thread)
                thread.start()

    def serve(self) -> None:
        """Serve HTTP (API and dashboard) until interrupted."""
        import uvicorn

        http = self.settings.http
        uvicorn.run(self.service.app, host=http.host, port=http.port, log_level="warning", access_log=False)

    def stop(self) -> None:
        with self._lock:
            if self._stopping.is_set():
                return
            self._stopping.set()
        for agent in self.agents:
            agent.stop()
        for thread in self._threads:
            thread.join(timeout=10)
        for agent in self.agents:
            agent.transport.close()
            agent.outbox.close()
        self.service.stop()


def run_demo(data: Path, port: int, days: float, speed: float, units: int, console: Console) -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    with console.status("starting the service …"):
        demo = LiveDemo(data, port, days, speed, units)
        demo.start()
    url = f"http://{demo.settings.http.host}:{demo.settings.http.port}/"
    console.print(f"[bold]algaflow demo[/bold]: {len(demo.fleet)} reactors, {demo.days:g} simulated days from "
                  f"{demo.start_time:%Y-%m-%d %H:%M} UTC at {demo.speed:g}× real time; data in {demo.data}")
    console.print(f"dashboard: [bold]{url}[/bold]   API: {url}api/v1/docs   MQTT: 127.0.0.1:{demo.mqtt_port}")
    console.print(f"sign in with the admin token:  [bold]{demo.user_tokens['admin']}[/bold]")
    console.print(f"(read-only token: {demo.user_tokens['reader']}); the agents start as their cultures are "
                  "simulated; Ctrl-C stops everything")
    try:
        demo.serve()
    finally:
        with console.status("stopping agents, service and broker …"):
            demo.stop()
        console.print("stopped; run `algaflow demo` again to resume from the stored data")


__all__ = ["FLEET", "LiveDemo", "run_demo"]
