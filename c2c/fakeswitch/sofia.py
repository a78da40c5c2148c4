"""What mod_sofia and the core write into a leg's variables at each signalling step.

Each function applies, in order, the variable changes that the recordings in esl-captures/ show
between two events of a sofia leg (a 180, a 200 OK, a refusal, the bridge, the hangup, the
reporting state). The SIP details (tags, Call-ID, SDP, RTP ports) are made up but shaped like the
real ones. Events are not fired here: calls.py decides when.
"""

from __future__ import annotations

import random
import string
import time
import uuid as uuid_module
from dataclasses import dataclass, field

from c2c.fakeswitch.causes import dialstatus, q850, sip_reason_phrase
from c2c.fakeswitch.channels import Channel, Variables
from c2c.fakeswitch.media import EarlyMedia
from c2c.fakeswitch.originate import DialTarget

# The A leg's variables that a leg it originates (the &bridge leg) inherits when its own {} and []
# do not set them (ORIG:2370-2420, finding 17). Not the ringback ones: bridge reads those from A.
INHERITED_VARIABLES = (
    "forked_dial",
    "fail_on_single_reject",
    "hangup_on_single_reject",
    "ignore_early_media",
    "bridge_early_media",
    "originate_continue_on_timeout",
    "ignore_ring_ready",
    "return_ring_ready",
    "ring_ready",
    "instant_ringback",
    "progress_timeout",
    "language",
)
INHERITED_PREFIXES = ("group_confirm_", "monitor_early_media_")

RTP_STATS = (
    ("rtp_audio_in_raw_bytes", "0"),
    ("rtp_audio_in_media_bytes", "0"),
    ("rtp_audio_in_packet_count", "0"),
    ("rtp_audio_in_media_packet_count", "0"),
    ("rtp_audio_in_skip_packet_count", None),  # one per 20 ms of the call
    ("rtp_audio_in_jitter_packet_count", "0"),
    ("rtp_audio_in_dtmf_packet_count", "0"),
    ("rtp_audio_in_cng_packet_count", "0"),
    ("rtp_audio_in_flush_packet_count", "0"),
    ("rtp_audio_in_largest_jb_size", "0"),
    ("rtp_audio_in_jitter_min_variance", "0.00"),
    ("rtp_audio_in_jitter_max_variance", "0.00"),
    ("rtp_audio_in_jitter_loss_rate", "0.00"),
    ("rtp_audio_in_jitter_burst_rate", "0.00"),
    ("rtp_audio_in_mean_interval", "0.00"),
    ("rtp_audio_in_flaw_total", "0"),
    ("rtp_audio_in_quality_percentage", "100.00"),
    ("rtp_audio_in_mos", "4.50"),
    ("rtp_audio_out_raw_bytes", "0"),
    ("rtp_audio_out_media_bytes", "0"),
    ("rtp_audio_out_packet_count", "0"),
    ("rtp_audio_out_media_packet_count", "0"),
    ("rtp_audio_out_skip_packet_count", "0"),
    ("rtp_audio_out_dtmf_packet_count", "0"),
    ("rtp_audio_out_cng_packet_count", "0"),
    ("rtp_audio_rtcp_packet_count", "0"),
    ("rtp_audio_rtcp_octet_count", "0"),
)

_ALNUM = string.ascii_letters + string.digits


def _token(length: int = 13) -> str:
    return "".join(random.choices(_ALNUM, k=length))


