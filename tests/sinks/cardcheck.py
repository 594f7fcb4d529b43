"""A focused structural validator for the Adaptive Card 1.4 subset the guardrail emits, and
for the Teams Workflows message envelope. There is no offline official validator; this checks
what the schema (adaptivecards.io/schemas/1.4.0) requires of these elements and refuses
anything else (unknown element types, unknown properties, newer features such as Table)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

_SPACING = {"default", "none", "small", "medium", "large", "extraLarge", "padding"}
_COMMON = {"type", "id", "isVisible", "separator", "spacing", "height", "requires", "fallback"}
_ENUMS: dict[str, dict[str, set[str]]] = {
    "TextBlock": {
        "size": {"Default", "Small", "Medium", "Large", "ExtraLarge"},
        "weight": {"Default", "Lighter", "Bolder"},
        "color": {"Default", "Dark", "Light", "Accent", "Good", "Warning", "Attention"},
        "horizontalAlignment": {"Left", "Center", "Right"},
        "fontType": {"Default", "Monospace"},
    },
    "Container": {"style": {"default", "emphasis", "good", "attention", "warning", "accent"}},
}
_PROPS: dict[str, set[str]] = {
    "TextBlock": {
        "text",
        "size",
        "weight",
        "color",
        "wrap",
        "isSubtle",
        "maxLines",
        "horizontalAlignment",
        "fontType",
    },
    "FactSet": {"facts"},
    "Container": {"items", "style", "selectAction", "verticalContentAlignment", "bleed", "minHeight"},
}
_CARD_PROPS = {
    "$schema",
    "type",
    "version",
    "body",
    "actions",
    "msteams",
    "fallbackText",
    "speak",
    "lang",
    "minHeight",
}
_ACTIONS = {"Action.OpenUrl": {"url"}, "Action.Submit": set(), "Action.ShowCard": {"card"}}
_ACTION_PROPS = {"type", "title", "iconUrl", "id", "style", "fallback", "requires", "url", "card", "data"}


def validate_card(card: Any, *, version: str = "1.4") -> list[str]:
    """Problems with an Adaptive Card (empty list: valid for the supported subset)."""
    errors: list[str] = []
    if not isinstance(card, dict):
        return ["card is not an object"]
    if card.get("type") != "AdaptiveCard":
        errors.append("card.type must be 'AdaptiveCard'")
    if card.get("version") != version:
        errors.append(f"card.version must be '{version}' (got {card.get('version')!r})")
    for key in set(card) - _CARD_PROPS:
        errors.append(f"card: unknown property {key!r}")
    body = card.get("body", [])
    if not isinstance(body, list):
        errors.append("card.body must be an array")
    else:
        for i, element in enumerate(body):
            _element(element, f"body[{i}]", errors)
    actions = card.get("actions", [])
    if not isinstance(actions, list):
        errors.append("card.actions must be an array")
    else:
        for i, action in enumerate(actions):
            _action(action, f"actions[{i}]", errors)
    return errors


def _element(el: Any, where: str, errors: list[str]) -> None:
    if not isinstance(el, dict):
        errors.append(f"{where}: element is not an object")
        return
    kind = el.get("type")
    if kind not in _PROPS:
        errors.append(f"{where}: element type {kind!r} is not allowed")
        return
    for key in set(el) - _PROPS[kind] - _COMMON:
        errors.append(f"{where}: unknown {kind} property {key!r}")
    for key, allowed in _ENUMS.get(kind, {}).items():
        if key in el and el[key] not in allowed:
            errors.append(f"{where}: {kind}.{key} {el[key]!r} not in {sorted(allowed)}")
    if "spacing" in el and el["spacing"] not in _SPACING:
        errors.append(f"{where}: spacing {el['spacing']!r}")
    for flag in ("wrap", "isSubtle", "separator", "isVisible"):
        if flag in el and not isinstance(el[flag], bool):
            errors.append(f"{where}: {flag} must be a boolean")
    if kind == "TextBlock" and (not isinstance(el.get("text"), str) or not el["text"]):
        errors.append(f"{where}: TextBlock.text is required (a non-empty string)")
    if kind == "FactSet":
        facts = el.get("facts")
        if not isinstance(facts, list) or not facts:
            errors.append(f"{where}: FactSet.facts is required (a non-empty array)")
        else:
            for j, fact in enumerate(facts):
                if not isinstance(fact, dict) or set(fact) != {"title", "value"}:
                    errors.append(f"{where}.facts[{j}]: needs exactly title and value")
                elif not all(isinstance(fact[k], str) for k in ("title", "value")):
                    errors.append(f"{where}.facts[{j}]: title and value must be strings")
    if kind == "Container":
        items = el.get("items")
        if not isinstance(items, list):
            errors.append(f"{where}: Container.items is required")
        else:
            for j, item in enumerate(items):
                _element(item, f"{where}.items[{j}]", errors)


def _action(action: Any, where: str, errors: list[str]) -> None:
    if not isinstance(action, dict):
        errors.append(f"{where}: action is not an object")
        return
    kind = action.get("type")
    if kind not in _ACTIONS:
        errors.append(f"{where}: action type {kind!r} is not allowed")
        return
    for key in set(action) - _ACTION_PROPS:
        errors.append(f"{where}: unknown action property {key!r}")
    for key in _ACTIONS[kind]:
        if key not in action:
            errors.append(f"{where}: {kind}.{key} is required")
    if kind == "Action.OpenUrl":
        url = action.get("url")
        parts = urlsplit(url) if isinstance(url, str) else None
        if parts is None or parts.scheme not in ("https", "http") or not parts.netloc:
            errors.append(f"{where}: Action.OpenUrl.url must be an absolute http(s) URL")
    if kind == "Action.ShowCard":
        errors.extend(f"{where}.card: {e}" for e in validate_card(action.get("card")))


def validate_teams_message(message: Any) -> list[str]:
    """The Teams Workflows envelope around one or more Adaptive Cards."""
    if not isinstance(message, dict) or message.get("type") != "message":
        return ["message.type must be 'message'"]
    attachments = message.get("attachments")
    if not isinstance(attachments, list) or not attachments:
        return ["message.attachments must be a non-empty array"]
    errors: list[str] = []
    for i, att in enumerate(attachments):
        if not isinstance(att, dict):
            errors.append(f"attachments[{i}] is not an object")
            continue
        if att.get("contentType") != "application/vnd.microsoft.card.adaptive":
            errors.append(f"attachments[{i}].contentType is not application/vnd.microsoft.card.adaptive")
        if att.get("contentUrl") is not None:
            errors.append(f"attachments[{i}].contentUrl must be null")
        errors.extend(f"attachments[{i}].content: {e}" for e in validate_card(att.get("content")))
    return errors


# -- markdown: user text must stay text ----------------------------------------------------------

#: Teams markdown's special characters (a CommonMark subset): links/images, emphasis, code,
#: headings, HTML and autolinks; the backslash is the escape itself.
MARKDOWN_SPECIAL = frozenset("\\[]()*_`#<>")
_ASCII_PUNCTUATION = frozenset("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def commonmark_unescape(text: str) -> str:
    """The characters a CommonMark renderer shows for `text` made only of plain characters and
    backslash escapes (a backslash before ASCII punctuation stands for that character)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in _ASCII_PUNCTUATION:
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def markdown_problems(text: str) -> list[str]:
    """Why `text` (one card text) could render as more than text: an unescaped special
    character, a `://` an autolinker could take for a URL, a control character. List lines
    may start with the card's own "- "; nothing else is markdown."""
    problems: list[str] = []
    for line in text.split("\n"):
        body = line[2:] if line.startswith("- ") else line
        i = 0
        while i < len(body):
            ch = body[i]
            if ch == "\\" and i + 1 < len(body) and body[i + 1] in _ASCII_PUNCTUATION:
                i += 2
                continue
            if ch in MARKDOWN_SPECIAL:
                problems.append(f"unescaped {ch!r} at {i} in {body!r}")
            elif ord(ch) < 0x20 or ord(ch) == 0x7F or ch in "\u2028\u2029":
                problems.append(f"control character {ch!r} in {body!r}")
            i += 1
        if "://" in body:
            problems.append(f"a URL an autolinker would link in {body!r}")
    return problems


def card_texts(card: dict[str, Any]) -> list[str]:
    """Every text a person sees in the card body (TextBlock texts, fact titles and values)."""
    texts: list[str] = []

    def walk(elements: list[Any]) -> None:
        for el in elements:
            if el.get("type") == "TextBlock":
                texts.append(el["text"])
            elif el.get("type") == "FactSet":
                texts.extend(t for fact in el["facts"] for t in (fact["title"], fact["value"]))
            elif el.get("type") == "Container":
                walk(el.get("items", []))

    walk(card.get("body", []))
    return texts


def links_of(card: dict[str, Any]) -> list[str]:
    """The URLs of the card's actions (the only place a card may link)."""
    return [a["url"] for a in card.get("actions", []) if a.get("type") == "Action.OpenUrl"]
