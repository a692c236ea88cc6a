"""Fixtures for the rules tests: datafile fixtures and official-SDK clients to compare with."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from optimizely import optimizely
from optimizely.event.event_processor import ForwardingEventProcessor
from optimizely.helpers.sdk_settings import OptimizelySdkSettings

DATAFILES = Path(__file__).resolve().parent.parent / "fixtures" / "datafiles"


class _DiscardEvents:
    """Event dispatcher for the official SDK that sends nothing anywhere."""

    def dispatch_event(self, event: object) -> None:
        pass


def _quiet_logger() -> logging.Logger:
    """The SDK logs every decision step; pytest would capture hundreds of thousands of records."""
    logger = logging.getLogger("tests.optimizely-sdk")
    logger.setLevel(logging.CRITICAL + 1)
    logger.propagate = False
    return logger


def read_datafile(name: str) -> str:
    return (DATAFILES / name).read_text(encoding="utf-8")


SdkFactory = Callable[[str | dict[str, Any]], optimizely.Optimizely]


@pytest.fixture(scope="module")
def sdk_client() -> Iterator[SdkFactory]:
    """Build official-SDK clients from datafile JSON (or a dict); all are closed afterwards."""
    clients: list[optimizely.Optimizely] = []

    def build(datafile: str | dict[str, Any]) -> optimizely.Optimizely:
        text = datafile if isinstance(datafile, str) else json.dumps(datafile)
        dispatcher = _DiscardEvents()
        client = optimizely.Optimizely(
            datafile=text,
            event_dispatcher=dispatcher,
            event_processor=ForwardingEventProcessor(dispatcher),
            settings=OptimizelySdkSettings(odp_disabled=True),
            logger=_quiet_logger(),
        )
        # The SDK logs and carries on with an unusable datafile; a comparison needs a real one.
        assert client.config_manager.get_config() is not None, "the SDK rejected the datafile"
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.close()