@dataclass
class SipDialog:
    """Made-up SIP and media details of one leg, fixed for its life."""

    local_ip: str
    target: DialTarget
    local_media_port: int = field(default_factory=lambda: random.randrange(16384, 32768, 2))
    remote_media_port: int = field(default_factory=lambda: random.randrange(6000, 7000, 2))
    ssrc: int = field(default_factory=lambda: random.getrandbits(32))
    sdp_session: int = field(default_factory=lambda: random.randrange(10**9, 2 * 10**9))
    remote_sdp_session: int = field(default_factory=lambda: random.randrange(10**7, 10**8))
    from_tag: str = field(default_factory=_token)
    to_tag: str = field(default_factory=lambda: f"{random.randrange(10000, 99999)}SIPpTag01")
    branch: str = field(default_factory=lambda: "z9hG4bK" + _token())
    cseq: int = field(default_factory=lambda: random.randrange(10**8, 2 * 10**8))
    call_id: str = field(default_factory=lambda: str(uuid_module.uuid4()))

    @property
    def profile_url(self) -> str:
        return f"sip:mod_sofia@{self.local_ip}:5060"

    @property
    def request_uri(self) -> str:
        target = self.target
        if "@" in target.destination:
            return target.destination
        return f"{target.user}@{target.host_port}"

    def local_sdp(self, codecs: str) -> str:
        payloads = "0 8 101 13" if codecs == "PCMU,PCMA" else "0 101 13"
        lines = [
            "v=0",
            f"o=FreeSWITCH {self.sdp_session} {self.sdp_session + 1} IN IP4 {self.local_ip}",
            "s=FreeSWITCH",
            f"c=IN IP4 {self.local_ip}",
            "t=0 0",
            f"m=audio {self.local_media_port} RTP/AVP {payloads}",
            "a=rtpmap:0 PCMU/8000",
        ]
        if codecs == "PCMU,PCMA":
            lines.append("a=rtpmap:8 PCMA/8000")
        lines += [
            "a=rtpmap:101 telephone-event/8000",
            "a=fmtp:101 0-15",
            "a=rtpmap:13 CN/8000",
            "a=ptime:20",
            "a=sendrecv",
        ]
        return "\r\n".join(lines) + "\r\n"

    def remote_sdp(self) -> str:
        host = self.target.host if self.target.host[0].isdigit() else "127.0.0.1"
        return (
            "\r\n".join(
                [
                    "v=0",
                    f"o=user1 {self.remote_sdp_session} {self.remote_sdp_session * 44 % 10**10} IN IP4 "
                    f"{host}",
                    "s=-",
                    f"c=IN IP4 {host}",
                    "t=0 0",
                    f"m=audio {self.remote_media_port} RTP/AVP 0",
                    "a=rtpmap:0 PCMU/8000",
                ]
            )
            + "\r\n"
        )


def leg_create(
    channel: Channel,
    dialog: SipDialog,
    session_id: int,
    dial_variables: dict[str, str],
    originator: Channel | None = None,
) -> None:
    """The variables of CHANNEL_CREATE: the A leg's, or the &bridge leg's when ``originator``."""
    target = dialog.target
    v = channel.variables
    v.set("direction", "outbound")
    v.set("is_outbound", "true")
    v.set("uuid", channel.uuid)
    if originator is None:
        v.set("call_uuid", channel.uuid)
    v.set("session_id", session_id)
    v.set("sip_local_network_addr", dialog.local_ip)
    v.set("sip_profile_name", target.profile)
    if originator is None:
        v.set("video_media_flow", "disabled")
    v.set("text_media_flow", "disabled")
    v.set("channel_name", channel.name)
    v.set("sip_destination_url", f"sip:{dialog.request_uri}")
    codecs = "PCMU,PCMA"
    if originator is not None:
        codecs = "PCMU@8000h@20i"
        v.set("max_forwards", "70")
        v.set("originator_codec", "PCMU@8000h@20i")
        v.set("originator", originator.uuid)
        v.set("signal_bond", originator.uuid)
        v.set("switch_m_sdp", originator.variables.get("switch_r_sdp", ""))
        v.set("call_uuid", originator.uuid)
    v.update(dial_variables)
    if originator is not None:
        for name, value in inherited_variables(originator.variables):
            if name not in dial_variables:
                v.set(name, value)
    early_ok = EarlyMedia.of(v.get).counts_as_answer
    v.set("originate_early_media", "true" if early_ok else "false")
    if originator is not None:
        v.set("originating_leg_uuid", originator.uuid)
    v.set("originate_endpoint", "sofia")
    v.set("rtp_use_codec_string", codecs)
    v.set("local_media_ip", dialog.local_ip)
    v.set("local_media_port", dialog.local_media_port)
    v.set("advertised_media_ip", dialog.local_ip)
    v.set("audio_media_flow", "sendrecv")
    if originator is not None:
        v.set("video_media_flow", "inactive")
    v.set("rtp_local_sdp_str", dialog.local_sdp(codecs))
    v.set("sip_outgoing_contact_uri", f"<{dialog.profile_url}>")
    v.set("sip_req_uri", dialog.request_uri)
    v.set("sip_to_host", target.host_port)
    v.set("sip_from_host", dialog.local_ip)
    v.set("sofia_profile_name", target.profile)
    v.set("recovery_profile_name", target.profile)
    v.set("sofia_profile_url", dialog.profile_url)


def inherited_variables(a_vars: Variables) -> list[tuple[str, str]]:
    exported = {name.strip() for name in (a_vars.get("export_vars") or "").split(",") if name}
    return [
        (name, value)
        for name, value in a_vars.items()
        if name in INHERITED_VARIABLES or name.startswith(INHERITED_PREFIXES) or name in exported
    ]


