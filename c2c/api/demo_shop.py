"""`GET /demo/shop`: a sample shop page with a widget on it, served by `c2c demo` only.

The page loads /widget.js from the address it was itself loaded from (localhost or 127.0.0.1),
which is one of the demo widget's origins.
"""

from __future__ import annotations

import html

import falcon

from c2c.api.widget import static_file


class DemoShopResource:
    def __init__(self, widget_id: str) -> None:
        self._page = static_file("demo-shop.html").decode()
        self._widget_id = widget_id

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = falcon.MEDIA_HTML
        resp.cache_control = ["no-store"]
        resp.text = (self._page.replace("__WIDGET_ID__", html.escape(self._widget_id))
                     .replace("__API_BASE__", html.escape(req.prefix)))
