"""`arm_problem` (issue 16): an ARM failure that is clearly the caller's set-up is told in one line
with the setting to set, found through the exception's causes as the gateway raises them
(`TransientArmError` from azure-core's error, which wraps requests' and ssl's)."""

from __future__ import annotations

import socket
import ssl

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ServiceRequestError

from guardrail.cli import arm_problem, one_line
from guardrail.gateway import TransientArmError

ENDPOINT = "https://127.0.0.1:8443"


def raised_through_the_gateway(root: BaseException) -> TransientArmError:
    """The chain the gateway builds: requests' error from the root, azure-core's from requests'."""
    try:
        try:
            try:
                raise root
            except BaseException as exc:
                raise requests.exceptions.ConnectionError(exc) from exc
        except requests.exceptions.ConnectionError as exc:
            raise ServiceRequestError(str(exc), error=exc) from exc
    except ServiceRequestError as exc:
        try:
            raise TransientArmError("GET /subscriptions: failed", code="ServiceRequestError") from exc
        except TransientArmError as transient:
            return transient


@pytest.mark.parametrize(
    ("root", "words"),
    [
        (ConnectionRefusedError(111, "Connection refused"), ["refused", "ARM_ENDPOINT", ENDPOINT]),
        (
            ssl.SSLCertVerificationError(1, "[SSL: CERTIFICATE_VERIFY_FAILED]"),
            ["not trusted", "ARM_CA_BUNDLE"],
        ),
        (socket.gaierror(-2, "Name or service not known"), ["does not resolve", "ARM_ENDPOINT"]),
    ],
)
def test_set_up_failures_through_the_cause_chain(root: BaseException, words: list[str]) -> None:
    problem = arm_problem(raised_through_the_gateway(root), ENDPOINT)
    assert problem is not None
    for word in words:
        assert word in problem


def test_no_credential_names_az_login_and_the_static_credential() -> None:
    try:
        raise TransientArmError("GET /subscriptions: no token") from ClientAuthenticationError(
            "no credential"
        )
    except TransientArmError as error:
        problem = arm_problem(error, ENDPOINT)
    assert problem is not None and "az login" in problem and "ARM_CREDENTIAL=static" in problem


def test_the_sweeps_text_errors_too() -> None:
    text = "listing: TransientArmError: GET https://x: ... [Errno 111] Connection refused"
    assert "refused" in (arm_problem(text, ENDPOINT) or "")


def test_other_failures_are_not_mapped() -> None:
    throttled = TransientArmError("GET /subscriptions: too many requests", status=429)
    assert arm_problem(throttled, ENDPOINT) is None
    assert arm_problem(HttpResponseError("500 internal error"), ENDPOINT) is None


def test_one_line_joins_a_heading_and_its_items() -> None:
    assert one_line("invalid settings:\n  A: bad\n  B: worse") == "invalid settings: A: bad; B: worse"
    assert one_line("single") == "single"