def _response_source(v: Variables, dialog: SipDialog) -> None:
    target = dialog.target
    v.touch("sip_local_network_addr")
    v.set("sip_reply_host", target.host)
    v.set("sip_reply_port", target.port)
    v.set("sip_network_ip", target.host)
    v.set("sip_network_port", target.port)


def provisional_response(channel: Channel, dialog: SipDialog) -> None:
    """The first response with a dialog (180/183/200): sofia records the SIP headers."""
    v = channel.variables
    if "sip_call_id" in v:
        return
    target = dialog.target
    caller = channel.caller
    _response_source(v, dialog)
    v.set("sip_recover_contact", f"<sip:{target.host_port};transport=UDP>")
    via = f"SIP/2.0/UDP {dialog.local_ip};rport;branch={dialog.branch}"
    v.set("sip_full_via", via)
    v.set("sip_recover_via", via)
    from_uri = f"{caller.caller_id_number}@{dialog.local_ip}"
    if caller.caller_id_name:
        v.set("sip_from_display", caller.caller_id_name)
        v.set("sip_full_from", f'"{caller.caller_id_name}" <sip:{from_uri}>;tag={dialog.from_tag}')
    else:
        v.set("sip_full_from", f"<sip:{from_uri}>;tag={dialog.from_tag}")
    v.set("sip_full_to", f"<sip:{dialog.request_uri}>;tag={dialog.to_tag}")
    v.set("sip_from_user", caller.caller_id_number)
    v.set("sip_from_uri", from_uri)
    v.touch("sip_from_host")
    v.set("sip_to_user", target.user)
    v.set("sip_to_port", target.port)
    v.set("sip_to_uri", f"{target.user}@{target.host_port}")
    v.set("sip_to_host", target.host)
    v.set("sip_contact_params", "transport=UDP")
    v.set("sip_contact_user", "nobody")
    v.set("sip_contact_port", target.port)
    v.set("sip_contact_uri", f"nobody@{target.host_port}")
    v.set("sip_contact_host", target.host)
    v.set("sip_to_tag", dialog.to_tag)
    v.set("sip_from_tag", dialog.from_tag)
    v.set("sip_cseq", dialog.cseq)
    v.set("sip_call_id", dialog.call_id)
    channel.caller.network_addr = target.host


def media_up(channel: Channel, dialog: SipDialog) -> None:
    """The 200 OK (or a 183 with SDP): the remote SDP is negotiated, RTP starts."""
    v = channel.variables
    provisional_response(channel, dialog)
    if "switch_r_sdp" in v:
        return
    v.set("switch_r_sdp", dialog.remote_sdp())
    v.set("ep_codec_string", "CORE_PCM_MODULE.PCMU@8000h@20i@64000b")
    v.touch("rtp_use_codec_string")
    v.set("remote_video_media_flow", "inactive")
    v.set("remote_text_media_flow", "inactive")
    v.set("remote_audio_media_flow", "sendrecv")
    v.set("rtp_audio_recv_pt", "0")
    v.set("rtp_use_codec_name", "PCMU")
    v.set("rtp_use_codec_rate", "8000")
    v.set("rtp_use_codec_ptime", "20")
    v.set("rtp_use_codec_channels", "1")
    v.set("rtp_last_audio_codec_string", "PCMU@8000h@20i@1c")
    v.set("read_codec", "PCMU")
    v.set("original_read_codec", "PCMU")
    v.set("read_rate", "8000")
    v.set("original_read_rate", "8000")
    v.set("write_codec", "PCMU")
    v.set("write_rate", "8000")
    v.set("dtmf_type", "info")
    v.touch("local_media_ip")
    v.touch("local_media_port")
    v.touch("advertised_media_ip")
    v.set("rtp_use_timer_name", "soft")
    v.set("rtp_use_pt", "0")
    v.set("rtp_use_ssrc", dialog.ssrc)
    remote = dialog.target.host if dialog.target.host[0].isdigit() else "127.0.0.1"
    v.set("remote_media_ip", remote)
    v.set("remote_media_port", dialog.remote_media_port)
    channel.has_media = True


