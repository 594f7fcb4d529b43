"""Azure resource IDs, in one place: the patterns the policy and the rules check, and the parsing of
account IDs the gateway, the findings and the loop use. A leaf module (the standard library and
guardrail.escaping only), so the rules need not import the policy, which imports the registry.
(The event parser keeps its own, stricter check of what an event may name:
guardrail.events.resource_id_problem.)

IDs compare and key the way ARM compares them (`same_id`, `id_key`): .NET's ordinal ignore-case,
which upper-cases each UTF-16 code unit by its one-to-one (simple) mapping, never `str.lower()`
(U+212A KELVIN SIGN lower-cases to `k`, so two IDs ARM tells apart would share one key). Every
piece of state keyed by an account (journal, breaker, alert claims, heartbeat, the per-account lock,
the write pacer) takes its key from here. Names taken from ARM bodies are checked by `name_problem`
before a URL is built from them."""

from __future__ import annotations

import functools
import re
from typing import Final

from guardrail.escaping import has_control

GUID_RE: Final = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
SUBNET_ID_RE: Final = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/[^/]+/providers/Microsoft\.Network/"
    r"virtualNetworks/[^/]+/subnets/[^/]+",
    re.IGNORECASE,
)
ACCOUNT_ID_RE: Final = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/resourceGroups/(?P<rg>[^/]+)/providers/"
    r"Microsoft\.CognitiveServices/accounts/(?P<name>[^/]+)",
    re.IGNORECASE,
)


def parse_account_id(resource_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, account name) of a Cognitive Services account ID (exactly an
    account; a trailing slash is allowed). Raises ValueError naming the ID otherwise."""
    match = ACCOUNT_ID_RE.fullmatch(resource_id.strip().rstrip("/"))
    if match is None:
        raise ValueError(f"not a Microsoft.CognitiveServices/accounts resource ID: {resource_id!r}")
    return match["sub"], match["rg"], match["name"]


def parse_account_or_child(resource_id: str) -> tuple[str, str, str]:
    """As `parse_account_id`, for an account or any of its child resources
    (`.../accounts/a/deployments/d` gives account `a`)."""
    match = ACCOUNT_ID_RE.match(resource_id.strip())
    if match is None or resource_id.strip()[match.end() :][:1] not in ("", "/"):
        raise ValueError(f"not a Microsoft.CognitiveServices account resource ID: {resource_id!r}")
    return match["sub"], match["rg"], match["name"]


def subscription_of(resource_id: str) -> str:
    """The subscription of any ARM resource ID (`/subscriptions/{id}/...`), keyed as `name_key`
    keys it (a GUID: lower-cased); "" when the ID names none."""
    parts = resource_id.split("/")
    return name_key(parts[2]) if len(parts) > 2 and name_key(parts[1]) == "subscriptions" else ""


# -- ARM's comparison: ordinal, ignore case ----------------------------------------------------
# .NET's OrdinalIgnoreCase (dotnet/runtime, System.Globalization.Native pal_casing.c
# InitOrdinalCasingPage) upper-cases each UTF-16 code unit by ICU's simple mapping `u_toupper`,
# except U+0131 (dotless i) and U+017F (long s), which stay themselves. A code point outside the
# BMP is two surrogate code units, which have no case: it stays itself here.
_ORDINAL_EXCEPTIONS: Final = frozenset({"\u0131", "\u017f"})


@functools.lru_cache(maxsize=4096)
def _upper_unit(ch: str) -> str:
    """`ch`'s simple (one-to-one) upper-case mapping, as ordinal ignore-case applies it. Python's
    `str.upper` is the full mapping (`ß` gives `SS`); where that is longer than one character, the
    simple mapping is the title-case one when that is a single character (`ᾀ` U+1F80 gives U+1F88,
    as UnicodeData.txt says), else none (`ß`, `ŉ`, `ǰ` stay themselves)."""
    if ch in _ORDINAL_EXCEPTIONS or ord(ch) > 0xFFFF:
        return ch
    upper = ch.upper()
    if len(upper) == 1:
        return upper
    title = ch.title()
    return title if len(title) == 1 else ch


def ordinal_upper(text: str) -> str:
    """`text` upper-cased code unit by code unit, as ARM's ordinal ignore-case compares it."""
    if text.isascii():
        return text.upper()
    return "".join(_upper_unit(ch) for ch in text)


def same_id(a: str, b: str) -> bool:
    """Whether ARM takes `a` and `b` for the same resource ID (ordinal, ignore case; a trailing
    '/' and surrounding blanks ignored)."""
    return id_key(a) == id_key(b)


def id_key(resource_id: str) -> str:
    """The key of a resource ID, equal for two IDs exactly when ARM takes them for the same one:
    surrounding blanks and a trailing '/' dropped, `ordinal_upper`, then the ASCII letters lower-cased
    again, so an ASCII ID keys as it always did (its `str.lower()`: rows stored before keep their
    keys). That last step is one-to-one on upper-cased text (which holds no ASCII lower-case letter),
    so it merges nothing ARM keeps apart. Raises ValueError for an empty ID."""
    stripped = resource_id.strip().rstrip("/")
    if not stripped:
        raise ValueError("resource id must not be empty")
    if stripped.isascii():
        return stripped.lower()
    return ordinal_upper(stripped).translate(_ASCII_LOWER)


_ASCII_LOWER: Final = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def name_key(name: str) -> str:
    """`id_key` of a name (a subscription ID, a resource group) or an ID that may be empty: "" for
    an empty one (which no key of a real ID equals) instead of a ValueError."""
    return id_key(name) if name.strip().rstrip("/") else ""


# -- names taken from ARM bodies, before a URL is built from them -------------------------------
MAX_NAME_LENGTH: Final = 1024
_URL_SPECIAL: Final = frozenset("/\\?#%")


def name_problem(name: object) -> str | None:
    """Why `name` (an account's, its group's or subscription's, or a child resource's, taken from an
    event or an ARM body) cannot be one path segment of an ARM URL, else None: it must be a
    non-empty string of at most MAX_NAME_LENGTH characters, not `.` or `..` (a client or proxy
    resolves those, and the request lands on the parent), without `/`, `\\`, `?`, `#` or `%` (a
    separator, a query, a fragment or a percent-encoding of one), control or format characters."""
    if not isinstance(name, str) or not name:
        return "is empty" if name == "" else f"is not a string ({type(name).__name__})"
    if len(name) > MAX_NAME_LENGTH:
        return f"is longer than {MAX_NAME_LENGTH} characters"
    if name in (".", ".."):
        return "is a dot segment ('.' or '..')"
    special = sorted({ch for ch in name if ch in _URL_SPECIAL})
    if special:
        return "holds " + ", ".join(repr(ch) for ch in special) + " (not allowed in a resource name)"
    if has_control(name):
        return "holds control or format characters"
    return None
