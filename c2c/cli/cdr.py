"""`c2c cdr replay DIR [--json]`: apply the CDRs FreeSWITCH spooled because it could not POST them.

mod_xml_cdr / mod_json_cdr write what they failed to deliver to their err-log-dir and never send it
again (esl-reference.md section 7). This feeds each ``*.cdr.xml`` / ``*.cdr.json`` file through the
same path as the endpoint (parse -> LegEnd -> CallEventListener.leg_ended) and then:

- removes the file once applied, or once known not to be one of our legs;
- moves a file that cannot be read to DIR/bad/ (with a log line), so it is looked at, not retried;
- stops at the first store failure, exit status 1, leaving that file and the rest in place.

Run it as often as you like (a systemd timer does): applying a leg twice changes nothing.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from c2c.calls.cdr import (
    MAX_CDR_BYTES,
    CdrError,
    CdrFormat,
    format_of_file,
    leg_end_from_cdr,
    unwrap_spooled,
)
from c2c.calls.events import LegEnd
from c2c.calls.listener import CallEventListener
from c2c.cli.db import fail, store_command
from c2c.config import Config
from c2c.errors import StoreError
from c2c.store import Store

log = logging.getLogger(__name__)

BAD_DIR = "bad"
# The modules write a spool file with plain open/write/close: a file this young may be half done.
DEFAULT_MIN_AGE = 10.0


@dataclass
class ReplaySummary:
    applied: int = 0
    not_ours: int = 0
    bad: int = 0
    too_young: int = 0  # left for the next run
    unreadable: int = 0  # could not be read or moved (permissions...): left in place
    store_down: bool = False

    @property
    def ok(self) -> bool:
        return not self.store_down and not self.unreadable

    def __str__(self) -> str:
        text = f"applied {self.applied}, not ours {self.not_ours}, bad {self.bad}"
        if self.too_young:
            text += f", left for later {self.too_young}"
        if self.unreadable:
            text += f", unreadable {self.unreadable}"
        if self.store_down:
            text += "; stopped: the store is unavailable"
        return text


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser("cdr", help="the CDR safety net")
    actions = parser.add_subparsers(dest="cdr_command", metavar="ACTION", required=True)
    replay = actions.add_parser(
        "replay",
        help="apply the CDRs FreeSWITCH spooled to DIR (its err-log-dir)",
        description="Apply every *.cdr.xml / *.cdr.json in DIR, then remove it; unreadable files "
        "go to DIR/bad/. Exit status 1 when the store is unavailable.",
    )
    replay.add_argument("directory", metavar="DIR", type=Path)
    replay.add_argument(
        "--min-age",
        type=float,
        default=DEFAULT_MIN_AGE,
        metavar="SECONDS",
        help="leave files modified less than this long ago for the next run "
        f"(default {DEFAULT_MIN_AGE:.0f}: FreeSWITCH may still be writing them)",
    )
    replay.add_argument("--json", action="store_true", help="print the summary as JSON")
    replay.set_defaults(func=run)


def run(args: argparse.Namespace, config: Config) -> int:
    return store_command(_replay_command)(args, config)


def _replay_command(args: argparse.Namespace, store: Store) -> int:
    directory: Path = args.directory
    if not directory.is_dir():
        return fail(f"{directory}: not a directory")
    listener = CallEventListener(store)
    summary = replay_directory(directory, listener.leg_ended, min_age=args.min_age)
    if args.json:
        print(json.dumps({**asdict(summary), "ok": summary.ok}))
    else:
        print(summary)
    return 0 if summary.ok else 1


def replay_directory(
    directory: Path,
    apply: Callable[[LegEnd], None],
    *,
    min_age: float = 0.0,
    now: float | None = None,
) -> ReplaySummary:
    """Apply every spooled CDR in ``directory`` (oldest first) with ``apply``; see the module."""
    now = time.time() if now is None else now
    summary = ReplaySummary()
    for path, cdr_format in _spooled_files(directory):
        try:
            if now - path.stat().st_mtime < min_age:
                summary.too_young += 1
                continue
            data = _read_limited(path)
        except FileNotFoundError:
            continue  # another replay got there first
        except OSError as exc:
            log.error("%s: cannot read: %s", path, exc.strerror or exc)
            summary.unreadable += 1
            continue
        if not _replay_file(path, cdr_format, data, apply, summary):
            break
    return summary


def _replay_file(
    path: Path,
    cdr_format: CdrFormat,
    data: bytes | None,
    apply: Callable[[LegEnd], None],
    summary: ReplaySummary,
) -> bool:
    """Deal with one file; False when the run must stop (the store is down)."""
    try:
        if data is None:
            raise CdrError(f"larger than {MAX_CDR_BYTES} bytes")
        end = leg_end_from_cdr(unwrap_spooled(data), cdr_format)
    except CdrError as exc:
        moved = _move_to_bad(path)
        if moved:
            log.warning("%s: unreadable CDR moved to %s/: %s", path, BAD_DIR, exc)
            summary.bad += 1
        elif moved is False:
            summary.unreadable += 1
        return True
    if end is not None:
        try:
            apply(end)
        except StoreError as exc:
            log.error(
                "call %s: %s leg CDR %s not applied, store unavailable: %s",
                end.call_id,
                end.leg,
                path.name,
                exc,
            )
            summary.store_down = True
            return False
        log.info(
            "call %s: %s leg end applied from spooled CDR %s (%s)",
            end.call_id,
            end.leg,
            path.name,
            end.cause,
        )
    if _remove(path):
        if end is None:
            summary.not_ours += 1
        else:
            summary.applied += 1
    else:
        summary.unreadable += 1
    return True


def _spooled_files(directory: Path) -> list[tuple[Path, CdrFormat]]:
    """The CDR files directly in ``directory`` (not in bad/), oldest first."""
    files = []
    with os.scandir(directory) as entries:
        for entry in entries:
            cdr_format = format_of_file(entry.name)
            if cdr_format is not None and entry.is_file():
                files.append((Path(entry.path), cdr_format))

    def age_order(item: tuple[Path, CdrFormat]) -> tuple[float, str]:
        try:
            return (item[0].stat().st_mtime, item[0].name)
        except OSError:
            return (0.0, item[0].name)

    return sorted(files, key=age_order)


def _read_limited(path: Path) -> bytes | None:
    """The file's bytes, or None when it is too big to be a CDR."""
    with path.open("rb") as handle:
        data = handle.read(MAX_CDR_BYTES + 1)
    return None if len(data) > MAX_CDR_BYTES else data


def _move_to_bad(path: Path) -> bool | None:
    """True when moved, None when the file is gone (another replay), False on failure."""
    try:
        bad = path.parent / BAD_DIR
        bad.mkdir(exist_ok=True)
        os.replace(path, bad / path.name)
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.error("%s: cannot move it to %s/: %s", path, BAD_DIR, exc.strerror or exc)
        return False
    return True


def _remove(path: Path) -> bool:
    try:
        path.unlink(missing_ok=True)
    except OSError as exc:
        log.error("%s: applied but cannot remove it: %s", path, exc.strerror or exc)
        return False
    return True
