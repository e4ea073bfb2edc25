"""The registry store contract through a Shipyard server: :class:`RestRegistryStore` over HTTP.

As for the tracking contract (``tests/server/test_rest_store_contract.py``), every test gets its
own empty workspace served by a real uvicorn on a loopback port, in a thread of the test process
(:func:`tests.server.conftest.serve_in_thread`); requests cross a real socket, HTTP parser and
JSON encoding. The tracking side of the contract (runs and the artifact index the versions copy)
goes through :class:`RestTrackingStore` on the same connection pool, as in a remote workspace.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from shipyard import errors
from shipyard._http import HttpClient
from shipyard.config import Settings
from shipyard.server.app import create_app
from shipyard.store.rest import RestTrackingStore
from shipyard.store.rest_registry import RestRegistryStore
from shipyard.workspace import Workspace
from tests.server.conftest import serve_in_thread
from tests.store.registry_contract import RegistryStoreContract, model_name


class TestRestRegistryStore(RegistryStoreContract):
    __test__ = True

    @pytest.fixture
    def stores(
        self, settings: Settings, caplog: pytest.LogCaptureFixture
    ) -> Iterator[tuple[RestTrackingStore, RestRegistryStore]]:
        caplog.set_level(logging.ERROR, logger="shipyard.server")
        with Workspace.open(settings) as ws, serve_in_thread(create_app(ws)) as url:
            http = HttpClient(url, timeout=30, retries=0)
            try:
                yield RestTrackingStore(http), RestRegistryStore(http)
            finally:
                http.close()
        unexpected = [r for r in caplog.records if r.name.startswith("shipyard.server")]
        assert not unexpected, "the server hit unexpected errors: " + "; ".join(
            r.getMessage() for r in unexpected
        )

    # What only a store behind URLs has to get right: values a URL path can't carry.

    @pytest.mark.parametrize("bad", ["", "a/b", "a/versions/1"])
    def test_names_a_path_cannot_carry_are_refused_before_sending(
        self, registry: RestRegistryStore, bad: str
    ) -> None:
        with pytest.raises(errors.InvalidInput, match="model name"):
            registry.get_registered_model(bad)
        with pytest.raises(errors.InvalidInput, match="model name"):
            registry.set_registered_model_tag(bad, "k", "v")

    def test_odd_characters_in_names_aliases_and_keys_travel_intact(
        self, tracking: RestTrackingStore, registry: RestRegistryStore
    ) -> None:
        name = model_name("odd .. %2F ? # é")
        self.register(tracking, registry, name)
        assert registry.get_registered_model(name).name == name
        registry.set_model_version_tag(name, 1, "a/b.c", "v")
        assert registry.get_model_version(name, 1).tags == {"a/b.c": "v"}
        registry.set_alias(name, "champion", 1)
        assert registry.get_model_version_by_alias(name, "champion").version == 1

    def test_aliases_with_a_slash_are_never_there(
        self, tracking: RestTrackingStore, registry: RestRegistryStore
    ) -> None:
        name = model_name()
        self.register(tracking, registry, name)
        with pytest.raises(errors.NotFound, match="no alias 'a/b'"):
            registry.get_model_version_by_alias(name, "a/b")
        with pytest.raises(errors.NotFound, match="no alias 'a/b'"):
            registry.delete_alias(name, "a/b")
        assert registry.alias_at(name, "a/b", 2**40) is None
        for call in (
            lambda: registry.get_model_version_by_alias("no-such-model", "a/b"),
            lambda: registry.alias_at("no-such-model", "a/b", 2**40),
        ):
            with pytest.raises(errors.NotFound, match="does not exist"):
                call()
