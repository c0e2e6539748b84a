"""`tandem operator`: kopf with Tandem's handlers, structlog logs, /metrics and /healthz."""

from __future__ import annotations

import logging
import os
from typing import Any

import kopf
import structlog
from prometheus_client import start_http_server

from tandem.logs import configure
from tandem.operator import handlers
from tandem.operator.controller import Controller
from tandem.operator.kube import Kube, load_client
from tandem.operator.peering import Peering, PeeringGate, own_identity, random_priority

log = structlog.get_logger("tandem.operator")


def build_registry(controller: Controller) -> kopf.OperatorRegistry:
    registry = kopf.OperatorRegistry()
    handlers.register(registry, controller)

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        # A registry of our own has none of kopf's default login handlers: the same source as ours.
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    def configure_kopf(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Tandem posts its own Events with reasons a user can act on; kopf's would be noise.
        settings.posting.level = logging.WARNING
        settings.execution.max_workers = 16
        settings.watching.server_timeout = 300
        settings.watching.client_timeout = 330
        settings.networking.request_timeout = 60
        # Sync handlers blocked on a slow API cannot be cancelled; stop within a pod's default 30 s
        # grace anyway (everything needed to continue lives in the jobs' status).
        settings.process.ultimate_exiting_timeout = 20

    return registry


def run(namespaces: list[str], metrics_port: int | None = None, health_port: int | None = None,
        peering: str | None = None) -> int:
    configure(os.environ.get("TANDEM_LOG_LEVEL", "INFO"))
    metrics_port = metrics_port if metrics_port is not None else int(os.environ.get("TANDEM_METRICS_PORT", "8080"))
    health_port = health_port if health_port is not None else int(os.environ.get("TANDEM_HEALTH_PORT", "8081"))
    if metrics_port:
        start_http_server(metrics_port)
    kube = Kube(load_client())
    # kopf pauses every replica that sees a live peer of equal priority, so replicas sharing a peering
    # draw their own: the highest works, the rest stand by (kopf's own handlers and our threads alike).
    peer = Peering(peering, own_identity(), random_priority(), tuple(namespaces)) if peering else None
    controller = Controller(
        kube,
        force_delete_after=float(os.environ.get("TANDEM_FORCE_DELETE_SECONDS", "30")),
        device_info_namespace=os.environ.get("TANDEM_DEVICE_INFO_NAMESPACE", "kube-system"),
        namespaces=namespaces,
        gate=PeeringGate(kube, peer),
    )
    log.info("operator_starting", namespaces=namespaces or "all", metrics_port=metrics_port,
             health_port=health_port, peering=peering or "standalone",
             **({"identity": peer.identity, "priority": peer.priority} if peer else {}))
    kopf.run(
        registry=build_registry(controller),
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=peer is None,
        peering_name=peering,
        identity=peer.identity if peer else None,
        priority=peer.priority if peer else None,
        liveness_endpoint=f"http://0.0.0.0:{health_port}/healthz" if health_port else None,
    )
    return 0
