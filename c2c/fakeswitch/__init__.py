"""c2c fakeswitch: a FreeSWITCH Event Socket simulator (DESIGN.md section 5).

``FakeSwitch`` (server.py) is the entry point; ``Scenario`` (scenarios.py) says what each dialled
number does; ``Faults`` (faults.py) makes it misbehave on demand (a frozen host among others);
``FakeSwitch.limits`` (limits.py) is what ``fsctl pause|resume|sps|max_sessions`` changes and
``status`` and HEARTBEAT report. Run it as a process with
``python -m c2c.fakeswitch`` or ``c2c fakeswitch`` (runner.py). ``FakeSwitch.heard(uuid)``, or
``api fakeswitch_heard <uuid>`` over the socket (the simulator's own command), tells what a
caller's phone heard (heard.py).
"""

from c2c.fakeswitch.faults import Faults
from c2c.fakeswitch.scenarios import Behaviour, Scenario, ScenarioError
from c2c.fakeswitch.server import FakeSwitch

__all__ = ["Behaviour", "FakeSwitch", "Faults", "Scenario", "ScenarioError"]
