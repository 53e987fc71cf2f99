"""Fuzz the API from its own OpenAPI document (schemathesis): no request may cause a 5xx.

Uses schemathesis' strategies with hypothesis directly (not its pytest plugin, which does
not follow every pytest release).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from alert_router.app import create_app
from tests.alert_router.harness import AUTH, base_config

pytestmark = pytest.mark.slow
EXAMPLES_PER_OPERATION = 40


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    app = create_app(base_config(tmp), start_background=False)
    yield app
    app.extensions["stacksense"].close()


def test_no_request_causes_a_server_error(fuzzed_app):
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", fuzzed_app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15
    failures: list[str] = []
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call(headers=AUTH)
            case.validate_response(response, checks=[not_a_server_error])

        try:
            check()
        except Exception as exc:  # noqa: BLE001 - collect every operation's failure
            failures.append(f"{operation.label}: {exc}")
    assert failures == []
    # Whatever the fuzzer got accepted must be processable by the dispatcher.
    state = fuzzed_app.extensions["stacksense"]
    state.dispatcher.step(time.time())
    assert state.store.inbox.depth() == 0
