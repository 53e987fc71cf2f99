"""Fuzz the API from its own OpenAPI document (schemathesis): no request may cause a 5xx."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from alert_router.app import create_app
from tests.alert_router.conftest import AUTH, base_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzzed_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    app = create_app(base_config(tmp), start_background=False)
    yield app
    # Whatever the fuzzer got accepted must be processable by the dispatcher.
    state = app.extensions["stacksense"]
    state.dispatcher.step(time.time())
    assert state.store.inbox_depth() == 0
    state.close()


@pytest.fixture(scope="module")
def api_schema(fuzzed_app: object) -> object:
    return schemathesis.openapi.from_wsgi("/api/openapi.json", fuzzed_app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=10, deadline=None,
          suppress_health_check=list(HealthCheck))
def test_no_server_errors(case):
    response = case.call(headers=AUTH)
    case.validate_response(response, checks=[not_a_server_error])
    assert response.status_code < 500
