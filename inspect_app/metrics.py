"""What ``/metrics`` reports, in Prometheus's text format: the one module that imports
``prometheus_client``.

Each replica keeps its own registry and is scraped on its own (not through the balancer): counters
and histograms of what this process did (events written and published, prompt delivery, builds),
WebSocket clients connected to it, its event loop's lag, and — read from the database when
scraped — sessions by status, the sandboxes it serves by status, and the prompts queued and running.
A replica runs one worker, so no multiprocess mode is needed; every series carries ``replica``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from inspect_app.control.data.stats import Gauges

CONTENT_TYPE = CONTENT_TYPE_LATEST  # the format generate_latest writes
DELIVERY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BUILD_BUCKETS = (5, 15, 30, 60, 120, 300, 600, 1200, 1800)


class Metrics:
    def __init__(self, replica_id: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._replica = replica_id
        self.events_written = self._series(Counter, "inspect_events_written", "Events stored by this replica.")
        self.events_published = self._series(
            Counter, "inspect_events_published", "Events published to the hub by this replica."
        )
        self.prompt_delivery = self._series(
            Histogram,
            "inspect_prompt_delivery_seconds",
            "From a prompt queued to its command sent to the sandbox.",
            buckets=DELIVERY_BUCKETS,
        )
        self.websocket_clients = self._series(
            Gauge, "inspect_websocket_clients", "API WebSocket clients following a session here."
        )
        self._builds = Histogram(
            "inspect_build_duration_seconds",
            "Image builds run by this replica, by outcome.",
            ["replica", "outcome"],
            buckets=BUILD_BUCKETS,
            registry=self.registry,
        )
        self._loop_lag = Gauge(
            "inspect_event_loop_lag_seconds",
            "How late this replica's event loop ran in the last minute.",
            ["replica", "quantile"],
            registry=self.registry,
        )

    def _series(self, kind: Any, name: str, help_: str, **options: Any) -> Any:
        """One series of ``kind`` (Counter, Gauge, Histogram), labelled with this replica."""
        return kind(name, help_, ["replica"], registry=self.registry, **options).labels(replica=self._replica)

    def build_finished(self, outcome: str, seconds: float) -> None:
        self._builds.labels(replica=self._replica, outcome=outcome).observe(seconds)

    def loop_lag(self, report: dict[str, float]) -> None:
        for quantile, key in (("0.5", "p50_ms"), ("0.99", "p99_ms"), ("1", "max_ms")):
            self._loop_lag.labels(replica=self._replica, quantile=quantile).set(report[key] / 1000)

    def watch(self, read: Callable[[], Gauges]) -> None:
        """Report what ``read`` finds (database counts) at every scrape."""
        self.registry.register(_DatabaseGauges(read, self._replica))

    def render(self) -> bytes:
        """The text exposition (blocking: the database gauges read when this runs)."""
        return generate_latest(self.registry)


class _DatabaseGauges(Collector):
    def __init__(self, read: Callable[[], Gauges], replica_id: str) -> None:
        self._read = read
        self._replica = replica_id

    def describe(self) -> list[GaugeMetricFamily]:
        return []  # read only when scraped (not when registered)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        found = self._read()
        for name, help_, values in (
            ("inspect_sessions", "Sessions by status (archived ones aside).", found.sessions),
            ("inspect_sandboxes", "Live sandboxes this replica serves, by status.", found.sandboxes),
            ("inspect_prompts", "Prompts waiting or running, installation-wide.", found.prompts),
        ):
            family = GaugeMetricFamily(name, help_, labels=["replica", "status"])
            for status, count in sorted(values.items()):
                family.add_metric([self._replica, status], count)
            yield family
