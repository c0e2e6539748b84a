"""tandem-run's `--metrics-port`: the command's progress as Prometheus text (no torch)."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tandem.runtime.run import Stream


def metrics_text(stream: Stream) -> str:
    """The progress in Prometheus' text format: the last step, seconds since progress, the SDK's numbers."""
    with stream.lock:
        step, last, numbers = stream.last_step, stream.last_progress, dict(stream.metrics)
    lines = ["# HELP tandem_run_step Last training step seen (a progress line or tandem.sdk.progress)",
             "# TYPE tandem_run_step gauge", f"tandem_run_step {step if step is not None else 'NaN'}",
             "# HELP tandem_run_seconds_since_progress Seconds since the last progress",
             "# TYPE tandem_run_seconds_since_progress gauge",
             f"tandem_run_seconds_since_progress {time.monotonic() - last if last is not None else 'NaN'}",
             "# HELP tandem_run_metric A number the script reported with tandem.sdk.progress",
             "# TYPE tandem_run_metric gauge"]
    for name, value in sorted(numbers.items()):
        label = name.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
        lines.append(f'tandem_run_metric{{name="{label}"}} {value}')
    return "\n".join(lines) + "\n"


def serve_metrics(stream: Stream, port: int) -> ThreadingHTTPServer:
    """GET /metrics on `port` (all addresses), in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # the standard library names it
            if self.path.split("?")[0] != "/metrics":
                self.send_error(404)
                return
            body = metrics_text(stream).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # the command's output stays the command's
            return

    server = ThreadingHTTPServer(("", port), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
