"""A plugin's table of openlam.toml: declared as a model, parsed once, wrong ones named."""

from __future__ import annotations

import types
from pathlib import Path
from typing import ClassVar

import pytest
from pydantic import PositiveFloat

from openlam.actions.builtin.crm.config import CrmConfig
from openlam.actions.builtin.email.config import EmailConfig
from openlam.actions.plugin_config import PluginConfig, PluginConfigError
from openlam.actions.registry import ActionRegistry, load_plugins
from openlam.actions.spec import ActionContext, Risk, action
from openlam.config import load_settings
from openlam.errors import ActionError, UserError
from tests.fakes.action_ctx import action_context


class Units(PluginConfig):
    temperature: str = "celsius"


class WeatherConfig(PluginConfig):
    section: ClassVar[str] = "weather"
    hint: ClassVar[str] = "see the weather plugin's README"

    base_url: str = "https://api.weather.example"
    timeout: PositiveFloat = 10.0
    units: Units = Units()


@action("weather.today", risk=Risk.read, idempotent=True)
def today(ctx: ActionContext, city: str) -> dict[str, str]:
    """Today's weather.

    Args:
        city: A city.
    """
    config = WeatherConfig.of(ctx)
    return {"city": city, "units": config.units.temperature}


def weather_plugin() -> types.ModuleType:
    """A third-party plugin as an entry point would name it."""
    module = types.ModuleType("weather_plugin")
    module.CONFIG = WeatherConfig  # type: ignore[attr-defined]
    module.today = today  # type: ignore[attr-defined]
    return module


async def test_a_plugin_reads_its_table_typed(workspace: Path) -> None:
    ctx = action_context(workspace, '[weather]\ntimeout = 3\n[weather.units]\ntemperature = "K"\n')
    config = WeatherConfig.of(ctx)
    assert config.timeout == 3.0 and config.units.temperature == "K"
    assert WeatherConfig.of(ctx.settings) is config  # parsed once per settings
    assert await today.__openlam_action__.call(ctx, {"city": "Oslo"}) == {  # type: ignore[attr-defined]
        "city": "Oslo",
        "units": "K",
    }
    assert WeatherConfig.of(action_context(workspace, "")).timeout == 10.0  # no table: defaults


async def test_a_broken_table_is_reported_at_load_naming_file_table_key_and_fix(
    workspace: Path,
) -> None:
    ctx = action_context(workspace, "[weather]\ntimeout = -1\n")
    registry = ActionRegistry()
    registry.add_module(weather_plugin(), source="weather", settings=ctx.settings)
    (problem,) = registry.load_errors
    assert problem.startswith("plugin weather: [weather] in openlam.toml is invalid: timeout:")
    assert "greater than 0 (got -1)" in problem
    assert f"fix: correct timeout under [weather] in {workspace / 'openlam.toml'}" in problem
    assert "see the weather plugin's README" in problem
    # the action stays, and fails with the same words: a step failure, not a traceback
    spec = registry.get("weather.today")
    assert spec is not None
    with pytest.raises(ActionError) as caught:
        await spec.call(ctx, {"city": "Oslo"})
    assert isinstance(caught.value, UserError) and not caught.value.transient
    assert str(caught.value) == problem.removeprefix("plugin weather: ")


def test_unknown_keys_are_named_with_the_known_ones() -> None:
    with pytest.raises(PluginConfigError) as caught:
        WeatherConfig.parse({"weather": {"timout": 3, "units": {"temprature": "K"}}})
    message = str(caught.value)
    assert (
        "timout: unknown field (did you mean 'timeout'?) (allowed: base_url, timeout, units)"
        in message
    )
    assert "units.temprature: unknown field (did you mean 'temperature'?)" in message
    assert "under [weather] in openlam.toml; see the weather plugin's README" in message


def test_a_table_that_is_not_a_table() -> None:
    with pytest.raises(PluginConfigError, match=r"\[weather\] in openlam.toml must be a table"):
        WeatherConfig.parse({"weather": 5})


def test_builtin_tables_are_checked_when_plugins_load(workspace: Path) -> None:
    (workspace / "openlam.toml").write_text(
        '[email.smtp]\nhost = "mail"\nport = "x"\nsecurity = "tls"\n[crm]\nstages = "won"\n',
        encoding="utf-8",
    )
    registry = load_plugins(settings=load_settings(workspace))
    errors = "\n".join(registry.load_errors)
    assert "plugin email: [email] in openlam.toml is invalid: smtp.port:" in errors
    assert "smtp.security: Input should be 'ssl', 'starttls' or 'none' (got 'tls')" in errors
    assert "plugin crm: [crm] in openlam.toml is invalid: stages:" in errors
    assert "email.send" in registry and "crm.deal_create" in registry


def test_builtin_defaults_and_spellings() -> None:
    email = EmailConfig.parse({"email": {"from": "a@b.example", "smtp": {"security": "SSL"}}})
    assert email.sender == "a@b.example" and email.smtp.security == "ssl"
    assert CrmConfig.parse({"crm": {"stages": [" New ", "Won"]}}).stages == ["new", "won"]
    assert CrmConfig.parse({}).stages[0] == "lead"
