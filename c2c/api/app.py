"""The app factory: everything is built from a validated Config and injected; nothing at import."""

from __future__ import annotations

import falcon

from c2c.api.clicktocall import ClickToCallResource
from c2c.api.health import HealthResource, ReadyResource
from c2c.api.runtime import Runtime


def create_app(runtime: Runtime) -> falcon.App:
    app = falcon.App(media_type=falcon.MEDIA_JSON)
    app.req_options.strip_url_path_trailing_slash = True
    clicktocall = ClickToCallResource(runtime.placer, on_result=runtime.metrics.request_code)
    app.add_route("/api/clicktocall", clicktocall)
    app.add_route("/healthz", HealthResource())
    app.add_route("/readyz", ReadyResource(runtime.store, runtime.switches))
    # Reachable from gunicorn hooks (post_worker_init starts the background work after fork).
    app.c2c_runtime = runtime  # type: ignore[attr-defined]
    return app
