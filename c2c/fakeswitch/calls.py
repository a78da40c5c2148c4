"""Calls: the life of an originate and its legs, and the events it fires, in recorded order.

An ``originate`` creates the A leg (role ``caller``); when it answers, the originate succeeds and
A runs its application. ``&bridge(...)`` creates the B leg (role ``callee``); when B answers the
two are bridged. What each far end does comes from the scenario; timeouts, ``uuid_kill`` and
``sched_hangup`` end legs from our side. Everything runs on the clock's greenlet or inside a
command, never blocks, and fires events synchronously, so their order is deterministic:

- success: A CREATE, PROGRESS, ANSWER, BACKGROUND_JOB ``+OK``, B CREATE, PROGRESS, ANSWER,
  CHANNEL_BRIDGE (A); then whoever hangs up first (recordings 03, 09b);
- A fails: A HANGUP, HANGUP_COMPLETE, then ``-ERR CAUSE`` (for an originate timeout the job result
  comes between HANGUP and HANGUP_COMPLETE, as in 06/06a);
- B fails: B HANGUP, HANGUP_COMPLETE, then A ends with B's cause (NO_ANSWER & co. excepted);
- A leaves while B rings: A HANGUP, B HANGUP ORIGINATOR_CANCEL, B HANGUP_COMPLETE, A
  HANGUP_COMPLETE, A recording the cancelled bridge (originate_disposition ORIGINATOR_CANCEL);
- a leg the core will not create (paused, sessions-per-second, max-sessions: limits.py): for A,
  ``-ERR DESTINATION_OUT_OF_ORDER`` and no event (22, 23); for B, no B event and A ends
  DESTINATION_OUT_OF_ORDER, DIALSTATUS INVALIDARGS, after its job said ``+OK`` (22b).

Early media and ringback follow media.py, press-1 confirmation confirm.py, the timeouts'
whole-second arithmetic timeouts.py; what the caller hears is noted in heard.py.
"""

from __future__ import annotations

import logging
import uuid as uuid_module
from collections.abc import Callable
from dataclasses import dataclass, field

from c2c.fakeswitch import heard as hearing
from c2c.fakeswitch import sofia, timeouts
from c2c.fakeswitch.causes import CONTINUE_CAUSES, cause_from_string
from c2c.fakeswitch.channels import CallerProfile, Channel, ProfileTimes
from c2c.fakeswitch.clock import Clock, Timer
from c2c.fakeswitch.confirm import (
    DTMF_DURATION_SAMPLES,
    ConfirmSettings,
    KeyCollector,
    digit_offsets,
    playback_variables,
)
from c2c.fakeswitch.events import EventBus
from c2c.fakeswitch.heard import Heard, HeardLog
from c2c.fakeswitch.limits import SessionLimits
from c2c.fakeswitch.media import EarlyMedia, Ringback, ringback_source
from c2c.fakeswitch.originate import (
    DEFAULT_TIMEOUT,
    DialLeg,
    DialStringError,
    OriginateRequest,
    failover_chain,
    moves_on,
    parse_dial_string,
    positive_int,
    split_arguments,
)
from c2c.fakeswitch.scenarios import CALLEE, CALLER, Behaviour, Scenario
from c2c.fakeswitch.tones import FILE, TONE, classify, play_seconds

log = logging.getLogger(__name__)

# Event-Calling-File/Function/Line of each event, as the recordings show them.
AT_CREATE = ("switch_core_state_machine.c", "switch_core_session_run", 626)
AT_PROGRESS = ("switch_channel.c", "switch_channel_perform_mark_ring_ready_value", 3505)
AT_PROGRESS_MEDIA = ("switch_channel.c", "switch_channel_perform_mark_pre_answered", 3560)
AT_ANSWER = ("switch_channel.c", "switch_channel_perform_mark_answered", 3846)
AT_BRIDGE = ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", 1689)
AT_UNBRIDGE = ("switch_ivr_bridge.c", "switch_ivr_multi_threaded_bridge", 1879)
AT_HANGUP = ("switch_channel.c", "switch_channel_perform_hangup", 3445)
AT_HANGUP_COMPLETE = ("switch_core_state_machine.c", "switch_core_session_reporting_state", 943)
AT_DESTROY = ("switch_core_session.c", "switch_core_session_perform_destroy", 1588)
AT_ORIGINATE = ("switch_core_state_machine.c", "switch_core_session_run", 632)
AT_STATE = ("switch_channel.c", "switch_channel_perform_set_running_state", 2409)
AT_CALLSTATE = ("switch_channel.c", "switch_channel_perform_set_callstate", 302)
AT_EXECUTE = ("switch_core_session.c", "switch_core_session_exec", 2949)
AT_EXECUTE_COMPLETE = ("switch_core_session.c", "switch_core_session_exec", 2972)
AT_PARK = ("switch_ivr.c", "switch_ivr_park", 1004)
AT_DTMF = ("switch_channel.c", "switch_channel_dequeue_dtmf", 677)

# A ringback tone that makes no audio ends the bridge's originate this long after the callee's
# 180/183 (16e: B's 183 at 0.548 s, its NO_ANSWER at 0.588 s).
BAD_RINGBACK_DELAY = 0.04

