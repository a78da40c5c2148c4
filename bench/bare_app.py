"""The baseline: a bare falcon app answering "0" on the clicktocall route, nothing else.

Served by the same `gunicorn -c gunicorn.conf.py` settings as c2c (gevent workers, same worker
count and connections), so the ratio c2c / bare is what c2c's own work costs on this machine:

    gunicorn -c gunicorn.conf.py bench.bare_app:app
"""

from __future__ import annotations

import falcon


class _Zero:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "text/plain"
        resp.text = "0"

    on_post = on_get


class _Healthy:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "text/plain"
        resp.text = "ok"


def create_app() -> falcon.App:
    app = falcon.App()
    app.req_options.strip_url_path_trailing_slash = True  # as c2c: /api/clicktocall/ works
    app.add_route("/api/clicktocall", _Zero())
    app.add_route("/healthz", _Healthy())
    return app


app = create_app()
