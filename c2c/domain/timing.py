"""When the listener looks again at a call no event has explained yet (seconds)."""

from __future__ import annotations

# How long after the caller's end to wait for the callee's before asking the switch.
CALLEE_RECHECK_SECONDS = 2.0
# A call no event has touched this long after it was accepted is looked for on its switch: its
# originate may never have run (reply lost, worker killed between commit and send).
QUEUED_RECHECK_SECONDS = 10.0
