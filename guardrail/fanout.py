"""The reconcile sweep fanned out on the Functions engine: one Storage queue message per slice.

The timer (`enqueue_sweep`) puts one message per governed subscription on the sweep queue; the
queue-triggered function (`run_slice`) lists one page of that subscription's accounts, puts the
page's `nextLink` back on the queue as the next slice (so a large subscription is swept page by
page, by as many instances as the host scales out to), and checks the page's accounts through
`Guardrail.sweep_accounts`, the same per-slice path the in-process sweep takes.

A slice message is JSON (base64-encoded on the queue, the Functions host's default encoding):

    {"v": 1, "subscription": "<subscription GUID>", "nextLink": null | "<ARM nextLink URL>"}

`nextLink` null means the subscription's first page. A message may instead name one account,
`"account": "<account resource ID>"` (of that subscription): a re-check the reconciler asked for
(a write whose provisioning ended Failed), put on the queue invisible for
GUARDRAIL_RECHECK_MINUTES, so the account is looked at again within minutes, not at the next
sweep. A slice whose listing fails raises, so the
host redelivers it; after host.json's `extensions.queues.maxDequeueCount` deliveries the host moves
it to `guardrail-sweep-poison`, where `report_poison` logs it at ERROR with the slice it names
(the next sweep lists that page again). Account errors inside a slice do not fail the message:
like the in-process sweep, they are logged and counted, and the next sweep checks those accounts.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from guardrail import escaping
from guardrail.policy import GUID_RE
from guardrail.resource_ids import name_key, parse_account_id, subscription_of
from guardrail.transport import STORAGE_RETRIES, STORAGE_TIMEOUTS, Timeouts

if TYPE_CHECKING:
    from guardrail.service import Guardrail, SweepReport
    from guardrail.storage import StorageSettings

log = escaping.logger("guardrail")

SWEEP_QUEUE = "guardrail-sweep"
POISON_QUEUE = f"{SWEEP_QUEUE}-poison"  # the name the Functions host moves poison messages to
MESSAGE_VERSION = 1
ENQUEUE_CONCURRENCY = 8  # the timer's slice messages sent at once (within requests' pool of 10)


class MalformedSlice(ValueError):
    """A sweep-queue message that is not a slice; the message says what is wrong."""


@dataclass(frozen=True)
class SweepSlice:
    subscription: str
    next_link: str | None = None
    sweep: str | None = None  # the sweep's correlation ID, shared by its slices' heartbeat rows
    account: str | None = None  # a re-check of one account instead of a page

    def to_message(self) -> str:
        body = {"v": MESSAGE_VERSION, "subscription": self.subscription, "nextLink": self.next_link}
        if self.sweep is not None:
            body["sweep"] = self.sweep
        if self.account is not None:
            body["account"] = self.account
        return json.dumps(body)

    @classmethod
    def from_message(cls, text: str | bytes) -> SweepSlice:
        try:
            body = json.loads(text)
        except (ValueError, UnicodeDecodeError) as error:
            raise MalformedSlice(f"sweep message is not JSON: {error}") from error
        if not isinstance(body, Mapping):
            raise MalformedSlice("sweep message is not a JSON object")
        if body.get("v") != MESSAGE_VERSION:
            raise MalformedSlice(f"sweep message version {body.get('v')!r} is not {MESSAGE_VERSION}")
        subscription, link = body.get("subscription"), body.get("nextLink")
        if not isinstance(subscription, str) or not GUID_RE.fullmatch(subscription):
            raise MalformedSlice(f"sweep message subscription {subscription!r} is not a subscription ID")
        if link is not None and (not isinstance(link, str) or not link.startswith("https://")):
            raise MalformedSlice(f"sweep message nextLink {str(link)[:200]!r} is not an https URL")
        sweep = body.get("sweep")
        if sweep is not None and not (isinstance(sweep, str) and GUID_RE.fullmatch(sweep)):
            raise MalformedSlice(f"sweep message sweep {str(sweep)[:60]!r} is not a correlation ID")
        account = body.get("account")
        if account is not None:
            try:
                parse_account_id(account if isinstance(account, str) else "")
            except ValueError:
                raise MalformedSlice(
                    f"sweep message account {str(account)[:200]!r} is not an account resource ID"
                ) from None
            if subscription_of(account) != subscription.lower():
                raise MalformedSlice("sweep message account is not in the message's subscription")
        return cls(subscription, link, sweep, account)


class SliceQueue(Protocol):
    def send_message(self, content: str, *, visibility_timeout: int | None = None) -> Any: ...


def enqueue_recheck(queue: SliceQueue, resource_id: str, delay_seconds: int) -> None:
    """Ask for one account to be checked again in `delay_seconds` (the message stays invisible
    until then)."""
    piece = SweepSlice(subscription_of(resource_id), account=resource_id)
    queue.send_message(piece.to_message(), visibility_timeout=max(0, delay_seconds) or None)


class SweepQueue:
    """The worker's sweep queue: opened (`open_sweep_queue`) on its first message, not when the
    worker is built, so a worker that never fans out never touches the queue."""

    def __init__(
        self,
        storage: StorageSettings,
        credential: Any,
        name: str = SWEEP_QUEUE,
        *,
        timeouts: Timeouts = STORAGE_TIMEOUTS,
    ) -> None:
        self.storage = storage
        self.name = name
        self.timeouts = timeouts
        self._credential = credential
        self._client: Any = None
        self._lock = threading.Lock()

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = open_sweep_queue(
                    self.storage, self._credential, self.name, timeouts=self.timeouts
                )
            return self._client

    def send_message(self, content: str, **kwargs: Any) -> Any:
        return self.client().send_message(content, **kwargs)


def open_sweep_queue(
    storage: StorageSettings,
    credential: Any,
    name: str = SWEEP_QUEUE,
    *,
    timeouts: Timeouts = STORAGE_TIMEOUTS,
) -> Any:
    """A QueueClient for the sweep queue, from AzureWebJobsStorage (a connection string: Azurite
    locally) or its identity-based form (`AzureWebJobsStorage__accountName` or `__queueServiceUri`,
    with `credential`, the worker's identity). Messages are base64 text, as the Functions queue
    trigger expects. Every request waits at most `timeouts`. The queue is created if missing (the
    infra creates it; Azurite starts empty)."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.queue import QueueClient, TextBase64DecodePolicy, TextBase64EncodePolicy

    options: dict[str, Any] = {
        "message_encode_policy": TextBase64EncodePolicy(),
        "message_decode_policy": TextBase64DecodePolicy(),
        "connection_timeout": timeouts.connect,
        "read_timeout": timeouts.read,
        **STORAGE_RETRIES,
    }
    if storage.connection_string:
        client = QueueClient.from_connection_string(storage.connection_string, name, **options)
    else:
        endpoint = storage.endpoint("queue")
        if not endpoint:
            raise ValueError(
                "the sweep queue needs AzureWebJobsStorage (a connection string) or "
                "AzureWebJobsStorage__accountName / AzureWebJobsStorage__queueServiceUri"
            )
        client = QueueClient(endpoint, name, credential=credential, **options)
    with contextlib.suppress(ResourceExistsError):
        client.create_queue()
    return client


def governed(guardrail: Guardrail) -> list[str]:
    """The sweep's subscriptions: GUARDRAIL_SUBSCRIPTIONS, or every one the identity can see."""
    configured = list(guardrail.settings.subscriptions)
    if configured:
        return configured
    lister = getattr(guardrail.gateway, "list_subscriptions", None)
    return list(lister()) if lister is not None else []


def enqueue_sweep(guardrail: Guardrail, queue: SliceQueue) -> int:
    """The timer's part: one slice message per governed subscription; expired state rows purged.
    Returns the number of messages sent."""
    subscriptions = governed(guardrail)
    sweep = str(uuid.uuid4())

    def send(subscription: str) -> None:
        queue.send_message(SweepSlice(subscription, sweep=sweep).to_message())

    # A few sends at once: one after another, a tenant of 1,000 subscriptions took the timer ~30 s
    # of round trips before the last slice was queued (issue #27). The order of the messages does
    # not matter (each slice is one subscription's page); the first failure still fails the timer.
    with ThreadPoolExecutor(ENQUEUE_CONCURRENCY, thread_name_prefix="sweep-enqueue") as pool:
        for _ in pool.map(send, subscriptions):
            pass
    # What the journal names as unfinished or unreadable is few accounts: checked right here.
    unfinished = guardrail.unfinished_accounts(guardrail.settings.subscriptions or None)
    if unfinished:
        guardrail.sweep_accounts((), unfinished=unfinished)
    guardrail.state.purge(guardrail.clock())  # Table Storage has no TTL (as the in-process sweep)
    log.info("sweep: %d subscription slices enqueued on %s", len(subscriptions), SWEEP_QUEUE)
    return len(subscriptions)


def run_slice(guardrail: Guardrail, queue: SliceQueue, message: str | bytes) -> SweepReport | None:
    """The queue trigger's part: one page of one subscription. A malformed message, or one naming
    a subscription the guardrail does not govern, is logged and dropped (nothing is read or
    written); a page that cannot be listed raises, so the host redelivers the message."""
    try:
        piece = SweepSlice.from_message(message)
    except MalformedSlice as error:
        log.error("dropping sweep message: %s", error)
        return None
    configured = {name_key(s) for s in guardrail.settings.subscriptions}
    if configured and name_key(piece.subscription) not in configured:
        log.error("dropping sweep message for subscription %s: not governed", piece.subscription)
        return None
    if piece.account is not None:  # a re-check the reconciler asked for
        log.info("re-checking %s (asked for by an earlier check)", piece.account)
        return guardrail.sweep_accounts((), unfinished=[piece.account])
    accounts, link = guardrail.gateway.list_page(piece.subscription, piece.next_link)
    if link:  # the next page is its own slice: any free instance takes it while this one checks
        queue.send_message(SweepSlice(piece.subscription, link, piece.sweep).to_message())
    started = time.monotonic()
    report = guardrail.sweep_accounts(accounts)
    report.seconds = time.monotonic() - started
    # Each slice leaves its heartbeat: one row for its subscription (a subscription of several
    # pages leaves one per page), so "no heartbeat" means no slice completed.
    guardrail.observe.sweep_finished(report, [piece.subscription], piece.sweep)
    log.info(
        "sweep slice %s%s: %d listed, %d compliant, %d remediated, %d failed, %d errors",
        piece.subscription,
        " (next page enqueued)" if link else "",
        report.listed,
        report.compliant,
        report.count("remediated"),
        report.count("failed"),
        len(report.errors),
    )
    return report


def report_poison(message: str | bytes, message_id: str | None = None) -> str:
    """A slice the host gave up on (after host.json's `maxDequeueCount` deliveries it moved it to
    the poison queue): logged at ERROR, naming the slice, so it is seen, not lost. The message stays
    on the poison queue for an operator. Returns the line logged."""
    try:
        piece = SweepSlice.from_message(message)
        what = f"subscription {piece.subscription}, " + (
            f"page {escaping.shown(piece.next_link, 2000)}" if piece.next_link else "first page"
        )
    except MalformedSlice as error:
        text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
        what = f"unreadable message {escaping.shown(text)} ({escaping.escape_control(str(error))})"
    shown_id = escaping.escape_control(message_id or "?")
    line = (
        f"sweep slice failed on every delivery and was moved to {POISON_QUEUE} "
        f"(message {shown_id}): {what}; its accounts were not swept this time"
    )
    log.error("%s", line)
    return line
