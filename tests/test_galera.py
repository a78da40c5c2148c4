"""The cluster tier (issue 16): c2c on a three-node MariaDB Galera cluster started by
scripts/galera-cluster.sh on this machine.

- A worker moves off a node that leaves the cluster (isolated: non-primary, wsrep_ready=OFF)
  within seconds, and /readyz names the node it uses; a URL with several hosts works everywhere,
  and a bad one gets a message, not a traceback.
- Two c2c hosts (gunicorn masters, gevent workers), each on its own node, two simulated
  switches: the flood window is exact across nodes (two requests for one number at once, one
  through each node: exactly one 0); calls are placed through both while one database node is
  killed with kill -9 and later rejoins, and then one c2c host is killed. Counted like the other
  fault tests: sent, accepted, settled, called back, duplicates; every accepted call answered and
  billed; `c2c check` clean; nothing reserved; the three nodes hold the same data.

Run with -s to see the counts.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

from c2c.errors import StoreError
from c2c.store import Store
from c2c.store.engine import database_host
from tests.callback_receiver import CallbackReceiver
from tests.support.faults import (
    CDR_PASSWORD,
    CDR_USER,
    SWITCH_PASSWORD,
    RequestStream,
    c2c_check,
    count_streams,
    run_c2c,
    tally,
    wait_all_delivered,
    wait_all_settled,
    write_scenario,
)
from tests.support.galera import GaleraCluster, available
from tests.support.processes import (
    GunicornProcess,
    SimulatorProcess,
    free_port,
    http_get,
    wait_until,
)

pytestmark = [pytest.mark.slow, pytest.mark.galera]

if not available():  # pragma: no cover
    if os.environ.get("CI") == "true":
        raise RuntimeError("the cluster tier needs galera-4, rsync and mariadb-server "
                           "(.ci/run installs them)")
    pytest.skip("galera-4, rsync or mariadb-server not installed", allow_module_level=True)

CREDITS = 100_000
TALK_SECONDS = 4
TABLES = ("accounts", "calls", "ledger", "callbacks", "flood", "leases")


@pytest.fixture(scope="module")
def cluster() -> Iterator[GaleraCluster]:
    with GaleraCluster() as running:
        yield running


@pytest.fixture
def database(cluster: GaleraCluster) -> Iterator[str]:
    name = f"c2c_galera_{uuid.uuid4().hex[:12]}"
    cluster.create_database(name)
    try:
        yield name
    finally:
        try:
            cluster.execute(1, f"DROP DATABASE IF EXISTS `{name}`")
        except Exception:  # noqa: BLE001 (a node may be down after a failed test)
            pass


def test_several_hosts_in_the_url(cluster: GaleraCluster, database: str) -> None:
    url = cluster.url(database, order=(2, 3, 1))
    upgraded = run_c2c(url, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "schema upgraded" in upgraded.stdout
    checked = run_c2c(url, "check")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    for bad in (f"mysql+pymysql://root@127.0.0.1:{cluster.port(1)},/x",
                "mysql+pymysql://root@127.0.0.1:1,127.0.0.1:notaport/x"):
        refused = run_c2c(bad, "check")
        assert refused.returncode != 0
        assert "Traceback" not in refused.stderr and "C2C_DATABASE_URL" in refused.stderr, \
            refused.stderr


def test_a_worker_moves_off_a_node_that_leaves_the_cluster(cluster: GaleraCluster,
                                                           database: str) -> None:
    store = Store.from_url(cluster.url(database, order=(1, 2, 3)))
    try:
        store.upgrade()
        account = store.accounts.create("moves", 10)
        assert database_host(store.engine) == (f"127.0.0.1:{cluster.port(1)}", True)
        cluster.execute(1, "SET GLOBAL wsrep_provider_options = 'gmcast.isolate=1'")
        started = time.monotonic()
        failures = []

        def served() -> bool:
            try:
                store.accounts.add_credits(account.id, 1)
                return True
            except StoreError as exc:
                failures.append(str(exc))
                return False

        wait_until(served, 20, 0.1, "a write through another node")
        moved_after = time.monotonic() - started
        assert database_host(store.engine) == (f"127.0.0.1:{cluster.port(2)}", False)
        print(f"\n[galera] node 1 isolated: the next write went through node 2 after "
              f"{moved_after:.1f} s and {len(failures)} failure(s)")
        assert moved_after < 10
        assert store.accounts.find(account.id).credits == 11
    finally:
        cluster.execute(1, "SET GLOBAL wsrep_provider_options = 'gmcast.isolate=0'")
        wait_until(lambda: cluster.execute(1, "SHOW STATUS LIKE 'wsrep_local_state_comment'")
                   [0][1] == "Synced", 30, 0.2, "node 1 back")
        store.dispose()


class Host:
    """One c2c host: a gunicorn master whose workers use the cluster in their own order."""

    def __init__(self, workdir: Path, name: str, env: dict[str, str], port: int) -> None:
        self.name = name
        self.gunicorn = GunicornProcess(workdir, env, workers=2, port=port)

    def ready(self) -> dict[str, Any]:
        return json.loads(http_get(self.gunicorn.base_url + "/readyz", timeout=5)[2])

    def kill(self) -> None:
        """kill -9 the master and its workers: a host gone at once."""
        os.killpg(self.gunicorn.pid, signal.SIGKILL)


class NumberedStream(RequestStream):
    """Requests whose caller and callee are new numbers each time (flood protection is on)."""

    def __init__(self, base_url: str, params: dict[str, str], prefix: str, count: int,
                 **kwargs: Any) -> None:
        super().__init__(base_url, params, count, **kwargs)
        self._base = f"{base_url}/api/clicktocall/?"
        self._params = params
        self._prefix = prefix

    def url_for(self, index: int) -> str:
        numbers = {"caller_phone_number": f"646{self._prefix}{index:06d}",
                   "callee_phone_number": f"917{self._prefix}{index:06d}"}
        return self._base + urlencode({**self._params, **numbers})


def _send_together(host: Host, query: dict[str, str], barrier: threading.Barrier,
                   codes: list[int]) -> None:
    barrier.wait()
    _, _, body = http_get(f"{host.gunicorn.base_url}/api/clicktocall/?{urlencode(query)}",
                          timeout=20)
    codes.append(int(body))


def _pairs_through_both(hosts: list[Host], params: dict[str, str], pairs: int) -> Counter[str]:
    """For each pair, two requests for one caller number at once, one through each host (each
    on its own node): how the pairs were answered."""
    outcomes: Counter[str] = Counter()
    for index in range(pairs):
        query = {**params, "caller_phone_number": f"6465{index:06d}"[:10],
                 "callee_phone_number": f"9175{index:06d}"[:10]}
        codes: list[int] = []
        barrier = threading.Barrier(2)
        threads = [threading.Thread(target=_send_together, args=(h, query, barrier, codes))
                   for h in hosts]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        outcomes[",".join(map(str, sorted(codes)))] += 1
    return outcomes


def test_two_hosts_two_nodes_a_node_and_a_host_killed(cluster: GaleraCluster, database: str,
                                                     tmp_path: Path) -> None:
    store = Store.from_url(cluster.url(database, order=(3, 2, 1)))
    receiver = CallbackReceiver()
    processes: list[Any] = []
    try:
        store.upgrade()
        account = store.accounts.create("galera", CREDITS)
        pairs_account = store.accounts.create("galera pairs", CREDITS)
        receiver.start()
        scenario = write_scenario(tmp_path / "scenario.json", TALK_SECONDS)
        ports = [free_port(), free_port()]
        # Each switch posts its CDRs to host B (through nginx they would reach whichever host
        # is up; host A is the one killed here).
        cdr = ["--cdr-url", f"http://127.0.0.1:{ports[1]}/internal/cdr", "--cdr-cred",
               f"{CDR_USER}:{CDR_PASSWORD}", "--cdr-spool", str(tmp_path / "spool"),
               "--cdr-retries", "5", "--cdr-delay", "0.5", "--heartbeat-interval", "1"]
        (tmp_path / "spool").mkdir()
        switches = [SimulatorProcess(tmp_path, password=SWITCH_PASSWORD, scenario=scenario,
                                     extra=cdr).start() for _ in range(2)]
        processes += switches
        env = {
            "C2C_SWITCHES": ",".join(s.switch_url for s in switches),
            "C2C_CALLBACK_ALLOW_PRIVATE": "on",
            "C2C_FLOOD_SECONDS": "60",
            "C2C_LEASE_SECONDS": "3",
            "C2C_ESL_TIMEOUT": "3",
            "C2C_RING_TIMEOUT": "5",
            "C2C_SETTLE_GRACE": "6",
            "C2C_ESL_LIVENESS_SECONDS": "5",
            "C2C_CDR_USER": CDR_USER,
            "C2C_CDR_PASSWORD": CDR_PASSWORD,
            "C2C_LOG_LEVEL": "INFO",
        }
        # Host A prefers node 1 (the node killed), host B node 2.
        hosts = [Host(tmp_path, "A", {**env, "C2C_DATABASE_URL": cluster.url(database, (1, 2, 3))},
                      ports[0]),
                 Host(tmp_path, "B", {**env, "C2C_DATABASE_URL": cluster.url(database, (2, 3, 1))},
                      ports[1])]
        for host in hosts:
            host.gunicorn.start()
            processes.append(host.gunicorn)
        for host in hosts:
            host.gunicorn.wait_ready()
        assert hosts[0].ready()["database"]["host"] == f"127.0.0.1:{cluster.port(1)}"
        assert hosts[1].ready()["database"]["host"] == f"127.0.0.1:{cluster.port(2)}"

        params = {"api_key": account.api_key, "caller_country_code": "1",
                  "callee_country_code": "1", "secret": "s3cret", "max_duration": "2",
                  "callback_url": receiver.url("/cb")}
        # The flood window across nodes: exactly one 0 of each pair.
        pairs = _pairs_through_both(hosts, {**params, "api_key": pairs_account.api_key}, 20)
        print(f"\n[galera] flood pairs through two nodes: {dict(pairs)}")
        assert pairs == Counter({"0,6": 20})

        streams = [NumberedStream(host.gunicorn.base_url, params, f"{i}", count,
                                  concurrency=3, interval=1.0)
                   for i, (host, count) in enumerate(zip(hosts, (45, 75), strict=True))]
        started = time.monotonic()
        for stream in streams:
            stream.start()
        wait_until(lambda: time.monotonic() - started > 5, 10, 0.1, "load running")
        cluster.kill(1)
        killed_node_at = time.time()
        # Host A's workers move to node 2; /readyz says so (each answer from either worker).
        node2 = f"127.0.0.1:{cluster.port(2)}"
        wait_until(lambda: hosts[0].ready()["database"] == {"host": node2, "preferred": False},
                   15, 0.1, "host A on node 2")
        moved_after = time.time() - killed_node_at
        wait_until(lambda: time.monotonic() - started > 12, 30, 0.1, "load under one node down")
        cluster.rejoin(1)
        rejoined_at = time.time()
        streams[0].join(60)
        # Host A dies with calls still talking, holding the events of one switch or both.
        held_by_a = [name for name in (f"127.0.0.1:{s.port}" for s in switches)
                     if (holder := store.leases.holder_of(f"switch:{name}", time.time()))
                     and int(holder.split(":")[1]) in hosts[0].gunicorn.worker_pids()]
        hosts[0].kill()
        killed_host_at = time.time()
        streams[1].join(90)

        wait_all_settled(_Target(store, account.id, receiver, cluster.url(database)), 120)
        wait_all_delivered(_Target(store, account.id, receiver, cluster.url(database)), 60)
        time.sleep(1)  # a second delivery, if there were one, would come now
        target = _Target(store, account.id, receiver, cluster.url(database))
        result = count_streams(tally("galera", target, None), *streams)
        accepted = {call_id for s in streams for call_id in s.accepted}
        rows = {c["id"]: c for c in store.calls.list(limit=10_000, account_id=account.id)}
        result.rows_without_a_0 = len(set(rows) - accepted)
        elevens = [a for s in streams for a in s.answers if a.code == 11]
        result.extra["11s while node 1 was down"] = sum(
            1 for a in elevens if killed_node_at - 1 <= a.started <= rejoined_at)
        result.extra["node 1 down for"] = f"{rejoined_at - killed_node_at:.1f} s"
        result.extra["host A on node 2 after"] = f"{moved_after:.1f} s"
        result.extra["host A killed at"] = f"+{killed_host_at - killed_node_at:.1f} s"
        result.extra["switches whose events host A held"] = len(held_by_a)
        logs = [host.gunicorn.log_text() for host in hosts]
        result.extra["certification conflicts retried"] = sum(
            log.count("certification conflict, retrying") for log in logs)
        result.extra["events taken over by B"] = logs[1].count("took over the events of")
        not_billed = [c for cid, c in rows.items() if cid in accepted
                      and (not c["answered"] or (c["minutes"] or 0) < 1)]
        result.extra["accepted but not answered and billed"] = len(not_billed)
        result.extra["estimated"] = sum(1 for c in rows.values() if c["estimated"])
        print(result.line())
        print(f"[galera] node states after: {cluster.status().strip()}")

        assert result.errors == 0, [a.error for s in streams for a in s.errors][:5]
        assert set(result.answers) <= {0, 11}, result.answers  # placed, or refused for a moment
        assert result.accepted >= result.sent * 0.8, result.answers
        assert accepted <= set(rows), "every 0 has its call row"
        assert result.settled == result.call_rows, "every call row settled"
        assert result.duplicate_debits == 0
        assert not not_billed, [(c["id"], c["answered"], c["minutes"], c["reason"],
                                 c["caller_hangup_cause"], c["callee_hangup_cause"])
                                for c in not_billed][:5]
        with_url = sum(1 for c in rows.values() if c["callback_url"])
        assert result.callbacks_queued == with_url
        assert result.delivered == with_url, "every settled call called back"
        for who in (account.id, pairs_account.id):
            found = store.accounts.find(who)
            assert found is not None and found.reserved == 0
        assert store.accounts.find(account.id).credits == CREDITS - result.minutes
        checked = c2c_check(cluster.url(database))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        # The hosts stop first: a live host renews its leases, so the table moves between reads.
        for host in hosts:
            host.gunicorn.stop()
        sums = [cluster.checksums(node, database, TABLES) for node in (1, 2, 3)]
        assert sums[0] == sums[1] == sums[2], sums
    finally:
        for process in reversed(processes):
            process.stop()
        receiver.stop()
        store.dispose()


class _Target:
    """What the fault tallies read (tests.support.faults.Target)."""

    def __init__(self, store: Store, account_id: int, receiver: CallbackReceiver,
                 database_url: str) -> None:
        self.store, self.account_id = store, account_id
        self.receiver, self.database_url = receiver, database_url

