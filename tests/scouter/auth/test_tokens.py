import base64
import hashlib
import hmac
import json
import string
from typing import Any

import pytest

from scouter.auth import (
    ACCESS_TTL_SECONDS,
    DEFAULT_SECRET,
    LEEWAY_SECONDS,
    REFRESH_TTL_SECONDS,
    Identity,
    TokenError,
    hash_refresh_token,
    mint_access,
    mint_refresh,
    refresh_token_matches,
    verify_access,
    verify_access_allow_expired,
    verify_access_renewable,
    verify_refresh,
)

# At least 32 bytes: PyJWT warns about shorter HMAC keys, and warnings are errors in this suite.
ACCESS = "access-secret-0123456789-abcdefghij"
REFRESH = "refresh-secret-0123456789-abcdefghi"
NOW = 1_750_000_000.25
ADMIN = Identity("admin", ("read:all", "write:all"), ("admin",))

# Logged from the stand-in server used for the captures: signed with a secret we do not know.
CAPTURED = (
    "eyJ0eXAiOiAiSldUIiwgImFsZyI6ICJIUzI1NiJ9.eyJzdWIiOiAiYWRtaW4iLCAiZXhwIjogMTc5NTM3MDgwMCwgInBlcm1pc3Npb25zIjogWyJy"
    "ZWFkOmFsbCIsICJ3cml0ZTphbGwiXSwgImdyb3VwX3Blcm1pc3Npb25zIjogWyJhZG1pbiJdLCAic2FsdCI6ICJ0SXFCUVZVa2VuU01pSG9WIn0"
    ".vojFKUjp_DnsPUbm2YhBbcmOLUi0qZvUhnRpJ_254Ec"
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


NONE_HEADER = _b64(b'{"alg":"none"}')
HS256_HEADER = _b64(b'{"alg":"HS256"}')


def _unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "admin",
        "exp": int(NOW) + ACCESS_TTL_SECONDS,
        "permissions": ["read:all"],
        "group_permissions": ["admin"],
        "salt": "abcdefghijklmnop",
    }
    claims.update(overrides)
    return claims


def _token(payload: Any, *, key: str = ACCESS, header: dict[str, Any] | None = None, digest: str = "sha256") -> str:
    """Build a JWT by hand, signed with HMAC-`digest` over the given header (default HS256); bytes go in raw."""
    head = {"typ": "JWT", "alg": "HS256"} if header is None else header
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    signing_input = f"{_b64(json.dumps(head).encode())}.{_b64(body)}"
    signature = hmac.new(key.encode(), signing_input.encode(), digest).digest()
    return f"{signing_input}.{_b64(signature)}"


def _reason(token: str, *, secret: str = ACCESS, now: float = NOW) -> str:
    with pytest.raises(TokenError) as info:
        verify_access(token, secret, now)
    return info.value.reason


def test_access_round_trip() -> None:
    """An access token verifies back to the identity it was minted for."""
    assert ADMIN == verify_access(mint_access(ADMIN, ACCESS, NOW), ACCESS, NOW)


def test_refresh_round_trip() -> None:
    """A refresh token verifies with the refresh secret back to its identity."""
    assert ADMIN == verify_refresh(mint_refresh(ADMIN, REFRESH, NOW), REFRESH, NOW)


def test_bytes_secret_equals_its_utf8_text() -> None:
    """The HMAC key is the raw UTF-8 bytes of the secret, so str and bytes secrets are interchangeable."""
    token = mint_access(ADMIN, DEFAULT_SECRET, NOW)
    assert ADMIN == verify_access(token, DEFAULT_SECRET.encode("utf-8"), NOW)


def test_access_token_shape_matches_upstream() -> None:
    """Header and claims come out in upstream's order, with exp one hour after now and a 16-character salt."""
    header, payload, _ = mint_access(ADMIN, ACCESS, NOW).split(".")
    claims = json.loads(_unb64(payload))
    assert b'{"typ":"JWT","alg":"HS256"}' == _unb64(header)
    assert ["sub", "exp", "permissions", "group_permissions", "salt"] == list(claims)
    assert int(NOW) + 3600 == claims["exp"]
    assert ["read:all", "write:all"] == claims["permissions"]
    assert 16 == len(claims["salt"])
    assert set(claims["salt"]) <= set(string.ascii_letters + string.digits)


def test_refresh_token_lives_a_day() -> None:
    """A refresh token's exp is 86400 s after now."""
    payload = mint_refresh(ADMIN, REFRESH, NOW).split(".")[1]
    assert int(NOW) + REFRESH_TTL_SECONDS == json.loads(_unb64(payload))["exp"]


def test_tokens_are_unique() -> None:
    """The random salt makes two tokens minted at the same instant differ."""
    assert mint_access(ADMIN, ACCESS, NOW) != mint_access(ADMIN, ACCESS, NOW)


def test_forged_signature_is_rejected() -> None:
    """A token signed with another key fails verification."""
    assert "invalid signature" == _reason(_token(_claims(), key="someone-else-s-secret-0123456789abcdef"))


