"""A plugin's table of ``openlam.toml`` as a pydantic model, parsed the same way for all.

A plugin declares its configuration once::

    class StripeConfig(PluginConfig):
        base_url: str = "https://api.stripe.com"
        timeout: PositiveFloat = 30.0

    class PaymentsConfig(PluginConfig):
        section: ClassVar[str] = "payments"          # the table: [payments]
        stripe: StripeConfig = StripeConfig()         # [payments.stripe]

    CONFIG = PaymentsConfig                           # module level: checked at load

and an action reads it, typed, with ``PaymentsConfig.of(ctx)``. The table is parsed once
per :class:`~openlam.config.Settings` (the registry does it when it loads the plugin, so
a mistake is reported before any run). A bad table is a :class:`PluginConfigError`
naming the file, the table, the key and the fix; an unknown key is a mistake too (a
typo would otherwise be ignored silently).
"""

from __future__ import annotations

from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError

from openlam.config import CONFIG_FILE, Settings, load_settings
from openlam.errors import ActionError, UserError
from openlam.validation import explain

_MAX_CACHED = 256


class PluginConfigError(UserError, ActionError):
    """A plugin's table in openlam.toml is wrong. A :class:`UserError` where settings are
    loaded, and an :class:`ActionError` inside an action: the step fails, naming the fix."""

    def __init__(self, message: str, hint: str) -> None:
        UserError.__init__(self, message, hint)
        self.transient = False


class PluginConfig(BaseModel):
    """Base of a plugin's configuration. Subclasses set :attr:`section` (a top-level table
    of openlam.toml) and may set :attr:`hint`, added to the fix of every error. Nested
    tables are fields whose type is another ``PluginConfig`` (``section`` unset)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    section: ClassVar[str] = ""
    hint: ClassVar[str] = ""

    @classmethod
    def of(cls, source: Any) -> Self:
        """This plugin's configuration in ``source``: an ActionContext or Settings (None,
        or a context without settings: the current workspace's)."""
        settings = settings_of(source)
        key = (id(settings), cls)
        cached = _parsed.get(key)
        if cached is not None and cached[0] is settings:
            return cached[1]  # type: ignore[return-value]
        config = cls.parse(settings.raw, settings.workspace / CONFIG_FILE)
        if len(_parsed) >= _MAX_CACHED:
            _parsed.clear()
        _parsed[key] = (settings, config)
        return config

    @classmethod
    def parse(cls, raw: dict[str, Any], path: Any = CONFIG_FILE) -> Self:
        """Validate ``raw[section]`` (missing: every default); raises PluginConfigError."""
        if not cls.section:
            raise TypeError(f"{cls.__name__} has no section: set section = 'NAME'")
        table = raw.get(cls.section, {})
        if not isinstance(table, dict):
            raise PluginConfigError(
                f"[{cls.section}] in {CONFIG_FILE} must be a table, not {table!r}",
                f"write it as a [{cls.section}] table in {path}" + _more(cls.hint),
            )
        try:
            return cls.model_validate(table)
        except ValidationError as exc:
            problems = [_problem(cls, err) for err in exc.errors()]
            keys = ", ".join(dict.fromkeys(p[0] for p in problems))
            raise PluginConfigError(
                f"[{cls.section}] in {CONFIG_FILE} is invalid: "
                + "; ".join(f"{where}: {what}" for where, what in problems),
                f"correct {keys} under [{cls.section}] in {path}" + _more(cls.hint),
            ) from None


_parsed: dict[tuple[int, type], tuple[Settings, PluginConfig]] = {}


def settings_of(source: Any) -> Settings:
    """The settings an action runs with: its context's, else the workspace's."""
    if isinstance(source, Settings):
        return source
    settings = getattr(source, "settings", None)
    if isinstance(settings, Settings):
        return settings
    return load_settings(getattr(source, "workspace", None))


def check(module: Any, settings: Any) -> str | None:
    """The registry's check at load: the module's ``CONFIG`` against ``settings``; the
    problem in words, or None. Without settings nothing is checked (the action will)."""
    model = getattr(module, "CONFIG", None)
    if not (isinstance(model, type) and issubclass(model, PluginConfig)):
        return None
    if not isinstance(settings, Settings):
        return None
    try:
        model.of(settings)
    except PluginConfigError as exc:
        return str(exc)
    return None


def _more(hint: str) -> str:
    return f"; {hint}" if hint else ""


def _problem(model: type[BaseModel], err: Any) -> tuple[str, str]:
    """(dotted key, what is wrong) for one pydantic error."""
    return ".".join(str(p) for p in err["loc"]) or "(table)", explain(model, err)
