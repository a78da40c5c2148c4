"""Routes (c2c.calls.routes, C2C_ROUTES_FILE): the file's grammar, an error naming its line for
every way a file can be wrong, the longest-prefix choice, and the failover list each leg gets."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from c2c.api.metrics import Metrics
from c2c.calls.originate import FAILOVER_VALUE, FAILOVER_VARIABLE, build_originate
from c2c.calls.routes import (
    DEFAULT_ROUTE,
    Route,
    RouteTable,
    check_template,
    parse_routes,
    parse_templates,
    read_routes_file,
)
from c2c.config import Config
from c2c.errors import ConfigError
from c2c.numbers import PhoneNumber
from tests.support.originate_model import parse_originate
from tests.test_originate import SPEC

EXAMPLE = Path(__file__).resolve().parent.parent / "scripts" / "routes.example"


def write(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "routes"
    if isinstance(text, str):
        path.write_text(text, encoding="utf-8")
    else:
        path.write_bytes(text)
    return str(path)


# --- the file ------------------------------------------------------------------------------------


def test_a_file_with_comments_blank_lines_tabs_and_spaces_around_bars(tmp_path):
    path = write(
        tmp_path,
        "# routes for the lab\n"
        "\n"
        "1      sofia/gateway/nanp/{e164}\n"
        "1212\tsofia/gateway/nyc/{e164} | sofia/gateway/nanp/{e164}   # NYC first\n"
        "   \n"
        "44     sofia/gateway/uk_a/{e164}|sofia/gateway/uk_b/00{country_code}{number}\n"
        "447    sofia/gateway/uk_mobile/{number}@mobile.example.net;transport=tcp\n",
    )
    assert read_routes_file(path) == (
        Route("1", ("sofia/gateway/nanp/{e164}",)),
        Route("1212", ("sofia/gateway/nyc/{e164}", "sofia/gateway/nanp/{e164}")),
        Route("44", ("sofia/gateway/uk_a/{e164}", "sofia/gateway/uk_b/00{country_code}{number}")),
        Route("447", ("sofia/gateway/uk_mobile/{number}@mobile.example.net;transport=tcp",)),
    )


def test_crlf_lines_and_a_byte_order_mark_are_read(tmp_path):
    path = write(
        tmp_path, b"\xef\xbb\xbf44 sofia/gateway/uk/{e164}\r\n33 sofia/gateway/fr/{e164}\r\n"
    )
    assert [r.name for r in read_routes_file(path)] == ["44", "33"]


def test_blank_setting_and_empty_file_mean_no_routes(tmp_path):
    assert read_routes_file("") == ()
    assert read_routes_file("   ") == ()
    assert read_routes_file(write(tmp_path, "# nothing yet\n\n")) == ()
    assert Config.from_env({}).routes == ()


def test_the_shipped_example_is_valid():
    routes = read_routes_file(str(EXAMPLE))
    assert routes and all(route.templates for route in routes)


BAD_LINES = [
    ("44", "expected PREFIX TEMPLATE"),
    ("+44 sofia/gateway/uk/{e164}", "without '+'"),
    ("4a sofia/gateway/uk/{e164}", "is not E.164 digits"),
    ("default sofia/gateway/uk/{e164}", "is not E.164 digits"),
    ("٤٤ sofia/gateway/uk/{e164}", "is not E.164 digits"),  # Arabic-Indic digits
    ("044 sofia/gateway/uk/{e164}", "no E.164 number starts with 0"),
    ("1234567890123456 sofia/gateway/x/{e164}", "longer than 15 digits"),
    ("44 sofia/gateway/uk/{national}", "unknown placeholder {national}"),
    ("44 sofia/gateway/uk/{e164}|sofia/gateway/b/{cc}", "template 2 'sofia/gateway/b/{cc}'"),
    ("44 sofia/gateway/uk/{number:>12}", "no format spec"),
    ("44 sofia/gateway/uk/{number!r}", "no format spec"),
    ("44 sofia/gateway/uk/+{country_code}", "must contain {number} or {e164}"),
    ("44 sofia/gateway/uk/{e164}|", "template 2 '': empty template"),
    ("44 |sofia/gateway/uk/{e164}", "template 1 '': empty template"),
    ("44 sofia/gateway/a/{e164}||sofia/gateway/b/{e164}", "empty template"),
    ("44 sofia/gateway/uk/{e164} sofia/gateway/b/{e164}", "a space ends an argument"),
    ("44 sofia/gateway/uk/{e164},sofia/gateway/b/{e164}", "a second leg at the same time"),
    ("44 sofia/gateway/uk/{e164}:_:sofia/gateway/b/{e164}", "enterprise originate"),
    ("44 {{absolute_codec_string=PCMU}}sofia/gateway/uk/{e164}", "braces hold channel variables"),
    ("44 [leg_timeout=5]sofia/gateway/uk/{e164}", "brackets hold per-leg variables"),
    ("44 sofia/gateway/${evil}/{e164}", "unknown placeholder {evil}"),
    ("44 sofia/gateway/$$uk/{e164}", "expands"),
    ("44 sofia/gateway/uk/{e164})", "first ')'"),
    ("44 sofia/gateway/uk/{e164}'", "a quote"),
    ("44 sofia/gateway/uk/{e164}&park", "starts an application"),
    ("44 sofia/gateway/uk/{e164}\\n", "a backslash"),
    ("44 sofia/gateway/uk/{e164", "expected '}'"),
    ("44 sofia/gateway/uk/e164}", "Single '}'"),
    ("44 " + "|".join(["sofia/gateway/uk/{e164}"] * 11), "more than 10 failover templates"),
]


@pytest.mark.parametrize(("line", "message"), BAD_LINES)
def test_every_bad_line_is_refused_naming_its_line(tmp_path, line, message):
    text = "# a comment\n1 sofia/gateway/nanp/{e164}\n\n" + line + "\n33 sofia/gateway/fr/{e164}\n"
    path = write(tmp_path, text)
    with pytest.raises(ValueError) as caught:
        read_routes_file(path)
    assert str(caught.value).startswith("line 4: "), caught.value
    assert message in str(caught.value)
    # At start-up: the setting, the file and the line, and start-up stops.
    with pytest.raises(ConfigError) as config_error:
        Config.from_env({"C2C_ROUTES_FILE": path})
    assert str(config_error.value).startswith(f"C2C_ROUTES_FILE={path!r}: line 4: ")


def test_a_duplicate_prefix_names_both_lines(tmp_path):
    path = write(tmp_path, "44 sofia/gateway/a/{e164}\n# x\n44 sofia/gateway/b/{e164}\n")
    with pytest.raises(ValueError, match=r"^line 3: prefix 44 is already routed on line 1$"):
        read_routes_file(path)


def test_a_line_that_is_not_utf8_is_named(tmp_path):
    path = write(tmp_path, b"44 sofia/gateway/a/{e164}\n33 sofia/gateway/\xe9/{e164}\n")
    with pytest.raises(ConfigError, match=r"line 2: not UTF-8 text"):
        Config.from_env({"C2C_ROUTES_FILE": path})


def test_a_file_that_cannot_be_read_stops_start_up_naming_it(tmp_path):
    missing = str(tmp_path / "nope")
    with pytest.raises(ConfigError) as caught:
        Config.from_env({"C2C_ROUTES_FILE": missing})
    assert str(caught.value) == (
        f"C2C_ROUTES_FILE={missing!r}: cannot read it: No such file or directory"
    )
    with pytest.raises(ConfigError, match="cannot read it"):
        Config.from_env({"C2C_ROUTES_FILE": str(tmp_path)})  # a directory
    if os.geteuid() != 0:  # root reads anything
        locked = write(tmp_path, "44 sofia/gateway/a/{e164}\n")
        os.chmod(locked, 0)
        with pytest.raises(ConfigError, match="cannot read it: Permission denied"):
            Config.from_env({"C2C_ROUTES_FILE": locked})


def test_the_routes_file_may_come_from_the_config_file(tmp_path):
    routes = write(tmp_path, "44 sofia/gateway/uk/{e164}\n")
    config_file = tmp_path / "c2c.env"
    config_file.write_text(f"C2C_ROUTES_FILE={routes}\n")
    assert Config.from_env({"C2C_CONFIG_FILE": str(config_file)}).routes == (
        Route("44", ("sofia/gateway/uk/{e164}",)),
    )


# --- templates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "sofia/gateway/default/+{country_code} {number}",
        "sofia/gateway/a,b/{e164}",
        "sofia/gateway/default/{e164})",
        "sofia/gateway/default/{e164}|sofia/gateway/backup/{e164}",  # one template holds no bar
        "sofia/gateway/default/{e164}:_:sofia/gateway/b/{e164}",
        "{{x=1}}sofia/gateway/default/{e164}",
        "[x=1]sofia/gateway/default/{e164}",
        "sofia/gateway/default/{number.__class__}",
        "sofia/gateway/default/{number[0]}",
        "sofia/gateway/default/{number:>20}",
        "sofia/gateway/default/{0}",
        "sofia/gateway/default/{}",
        "sofia/gateway/default/{unknown}",
        "sofia/gateway/default/{e164}'",
        "sofia/gateway/$${default_gw}/{e164}",
        "sofia/gateway/default/{e164}&x",
        "sofia/gateway/default/{e164}\n\nbgapi hupall",
        "sofia/gateway/de\tfault/{e164}",
        "",
    ],
)
def test_hostile_templates_are_refused(template):
    with pytest.raises(ValueError):
        check_template(template)
    if "|" in template:  # in a route, the bar separates two good templates
        return
    with pytest.raises(ValueError):
        parse_routes([f"44 {template}|sofia/gateway/ok/{{e164}}"])


def test_c2c_dial_string_takes_a_failover_list_too():
    config = Config.from_env(
        {"C2C_DIAL_STRING": " sofia/gateway/a/{e164} | sofia/gateway/b/00{country_code}{number} "}
    )
    assert config.dial_string == "sofia/gateway/a/{e164}|sofia/gateway/b/00{country_code}{number}"
    table = RouteTable.build((), config.dial_string)
    assert table.default == Route(
        DEFAULT_ROUTE, ("sofia/gateway/a/{e164}", "sofia/gateway/b/00{country_code}{number}")
    )
    with pytest.raises(ConfigError, match=r"^C2C_DIAL_STRING=.*template 2 .*unknown placeholder"):
        Config.from_env({"C2C_DIAL_STRING": "sofia/gateway/a/{e164}|sofia/gateway/b/{x}"})
    with pytest.raises(ConfigError, match=r"^C2C_DIAL_STRING=.*empty template"):
        Config.from_env({"C2C_DIAL_STRING": ""})


def test_parse_templates_keeps_the_order():
    assert parse_templates("c/{e164}|a/{e164}|b/{e164}") == ("c/{e164}", "a/{e164}", "b/{e164}")


# --- choosing ------------------------------------------------------------------------------------


TABLE = RouteTable(
    parse_routes(
        [
            "1 sofia/gateway/nanp/{e164}",
            "1212 sofia/gateway/nyc/{e164}|sofia/gateway/nanp/{e164}",
            "44 sofia/gateway/uk/{e164}",
            "447 sofia/gateway/uk_mobile/{e164}",
        ]
    ),
    ("sofia/gateway/world/{e164}",),
)


@pytest.mark.parametrize(
    ("country_code", "national", "route"),
    [
        ("1", "2125550123", "1212"),
        ("1", "3105550123", "1"),
        ("44", "7700900123", "447"),
        ("44", "2079460123", "44"),
        ("44", "1212345678", "44"),  # prefixes are E.164 digits, not national ones
        ("33", "612345678", DEFAULT_ROUTE),
        ("49", "1212345678", DEFAULT_ROUTE),
    ],
)
def test_the_longest_prefix_of_the_e164_digits_wins(country_code, national, route):
    assert TABLE.choose(PhoneNumber(country_code, national)).name == route


def test_route_names_are_the_prefixes_and_default():
    assert TABLE.names == ("1", "1212", "44", "447", DEFAULT_ROUTE)
    assert len(TABLE) == 4
    empty = RouteTable.build((), "sofia/gateway/default/{e164}")
    assert empty.names == (DEFAULT_ROUTE,) and len(empty) == 0
    assert empty.choose_digits("15551230001").name == DEFAULT_ROUTE


@given(
    prefixes=st.sets(st.from_regex(r"[1-9][0-9]{0,5}", fullmatch=True), max_size=30),
    digits=st.from_regex(r"[1-9][0-9]{6,14}", fullmatch=True),
)
def test_the_choice_is_the_longest_matching_prefix(prefixes, digits):
    table = RouteTable(
        [Route(p, (f"sofia/gateway/g{p}/{{e164}}",)) for p in prefixes], ("x/{e164}",)
    )
    matching = [p for p in prefixes if digits.startswith(p)]
    expected = max(matching, key=len) if matching else DEFAULT_ROUTE
    assert table.choose_digits(digits).name == expected


# --- what each leg is dialed with ----------------------------------------------------------------


def test_each_leg_gets_its_own_route_and_a_list_becomes_a_failover_list():
    spec = dataclasses.replace(
        SPEC, caller=PhoneNumber("1", "2125550123"), callee=PhoneNumber("44", "7700900123")
    )
    command = build_originate(
        spec, TABLE.choose(spec.caller).templates, TABLE.choose(spec.callee).templates
    )
    a_vars, a_target, b_vars, b_target = parse_originate(command)
    assert a_target == "sofia/gateway/nyc/+12125550123|sofia/gateway/nanp/+12125550123"
    assert a_vars[FAILOVER_VARIABLE] == FAILOVER_VALUE == "!GATEWAY_DOWN:INVALID_GATEWAY"
    assert b_target == "sofia/gateway/uk_mobile/+447700900123"
    assert FAILOVER_VARIABLE not in b_vars  # one target: sent exactly as before


def test_metrics_count_each_leg_under_its_route():
    metrics = Metrics()
    metrics.call_settled_on_routes("1212", "447", True, None)
    metrics.call_settled_on_routes("1", DEFAULT_ROUTE, False, 5)
    text = metrics.render().decode()
    for line in (
        'c2c_calls_settled_by_route_total{leg="caller",outcome="answered",route="1212"} 1.0',
        'c2c_calls_settled_by_route_total{leg="callee",outcome="answered",route="447"} 1.0',
        'c2c_calls_settled_by_route_total{leg="caller",outcome="busy",route="1"} 1.0',
        'c2c_calls_settled_by_route_total{leg="callee",outcome="busy",route="default"} 1.0',
    ):
        assert line in text, line
