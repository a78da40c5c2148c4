"""c2c.channel_values: what a tone, a sound file or a display name may hold to go into an
originate's ``{}``, and how it is written there (the recordings' ``\\,``, quotes for spaces)."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from c2c.channel_values import (
    MAX_MEDIA_LENGTH,
    MAX_NAME_LENGTH,
    check_display_name,
    check_for_bridge,
    check_media,
    in_braces,
)

GOOD_MEDIA = [
    "%(2000,4000,440,480)",
    "%(400,200,400,450);%(400,2000,400,450)",
    "%(1000,4000,425)",
    "tone_stream://%(500,500,440);loops=10",
    "tone_stream://%(1000,4000,425);loops=-1",
    "tone_stream://v=-7;%(100,0,941.0,1477.0)",
    "tone_stream://L=3;%(251,0,1004)",
    "tone_stream://1234*#",
    "local_stream://moh",
    "local_stream://default_8000",
    "/usr/share/freeswitch/sounds/c2c/press-1.wav",
    "/var/lib/c2c/ring_back+uk.v2.wav",
    "c2c/press-1.wav",
    "press-1.wav",
    "/" + "x" * (MAX_MEDIA_LENGTH - 5) + ".wav",
]

# (value, a word the error message must contain)
BAD_MEDIA = [
    ("", "empty"),
    ("/" + "x" * MAX_MEDIA_LENGTH, "longer"),
    ("/tmp/a file.wav", "space"),
    ("/tmp/it's.wav", "quote"),
    ('/tmp/"x".wav', "double quote"),
    ("/tmp/x\\,y.wav", "backslash"),
    ("/tmp/{x}.wav", "brace"),
    ("/tmp/x}.wav", "brace"),
    ("/tmp/[x].wav", "bracket"),
    ("/tmp/<x>.wav", "enterprise"),
    ("${sounds_dir}/x.wav", "$"),
    ("$${sounds_dir}/x.wav", "$"),
    ("/tmp/x.wav|/tmp/y.wav", "failover"),
    ("/tmp/x.wav,c2c_call_id=evil", "comma"),
    ("/tmp/x(1).wav", "&bridge"),
    ("/tmp/x:_:y.wav", "enterprise"),
    ("/tmp/^^;x.wav", "separator"),
    ("/tmp/x=y.wav", "'='"),
    ("/tmp/100%.wav", "tones"),
    ("/tmp/x.wav\n", "printable ASCII"),
    ("/tmp/x.wav\r", "printable ASCII"),
    ("/tmp/\x00.wav", "printable ASCII"),
    ("/tmp/é.wav", "printable ASCII"),
    ("/tmp/x.wav\u202e", "printable ASCII"),
    ("/tmp//x.wav", "empty segment"),
    ("/tmp/x/", "empty segment"),
    ("/", "empty segment"),
    ("ring", "extension"),
    ("of", "extension"),
    ("/srv/ringback", "extension"),
    ("/srv/ringback.", "extension"),
    ("/srv/.wav", "extension"),
    ("/srv/ring.wav.d/ring", "extension"),
    ("/srv/ring.toolongext", "extension"),
    ("%(2000,4000,440,480)}sofia/gateway/evil/1", "brace"),
    ("%(2000,4000,440,480) &park", "space"),
    ("%(1,2,3", "open"),
    ("%(1,2,3))", "never opened"),
    ("%(1,(2),3)", "nests"),
    ("%(1,2,3);${x}", "$"),
    ("%(1,2,3)|x", "failover"),
    ("tone_stream://", "no tone"),
    ("tone_stream://%(1,2,3);>=2", "enterprise"),
    ("tone_stream://%(1,2,3):_:x", "enterprise"),
    ("tone_stream://%(1,2,3)\\,x", "backslash"),
    ("tone_stream://%(1,2,3)'", "quote"),
    ("tone_stream://%(1,2,3) ", "space"),
    ("tone_stream://%(1,2,3)}{", "brace"),
    ("local_stream://", "no stream"),
    ("local_stream://moh/../etc", "not one of the characters"),
    ("local_stream://m o h", "space"),
    ("http://example.com/x.wav", "only tone_stream"),
    ("shout://example.com/x.mp3", "only tone_stream"),
    ("file_string://a.wav!b.wav", "only tone_stream"),
    ("say:hello", "enterprise"),
    ("phrase:voicemail", "enterprise"),
]


@pytest.mark.parametrize("value", GOOD_MEDIA)
def test_good_media_pass_unchanged(value):
    assert check_media(value) == value


@pytest.mark.parametrize(("value", "why"), BAD_MEDIA)
def test_bad_media_are_refused_with_a_reason(value, why):
    with pytest.raises(ValueError, match=None) as caught:
        check_media(value)
    assert why in str(caught.value), (value, str(caught.value))


@pytest.mark.parametrize("value", [None, 42, b"/tmp/x.wav", ["x"]])
def test_media_must_be_text(value):
    with pytest.raises(ValueError, match="not text"):
        check_media(value)


GOOD_NAMES = [
    "Acme",
    "Acme Sales",
    "Acme Sales Line 2",
    "A&B Ltd.",
    "Dr. Who #1",
    "sales@acme.example",
    "+442071234567",
    "Call back? Yes!",
    "24/7 Support",
    "x*y_z-w",
    "x" * MAX_NAME_LENGTH,
]

BAD_NAMES = [
    ("", "empty"),
    ("x" * (MAX_NAME_LENGTH + 1), "longer"),
    (" Acme", "ends"),
    ("Acme ", "ends"),
    ("Acme  Sales", "two in a row"),
    ("O'Brien", "quote"),
    ('Say "hi"', "double quote"),
    ("Acme, Inc", "comma"),
    ("Acme (Sales)", "&bridge"),
    ("Acme)", "&bridge"),
    ("{x=1}", "brace"),
    ("[x=1]", "bracket"),
    ("<x=1>", "enterprise"),
    ("${system(id)}", "$"),
    ("$${sounds_dir}", "$"),
    ("a|b", "failover"),
    ("back\\slash", "backslash"),
    ("a:_:b", "enterprise"),
    ("a:b", "enterprise"),
    ("x=1", "'='"),
    ("^^;a=1", "separator"),
    ("50%", "tones"),
    ("Acme\tSales", "printable ASCII"),
    ("Acme\nbgapi hupall", "printable ASCII"),
    ("Müller", "printable ASCII"),
    ("Acme\u00a0Sales", "printable ASCII"),
    ("~tilde", "not one of the characters"),
    ("back`tick", "not one of the characters"),
]


@pytest.mark.parametrize("name", GOOD_NAMES)
def test_good_names_pass_unchanged(name):
    assert check_display_name(name) == name
    assert check_for_bridge(name) == name


@pytest.mark.parametrize(("name", "why"), BAD_NAMES)
def test_bad_names_are_refused_with_a_reason(name, why):
    with pytest.raises(ValueError) as caught:
        check_display_name(name)
    assert why in str(caught.value), (name, str(caught.value))


@pytest.mark.parametrize("name", [None, 42, b"Acme"])
def test_names_must_be_text(name):
    with pytest.raises(ValueError, match="not text"):
        check_display_name(name)


def test_every_printable_ascii_character_is_judged_for_names():
    allowed = set(string.ascii_letters + string.digits + " .&@#*!?/+_-")
    for char in map(chr, range(0x20, 0x7F)):
        value = f"a{char}b"
        if char in allowed:
            assert check_display_name(value) == value
        else:
            with pytest.raises(ValueError):
                check_display_name(value)


def test_every_printable_ascii_character_is_judged_for_files_and_tones():
    file_chars = set(string.ascii_letters + string.digits + "_+.-/")
    tone_chars = set(string.ascii_letters + string.digits + "%(),;=.+*#-")
    for char in map(chr, range(0x20, 0x7F)):
        path = f"/a{char}b.wav"
        if char in file_chars and char != "/":
            assert check_media(path) == path
        elif char != "/":
            with pytest.raises(ValueError):
                check_media(path)
        tone = f"tone_stream://%(1,2,3);a{char}b"
        if char in tone_chars and char not in "()":
            assert check_media(tone) == tone
        else:
            with pytest.raises(ValueError):
                check_media(tone)


def test_the_bridge_check_refuses_parentheses_only():
    assert (
        check_for_bridge("sched_hangup +5 ALLOTTED_TIMEOUT") == "sched_hangup +5 ALLOTTED_TIMEOUT"
    )
    for value in ("%(1,2,3)", "a(", "a)"):
        with pytest.raises(ValueError, match="first"):
            check_for_bridge(value)


@pytest.mark.parametrize(
    ("value", "written"),
    [
        # recording 16, byte for byte
        ("%(2000,4000,440,480)", "%(2000\\,4000\\,440\\,480)"),
        (
            "%(400,200,400,450);%(400,2000,400,450)",
            "%(400\\,200\\,400\\,450);%(400\\,2000\\,400\\,450)",
        ),
        # recording 19
        ("tone_stream://%(500,500,440);loops=10", "tone_stream://%(500\\,500\\,440);loops=10"),
        (
            "/usr/share/freeswitch/sounds/c2c/press-1.wav",
            "/usr/share/freeswitch/sounds/c2c/press-1.wav",
        ),
        ("Acme", "Acme"),
        ("Acme Sales", "'Acme Sales'"),
        ("+442071234567", "+442071234567"),
    ],
)
def test_in_braces_writes_what_the_recordings_wrote(value, written):
    assert in_braces(value) == written


@pytest.mark.parametrize("value", ["it's", "back\\slash"])
def test_in_braces_will_not_write_quotes_or_backslashes(value):
    with pytest.raises(ValueError):
        in_braces(value)


@given(st.text(max_size=40))
def test_any_text_is_a_refused_name_or_one_that_is_safe_everywhere(text):
    try:
        name = check_display_name(text)
    except ValueError:
        return
    assert name == text and text.isascii() and text.isprintable()
    assert not set(text) & set("'\",(){}[]<>$|\\^:=%")
    assert text == text.strip() and "  " not in text and 0 < len(text) <= MAX_NAME_LENGTH


@given(st.text(max_size=60))
def test_any_text_is_refused_media_or_media_safe_in_the_callers_braces(text):
    try:
        value = check_media(text)
    except ValueError:
        return
    assert value == text and text.isascii() and text.isprintable()
    assert not set(text) & set(" '\"{}[]<>$|\\^")
    assert ":_:" not in text
    written = in_braces(text)
    assert "," not in written.replace("\\,", "")  # every comma escaped
    assert written.replace("\\,", ",") == text