def test_tampered_claims_are_rejected() -> None:
    """Swapping in different claims under the original signature fails verification."""
    header, _, signature = mint_access(Identity("guest", ("read:all",)), ACCESS, NOW).split(".")
    forged = f"{header}.{_b64(json.dumps(_claims(sub='guest', group_permissions=['admin'])).encode())}.{signature}"
    assert "invalid signature" == _reason(forged)


def test_captured_stand_in_token_is_foreign() -> None:
    """The capture's token (stand-in server, unknown secret) does not verify under the default secret."""
    assert "invalid signature" == _reason(CAPTURED, secret=DEFAULT_SECRET, now=1_795_370_800)


@pytest.mark.parametrize("header", [{"alg": "none"}, {"typ": "JWT", "alg": "none"}, {"alg": "None"}])
@pytest.mark.parametrize("signature", ["", "c2ln"])
def test_alg_none_is_rejected(header: dict[str, str], signature: str) -> None:
    """An unsigned token (alg none), with or without a signature segment, is refused."""
    token = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(_claims()).encode())}.{signature}"
    assert "algorithm not allowed" == _reason(token)


@pytest.mark.parametrize(("alg", "digest"), [("HS384", "sha384"), ("HS512", "sha512")])
def test_other_algorithms_are_rejected(alg: str, digest: str) -> None:
    """A token correctly signed with the right key but another HMAC algorithm is refused."""
    token = _token(_claims(), header={"typ": "JWT", "alg": alg}, digest=digest)
    assert "algorithm not allowed" == _reason(token)


def test_refresh_token_is_not_an_access_token() -> None:
    """A token signed with the refresh secret fails as an access token."""
    assert "invalid signature" == _reason(mint_refresh(ADMIN, REFRESH, NOW))


def test_access_token_is_not_a_refresh_token() -> None:
    """A token signed with the access secret fails as a refresh token."""
    with pytest.raises(TokenError, match="invalid signature"):
        verify_refresh(mint_access(ADMIN, ACCESS, NOW), REFRESH, NOW)


def test_expired_within_leeway_is_accepted() -> None:
    """A token is still valid up to and including 60 s past its exp."""
    token = mint_access(ADMIN, ACCESS, NOW)
    exp = int(NOW) + ACCESS_TTL_SECONDS
    assert ADMIN == verify_access(token, ACCESS, exp + LEEWAY_SECONDS)


@pytest.mark.parametrize("late", [0.001, 1, 86_400])
def test_expired_beyond_leeway_is_rejected(late: float) -> None:
    """A token more than 60 s past its exp is refused as expired."""
    token = mint_access(ADMIN, ACCESS, NOW)
    exp = int(NOW) + ACCESS_TTL_SECONDS
    assert "token expired" == _reason(token, now=exp + LEEWAY_SECONDS + late)


def test_expired_refresh_token_is_rejected() -> None:
    """A refresh token is refused a day and a minute after minting."""
    token = mint_refresh(ADMIN, REFRESH, NOW)
    with pytest.raises(TokenError, match="token expired"):
        verify_refresh(token, REFRESH, NOW + REFRESH_TTL_SECONDS + LEEWAY_SECONDS + 1)


def test_allow_expired_accepts_an_expired_signed_token() -> None:
    """The refresh path returns the identity of a correctly signed, long-expired token and flags it expired."""
    token = mint_access(ADMIN, ACCESS, NOW)
    assert (ADMIN, True) == verify_access_allow_expired(token, ACCESS, NOW + 30 * 86_400)


def test_allow_expired_reports_a_live_token() -> None:
    """The refresh path flags a token within its lifetime (or the leeway) as not expired."""
    token = mint_access(ADMIN, ACCESS, NOW)
    assert (ADMIN, False) == verify_access_allow_expired(token, ACCESS, NOW + ACCESS_TTL_SECONDS + LEEWAY_SECONDS - 1)


def test_allow_expired_rejects_a_forged_token() -> None:
    """Forgiving expiry never forgives the signature: upstream's authentication bypass (§12 #5) stays closed."""
    forged = _token(_claims(exp=int(NOW) - 10_000), key="someone-else-s-secret-0123456789abcdef")
    with pytest.raises(TokenError, match="invalid signature"):
        verify_access_allow_expired(forged, ACCESS, NOW)


def test_allow_expired_rejects_alg_none() -> None:
    """Forgiving expiry never accepts an unsigned token."""
    token = f"{NONE_HEADER}.{_b64(json.dumps(_claims()).encode())}."
    with pytest.raises(TokenError, match="algorithm not allowed"):
        verify_access_allow_expired(token, ACCESS, NOW)


def test_allow_expired_still_checks_claims() -> None:
    """Forgiving expiry still requires every claim with its type."""
    with pytest.raises(TokenError, match="missing claim 'salt'"):
        verify_access_allow_expired(_token({k: v for k, v in _claims().items() if k != "salt"}), ACCESS, NOW)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-jwt",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        f"{HS256_HEADER}.{_b64(b'{}')}.not base64!",
        f"{_b64(b'not json')}.{_b64(b'{}')}.c2ln",
    ],
)
def test_malformed_tokens_are_rejected(token: str) -> None:
    """Garbage that is not a three-part JWT with JSON segments is refused as malformed."""
    assert _reason(token).startswith("malformed token")


