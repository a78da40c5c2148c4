import socket

import pytest

from c2c.callbacks.address_guard import (
    UnsafeCallbackAddress,
    check_url_host,
    is_public_address,
    literal_address,
    resolve_with_getaddrinfo,
)
from c2c.errors import RequestRejected

NOT_PUBLIC = [
    # IPv4
    "127.0.0.1",
    "127.255.255.254",
    "10.0.0.1",
    "172.16.0.1",
    "172.31.255.255",
    "192.168.1.1",
    "169.254.169.254",  # cloud metadata
    "100.64.0.1",  # shared (CGNAT)
    "100.127.255.255",
    "0.0.0.0",
    "0.1.2.3",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    "192.0.0.8",
    "192.0.2.1",  # documentation
    "198.51.100.7",
    "203.0.113.9",
    "198.18.0.1",  # benchmarking
    "198.19.255.255",
    "192.88.99.1",  # deprecated 6to4 relay
    # IPv6
    "::1",
    "::",
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",  # site-local
    "fc00::1",
    "fd12:3456:789a::1",
    "ff02::1",
    "ff0e::1",
    "2001:db8::1",  # documentation
    "3fff::1",
    "2001::1",  # Teredo
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "100::1",  # discard
    "64:ff9b:1::1",  # local-use NAT64
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::ffff:7f00:1",
    "::127.0.0.1",  # IPv4-compatible (deprecated)
    "::8.8.8.8",
    "64:ff9b::7f00:1",  # NAT64 to loopback
    "64:ff9b::a00:1",
    "2002:7f00:1::1",  # 6to4 embedding 127.0.0.1
    "2002:c0a8:101::1",  # 6to4 embedding 192.168.1.1
    "4000::1",  # outside 2000::/3
    # not addresses at all
    "",
    "localhost",
    "example.com",
    "127.1",  # a legacy spelling is not an address string here; check_url_host handles hosts
    "1.2.3.4.5",
]


@pytest.mark.parametrize("ip", NOT_PUBLIC)
def test_not_public(ip):
    assert not is_public_address(ip)


PUBLIC = [
    "8.8.8.8",
    "1.1.1.1",
    "93.184.216.34",
    "100.63.255.255",
    "100.128.0.0",
    "172.32.0.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001:82b::200e",
    "::ffff:8.8.8.8",  # IPv4-mapped public: judged by the address it reaches
    "64:ff9b::808:808",  # NAT64 to a public address
    "2002:808:808::1",  # 6to4 embedding a public address
]


@pytest.mark.parametrize("ip", PUBLIC)
def test_public(ip):
    assert is_public_address(ip)


@pytest.mark.parametrize(
    ("host", "address"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7F000001", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0", "0.0.0.0"),
        ("127.0.0.1.", "127.0.0.1"),
        ("[::1]", "::1"),
        ("::ffff:127.0.0.1", "::ffff:7f00:1"),
        ("example.com", None),
        ("deadbeef.example", None),
        ("1.2.3.4.5", None),
        ("08.1.1.1", None),
    ],
)
def test_literal_address(host, address):
    literal = literal_address(host)
    assert (str(literal) if literal is not None else None) == address


def resolver(table):
    calls = []

    def resolve(host, port):
        calls.append((host, port))
        return table[host]

    resolve.calls = calls
    return resolve


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/cb",
        "http://2130706433/cb",
        "http://0x7f.1/cb",
        "http://127.1/cb",
        "http://0177.0.0.1/cb",
        "http://0/cb",
        "http://[::1]:8080/cb",
        "http://[::ffff:127.0.0.1]/cb",
        "http://[fe80::1]/cb",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3:8080/",
    ],
)
def test_numeric_hosts_are_judged_without_the_resolver(url):
    resolve = resolver({})
    with pytest.raises(UnsafeCallbackAddress) as caught:
        check_url_host(url, resolve)
    assert resolve.calls == []
    assert isinstance(caught.value, RequestRejected) and caught.value.code == 4


def test_a_public_name_returns_its_addresses_for_the_connection():
    resolve = resolver({"example.com": ["93.184.216.34", "2606:2800:220:1::", "93.184.216.34"]})
    assert check_url_host("https://example.com/cb?x=1", resolve) == [
        "93.184.216.34",
        "2606:2800:220:1::",
    ]
    assert resolve.calls == [("example.com", 443)]


def test_ports():
    resolve = resolver({"example.com": ["93.184.216.34"]})
    check_url_host("http://example.com/", resolve)
    check_url_host("http://EXAMPLE.com:8080/", resolve)
    assert resolve.calls == [("example.com", 80), ("example.com", 8080)]


@pytest.mark.parametrize(
    "answers",
    [
        ["127.0.0.1"],
        ["93.184.216.34", "10.0.0.1"],  # ANY private address refuses the whole host
        ["::1", "93.184.216.34"],
        ["::ffff:192.168.0.1"],
        ["fe80::1%eth0"],
        ["not-an-address"],
    ],
)
def test_a_name_resolving_to_any_non_public_address_is_refused(answers):
    with pytest.raises(UnsafeCallbackAddress):
        check_url_host("https://rebind.example/cb", resolver({"rebind.example": answers}))


def test_private_addresses_can_be_allowed():
    resolve = resolver({"localhost": ["127.0.0.1", "::1"]})
    assert check_url_host("http://localhost:9000/cb", resolve, allow_private=True) == [
        "127.0.0.1",
        "::1",
    ]
    assert check_url_host("http://127.1/", resolve, allow_private=True) == ["127.0.0.1"]


@pytest.mark.parametrize(
    "url", ["ftp://example.com/", "example.com/cb", "http:///cb", "http://[::1/", "http://h:99999/"]
)
def test_urls_without_an_http_host_are_refused(url):
    with pytest.raises(UnsafeCallbackAddress):
        check_url_host(url, resolver({}))


def test_resolver_failures_propagate_for_a_retry():
    def failing(host, port):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(OSError):
        check_url_host("https://nowhere.invalid/", failing)
    with pytest.raises(OSError):
        check_url_host("https://empty.example/", resolver({"empty.example": []}))


def test_the_default_resolver_refuses_localhost():
    # No network needed: localhost resolves from /etc/hosts.
    assert resolve_with_getaddrinfo("localhost", 80)
    with pytest.raises(UnsafeCallbackAddress):
        check_url_host("http://localhost/cb")