RINGING, EARLY, ANSWERED, HANGUP = "ringing", "early", "answered", "hangup"

ResultCallback = Callable[[str], None]
ApiRunner = Callable[[str], str]


@dataclass
class Leg:
    """One leg of a call: its channel plus what drives it."""

    role: str
    channel: Channel
    dialog: sofia.SipDialog
    behaviour: Behaviour
    call: Call
    status: str = RINGING
    timers: list[Timer] = field(default_factory=list)
    peer: Leg | None = None  # the leg it is bridged to
    disposition: str = ""  # recv_bye | send_bye | recv_refuse | send_cancel
    application: str = ""
    application_args: str = ""
    media_since_us: int = 0
    reporting_variables: list[tuple[str, str]] = field(default_factory=list)
    application_uuid: str = field(default_factory=lambda: str(uuid_module.uuid4()))
    early: EarlyMedia = field(default_factory=lambda: EarlyMedia(True, False))
    rang: bool = False  # a 180 came (CF_RING_READY)
    leg_timer: Timer | None = None  # leg_timeout, which confirmation may cancel or replace
    confirm: ConfirmSettings | None = None  # group_confirm_key set on this originate
    confirming: bool = False  # answered, the prompt playing, the key not yet pressed
    confirmed: bool = False
    collector: KeyCollector | None = None
    prompt_started: float | None = None  # while the prompt plays

    @property
    def uuid(self) -> str:
        return self.channel.uuid

    @property
    def up(self) -> bool:
        return self.status != HANGUP

    def cancel_timers(self) -> None:
        for timer in self.timers:
            timer.cancel()
        self.timers.clear()


@dataclass
class Call:
    request: OriginateRequest
    on_result: ResultCallback
    a: Leg | None = None
    b: Leg | None = None
    result: str | None = None
    # Originate timeout: the job result is written before A's HANGUP_COMPLETE (recording 06a).
    result_before_complete: bool = False
    heard: Heard | None = None  # what the caller's phone hears
    ringback: Ringback | None = None  # chosen when the bridge leg is dialled

    def deliver(self, text: str) -> None:
        if self.result is None:
            self.result = text
            try:
                self.on_result(text)
            except Exception:
                log.exception("originate result callback failed")