@pytest.mark.parametrize("payload", [["sub", "admin"], "admin", 42, b"not json", b"\xff\xfe"])
def test_non_object_payload_is_rejected(payload: Any) -> None:
    """A correctly signed payload that is not a JSON object (or not JSON at all) is refused as malformed."""
    assert _reason(_token(payload)).startswith("malformed token")


def test_non_string_token_is_rejected() -> None:
    """A token that is not a string (e.g. a missing header passed through) is refused."""
    assert "token is not a string" == _reason(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("claim", ["sub", "exp", "permissions", "group_permissions", "salt"])
def test_missing_claims_are_rejected(claim: str) -> None:
    """A correctly signed token lacking any of the five claims is refused."""
    claims = {k: v for k, v in _claims().items() if k != claim}
    assert f"missing claim {claim!r}" == _reason(_token(claims))


@pytest.mark.parametrize(
    ("claim", "value", "reason"),
    [
        ("sub", 42, "claim 'sub' must be a string"),
        ("sub", None, "claim 'sub' must be a string"),
        ("exp", float(int(NOW) + 3600), "claim 'exp' must be an integer"),
        ("exp", str(int(NOW) + 3600), "claim 'exp' must be an integer"),
        ("exp", True, "claim 'exp' must be an integer"),
        ("permissions", "read:all", "claim 'permissions' must be a list of strings"),
        ("permissions", ["read:all", 1], "claim 'permissions' must be a list of strings"),
        ("permissions", {"read:all": True}, "claim 'permissions' must be a list of strings"),
        ("group_permissions", None, "claim 'group_permissions' must be a list of strings"),
        ("salt", 5, "claim 'salt' must be a string"),
    ],
)
def test_wrong_claim_types_are_rejected(claim: str, value: Any, reason: str) -> None:
    """A correctly signed token whose claim has the wrong JSON type is refused, naming the claim."""
    assert reason == _reason(_token(_claims(**{claim: value})))


def test_future_nbf_is_rejected() -> None:
    """A token whose nbf is more than 60 s ahead of now is not yet valid."""
    assert "token not yet valid" == _reason(_token(_claims(nbf=int(NOW) + 61)))


def test_nbf_within_leeway_is_accepted() -> None:
    """A token whose nbf is at most 60 s ahead of now is accepted."""
    assert "admin" == verify_access(_token(_claims(nbf=int(NOW) + 60)), ACCESS, NOW).username


def test_unknown_audience_is_rejected() -> None:
    """A token carrying an audience nobody asked for is refused (PyJWT's and jsonwebtoken's default)."""
    assert _reason(_token(_claims(aud="elsewhere"))).startswith("invalid token")


def test_extra_claims_are_ignored() -> None:
    """Unknown claims do not affect the identity, as upstream's serde decoding ignores them."""
    assert "admin" == verify_access(_token(_claims(iat=0, role="guest")), ACCESS, NOW).username


def test_empty_secret_is_refused() -> None:
    """An empty signing key is a configuration error, never a usable key."""
    with pytest.raises(ValueError, match="empty"):
        mint_access(ADMIN, "", NOW)
    with pytest.raises(ValueError, match="empty"):
        verify_access(_token(_claims(), key=""), b"", NOW)


def test_refresh_token_is_stored_as_sha256_hex() -> None:
    """The stored form is the SHA-256 hex digest, never the token itself."""
    token = mint_refresh(ADMIN, REFRESH, NOW)
    assert hashlib.sha256(token.encode()).hexdigest() == hash_refresh_token(token)


def test_refresh_token_matches_its_hash() -> None:
    """A token matches its stored hash; another token, the plain token, garbage or no hash do not."""
    token, other = mint_refresh(ADMIN, REFRESH, NOW), mint_refresh(ADMIN, REFRESH, NOW)
    stored = hash_refresh_token(token)
    assert [True, False, False, False, False, False] == [
        refresh_token_matches(token, stored),
        refresh_token_matches(other, stored),
        refresh_token_matches(token, token),
        refresh_token_matches(token, "é" * 64),
        refresh_token_matches(token, ""),
        refresh_token_matches(token, None),
    ]


def test_a_token_renews_only_within_the_refresh_lifetime_of_its_issue() -> None:
    """Expired tokens stay renewable until REFRESH_TTL (plus the leeway) after their issue, and not a second more;
    a forged one never."""
    token = mint_access(ADMIN, ACCESS, NOW)
    last = int(NOW) + REFRESH_TTL_SECONDS + LEEWAY_SECONDS
    assert ADMIN == verify_access_renewable(token, ACCESS, NOW + ACCESS_TTL_SECONDS + 3600)
    assert ADMIN == verify_access_renewable(token, ACCESS, last)
    with pytest.raises(TokenError, match="too old"):
        verify_access_renewable(token, ACCESS, last + 1)
    with pytest.raises(TokenError):
        verify_access_renewable(token, "another-secret-0123456789-abcdefghij", NOW)
