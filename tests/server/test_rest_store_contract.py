"""The tracking store contract through a Shipyard server: :class:`RestTrackingStore` over HTTP.

Every test gets its own empty workspace served by a real uvicorn on a loopback port (the
contract assumes an empty store: exact experiment lists, every referenced digest...). The server
runs in a thread of the test process (:func:`tests.server.conftest.serve_in_thread`), which
costs milliseconds; the requests still cross a real socket, HTTP parser and JSON encoding.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from shipyard._http import HttpClient
from shipyard.config import Settings
from shipyard.server.app import create_app
from shipyard.store.rest import RestTrackingStore
from shipyard.workspace import Workspace
from tests.server.conftest import serve_in_thread
from tests.store.contract import TrackingStoreContract


class TestRestTrackingStore(TrackingStoreContract):
    __test__ = True

    @pytest.fixture
    def store(
        self, settings: Settings, caplog: pytest.LogCaptureFixture
    ) -> Iterator[RestTrackingStore]:
        caplog.set_level(logging.ERROR, logger="shipyard.server")
        with Workspace.open(settings) as ws, serve_in_thread(create_app(ws)) as url:
            store = RestTrackingStore(HttpClient(url, timeout=30, retries=0))
            try:
                yield store
            finally:
                store.close()
        unexpected = [r for r in caplog.records if r.name.startswith("shipyard.server")]
        assert not unexpected, "the server hit unexpected errors: " + "; ".join(
            r.getMessage() for r in unexpected
        )


def test_the_rest_store_talks_to_a_real_socket(settings: Settings) -> None:
    with Workspace.open(settings) as ws, serve_in_thread(create_app(ws)) as url:
        assert url.startswith("http://127.0.0.1:")
        with RestTrackingStore(HttpClient(url, retries=0)) as store:
            eid = store.create_experiment("over-http")
        assert ws.store.get_experiment(eid).name == "over-http"
