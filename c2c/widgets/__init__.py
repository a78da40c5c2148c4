"""Widgets (issue 15): the click-to-call button any web page can paste.

- ``origins`` (pure): what a widget's origins and countries may be;
- ``challenge``: the proof of work a visitor's browser solves before each call (ALTCHA);
- ``tokens`` (pure): the short-lived token that lets a visitor follow its own call, nothing else;
- ``service``: a visitor's request, checked (origin, number, challenge, abuse limits) and then
  placed like any other call of the account (c2c.calls.placement).
"""
