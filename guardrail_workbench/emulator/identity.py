"""Caller identity for the emulator: JWT-shaped bearer tokens in, Event Grid `claims` out.

The emulator never checks signatures. A token shaped `header.payload.signature` whose payload is
base64url JSON gives the caller's claims (short names such as `upn`, `oid`, `tid`, `appid`, `name`
are accepted and mapped to the URIs Azure puts in `data.claims`); anything else is the default
identity (or whatever `register_token` said for that exact token).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
from collections.abc import Mapping
from typing import Any

UPN = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn"
OID = "http://schemas.microsoft.com/identity/claims/objectidentifier"
TID = "http://schemas.microsoft.com/identity/claims/tenantid"

DEFAULT_TENANT_ID = "72f988bf-0000-0000-0000-000000000000"

#: A human in the portal: what an unrecognised token maps to.
DEFAULT_IDENTITY: dict[str, str] = {
    "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46",
    "appidacr": "0",
    "name": "Jane Doe",
    "oid": "11111111-2222-3333-4444-555555555555",
    "upn": "jane@contoso.example",
}

#: The guardrail's own identity on the local tenant (its writes are recognised by this `appid`).
GUARDRAIL_CLAIMS: dict[str, Any] = {
    "appid": "9f1c3a52-6b0e-4d7a-8c1e-5f2b7a9d0e11",
    "oid": "6d2f0c11-8a4b-4e3f-9c7d-1b2a3c4d5e6f",
    "name": "ai-services-network-guardrail",
    "idtyp": "app",
}

_SHORT_TO_URI = {"upn": UPN, "unique_name": UPN, "oid": OID, "tid": TID}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def make_token(claims: Mapping[str, Any]) -> str:
    """An unsigned JWT (RFC 7519 section 6: `alg` "none") carrying `claims`: what the local
    clients present as their bearer token. The third part is not empty only so that clients that
    insist on three non-empty parts accept it; the emulator never checks it."""
    header = _b64url(b'{"alg":"none","typ":"JWT"}')
    payload = _b64url(json.dumps(dict(claims), separators=(",", ":")).encode("utf-8"))
    return f"{header}.{payload}.unsigned"


def decode_token(token: str) -> dict[str, Any] | None:
    """The claims of a JWT-shaped bearer token, or None when `token` is not one (no signature
    is checked: the emulator only needs to know who says they are calling)."""
    header, dot, rest = token.partition(".")
    payload, dot2, _signature = rest.partition(".")
    if not (header and dot and dot2 and payload):
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return None
    return claims if isinstance(claims, dict) else None


def event_claims(raw: Mapping[str, Any], tenant_id: str, client_ip: str) -> dict[str, str]:
    """Turn token claims into the `data.claims` object of a resource event (all values strings)."""
    short: dict[str, Any] = {}
    for key, value in raw.items():
        short[_SHORT_TO_URI.get(key, key)] = value
    now = int(time.time())
    claims: dict[str, str] = {
        "aud": str(short.get("aud", "https://management.core.windows.net/")),
        "iss": str(short.get("iss", f"https://sts.windows.net/{short.get(TID, tenant_id)}/")),
        "iat": str(short.get("iat", now - 300)),
        "nbf": str(short.get("nbf", now - 300)),
        "exp": str(short.get("exp", now + 3600)),
    }
    for key in ("appid", "appidacr", "ipaddr", "name"):
        if key in short:
            claims[key] = str(short[key])
    claims.setdefault("appid", "00000000-0000-0000-0000-000000000000")
    claims.setdefault("appidacr", "2" if UPN not in short else "0")
    claims.setdefault("ipaddr", client_ip)
    claims[OID] = str(short.get(OID, "00000000-0000-0000-0000-000000000000"))
    claims[TID] = str(short.get(TID, tenant_id))
    if UPN in short:
        claims[UPN] = str(short[UPN])
    claims["ver"] = str(short.get("ver", "1.0"))
    for key, value in short.items():  # anything else the token carried
        claims.setdefault(key, value if isinstance(value, str) else json.dumps(value))
    return claims


def evidence(claims: Mapping[str, str], subscription_id: str) -> dict[str, str]:
    """`data.authorization.evidence`: a Contributor assignment at the subscription for the caller."""
    oid = claims.get(OID, "")
    return {
        "role": "Contributor",
        "roleAssignmentScope": f"/subscriptions/{subscription_id}",
        "roleAssignmentId": hashlib.sha256(f"{oid}|{subscription_id}".encode()).hexdigest()[:32],
        "roleDefinitionId": "b24988ac618042a0ab8820f7382dd24c",
        "principalId": oid.replace("-", ""),
        "principalType": "User" if UPN in claims else "ServicePrincipal",
    }
