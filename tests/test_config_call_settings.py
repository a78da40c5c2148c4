"""The settings of ringback, press 1 and caller ID (c2c.config): defaults, accepted values, and a
start-up error naming the setting for every value that must not reach a dial string."""

from __future__ import annotations

import pytest

from c2c.config import Config, describe
from c2c.errors import ConfigError


def config(**env: str) -> Config:
    return Config.from_env(env)


def test_defaults():
    c = config()
    assert c.ringback == "auto"
    assert c.confirm == "off"
    assert c.confirm_prompt == ""
    assert c.confirm_timeout == 10
    assert c.caller_id_format == "e164"
    assert c.caller_id_name == ""
    assert c.caller_id_for_caller == ""
    assert c.caller_id_policy == "any"


def test_every_new_setting_is_described():
    text = describe()
    for name in (
        "C2C_RINGBACK",
        "C2C_CONFIRM",
        "C2C_CONFIRM_PROMPT",
        "C2C_CONFIRM_TIMEOUT",
        "C2C_CALLER_ID_FORMAT",
        "C2C_CALLER_ID_NAME",
        "C2C_CALLER_ID_FOR_CALLER",
        "C2C_CALLER_ID_POLICY",
    ):
        assert name in text


@pytest.mark.parametrize(
    ("env", "field", "value"),
    [
        ({"C2C_RINGBACK": "off"}, "ringback", "off"),
        ({"C2C_RINGBACK": " AUTO "}, "ringback", "auto"),
        ({"C2C_RINGBACK": "%(1000,4000,425)"}, "ringback", "%(1000,4000,425)"),
        (
            {"C2C_RINGBACK": "tone_stream://%(1000,4000,425);loops=-1"},
            "ringback",
            "tone_stream://%(1000,4000,425);loops=-1",
        ),
        ({"C2C_RINGBACK": "local_stream://moh"}, "ringback", "local_stream://moh"),
        ({"C2C_RINGBACK": "/srv/ring.wav"}, "ringback", "/srv/ring.wav"),
        ({"C2C_CONFIRM": "key"}, "confirm", "key"),
        ({"C2C_CONFIRM": "KEY"}, "confirm", "key"),
        (
            {"C2C_CONFIRM_PROMPT": "/usr/share/freeswitch/sounds/c2c/press-1.wav"},
            "confirm_prompt",
            "/usr/share/freeswitch/sounds/c2c/press-1.wav",
        ),
        (
            {"C2C_CONFIRM_PROMPT": "tone_stream://%(500,500,440);loops=20"},
            "confirm_prompt",
            "tone_stream://%(500,500,440);loops=20",
        ),
        ({"C2C_CONFIRM_TIMEOUT": "3"}, "confirm_timeout", 3),
        ({"C2C_CONFIRM_TIMEOUT": "60"}, "confirm_timeout", 60),
        ({"C2C_CALLER_ID_FORMAT": "digits"}, "caller_id_format", "digits"),
        ({"C2C_CALLER_ID_FORMAT": "National"}, "caller_id_format", "national"),
        ({"C2C_CALLER_ID_NAME": "Acme Sales"}, "caller_id_name", "Acme Sales"),
        ({"C2C_CALLER_ID_NAME": "  Acme Sales  "}, "caller_id_name", "Acme Sales"),
        ({"C2C_CALLER_ID_FOR_CALLER": "8005550100"}, "caller_id_for_caller", "8005550100"),
        ({"C2C_CALLER_ID_FOR_CALLER": "+18005550100"}, "caller_id_for_caller", "+18005550100"),
        ({"C2C_CALLER_ID_FOR_CALLER": "+442079460000"}, "caller_id_for_caller", "+442079460000"),
        ({"C2C_CALLER_ID_POLICY": "own"}, "caller_id_policy", "own"),
    ],
)
def test_accepted_values(env, field, value):
    assert getattr(config(**env), field) == value


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("C2C_RINGBACK", "ring"),
        ("C2C_RINGBACK", "%(2000,4000,440,480)}sofia/gateway/evil/1"),
        ("C2C_RINGBACK", "%(2000,4000,440,480) &park"),
        ("C2C_RINGBACK", "/srv/my ring.wav"),
        ("C2C_RINGBACK", "/srv/ring.wav|/srv/other.wav"),
        ("C2C_RINGBACK", "$${sounds_dir}/ring.wav"),
        ("C2C_RINGBACK", "/srv/it's.wav"),
        ("C2C_RINGBACK", "http://example.com/ring.wav"),
        ("C2C_RINGBACK", "%(1,2,3"),
        ("C2C_CONFIRM", "on"),
        ("C2C_CONFIRM", "dtmf"),
        ("C2C_CONFIRM_PROMPT", "/srv/press 1.wav"),
        ("C2C_CONFIRM_PROMPT", "/srv/{press}.wav"),
        ("C2C_CONFIRM_PROMPT", "${prompt}"),
        ("C2C_CONFIRM_PROMPT", "tone_stream://%(500,500,440);loops=10,x=1}"),
        ("C2C_CONFIRM_PROMPT", "/srv/press-1.wav\\"),
        ("C2C_CONFIRM_PROMPT", '"/srv/press-1.wav"'),
        ("C2C_CONFIRM_PROMPT", "/" + "p" * 600),
        ("C2C_CONFIRM_TIMEOUT", "2"),
        ("C2C_CONFIRM_TIMEOUT", "61"),
        ("C2C_CONFIRM_TIMEOUT", "ten"),
        ("C2C_CALLER_ID_FORMAT", "+e164"),
        ("C2C_CALLER_ID_NAME", "O'Brien & Co"),
        ("C2C_CALLER_ID_NAME", "Acme, Inc"),
        ("C2C_CALLER_ID_NAME", "Acme (Sales)"),
        ("C2C_CALLER_ID_NAME", "{Acme}"),
        ("C2C_CALLER_ID_NAME", "$${x}"),
        ("C2C_CALLER_ID_NAME", "a|b"),
        ("C2C_CALLER_ID_NAME", "back\\slash"),
        ("C2C_CALLER_ID_NAME", "Acme  Sales"),
        ("C2C_CALLER_ID_NAME", "Müller"),
        ("C2C_CALLER_ID_NAME", "x" * 51),
        ("C2C_CALLER_ID_FOR_CALLER", "555"),
        ("C2C_CALLER_ID_FOR_CALLER", "1" * 16),
        ("C2C_CALLER_ID_FOR_CALLER", "+1 800 555 0100"),
        ("C2C_CALLER_ID_FOR_CALLER", "+0123456"),
        ("C2C_CALLER_ID_FOR_CALLER", "800-555-0100"),
        ("C2C_CALLER_ID_FOR_CALLER", "8005550100,x=1"),
        ("C2C_CALLER_ID_POLICY", "strict"),
    ],
)
def test_refused_at_start_up_naming_the_setting(name, value):
    with pytest.raises(ConfigError) as caught:
        config(**{name: value})
    assert str(caught.value).startswith(f"{name}="), str(caught.value)


def test_a_config_file_is_held_to_the_same_rules(tmp_path):
    path = tmp_path / "c2c.conf"
    path.write_text("C2C_RINGBACK=/srv/my ring.wav\n")
    with pytest.raises(ConfigError, match="C2C_RINGBACK"):
        Config.from_env({"C2C_CONFIG_FILE": str(path)})
    path.write_text("C2C_CALLER_ID_NAME=Acme Sales\nC2C_CONFIRM=key\n")
    c = Config.from_env({"C2C_CONFIG_FILE": str(path)})
    assert (c.caller_id_name, c.confirm) == ("Acme Sales", "key")