def refused(channel: Channel, dialog: SipDialog, status: int, cause: str) -> None:
    """A final error response to the INVITE (486, 503, 603, ...)."""
    v = channel.variables
    if "sip_call_id" not in v:
        v.set("sip_call_id", dialog.call_id)
    _response_source(v, dialog)
    phrase = sip_reason_phrase(status)
    v.set("sip_hangup_disposition", "recv_refuse")
    v.set("sip_invite_failure_status", status)
    v.set("sip_invite_failure_phrase", phrase)
    v.set("sip_term_status", status)
    v.set("proto_specific_hangup_cause", f"sip:{status}")
    v.set("sip_term_cause", q850(cause))
    if channel.caller.network_addr == "":
        channel.caller.network_addr = dialog.target.host


def bye_received(channel: Channel, cause: str) -> None:
    """The far end sent BYE; we answered 200."""
    v = channel.variables
    v.set("sip_term_status", "200")
    v.set("proto_specific_hangup_cause", "sip:200")
    v.set("sip_term_cause", q850(cause))


def application_started(channel: Channel, application: str, arguments: str) -> None:
    """The originated A leg runs its app (&bridge, &park): the caller id flips to the callee."""
    v = channel.variables
    caller = channel.caller
    # endpoint_disposition was set when the leg answered (or "EARLY MEDIA" on its 183).
    v.set("pre_transfer_caller_id_number", caller.caller_id_number)
    v.set("channel_cid_flipped", "yes")
    v.touch("call_uuid")
    if arguments:
        v.set("current_application_data", arguments)
    v.set("current_application", application)
    flipped_name = caller.callee_id_name
    flipped_number = caller.callee_id_number
    caller.callee_id_name = caller.caller_id_name
    caller.callee_id_number = caller.caller_id_number
    caller.caller_id_name = flipped_name
    caller.caller_id_number = flipped_number
    channel.hit_dialplan = True
    channel.state = "CS_EXECUTE"
    channel.state_number = 4


def bridge_leg_created(a: Channel, b: Channel) -> None:
    a.variables.set("originate_signal_bond", b.uuid)
    a.variables.set(
        "originated_legs", f"{b.uuid};{b.caller.callee_id_name};{b.caller.callee_id_number}"
    )


def bridge_leg_answered(a: Channel, b: Channel) -> None:
    """The originate of B succeeded (it answered): A records the outcome."""
    va = a.variables
    va.unset("originate_signal_bond")
    va.set("switch_m_sdp", b.variables.get("switch_r_sdp", ""))
    va.set("video_media_flow", "inactive")
    va.set("text_media_flow", "inactive")
    va.touch("audio_media_flow")
    va.set("originate_disposition", "SUCCESS")
    va.set("DIALSTATUS", "SUCCESS")
    va.set("originate_causes", f"{b.uuid};NONE")
    va.set("signal_bond", b.uuid)
    b.variables.touch("call_uuid")


def bridge_leg_failed(a: Channel, b: Channel | None, cause: str) -> None:
    """The originate of B failed: A keeps B's outcome in its variables."""
    va = a.variables
    if b is not None:
        vb = b.variables
        status = vb.get("sip_invite_failure_status")
        if vb.get("sip_hangup_disposition") == "recv_refuse" and status:
            va.set("sip_invite_failure_status", status)
            va.set("sip_invite_failure_phrase", vb.get("sip_invite_failure_phrase"))
            va.set("sip_hangup_phrase", vb.get("sip_invite_failure_phrase"))
            va.set("last_bridge_hangup_cause", cause)
            va.set("last_bridge_proto_specific_hangup_cause", f"sip:{status}")
        else:
            va.set("last_bridge_hangup_cause", cause)
    va.set("originate_disposition", cause)
    va.set("DIALSTATUS", dialstatus(cause))
    if b is not None:
        va.set("originate_causes", f"{b.uuid};{cause}")
    va.set("originate_failed_cause", cause)


def bridged(a: Channel, b: Channel) -> None:
    """switch_ivr_multi_threaded_bridge: each leg points at the other."""
    for me, peer in ((b, a), (a, b)):
        v = me.variables
        v.set("bridge_to", peer.uuid)
        v.set("last_bridge_to", peer.uuid)
        v.set("bridge_channel", peer.name)
        v.set("bridge_uuid", peer.uuid)
        v.touch("signal_bond")
        # What was sent to this leg as the other party: A's flipped caller id, B's callee id.
        if me is b:
            v.set("last_sent_callee_id_name", peer.caller.caller_id_name)
            v.set("last_sent_callee_id_number", peer.caller.caller_id_number)
        else:
            v.set("last_sent_callee_id_name", peer.caller.callee_id_name)
            v.set("last_sent_callee_id_number", peer.caller.callee_id_number)


