"""The app factory: everything is built from a validated Config and injected; nothing at import."""

from __future__ import annotations

import falcon

from c2c.api import problems
from c2c.api.auth import Authenticator
from c2c.api.calls import CallResource, CallsResource
from c2c.api.cdr import CdrResource
from c2c.api.clicktocall import ClickToCallResource
from c2c.api.hangup import HangupResource
from c2c.api.health import HealthResource, ReadyResource
from c2c.api.metrics_resource import MetricsResource
from c2c.api.openapi import OpenApiResource
from c2c.api.runtime import Runtime
from c2c.api.widget import (
    WidgetCallResource,
    WidgetCallsResource,
    WidgetReadResource,
    WidgetScriptResource,
)
from c2c.calls.account_cache import AccountCache
from c2c.calls.hangup import Hangups
from c2c.widgets.service import WidgetService


class C2CApp(falcon.App):
    """falcon's App with a slot for the runtime, which gunicorn's hooks start and stop."""

    c2c_runtime: Runtime


def create_app(runtime: Runtime) -> C2CApp:
    app = C2CApp(media_type=falcon.MEDIA_JSON)
    app.req_options.strip_url_path_trailing_slash = True
    clicktocall = ClickToCallResource(runtime.placer, runtime.metrics,
                                      runtime.config.trusted_proxies)
    app.add_route("/api/clicktocall", clicktocall)
    # The customer's JSON API: errors as RFC 9457 problems (every route's HTTP errors, too).
    problems.install(app)
    auth = Authenticator(AccountCache(runtime.store.accounts.find_by_key,
                                      runtime.config.account_cache_seconds))
    app.add_route("/api/calls", CallsResource(runtime.store.call_views, auth))
    app.add_route("/api/calls/{call_id}", CallResource(runtime.store.call_views, auth))
    hangups = Hangups(runtime.store, runtime.switches.__getitem__)
    app.add_route("/api/calls/{call_id}/hangup",
                  HangupResource(runtime.store.call_views, hangups, auth))
    # The widget: public, cross-origin, for the origins each widget lists (c2c.api.widget).
    widgets = WidgetService(runtime.config, runtime.store, runtime.placer)
    app.add_route("/widget.js", WidgetScriptResource())
    app.add_route("/api/widget/calls/{token}", WidgetCallResource(widgets))
    app.add_route("/api/widget/{widget_id}", WidgetReadResource(widgets, widgets.describe))
    app.add_route("/api/widget/{widget_id}/challenge",
                  WidgetReadResource(widgets, widgets.challenge))
    app.add_route("/api/widget/{widget_id}/calls",
                  WidgetCallsResource(widgets, runtime.metrics, runtime.config.trusted_proxies))
    app.add_route("/openapi.json", OpenApiResource())
    app.add_route("/healthz", HealthResource())
    app.add_route("/readyz", ReadyResource(runtime.store, runtime.switches))
    app.add_route("/metrics", MetricsResource(runtime.metrics, runtime.store, runtime.switches))
    # The CDR safety net: any worker may apply a leg's end (settlement is idempotent).
    cdr = CdrResource(runtime.listener.leg_ended, runtime.config.cdr_user,
                      runtime.config.cdr_password, runtime.config.internal_networks)
    app.add_route("/internal/cdr", cdr)
    app.add_route("/internal/cdr/json", cdr, suffix="json")
    # Reachable from gunicorn hooks (post_worker_init starts the background work after fork).
    app.c2c_runtime = runtime
    return app
