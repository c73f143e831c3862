"""social.* against local receivers that answer like Slack, Discord, Mattermost and
Mastodon."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from openlam.actions.builtin import social
from openlam.actions.registry import load_plugins
from openlam.actions.spec import ActionContext, Risk
from openlam.errors import ActionError
from openlam.loop.act import execute
from tests.fakes.action_ctx import action_context
from tests.fakes.fake_mastodon import FakeMastodon
from tests.fakes.fake_webhooks import (
    DISCORD_HOOK,
    MATTERMOST_HOOK,
    SLACK_ARCHIVED_HOOK,
    SLACK_HOOK,
    SLACK_SALES_HOOK,
    FakeWebhooks,
)

SLACK = social.slack_post.__openlam_action__  # type: ignore[attr-defined]
DISCORD = social.discord_post.__openlam_action__  # type: ignore[attr-defined]
MATTERMOST = social.mattermost_post.__openlam_action__  # type: ignore[attr-defined]
MASTODON = social.mastodon_post.__openlam_action__  # type: ignore[attr-defined]


def hook_ctx(
    workspace: Path, hooks: FakeWebhooks, toml: str = "", step_id: str = "s1"
) -> ActionContext:
    return action_context(
        workspace,
        toml,
        step_id=step_id,
        secrets={
            "SLACK_WEBHOOK_URL": hooks.url + SLACK_HOOK,
            "SLACK_WEBHOOK_URL_SALES": hooks.url + SLACK_SALES_HOOK,
            "SLACK_WEBHOOK_URL_OLD": hooks.url + SLACK_ARCHIVED_HOOK,
            "SLACK_WEBHOOK_URL_REVOKED": hooks.url + "/services/T0001/B0009/revokedsecret",
            "DISCORD_WEBHOOK_URL": hooks.url + DISCORD_HOOK,
            "MATTERMOST_WEBHOOK_URL": hooks.url + MATTERMOST_HOOK,
        },
    )


def mastodon_ctx(
    workspace: Path,
    mastodon: FakeMastodon,
    token: str = "token-write",
    step_id: str = "s1",
    extra: str = "",
) -> ActionContext:
    toml = f'[social.mastodon]\nbase_url = "{mastodon.url}"\n{extra}'
    return action_context(workspace, toml, {"MASTODON_TOKEN": token}, step_id=step_id)


# ---------------------------------------------------------------------------- Slack


async def test_slack_post_reaches_the_webhook(hooks: FakeWebhooks, workspace: Path) -> None:
    out = await SLACK.call(hook_ctx(workspace, hooks), {"text": "Q3 report is *ready*"})
    assert out == {
        "service": "slack",
        "webhook": "SLACK_WEBHOOK_URL",
        "message_id": "",
        "chars": 20,
    }
    [post] = hooks.posts("slack")
    assert post["path"] == SLACK_HOOK
    assert post["payload"] == {"text": "Q3 report is *ready*"}
    assert post["headers"]["content-type"] == "application/json"


async def test_slack_target_selects_a_named_webhook(hooks: FakeWebhooks, workspace: Path) -> None:
    out = await SLACK.call(hook_ctx(workspace, hooks), {"text": "new lead", "target": "sales"})
    assert out["webhook"] == "SLACK_WEBHOOK_URL_SALES"
    assert [p["path"] for p in hooks.posts("slack")] == [SLACK_SALES_HOOK]


async def test_slack_errors_name_the_cause_and_hide_the_url(
    hooks: FakeWebhooks, workspace: Path
) -> None:
    ctx = hook_ctx(workspace, hooks)
    with pytest.raises(ActionError) as revoked:
        await SLACK.call(ctx, {"text": "hi", "target": "revoked"})
    assert "SLACK_WEBHOOK_URL_REVOKED) answered HTTP 404: no_service" in str(revoked.value)
    assert "revokedsecret" not in str(revoked.value)
    assert not revoked.value.transient
    with pytest.raises(ActionError, match="HTTP 410: channel_is_archived"):
        await SLACK.call(ctx, {"text": "hi", "target": "old"})
    with pytest.raises(ActionError, match="nothing to post"):
        await SLACK.call(ctx, {"text": "  "})
    with pytest.raises(
        ActionError,
        match=r"set the secret SLACK_WEBHOOK_URL_NOPE .*"
        r"openlam secrets set SLACK_WEBHOOK_URL_NOPE",
    ):
        await SLACK.call(ctx, {"text": "hi", "target": "nope"})
    with pytest.raises(ActionError, match="letters, digits or underscores"):
        await SLACK.call(ctx, {"text": "hi", "target": "../x"})
    assert hooks.posts("slack") == []


async def test_missing_webhook_secret(workspace: Path) -> None:
    result = await execute(SLACK, action_context(workspace), {"text": "hi"}, timeout=5, retries=2)
    assert result.status == "failed"
    assert result.attempts == 1
    assert "no Slack webhook is configured: set the secret SLACK_WEBHOOK_URL" in result.error


async def test_a_post_whose_answer_is_lost_is_not_repeated(
    hooks: FakeWebhooks, workspace: Path
) -> None:
    hooks.delay = 20
    ctx = hook_ctx(workspace, hooks, "[social]\ntimeout = 0.5\n")
    result = await execute(SLACK, ctx, {"text": "deploy done"}, timeout=10, retries=2)
    assert result.status == "failed"
    assert result.attempts == 1
    assert "did not answer within 0.5s" in result.error
    assert "may have been delivered" in result.error


# -------------------------------------------------------------------------- Discord


async def test_discord_post_waits_for_the_message_and_blocks_mentions(
    hooks: FakeWebhooks, workspace: Path
) -> None:
    out = await DISCORD.call(
        hook_ctx(workspace, hooks),
        {"content": "@everyone release 2.0 is out", "username": "OpenLAM"},
    )
    assert out["service"] == "discord"
    assert out["message_id"].isdigit()
    [post] = hooks.posts("discord")
    assert post["query"] == {"wait": ["true"]}
    assert post["payload"] == {
        "content": "@everyone release 2.0 is out",
        "allowed_mentions": {"parse": []},
        "username": "OpenLAM",
    }


async def test_discord_length_limit_is_checked_before_sending(
    hooks: FakeWebhooks, workspace: Path
) -> None:
    with pytest.raises(ActionError, match=r"at most 2000 characters.*has 2001"):
        await DISCORD.call(hook_ctx(workspace, hooks), {"content": "x" * 2001})
    assert hooks.received == []


async def test_discord_rate_limit_is_retried(hooks: FakeWebhooks, workspace: Path) -> None:
    hooks.discord_rate_limited = 1
    result = await execute(
        DISCORD, hook_ctx(workspace, hooks), {"content": "hello"}, timeout=10, retries=2
    )
    assert result.status == "succeeded", result.error
    assert result.attempts == 2
    assert len(hooks.posts("discord")) == 1


# ----------------------------------------------------------------------- Mattermost


async def test_mattermost_post_with_channel_and_username(
    hooks: FakeWebhooks, workspace: Path
) -> None:
    ctx = hook_ctx(workspace, hooks)
    out = await MATTERMOST.call(
        ctx, {"text": "standup in 5", "channel": "town-square", "username": "openlam"}
    )
    assert out["webhook"] == "MATTERMOST_WEBHOOK_URL"
    [post] = hooks.posts("mattermost")
    assert post["payload"] == {
        "text": "standup in 5",
        "channel": "town-square",
        "username": "openlam",
    }
    with pytest.raises(
        ActionError,
        match="HTTP 403: This webhook is not permitted to post to the requested channel",
    ):
        await MATTERMOST.call(
            hook_ctx(workspace, hooks, step_id="s2"), {"text": "x", "channel": "locked"}
        )


# ------------------------------------------------------------------------- Mastodon


async def test_mastodon_post_sends_token_idempotency_key_and_body(
    mastodon: FakeMastodon, workspace: Path
) -> None:
    ctx = mastodon_ctx(workspace, mastodon)
    out = await MASTODON.call(
        ctx,
        {
            "status": "We shipped 2.0 🎉",
            "visibility": "unlisted",
            "spoiler_text": "release",
            "language": "en",
        },
    )
    [request] = mastodon.requests
    assert request["headers"]["authorization"] == "Bearer token-write"
    assert request["headers"]["idempotency-key"] == ctx.idempotency_key == "run-1:s1"
    [status] = mastodon.statuses.values()
    assert out == {
        "id": status["id"],
        "url": status["url"],
        "uri": status["uri"],
        "created_at": status["created_at"],
        "visibility": "unlisted",
    }
    assert status["spoiler_text"] == "release"
    assert status["content"] == "<p>We shipped 2.0 🎉</p>"


async def test_mastodon_same_step_twice_is_one_status(
    mastodon: FakeMastodon, workspace: Path
) -> None:
    first = await MASTODON.call(mastodon_ctx(workspace, mastodon), {"status": "hello"})
    again = await MASTODON.call(mastodon_ctx(workspace, mastodon), {"status": "hello"})
    assert again["id"] == first["id"]
    assert len(mastodon.statuses) == 1
    other = await MASTODON.call(
        mastodon_ctx(workspace, mastodon, step_id="s2"), {"status": "hello"}
    )
    assert other["id"] != first["id"]
    assert len(mastodon.statuses) == 2


async def test_mastodon_server_error_is_retried_with_the_same_key(
    mastodon: FakeMastodon, workspace: Path
) -> None:
    mastodon.fail_next = [503]
    result = await execute(
        MASTODON, mastodon_ctx(workspace, mastodon), {"status": "retry me"}, timeout=10, retries=2
    )
    assert result.status == "succeeded", result.error
    assert result.attempts == 2
    keys = {r["headers"]["idempotency-key"] for r in mastodon.requests}
    assert keys == {"run-1:s1"}
    assert len(mastodon.statuses) == 1


async def test_mastodon_refusals_name_the_fix(mastodon: FakeMastodon, workspace: Path) -> None:
    with pytest.raises(ActionError, match=r"refused the access token.*MASTODON_TOKEN") as bad:
        await MASTODON.call(
            mastodon_ctx(workspace, mastodon, token="wrong-token"), {"status": "hi"}
        )
    assert not bad.value.transient
    assert "wrong-token" not in str(bad.value)
    with pytest.raises(ActionError, match="needs the write:statuses scope"):
        await MASTODON.call(mastodon_ctx(workspace, mastodon, token="token-read"), {"status": "hi"})
    with pytest.raises(
        ActionError, match="HTTP 422: Validation failed: Text character limit of 500 exceeded"
    ) as long:
        await MASTODON.call(mastodon_ctx(workspace, mastodon), {"status": "y" * 501})
    assert not long.value.transient
    assert mastodon.statuses == {}


async def test_mastodon_configuration_is_required(mastodon: FakeMastodon, workspace: Path) -> None:
    with pytest.raises(ActionError, match=r"base_url under \[social.mastodon\]"):
        await MASTODON.call(
            action_context(workspace, "", {"MASTODON_TOKEN": "t"}), {"status": "hi"}
        )
    no_token = action_context(workspace, f'[social.mastodon]\nbase_url = "{mastodon.url}"\n')
    with pytest.raises(ActionError, match="secret MASTODON_TOKEN"):
        await MASTODON.call(no_token, {"status": "hi"})
    assert mastodon.requests == []


async def test_mastodon_slow_server_times_out(mastodon: FakeMastodon, workspace: Path) -> None:
    mastodon.delay = 20
    ctx = mastodon_ctx(workspace, mastodon, extra="timeout = 0.5\n")
    result = await execute(MASTODON, ctx, {"status": "hi"}, timeout=10, retries=0)
    assert result.status == "failed"
    assert "Mastodon at http://127.0.0.1" in result.error
    assert "did not answer within 0.5s" in result.error


def test_registered_with_risk_secrets_and_delivery() -> None:
    registry = load_plugins()
    expected = {
        "social.slack_post": ("SLACK_WEBHOOK_URL", "checked", False),
        "social.discord_post": ("DISCORD_WEBHOOK_URL", "checked", True),
        "social.mattermost_post": ("MATTERMOST_WEBHOOK_URL", "checked", False),
        "social.mastodon_post": ("MASTODON_TOKEN", "keyed", True),
    }
    for name, (secret, delivery, verified) in expected.items():
        spec = registry.get(name)
        assert spec is not None, name
        assert spec.risk is Risk.external
        assert spec.egress  # the plan chooses what leaves for the channel
        assert spec.secrets == (secret,)
        assert spec.delivery == delivery
        assert (spec.verify is not None) is verified


# ------------------------------------------------------------ exactly once, verified


@pytest.mark.parametrize(
    "spec", [SLACK, DISCORD, MATTERMOST], ids=["slack", "discord", "mattermost"]
)
async def test_a_repeated_step_posts_once(spec: Any, hooks: FakeWebhooks, workspace: Path) -> None:
    # A recovery runs the step again with the same idempotency key: the webhook, which
    # cannot deduplicate, still sees one post, and find_effect finds the first one.
    args = {"content": "deploy done"} if spec is DISCORD else {"text": "deploy done"}
    ctx = hook_ctx(workspace, hooks, step_id="post-1")
    assert await spec.find_effect(args, ctx) is None
    first = await spec.call(ctx, args)
    again = await spec.call(hook_ctx(workspace, hooks, step_id="post-1"), args)
    assert again == first
    assert await spec.find_effect(args, hook_ctx(workspace, hooks, step_id="post-1")) == first
    assert len(hooks.received) == 1
    assert hooks.received[0]["headers"]["idempotency-key"] == "run-1:post-1"
    other = await spec.call(hook_ctx(workspace, hooks, step_id="post-2"), args)
    assert other["chars"] == first["chars"] and len(hooks.received) == 2


async def test_discord_verify_fetches_the_message_back(
    hooks: FakeWebhooks, workspace: Path
) -> None:
    result = await execute(
        DISCORD, hook_ctx(workspace, hooks), {"content": "kept"}, timeout=10, retries=0
    )
    assert result.status == "succeeded", result.error
    hooks.lose_writes = True  # acknowledges with an id, keeps nothing
    lost = await execute(
        DISCORD,
        hook_ctx(workspace, hooks, step_id="s2"),
        {"content": "lost"},
        timeout=10,
        retries=0,
    )
    assert lost.status == "failed"
    assert "not verified: Discord has no message" in lost.error


async def test_mastodon_verify_fetches_the_status_back(
    mastodon: FakeMastodon, workspace: Path
) -> None:
    ctx = mastodon_ctx(workspace, mastodon)
    kept = await execute(MASTODON, ctx, {"status": "kept"}, timeout=10, retries=0)
    assert kept.status == "succeeded", kept.error
    mastodon.lose_writes = True
    lost = await execute(
        MASTODON,
        mastodon_ctx(workspace, mastodon, step_id="s2"),
        {"status": "lost"},
        timeout=10,
        retries=0,
    )
    assert lost.status == "failed"
    assert "not verified: Mastodon at" in lost.error and "has no status" in lost.error
