"""Local look-alikes of the web services the built-in actions talk to. Each starts once
per test module (a server per test would cost more than most tests) and is reset before
every test that asks for it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import TypeVar, cast

import pytest

from tests.fakes.fake_mastodon import FakeMastodon
from tests.fakes.fake_searxng import FakeSearXNG
from tests.fakes.fake_stripe import FakeStripe
from tests.fakes.fake_webhooks import FakeWebhooks
from tests.fakes.http import FakeService

Fake = TypeVar("Fake", bound=FakeService)


class Fakes:
    """The fakes running for one test module, by the callable that made them."""

    def __init__(self, stack: ExitStack) -> None:
        self._stack = stack
        self._running: dict[Callable[[], FakeService], FakeService] = {}

    def fresh(self, make: Callable[[], Fake]) -> Fake:
        """The module's fake made by ``make`` (started on first use), reset."""
        fake = self._running.get(make)
        if fake is None:
            fake = self._running[make] = self._stack.enter_context(make())
        fake.reset()
        return cast(Fake, fake)


@pytest.fixture(scope="module")
def fakes() -> Iterator[Fakes]:
    with ExitStack() as stack:
        yield Fakes(stack)


def _mastodon() -> FakeMastodon:
    return FakeMastodon({"token-write": {"write:statuses"}, "token-read": {"read"}})


@pytest.fixture
def stripe(fakes: Fakes) -> FakeStripe:
    return fakes.fresh(FakeStripe)


@pytest.fixture
def hooks(fakes: Fakes) -> FakeWebhooks:
    return fakes.fresh(FakeWebhooks)


@pytest.fixture
def mastodon(fakes: Fakes) -> FakeMastodon:
    return fakes.fresh(_mastodon)  # one token may post, the other only read


@pytest.fixture
def searxng(fakes: Fakes) -> FakeSearXNG:
    return fakes.fresh(FakeSearXNG)
