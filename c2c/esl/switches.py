"""The configured switches: one EslConnection each, and the choice of where a call goes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence

from c2c.config import Config
from c2c.errors import SwitchUnavailable
from c2c.esl.connection import EslConnection, SwitchState

logger = logging.getLogger(__name__)


class Switches:
    """One command connection per configured switch (``Config.switches``), in config order."""

    def __init__(
        self,
        config: Config,
        *,
        events: Sequence[str] = (),
        connection_factory: Callable[..., EslConnection] = EslConnection,
    ) -> None:
        self._connections = {
            address.name: connection_factory(address, config.esl_timeout, events=events)
            for address in config.switches
        }

    def start(self) -> None:
        for connection in self._connections.values():
            connection.start()

    def stop(self) -> None:
        for connection in self._connections.values():
            connection.stop()

    def __iter__(self) -> Iterator[EslConnection]:
        return iter(self._connections.values())

    def __len__(self) -> int:
        return len(self._connections)

    def __getitem__(self, name: str) -> EslConnection:
        return self._connections[name]

    def states(self) -> dict[str, str]:
        """Each switch's state by name, for /readyz and /metrics."""
        return {name: conn.state.value for name, conn in self._connections.items()}

    def any_connected(self) -> bool:
        return any(conn.state is SwitchState.CONNECTED for conn in self)

    def pick(self, in_flight: Mapping[str, int]) -> EslConnection:
        """The connected switch with the fewest calls in flight (ties: config order)."""
        connected = [conn for conn in self if conn.state is SwitchState.CONNECTED]
        if not connected:
            raise SwitchUnavailable(
                "no switch connected: "
                + ", ".join(f"{name} {state}" for name, state in self.states().items())
            )
        return min(connected, key=lambda conn: in_flight.get(conn.name, 0))

    def wait_any_connected(self, timeout: float) -> bool:
        """For start-up: True once one switch is connected, False after ``timeout``."""
        import gevent

        with gevent.Timeout(timeout, False):
            while not self.any_connected():
                gevent.sleep(0.05)
            return True
        return False
