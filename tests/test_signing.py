import hashlib
import hmac

import pytest

from c2c.callbacks.signing import sign, verify

SECRET = "whsec_0123456789abcdef"
TARGET = "/cb?order=7&caller_phone_number=5552104427&minutes=2&answered=1&reason="
NOW = 1_795_734_051


def test_signature_is_hmac_sha256_of_timestamp_dot_target():
    expected = hmac.new(SECRET.encode(), f"{NOW}.{TARGET}".encode(), hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, TARGET) == "v1=" + expected


def test_known_vector():
    # printf '1700000000./cb?x=1' | openssl dgst -sha256 -hmac key
    assert sign("key", 1700000000, "/cb?x=1") == (
        "v1=de4817c79372c8c0326de5c7b7a898b87cd16305cb832880777f21bca8a81cb4"
    )


def test_verify_accepts_a_fresh_matching_signature():
    assert verify(SECRET, str(NOW), TARGET, sign(SECRET, NOW, TARGET), now=NOW + 299)
    assert verify(SECRET, str(NOW), TARGET, sign(SECRET, NOW, TARGET), now=NOW - 299)


@pytest.mark.parametrize(
    ("secret", "timestamp", "target", "signature", "now"),
    [
        ("other-secret", str(NOW), TARGET, None, NOW),
        (SECRET, str(NOW), TARGET + "&x=1", None, NOW),  # target changed
        (SECRET, str(NOW + 1), TARGET, None, NOW),  # timestamp changed
        (SECRET, str(NOW), TARGET, None, NOW + 301),  # stale
        (SECRET, str(NOW), TARGET, None, NOW - 301),  # from the future
        (SECRET, "", TARGET, None, NOW),
        (SECRET, None, TARGET, None, NOW),
        (SECRET, f" {NOW}", TARGET, None, NOW),
        (SECRET, f"{NOW}.0", TARGET, None, NOW),
        (SECRET, "-1", TARGET, None, NOW),
        (SECRET, "١٢٣", TARGET, None, NOW),
        (SECRET, str(NOW), TARGET, "", NOW),
        (SECRET, str(NOW), TARGET, "v1=", NOW),
        (SECRET, str(NOW), TARGET, "v1=deadbeef", NOW),
        (SECRET, str(NOW), TARGET, "v0=" + "0" * 64, NOW),
        (SECRET, str(NOW), TARGET, "é", NOW),
    ],
)
def test_verify_refuses(secret, timestamp, target, signature, now):
    header = signature if signature is not None else sign(SECRET, NOW, TARGET)
    assert not verify(secret, timestamp, target, header, now=now)


def test_verify_accepts_any_of_several_signatures():
    header = f"v1=deadbeef, {sign(SECRET, NOW, TARGET)}"
    assert verify(SECRET, str(NOW), TARGET, header, now=NOW)


def test_tolerance_is_configurable():
    header = sign(SECRET, NOW, TARGET)
    assert not verify(SECRET, str(NOW), TARGET, header, now=NOW + 11, tolerance=10)
    assert verify(SECRET, str(NOW), TARGET, header, now=NOW + 10, tolerance=10)


@pytest.mark.parametrize("timestamp", [-1, 1.5, "1700000000", True])
def test_sign_wants_unix_seconds(timestamp):
    with pytest.raises(ValueError):
        sign(SECRET, timestamp, TARGET)
