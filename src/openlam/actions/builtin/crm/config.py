"""The ``[crm]`` table of openlam.toml: the deal pipeline's stages."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator

from openlam.actions.plugin_config import PluginConfig
from openlam.actions.spec import ActionContext
from openlam.errors import ActionError

DEFAULT_STAGES = ("lead", "qualified", "proposal", "negotiation", "won", "lost")
CLOSED_STAGES = ("won", "lost")


def _stage_names(value: Any) -> Any:
    """Stages compare case-insensitively; an empty list means the default pipeline."""
    if isinstance(value, list):
        return [str(s).strip().lower() for s in value] or list(DEFAULT_STAGES)
    return value


class CrmConfig(PluginConfig):
    """The ``[crm]`` table of openlam.toml."""

    section: ClassVar[str] = "crm"
    hint: ClassVar[str] = 'stages is a list of names, the first the initial one: ["new", "won"]'

    stages: Annotated[list[str], BeforeValidator(_stage_names)] = list(DEFAULT_STAGES)


CONFIG = CrmConfig


def stages_of(ctx: ActionContext) -> tuple[str, ...]:
    return tuple(CrmConfig.of(ctx).stages)


def check_stage(ctx: ActionContext, stage: str) -> str:
    value = stage.strip().lower()
    allowed = stages_of(ctx)
    if value not in allowed:
        raise ActionError(
            f"unknown deal stage {stage!r}; use one of {', '.join(allowed)} "
            "(or set [crm] stages in openlam.toml)"
        )
    return value