def unbridged_by_peer(me: Channel, peer: Channel) -> None:
    """The bridge ended because ``peer`` hung up; ``me`` records how."""
    v = me.variables
    v.unset("bridge_to")
    peer_vars = peer.variables
    if peer_vars.get("sip_hangup_disposition") == "recv_bye":
        v.set("sip_hangup_phrase", "OK")  # the 200 OK our side sent to the peer's BYE
    v.set("last_bridge_hangup_cause", peer.hangup_cause)
    proto = peer_vars.get("proto_specific_hangup_cause")
    if proto:
        v.set("last_bridge_proto_specific_hangup_cause", proto)


def hangup_timestamps(
    channel: Channel, cause: str, last_app: str | None, last_arg: str | None, ended_us: int
) -> None:
    """switch_channel_set_timestamps and friends, at CS_REPORTING, before HANGUP_COMPLETE."""
    v = channel.variables
    times = channel.caller.times
    v.set("hangup_cause", cause)
    v.set("hangup_cause_q850", q850(cause))
    v.set("digits_dialed", "none")
    start = times.created
    stamps = [
        ("start_stamp", start),
        ("profile_start_stamp", times.profile_created),
        ("answer_stamp", times.answered),
        ("bridge_stamp", times.bridged),
        ("progress_stamp", times.progress),
        ("progress_media_stamp", times.progress_media),
        ("end_stamp", ended_us),
    ]
    for name, micros in stamps:
        if micros:
            v.set(name, _local_stamp(micros))
    for name, micros in (
        ("start", start),
        ("profile_start", times.profile_created),
        ("answer", times.answered),
        ("bridge", times.bridged),
        ("last_hold", 0),
    ):
        v.set(f"{name}_epoch", micros // 1_000_000)
        v.set(f"{name}_uepoch", micros)
    v.set("hold_accum_seconds", "0")
    v.set("hold_accum_usec", "0")
    v.set("hold_accum_ms", "0")
    for name, micros in (
        ("resurrect", 0),
        ("progress", times.progress),
        ("progress_media", times.progress_media),
        ("end", ended_us),
    ):
        v.set(f"{name}_epoch", micros // 1_000_000)
        v.set(f"{name}_uepoch", micros)
    if last_app:
        v.set("last_app", last_app)
        if last_arg:
            v.set("last_arg", last_arg)
    caller = channel.caller
    if caller.caller_id_name:
        v.set("caller_id", f'"{caller.caller_id_name}" <{caller.caller_id_number}>')
    else:
        v.set("caller_id", caller.caller_id_number)

    def since(micros: int) -> int:
        return ended_us - micros if micros else 0

    def after_start(micros: int) -> int:
        return micros - start if micros else 0

    answered = times.answered
    usec = {
        "duration": ended_us - start,
        "billsec": since(answered),
        "progresssec": after_start(times.progress),
        "answersec": after_start(answered),
        "waitsec": after_start(times.bridged),
        "progress_mediasec": after_start(times.progress_media),
        "flow_billsec": ended_us - start if answered else 0,
    }
    # Whole seconds are differences of truncated epoch seconds, not rounded microseconds.
    seconds = {
        "duration": ended_us // 1_000_000 - start // 1_000_000,
        "billsec": ended_us // 1_000_000 - answered // 1_000_000 if answered else 0,
        "progresssec": _sec_diff(times.progress, start),
        "answersec": _sec_diff(answered, start),
        "waitsec": _sec_diff(times.bridged, start),
        "progress_mediasec": _sec_diff(times.progress_media, start),
        "flow_billsec": ended_us // 1_000_000 - start // 1_000_000 if answered else 0,
    }
    for name, value in seconds.items():
        v.set(name, value)
    for name, value in usec.items():
        v.set(_unit_name(name, "m"), value // 1000)
    for name, value in usec.items():
        v.set(_unit_name(name, "u"), value)


def _sec_diff(micros: int, start: int) -> int:
    return micros // 1_000_000 - start // 1_000_000 if micros else 0


def _unit_name(name: str, unit: str) -> str:
    # duration -> mduration; billsec -> billmsec; flow_billsec -> flow_billmsec
    if name == "duration":
        return f"{unit}duration"
    return name[: -len("sec")] + f"{unit}sec"


def _local_stamp(micros: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(micros / 1_000_000))


def rtp_stats(channel: Channel, media_us: int) -> None:
    v = channel.variables
    for name, value in RTP_STATS:
        v.set(name, value if value is not None else max(0, media_us // 20_000))
