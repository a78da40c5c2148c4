"""The configured switches: one EslConnection and one SwitchHealth each, and the choice of where a
call goes (c2c.esl.choice).

Each command connection is probed with `api status` every few seconds (its answer proves the
switch alive and says how loaded it is) and dropped when silent for C2C_ESL_LIVENESS_SECONDS.
With a ``records`` source (the store's switch_states, wired by the runtime), a greenlet re-reads
every couple of seconds what the workers share: the operator's drain flags and the event holder's
last report; a store that cannot be read leaves the last flags in force.

With C2C_ORIGINATE_VERDICT_SECONDS above 0 each command connection also watches its own
originates (EslConnection ``watch_originates``), so that the placer learns of a refusal at once
(c2c.calls.retry); a switch that just refused one is then chosen only when no other can take the
call, until a probe has had the time to say why (``note_refusal``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence

import gevent

from c2c.config import Config
from c2c.domain.switch_state import SwitchRecord
from c2c.errors import C2CError, SwitchUnavailable
from c2c.esl.choice import SwitchView, choose, describe_refusals
from c2c.esl.connection import EslConnection, SwitchState
from c2c.esl.health import SwitchHealth
from c2c.esl.status import parse_status

logger = logging.getLogger(__name__)

PROBE_SECONDS = 5.0  # at most; a third of the liveness window when that is shorter
SHARED_REFRESH_SECONDS = 2.0  # how often the drain flags and holders' reports are re-read

RecordSource = Callable[[], Iterable[SwitchRecord]]


def probe_interval(liveness: float) -> float:
    """Probes often enough that a healthy idle connection never looks silent."""
    return min(PROBE_SECONDS, liveness / 3)


class Switches:
    """One command connection per configured switch (``Config.switches``), in config order."""

    def __init__(
        self,
        config: Config,
        *,
        events: Sequence[str] = (),
        connection_factory: Callable[..., EslConnection] = EslConnection,
        records: RecordSource | None = None,
        refresh_every: float = SHARED_REFRESH_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        liveness = config.esl_liveness_seconds
        self._health = {address.name: SwitchHealth(address.name) for address in config.switches}
        self._connections = {
            address.name: connection_factory(
                address,
                config.esl_timeout,
                events=events,
                liveness=liveness,
                probe_every=probe_interval(liveness),
                on_probe=_status_reader(self._health[address.name]),
                watch_originates=config.originate_verdict_seconds > 0,
            )
            for address in config.switches
        }
        # A refusal is remembered until the next probe of the switch has surely been answered:
        # by then its status says "not ready" or its session count, and the choice knows why.
        self._refusal_memory = probe_interval(liveness)
        self._refused_at: dict[str, float] = {}
        self._monotonic = monotonic
        self._records = records
        self._refresh_every = refresh_every
        self._refresher: gevent.Greenlet | None = None

    def follow(self, records: RecordSource) -> None:
        """Share drain flags and holders' reports through ``records`` (before start())."""
        self._records = records

    def start(self) -> None:
        for connection in self._connections.values():
            connection.start()
        if self._records is not None and self._refresher is None:
            self._refresher = gevent.spawn(self._keep_refreshing)

    def stop(self) -> None:
        if self._refresher is not None:
            self._refresher.kill(block=True, timeout=5)
            self._refresher = None
        for connection in self._connections.values():
            connection.stop()

    def __iter__(self) -> Iterator[EslConnection]:
        return iter(self._connections.values())

    def __len__(self) -> int:
        return len(self._connections)

    def __getitem__(self, name: str) -> EslConnection:
        return self._connections[name]

    def health(self, name: str) -> SwitchHealth:
        return self._health[name]

    def states(self) -> dict[str, str]:
        """Each switch's connection state by name."""
        return {name: conn.state.value for name, conn in self._connections.items()}

    def any_connected(self) -> bool:
        return any(conn.state is SwitchState.CONNECTED for conn in self)

    def views(self, in_flight: Mapping[str, int] | None = None) -> list[SwitchView]:
        """Every switch as this worker sees it now, in config order (for the choice, /readyz
        and /metrics)."""
        in_flight = in_flight or {}
        views = []
        for index, (name, conn) in enumerate(self._connections.items()):
            health = self._health[name]
            views.append(
                SwitchView(
                    name=name,
                    index=index,
                    connected=conn.state is SwitchState.CONNECTED,
                    live=conn.live,
                    draining=health.draining,
                    shutting_down=conn.shutting_down or health.shutting_down,
                    load=health.load,
                    in_flight=in_flight.get(name, 0),
                    sent_last_second=health.originates_last_second(),
                )
            )
        return views

    def pick(
        self, in_flight: Mapping[str, int] | None = None, *, exclude: Collection[str] = ()
    ) -> EslConnection:
        """The switch for the next call (c2c.esl.choice), counted against its sessions-per-second
        budget; SwitchUnavailable naming each switch's refusal when none can take it.
        ``exclude``: switches not to choose (one that just refused this call). A switch that
        refused an originate lately (note_refusal) is chosen only when no other can be."""
        views = [view for view in self.views(in_flight) if view.name not in exclude]
        refused = self._refused_lately()
        chosen = None
        if refused:
            chosen = choose([view for view in views if view.name not in refused])
        if chosen is None:
            chosen = choose(views)
        if chosen is None:
            tried = f" (besides {', '.join(sorted(exclude))})" if exclude else ""
            raise SwitchUnavailable(
                f"no switch can take calls{tried}: " + describe_refusals(views)
            )
        self._health[chosen.name].note_originate()
        return self._connections[chosen.name]

    def note_refusal(self, name: str) -> None:
        """``name`` refused an originate before any leg existed (paused, sessions-per-second,
        max-sessions: c2c.calls.retry): steer the next calls elsewhere for a while, softly (a
        switch over its sessions-per-second takes calls again the next second)."""
        if name in self._connections:
            self._refused_at[name] = self._monotonic()

    def _refused_lately(self) -> set[str]:
        if not self._refused_at:
            return set()
        horizon = self._monotonic() - self._refusal_memory
        for name in [name for name, at in self._refused_at.items() if at <= horizon]:
            del self._refused_at[name]
        return set(self._refused_at)

    def wait_any_connected(self, timeout: float) -> bool:
        """For start-up: True once one switch is connected, False after ``timeout``."""
        with gevent.Timeout(timeout, False):
            while not self.any_connected():
                gevent.sleep(0.05)
            return True
        return False

    # -- what the workers share through the store -------------------------------------------

    def refresh(self) -> None:
        """Apply the shared records now (the refresher does this every couple of seconds)."""
        if self._records is None:
            return
        for record in self._records():
            health = self._health.get(record.name)
            if health is None:
                continue  # a switch no longer configured here
            if health.draining != record.draining:
                logger.info("switch %s: %s", record.name,
                            "draining: no new calls" if record.draining else "takes calls again")
            health.apply_record(record)

    def _keep_refreshing(self) -> None:
        failing = False
        while True:
            try:
                self.refresh()
                if failing:
                    logger.info("switch states readable again")
                failing = False
            except C2CError as exc:
                # The last flags stay in force: a drain must not lapse because the store blinked.
                level = logging.DEBUG if failing else logging.WARNING
                logger.log(level, "cannot read the switch states (%s); keeping the last ones", exc)
                failing = True
            except Exception:
                logger.exception("reading the switch states failed")
            gevent.sleep(self._refresh_every)


def _status_reader(health: SwitchHealth) -> Callable[[str], None]:
    def read(text: str) -> None:
        health.note_load(parse_status(text))

    return read