class Switchboard:
    """Every live leg, and the rules that move them along."""

    def __init__(
        self,
        clock: Clock,
        bus: EventBus,
        scenario: Scenario,
        local_ip: str = "127.0.0.1",
        max_sessions: int = 10_000,
        limits: SessionLimits | None = None,
    ) -> None:
        self.clock = clock
        self.bus = bus
        self.scenario = scenario
        self.local_ip = local_ip
        # Pause flags, sessions-per-second and max-sessions (limits.py); replaced on restart.
        self.limits = limits or SessionLimits(clock.now, max_sessions=max_sessions)
        self.legs: dict[str, Leg] = {}
        self.api_runner: ApiRunner | None = None  # set by the command layer, for api_on_answer
        self.on_leg_complete: Callable[[Leg], None] | None = None  # CDR hook
        self.heard = HeardLog()

    # ---------------------------------------------------------------------------------------
    # queries

    def live(self, uuid: str) -> Leg | None:
        """The leg, if it exists and is not hanging up (uuid_exists semantics)."""
        leg = self.legs.get(uuid)
        return leg if leg is not None and leg.up else None

    @property
    def count(self) -> int:
        return len(self.legs)

    @property
    def max_sessions(self) -> int:
        return self.limits.max_sessions

    @max_sessions.setter
    def max_sessions(self, value: int) -> None:
        self.limits.set_max_sessions(value)

    @property
    def sessions_since_startup(self) -> int:
        return self.limits.since_startup

    @property
    def peak_sessions(self) -> int:
        return self.limits.sessions_peak

    def refused(self) -> str | None:
        """Whether the core refuses one more leg now (limits.py); None: it may be created."""
        return self.limits.admit(len(self.legs))

    def reset(self) -> None:
        """Forget every call without firing anything (a restarted switch)."""
        for leg in self.legs.values():
            leg.cancel_timers()
        self.legs.clear()

    # ---------------------------------------------------------------------------------------
    # originate

    def originate(self, request: OriginateRequest, on_result: ResultCallback) -> Call:
        call = Call(request, on_result)
        leg = request.leg
        origination_uuid = leg.variables.get("origination_uuid")
        if leg.target.endpoint == "error":  # no session at all (mod_dptools' error endpoint)
            call.deliver(f"-ERR {cause_from_string(leg.target.cause)}\n")
            return call
        # sofia asks the core for a session first: a duplicate uuid, a paused switch, a spent
        # sessions-per-second budget or max-sessions refuse it before any channel (22, 23, 23b)
        if (origination_uuid and origination_uuid in self.legs) or self.refused():
            call.deliver("-ERR DESTINATION_OUT_OF_ORDER\n")
            return call
        leg, behaviour = self._first_that_dials([leg, *request.alternatives], CALLER)
        if behaviour.action == "fail":  # e.g. a gateway down: checked once the session exists
            call.deliver(f"-ERR {behaviour.cause}\n")
            return call
        call.a = self._create_leg(call, CALLER, leg, behaviour, originator=None)
        call.heard = self.heard.start(call.a.uuid)
        timeout = positive_int(leg.variables.get("originate_timeout")) or request.timeout
        self._arm_ring_timeouts(call.a, timeout or DEFAULT_TIMEOUT)
        return call

    def _first_that_dials(self, chain: list[DialLeg], role: str) -> tuple[DialLeg, Behaviour]:
        """The '|' failover list tried in order: a target whose far end fails before any channel
        ran (a gateway down or unknown) gives way to the next, as its fail_on_single_reject
        allows; no event tells of it, and its uuid is free for the next (switch_ivr_originate.c).
        A target that rang (a channel that ran, then ended) ends the list: the simulator rings
        one target at a time and does not resume after one. Returns the target dialed, or the
        last one tried with its failing behaviour."""
        for index, dial in enumerate(chain):
            behaviour = self.scenario.behaviour_for(dial.target, role)
            last = index == len(chain) - 1
            if behaviour.action != "fail" or last:
                return dial, behaviour
            if not moves_on(behaviour.cause, dial.variables.get("fail_on_single_reject")):
                return dial, behaviour
            log.info("%s target %s failed %s; trying the next", role, dial.target.text,
                     behaviour.cause)
        raise AssertionError("unreachable: the chain is never empty")

    def _create_leg(
        self, call: Call, role: str, dial: DialLeg, behaviour: Behaviour, originator: Leg | None
    ) -> Leg:
        variables = dial.variables
        uuid = variables.get("origination_uuid") or str(uuid_module.uuid4())
        target = dial.target
        now = self.clock.now_us()
        if originator is None:
            request = call.request
            cid_name = variables.get("origination_caller_id_name") or request.cid_name or ""
            cid_number = (
                variables.get("origination_caller_id_number") or request.cid_num or "0000000000"
            )
            caller = CallerProfile(
                caller_id_name=cid_name,
                caller_id_number=cid_number,
                orig_caller_id_name=cid_name,
                orig_caller_id_number=cid_number,
                callee_id_name="Outbound Call",
                callee_id_number=target.user,
                ani=cid_number,
                destination_number=target.user,
                uuid=uuid,
                channel_name=target.channel_name,
                profile_index="1",
                times=ProfileTimes(profile_created=now, created=now),
            )
        else:
            a = originator.channel
            a_vars = a.variables
            cid_name = (
                variables.get("origination_caller_id_name")
                or a_vars.get("effective_caller_id_name")
                or a.caller.caller_id_name
            )
            cid_number = (
                variables.get("origination_caller_id_number")
                or a_vars.get("effective_caller_id_number")
                or a.caller.caller_id_number
            )
            caller = CallerProfile(
                caller_id_name=cid_name,
                caller_id_number=cid_number,
                orig_caller_id_name=a.caller.orig_caller_id_name,
                orig_caller_id_number=a.caller.orig_caller_id_number,
                callee_id_name="Outbound Call",
                callee_id_number=target.user,
                network_addr=a.caller.network_addr,
                ani=a.caller.ani,
                destination_number=target.user,
                uuid=uuid,
                channel_name=target.channel_name,
                profile_index="1",
                times=ProfileTimes(profile_created=now, created=now),
            )
        channel = Channel(uuid=uuid, name=target.channel_name, caller=caller)
        if originator is not None:
            channel.other_type = "originator"
            channel.other = originator.channel.caller.copy(
                logical_direction="inbound", profile_index="", times=ProfileTimes()
            )
        dialog = sofia.SipDialog(self.local_ip, target)
        leg = Leg(role, channel, dialog, behaviour, call)
        self.legs[uuid] = leg
        sofia.leg_create(
            channel,
            dialog,
            self.limits.since_startup,
            variables,
            originator.channel if originator else None,
        )
        # The originate's settings: this leg's {} and [] plus what it inherited from the caller.
        leg.early = EarlyMedia.of(channel.variables.get)
        leg.confirm = ConfirmSettings.of(channel.variables.get)
        self._fire(leg, "CHANNEL_CREATE", AT_CREATE)
        self._fire(leg, "CHANNEL_ORIGINATE", AT_ORIGINATE)
        self._set_state(leg, "CS_CONSUME_MEDIA", 7)
        self._run_behaviour(leg)
        return leg

    def _run_behaviour(self, leg: Leg) -> None:
        behaviour = leg.behaviour
        if behaviour.progress_after is not None:
            self._later(leg, behaviour.progress_after, self._far_end_rings, leg)
        if behaviour.early_media_after is not None:
            self._later(leg, behaviour.early_media_after, self._far_end_early_media, leg)
        if behaviour.action == "answer":
            self._later(leg, behaviour.answer_after, self._far_end_answers, leg)
        elif behaviour.action == "refuse":
            self._later(leg, behaviour.refuse_after, self._far_end_refuses, leg)

    def _arm_ring_timeouts(self, leg: Leg, no_answer_after: int) -> None:
        """leg_timeout (ALLOTTED_TIMEOUT) and originate_timeout (NO_ANSWER), in whole seconds
        from now (timeouts.py), until the originate of this leg succeeds."""
        start = self.clock.now()
        leg_timeout = positive_int(leg.channel.variables.get("leg_timeout"))
        if leg_timeout is not None:
            due = timeouts.leg_deadline(start, leg_timeout)
            leg.leg_timer = self._at(leg, due, self._ring_timeout, leg, "ALLOTTED_TIMEOUT")
        due = timeouts.originate_deadline(start, no_answer_after)
        self._at(leg, due, self._ring_timeout, leg, "NO_ANSWER")

    def _later(self, leg: Leg, delay: float, callback: Callable[..., None], *args: object) -> Timer:
        timer = self.clock.call_later(delay, callback, *args)
        leg.timers.append(timer)
        return timer

    def _at(self, leg: Leg, when: float, callback: Callable[..., None], *args: object) -> Timer:
        return self._later(leg, when - self.clock.now(), callback, *args)

    # ---------------------------------------------------------------------------------------
    # the far end

    def _far_end_rings(self, leg: Leg) -> None:
        if leg.status != RINGING or leg.channel.caller.times.progress:
            return
        channel = leg.channel
        self._identify(leg)
        sofia.provisional_response(channel, leg.dialog)
        now = self.clock.now_us()
        channel.caller.times.progress = now
        if channel.other is not None and not channel.other.times.progress:
            channel.other.times.progress = now
        leg.rang = True
        self._fire(leg, "CHANNEL_PROGRESS", AT_PROGRESS)
        self._set_callstate(leg, "RINGING")
        self._tell_originator(leg)
        if leg.role == CALLEE:
            self._callee_progress(leg, media=False)

    def _identify(self, leg: Leg) -> None:
        """A far end whose replies carry its identity becomes the leg's callee id (the lab's
        FreeSWITCH phones do, sipp does not: recordings 16-20 against 03)."""
        identity = leg.behaviour.identity_for(leg.dialog.target.user)
        if identity is not None:
            caller = leg.channel.caller
            caller.callee_id_name, caller.callee_id_number = identity

    def _tell_originator(self, leg: Leg) -> None:
        """Ringing or answering, the bridge leg's callee id is passed on to A (06c, 03)."""
        a = leg.call.a
        if leg.role == CALLEE and a is not None and a.up:
            a.channel.caller.callee_id_name = leg.channel.caller.callee_id_name
            a.channel.caller.callee_id_number = leg.channel.caller.callee_id_number

    def _far_end_early_media(self, leg: Leg) -> None:
        if leg.status != RINGING:
            return
        channel = leg.channel
        self._identify(leg)
        sofia.media_up(channel, leg.dialog)
        channel.caller.times.progress_media = self.clock.now_us()
        leg.status = EARLY
        leg.media_since_us = self.clock.now_us()
        channel.answer_state = "early"
        channel.variables.set("endpoint_disposition", "EARLY MEDIA")
        self._fire(leg, "CHANNEL_PROGRESS_MEDIA", AT_PROGRESS_MEDIA)
        self._set_callstate(leg, "EARLY")
        if leg.early.counts_as_answer:
            self._originate_succeeded(leg)  # early media counts as an answer
        elif leg.role == CALLEE:
            self._callee_progress(leg, media=True)

    def _far_end_answers(self, leg: Leg) -> None:
        if leg.status not in (RINGING, EARLY):
            return
        channel = leg.channel
        self._identify(leg)
        sofia.media_up(channel, leg.dialog)
        now = self.clock.now_us()
        channel.caller.times.answered = now
        if not leg.media_since_us:
            leg.media_since_us = now
        leg.status = ANSWERED
        channel.answer_state = "answered"
        self._fire(leg, "CHANNEL_ANSWER", AT_ANSWER)
        channel.variables.set("endpoint_disposition", "ANSWER")  # after the event (mark_answered)
        self._set_callstate(leg, "ACTIVE")
        call = leg.call
        if leg.role == CALLER and call.heard is not None:
            call.heard.answer(now / 1_000_000)
        elif leg.role == CALLEE and leg.peer is not None and call.heard is not None:
            call.heard.hear(now / 1_000_000, hearing.CALLEE, leg=leg.uuid)  # early-bridged
        behaviour = leg.behaviour
        if behaviour.hangup_after is not None:
            self._later(leg, behaviour.hangup_after, self._far_end_hangs_up, leg)
        if behaviour.dtmf:
            for digit, after in digit_offsets(behaviour.dtmf, behaviour.dtmf_after):
                self._later(leg, after, self._far_end_presses, leg, digit)
        self._on_answer_actions(leg)
        self._originate_succeeded(leg)  # a no-op when early media already counted as success

    def _far_end_presses(self, leg: Leg, digit: str) -> None:
        """The phone sent one RFC 2833 digit; its DTMF event comes as the digit ends (19b)."""
        if leg.status != ANSWERED:
            return
        if self.bus.wanted("DTMF"):
            self.bus.fire(
                "DTMF",
                AT_DTMF,
                leg.channel.event_headers("DTMF")
                + [
                    ("DTMF-Digit", digit),
                    ("DTMF-Duration", str(DTMF_DURATION_SAMPLES)),
                    ("DTMF-Source", "RTP"),
                ],
            )
        if leg.confirming and leg.collector is not None:
            if leg.collector.press(digit):
                self._confirmed(leg)
            # a wrong entry is ignored (FreeSWITCH would play group_confirm_error_file)

    def _far_end_refuses(self, leg: Leg) -> None:
        if leg.status not in (RINGING, EARLY):
            return
        behaviour = leg.behaviour
        cause = behaviour.refuse_cause
        sofia.refused(leg.channel, leg.dialog, behaviour.sip_status, cause)
        leg.disposition = "recv_refuse"
        self.hangup(leg, cause, "recv_refuse")

    def _far_end_hangs_up(self, leg: Leg) -> None:
        if leg.up:
            sofia.bye_received(leg.channel, leg.behaviour.hangup_cause)
            self.hangup(leg, leg.behaviour.hangup_cause, "recv_bye")

    def _ring_timeout(self, leg: Leg, cause: str) -> None:
        """A ring timeout, or a confirmation never given: the leg is cancelled or, answered and
        waiting for the key, hung up with a BYE (recording 20: send_bye, billsec from the
        answer)."""
        if not (leg.status in (RINGING, EARLY) or leg.confirming):
            return
        if leg.role == CALLER and cause == "NO_ANSWER":
            leg.call.result_before_complete = True
        self.hangup(leg, cause, "send_bye" if leg.status == ANSWERED else "send_cancel")

    # ---------------------------------------------------------------------------------------
    # originate outcome, the application, the bridge

    def _originate_succeeded(self, leg: Leg) -> None:
        if leg.confirm is not None and not leg.confirmed:
            if not leg.confirming:
                self._start_confirm(leg, leg.confirm)
            return
        for timer in list(leg.timers):
            if timer.callback == self._ring_timeout:
                timer.cancel()
        call = leg.call
        if leg.role == CALLER:
            if call.result is not None:
                return
            call.deliver(f"+OK {leg.uuid}\n")
            self._start_application(leg)
        elif call.a is not None and call.a.up and leg.peer is None:
            self._bridge(call.a, leg)

    # ---------------------------------------------------------------------------------------
    # group confirm (press 1 to connect)

    def _start_confirm(self, leg: Leg, confirm: ConfirmSettings) -> None:
        """The leg answered: the prompt plays and the originate waits for the key, its timeouts
        still running as confirm.py says."""
        answered_us = leg.channel.caller.times.answered
        started = answered_us / 1_000_000 if answered_us else self.clock.now()
        leg.confirming = True
        leg.collector = KeyCollector(confirm.key)
        leg.prompt_started = started
        if confirm.cancel_timeout or confirm.timeout is not None:
            if leg.leg_timer is not None:
                leg.leg_timer.cancel()
                leg.leg_timer = None
        if confirm.timeout is not None:
            due = timeouts.confirm_deadline(started, confirm.timeout)
            leg.leg_timer = self._at(leg, due, self._ring_timeout, leg, "ALLOTTED_TIMEOUT")
        if confirm.file:
            self._hear(leg, started, hearing.PROMPT, value=confirm.file)
        seconds = play_seconds(confirm.file)
        if seconds is not None:
            self._later(leg, seconds, self._prompt_played, leg, seconds)

    def _prompt_played(self, leg: Leg, seconds: float) -> None:
        """The whole prompt played (20b: a 10 s tone_stream left playback_ms 10000); then the
        leg waits for the key in silence (no replay seen within 19 s of the answer, 20b)."""
        if not leg.confirming or leg.prompt_started is None:
            return
        leg.channel.variables.update(playback_variables(seconds))
        leg.prompt_started = None
        self._hear(leg, self.clock.now(), hearing.SILENCE)

    def _hear(self, leg: Leg, at: float, what: str, **details: str) -> None:
        """Note what the caller hears, when ``leg`` is the caller."""
        if leg.role == CALLER and leg.call.heard is not None:
            leg.call.heard.hear(at, what, **details)

    def _confirmed(self, leg: Leg) -> None:
        """The key: the leg wins, its group_confirm_* go (19), the originate succeeds."""
        leg.confirming = False
        leg.confirmed = True
        variables = leg.channel.variables
        for name, _ in variables.items():
            if name.startswith("group_confirm_"):
                variables.unset(name)
        if leg.prompt_started is not None:  # the key stopped the prompt
            variables.update(playback_variables(self.clock.now() - leg.prompt_started))
            leg.prompt_started = None
        variables.set("read_result", "success")
        variables.set("group_dial_status", "winner")
        self._hear(leg, self.clock.now(), hearing.SILENCE)
        self._originate_succeeded(leg)

    # ---------------------------------------------------------------------------------------
    # what the caller hears while the bridge leg rings

    def _callee_progress(self, b: Leg, media: bool) -> None:
        """B's 180 (``media`` False) or a 183 that is not an answer: the caller hears B's early
        media when it is passed through and B has not rung, else the ringback (media.py)."""
        call = b.call
        a = call.a
        if a is None or not a.up or b.peer is not None or call.heard is None:
            return
        now = self.clock.now()
        if media and b.early.passes_through and not b.rang:
            call.heard.hear(now, hearing.EARLY_MEDIA, leg=b.uuid)
            return
        if call.heard.current() == hearing.RINGBACK:
            return
        ringback = call.ringback
        sound = classify(ringback.value if ringback else None)
        if ringback is None or not sound.playable:
            call.heard.hear(now, hearing.SILENCE)
            if sound.fails_bridge:
                self._later(b, BAD_RINGBACK_DELAY, self._ringback_failed, b)
            return
        if sound.kind in (TONE, FILE):
            call.heard.hear(now, hearing.RINGBACK, variable=ringback.variable, value=ringback.value)
        else:
            call.heard.hear(now, hearing.SILENCE)

    def _ringback_failed(self, b: Leg) -> None:
        """16e: the tone made no audio, the ringback loop broke out, B is cancelled NO_ANSWER."""
        if b.up and b.peer is None and b.status in (RINGING, EARLY):
            self.hangup(b, "NO_ANSWER", "send_cancel")

    def _start_application(self, a: Leg) -> None:
        request = a.call.request
        application = request.application or "park"
        a.application = application
        a.application_args = request.application_args
        sofia.application_started(a.channel, application, request.application_args)
        self._set_state(a, "CS_EXECUTE", 4)
        self._fire(a, "CHANNEL_EXECUTE", AT_EXECUTE, after=self._application_headers(a))
        if application == "park":
            self._fire(a, "CHANNEL_PARK", AT_PARK)
        if application != "bridge":
            return
        try:
            chain = failover_chain(parse_dial_string(request.application_args))
        except DialStringError as exc:
            log.info("bridge on %s: bad dial string: %s", a.uuid, exc)
            self._bridge_failed(a, None, exc.cause)
            return
        dial = chain[0]
        if dial.target.endpoint == "error":
            self._bridge_failed(a, None, cause_from_string(dial.target.cause))
            return
        origination_uuid = dial.variables.get("origination_uuid")
        if (origination_uuid and origination_uuid in self.legs) or self.refused():
            # the callee's leg cannot be created (22b): no B event, A ends with the cause
            self._bridge_failed(a, None, "DESTINATION_OUT_OF_ORDER")
            return
        dial, behaviour = self._first_that_dials(chain, CALLEE)
        if behaviour.action == "fail":
            self._bridge_failed(a, None, behaviour.cause)
            return
        call = a.call
        call.ringback = ringback_source(a.channel.variables.get, a.status == ANSWERED)
        if call.heard is not None and call.heard.current() != hearing.SILENCE:
            call.heard.hear(self.clock.now(), hearing.SILENCE)
        b = self._create_leg(a.call, CALLEE, dial, behaviour, originator=a)
        a.call.b = b
        sofia.bridge_leg_created(a.channel, b.channel)
        timeout = positive_int(dial.variables.get("originate_timeout")) or positive_int(
            a.channel.variables.get("call_timeout")
        )
        self._arm_ring_timeouts(b, timeout or DEFAULT_TIMEOUT)

    def _bridge(self, a: Leg, b: Leg) -> None:
        ca, cb = a.channel, b.channel
        sofia.bridge_leg_answered(ca, cb)
        ca.other_type = "originatee"
        ca.other = cb.caller.copy(logical_direction="inbound", profile_index="")
        self._tell_originator(b)
        now = self.clock.now_us()
        ca.caller.times.bridged = now
        cb.caller.times.bridged = now
        ca.other.times.bridged = now
        a.peer, b.peer = b, a
        if a.call.heard is not None:
            heard_now = hearing.CALLEE if b.status == ANSWERED else hearing.EARLY_MEDIA
            a.call.heard.hear(self.clock.now(), heard_now, leg=b.uuid)
        self._fire(
            a,
            "CHANNEL_BRIDGE",
            AT_BRIDGE,
            before=[("Bridge-A-Unique-ID", a.uuid), ("Bridge-B-Unique-ID", b.uuid)],
        )
        self._set_state(b, "CS_EXCHANGE_MEDIA", 5)
        sofia.bridged(ca, cb)

    def _bridge_failed(self, a: Leg, b: Leg | None, cause: str) -> None:
        sofia.bridge_leg_failed(a.channel, b.channel if b else None, cause)
        self._application_complete(a, cause)
        if a.up:
            a_cause = "NORMAL_CLEARING" if cause in CONTINUE_CAUSES else cause
            self.hangup(a, a_cause, "send_bye")

    def _on_answer_actions(self, leg: Leg) -> None:
        """execute_on_answer[_*] (sched_hangup, hangup) and api_on_answer[_*] of this leg."""
        for name, value in leg.channel.variables.items():
            if name == "execute_on_answer" or name.startswith("execute_on_answer_"):
                self._execute_application(leg, value)
            elif name == "api_on_answer" or name.startswith("api_on_answer_"):
                if self.api_runner is not None:
                    self.clock.call_soon(self.api_runner, value)

    def _execute_application(self, leg: Leg, value: str) -> None:
        # "app args", "app:args" or "app::args" (async); only what c2c uses is understood.
        text = value.strip()
        name, sep, args = text.partition(" ")
        if ":" in name:
            name, _, rest = name.partition(":")
            args = (rest.lstrip(":") + sep + args).strip()
        words = split_arguments(args)
        if name == "sched_hangup" and words:
            seconds = parse_seconds(words[0])
            cause = cause_from_string(words[1] if len(words) > 1 else None, "ALLOTTED_TIMEOUT")
            if seconds is not None:
                self.schedule_hangup(leg, seconds, cause)
        elif name == "hangup":
            self.clock.call_soon(self.kill_leg, leg, cause_from_string(words[0] if words else None))
        else:
            log.info("execute_on_answer %r on %s is not simulated", value, leg.uuid)

    # ---------------------------------------------------------------------------------------
    # our side: kill, sched_hangup, hupall

    def kill(self, uuid: str, cause: str = "NORMAL_CLEARING") -> bool:
        leg = self.live(uuid)
        if leg is None:
            return False
        self.kill_leg(leg, cause)
        return True

    def kill_leg(self, leg: Leg, cause: str) -> None:
        if not leg.up:
            return
        if leg.role == CALLER and leg.status in (RINGING, EARLY):
            leg.call.result_before_complete = False
        self.hangup(leg, cause, "send_bye" if leg.status == ANSWERED else "send_cancel")

    def schedule_hangup(self, leg: Leg, seconds: float, cause: str) -> None:
        self._later(leg, seconds, self.kill_leg, leg, cause)

    def hupall(self, cause: str) -> int:
        callers = [leg for leg in self.legs.values() if leg.up and leg.role == CALLER]
        others = [leg for leg in self.legs.values() if leg.up and leg.role != CALLER]
        for leg in callers + others:
            self.kill_leg(leg, cause)
        return len(callers) + len(others)

    # ---------------------------------------------------------------------------------------
    # hanging up

    def hangup(self, leg: Leg, cause: str, disposition: str) -> None:
        """End ``leg`` and whatever depends on it, firing events in the recorded order."""
        if not leg.up:
            return
        call = leg.call
        peer = leg.peer
        leg.disposition = disposition
        if peer is not None and peer.up:
            if leg.role == CALLER:
                self._caller_ends_bridge(leg, peer, cause)
            else:
                self._callee_ends_bridge(leg, peer, cause)
            return
        self._fire_hangup(leg, cause)
        if leg.role == CALLER and call.b is not None and call.b.up:
            self._cancel_bridge_leg(leg, call.b, cause)
        if leg.role == CALLER and call.result is None and call.result_before_complete:
            call.deliver(f"-ERR {cause}\n")
        self._complete(leg)
        if leg.role == CALLER and call.result is None:
            call.deliver(f"-ERR {cause}\n")
        if leg.role == CALLEE and call.a is not None and call.a.up and leg.peer is None:
            self._bridge_failed(call.a, leg, cause)

    def _cancel_bridge_leg(self, a: Leg, b: Leg, cause: str) -> None:
        """A left while B was still being dialled (issue 12): A's hangup reaches B through
        originate_signal_bond (last_bridge_hangup_cause on B), B's originate is cancelled, and
        the bridge app leaves the outcome on A before its reporting state."""
        b.channel.variables.set("last_bridge_hangup_cause", cause)
        self._fire_hangup(b, "ORIGINATOR_CANCEL", "send_cancel")
        self._complete(b)
        sofia.bridge_leg_failed(a.channel, b.channel, "ORIGINATOR_CANCEL")

    def _callee_ends_bridge(self, b: Leg, a: Leg, cause: str) -> None:
        """Recording 03: B HANGUP, B HANGUP_COMPLETE, CHANNEL_UNBRIDGE, A HANGUP, A COMPLETE."""
        b.channel.variables.set("last_bridge_role", "originatee")
        self._fire_hangup(b, cause)
        b.channel.variables.unset("bridge_to")
        self._complete(b)
        sofia.unbridged_by_peer(a.channel, b.channel)
        a.channel.variables.set("bridge_hangup_cause", cause)
        self._fire(a, "CHANNEL_UNBRIDGE", AT_UNBRIDGE, before=self._bridge_ids(a, b))
        self._application_complete(a, "SUCCESS")
        # A runs out of dialplan (NORMAL_CLEARING) unless hangup_after_bridge passes B's cause on.
        after_bridge = (a.channel.variables.get("hangup_after_bridge") or "").lower() == "true"
        a_cause = cause if after_bridge else "NORMAL_CLEARING"
        a.peer = None
        a.disposition = "send_bye"
        self._fire_hangup(a, a_cause)
        self._complete(a)

    def _caller_ends_bridge(self, a: Leg, b: Leg, cause: str) -> None:
        """Recording 09b: A HANGUP, B HANGUP, CHANNEL_UNBRIDGE, A COMPLETE, B COMPLETE."""
        a.channel.variables.set("last_bridge_role", "originator")
        self._fire_hangup(a, cause)
        b.channel.variables.unset("bridge_to")
        b.channel.variables.set("last_bridge_hangup_cause", cause)
        b.disposition = "send_bye"
        self._fire_hangup(b, "NORMAL_CLEARING")
        a.channel.variables.unset("bridge_to")
        a.channel.variables.set("bridge_hangup_cause", "NORMAL_CLEARING")
        self._fire(a, "CHANNEL_UNBRIDGE", AT_UNBRIDGE, before=self._bridge_ids(a, b))
        self._application_complete(a, "SUCCESS")
        a.peer = b.peer = None
        self._complete(a)
        # The bridge's end reaches B's variables only in its reporting state (09b).
        b.reporting_variables += [("bridge_hangup_cause", cause), ("call_uuid", b.uuid)]
        self._complete(b)

    @staticmethod
    def _bridge_ids(a: Leg, b: Leg) -> list[tuple[str, str]]:
        return [("Bridge-A-Unique-ID", a.uuid), ("Bridge-B-Unique-ID", b.uuid)]

    def _fire_hangup(self, leg: Leg, cause: str, disposition: str | None = None) -> None:
        if not leg.up:
            return
        if disposition:
            leg.disposition = disposition
        leg.cancel_timers()
        leg.confirming = False
        channel = leg.channel
        if leg.role == CALLER and leg.call.heard is not None:
            leg.call.heard.end(self.clock.now())
        leg.status = HANGUP
        channel.hangup_cause = cause
        channel.answer_state = "hangup"
        channel.state_number = 10
        channel.caller.times.hangup = self.clock.now_us()
        self._fire(leg, "CHANNEL_HANGUP", AT_HANGUP)

    def _complete(self, leg: Leg) -> None:
        """CS_REPORTING: hangup variables, CHANNEL_HANGUP_COMPLETE, then the channel is gone."""
        channel = leg.channel
        if self.legs.get(leg.uuid) is not leg:
            return
        cause = channel.hangup_cause or "NORMAL_CLEARING"
        variables = channel.variables
        if leg.disposition == "recv_bye":
            variables.set("sip_hangup_disposition", "recv_bye")
        ended = channel.caller.times.hangup or self.clock.now_us()
        sofia.hangup_timestamps(
            channel, cause, leg.application or None, leg.application_args or None, ended
        )
        variables.update(leg.reporting_variables)
        if leg.disposition == "send_bye":
            variables.set("sip_hangup_disposition", "send_bye")
        elif leg.disposition == "send_cancel":
            variables.set("sip_hangup_disposition", "send_cancel")
            variables.set("sip_invite_failure_status", "487")
            variables.set("sip_invite_failure_phrase", "CANCEL")
        if channel.has_media:
            sofia.rtp_stats(channel, ended - leg.media_since_us)
        channel.state, channel.state_number = "CS_REPORTING", 11
        channel.call_state = "HANGUP"
        if self.on_leg_complete is not None:
            try:
                self.on_leg_complete(leg)
            except Exception:
                log.exception("CDR hook failed for %s", leg.uuid)
        self._fire(
            leg, "CHANNEL_HANGUP_COMPLETE", AT_HANGUP_COMPLETE, before=[("Hangup-Cause", cause)]
        )
        channel.state, channel.state_number = "CS_DESTROY", 12
        self._fire(leg, "CHANNEL_DESTROY", AT_DESTROY)
        self.limits.catch_up(len(self.legs))  # refills due so far saw this leg up
        del self.legs[leg.uuid]

    # ---------------------------------------------------------------------------------------
    # events

    def _set_callstate(self, leg: Leg, call_state: str) -> None:
        channel = leg.channel
        original = channel.call_state
        channel.call_state = call_state
        if not self.bus.wanted("CHANNEL_CALLSTATE"):
            return
        self.bus.fire(
            "CHANNEL_CALLSTATE",
            AT_CALLSTATE,
            channel.event_headers("CHANNEL_CALLSTATE")
            + [
                ("Original-Channel-Call-State", original),
                ("Channel-Call-State-Number", str(_CALLSTATES.get(call_state, 0))),
            ],
        )

    def _set_state(self, leg: Leg, state: str, number: int) -> None:
        channel = leg.channel
        channel.state, channel.state_number = state, number
        self._fire(leg, "CHANNEL_STATE", AT_STATE)

    def _application_headers(self, leg: Leg) -> list[tuple[str, str]]:
        return [
            ("Application", leg.application),
            ("Application-Data", leg.application_args),
            ("Application-UUID", leg.application_uuid),
        ]

    def _application_complete(self, leg: Leg, response: str) -> None:
        if leg.application:
            after = self._application_headers(leg) + [("Application-Response", response)]
            self._fire(leg, "CHANNEL_EXECUTE_COMPLETE", AT_EXECUTE_COMPLETE, after=after)

    def _fire(
        self,
        leg: Leg,
        name: str,
        calling: tuple[str, str, int],
        before: list[tuple[str, str]] | None = None,
        after: list[tuple[str, str]] | None = None,
    ) -> None:
        if self.bus.wanted(name):
            headers = (before or []) + leg.channel.event_headers(name) + (after or [])
            self.bus.fire(name, calling, headers)


_CALLSTATES = {
    "DOWN": 0,
    "DIALING": 1,
    "RINGING": 2,
    "EARLY": 3,
    "ACTIVE": 4,
    "HELD": 5,
    "RING_WAIT": 6,
    "HANGUP": 7,
    "UNHELD": 8,
}


def parse_seconds(text: str) -> float | None:
    """``+N`` or ``N`` seconds (sched_hangup's time argument)."""
    try:
        return float(text.lstrip("+"))
    except ValueError:
        return None
