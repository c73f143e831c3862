"""social: post to team chat through incoming webhooks (Slack, Discord, Mattermost) and
to Mastodon through its statuses API.

Webhook URLs are credentials (whoever knows one can post): they come from secrets —
``SLACK_WEBHOOK_URL``, ``DISCORD_WEBHOOK_URL``, ``MATTERMOST_WEBHOOK_URL``, or
``<NAME>_<TARGET>`` for a named ``target`` — and never appear in messages.

Every post is an egress (content the plan chose leaves for a channel) and goes through
:mod:`openlam.actions.httpkit` (the webhook's or server's host is the user's choice; a
redirect elsewhere is checked against ``[network]``).

Delivery. Mastodon deduplicates by ``Idempotency-Key`` (the step's key, for an hour):
a repeated step gets the status it already created. Webhooks deduplicate nothing; each
post also carries ``Idempotency-Key`` (for a relay that honours it), and is recorded in
the effects journal (:mod:`openlam.actions.effects`) the moment the service accepted it,
so a repeated or recovered step returns the recorded post instead of posting again —
exactly once, except a crash between the service's answer and the journal's commit. A
post whose answer was lost is not repeated automatically (the failure says to check the
channel); a refused connection or an HTTP 429/5xx answer is retried.

Verification: a Discord post and a Mastodon status are fetched back by their id; Slack
and Mattermost webhooks offer no way to ask, so their posts are acknowledged, not
verified.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import PositiveFloat
from typing_extensions import TypedDict

from openlam.actions import effects, httpkit
from openlam.actions.plugin_config import PluginConfig
from openlam.actions.spec import ActionContext, Risk, action
from openlam.errors import ActionError

TIMEOUT = 15.0
MAX_REPLY_BYTES = 1_000_000
DISCORD_MAX_CHARS = 2000
TARGET_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")


class WebhookPost(TypedDict):
    service: str
    webhook: str
    message_id: str
    chars: int


class Status(TypedDict):
    id: str
    url: str
    uri: str
    created_at: str
    visibility: str


def _webhook(ctx: ActionContext, base: str, service: str, target: str) -> tuple[str, str]:
    """(secret name, webhook URL) for ``target`` ("" = the default webhook)."""
    name = base
    if target:
        if not TARGET_PATTERN.match(target):
            raise ActionError(
                f"target {target!r} must be letters, digits or underscores; it "
                f"names the secret {base}_<TARGET>"
            )
        name = f"{base}_{target.upper()}"
    url = (ctx.secret(name) or "").strip()
    if not url:
        raise ActionError(
            f"no {service} webhook is configured: set the secret {name} to the "
            f"incoming webhook's URL (openlam secrets set {name})"
        )
    if not url.startswith(("http://", "https://")):
        raise ActionError(
            f"the secret {name} is not an http(s) URL; it must hold the "
            f"{service} incoming webhook's URL"
        )
    return name, url


class MastodonConfig(PluginConfig):
    base_url: str = ""  # your account's server, e.g. https://mastodon.social
    timeout: PositiveFloat = TIMEOUT


class SocialConfig(PluginConfig):
    """The ``[social]`` table of openlam.toml: ``timeout`` for webhook posts."""

    section: ClassVar[str] = "social"
    hint: ClassVar[str] = "timeouts are positive numbers of seconds"

    timeout: PositiveFloat = TIMEOUT
    mastodon: MastodonConfig = MastodonConfig()


CONFIG = SocialConfig


async def _post(
    ctx: ActionContext,
    service: str,
    name: str,
    url: str,
    payload: dict[str, Any],
    params: dict[str, str] | None = None,
) -> httpkit.Reply:
    what = f"the {service} webhook ({name})"
    deadline = SocialConfig.of(ctx).timeout
    reply = await httpkit.send(
        ctx.settings,
        "POST",
        url,
        json=payload,
        params=params,
        headers={"Idempotency-Key": ctx.idempotency_key},
        what=what,
        idempotent=False,
        deadline=deadline,
        max_bytes=MAX_REPLY_BYTES,
        redact=(url,),
        configured=[url],
    )
    if not reply.ok:
        raise httpkit.status_error(what, reply.status, httpkit.scrub(_error_detail(reply), (url,)))
    return reply


def _error_detail(reply: httpkit.Reply) -> str:
    """The service's own words: Slack answers plain text, Discord/Mattermost/Mastodon JSON."""
    text = reply.text().strip()
    if text.startswith("{"):
        try:
            data = reply.json("the service")
        except ActionError:
            return text[:300]
        if isinstance(data, dict):
            for key in ("error_description", "error", "message", "detailed_error"):
                if isinstance(data.get(key), str) and data[key]:
                    return data[key]
    return text[:300]


def _non_empty(text: str, field: str) -> str:
    if not text.strip():
        raise ActionError(f"{field} is empty; there is nothing to post")
    return text


@action(
    "social.slack_post",
    risk=Risk.external,
    egress=True,
    secrets=("SLACK_WEBHOOK_URL",),
    find_effect=effects.recorded("social.slack_post"),
)
async def slack_post(ctx: ActionContext, text: str, target: str = "") -> WebhookPost:
    """Post a message to a Slack channel through an incoming webhook.

    Args:
        text: The message; Slack's mrkdwn formatting (*bold*, <url|label>) works.
        target: Which webhook: empty for SLACK_WEBHOOK_URL, "sales" for SLACK_WEBHOOK_URL_SALES.
    """
    name, url = _webhook(ctx, "SLACK_WEBHOOK_URL", "Slack", target)

    async def post() -> WebhookPost:
        await _post(ctx, "Slack", name, url, {"text": _non_empty(text, "text")})
        return {"service": "slack", "webhook": name, "message_id": "", "chars": len(text)}

    return await effects.once(ctx, "social.slack_post", post)


async def _verify_discord(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
    """Fetch the message back through the webhook (GET …/messages/<id>)."""
    name, url = _webhook(ctx, "DISCORD_WEBHOOK_URL", "Discord", args.get("target") or "")
    if not output.get("message_id"):
        return "Discord answered without a message id"
    what = f"the Discord webhook ({name})"
    try:
        reply = await httpkit.send(
            ctx.settings,
            "GET",
            f"{url}/messages/{output['message_id']}",
            what=what,
            idempotent=True,
            max_bytes=MAX_REPLY_BYTES,
            deadline=SocialConfig.of(ctx).timeout,
            redact=(url,),
            configured=[url],
        )
    except ActionError as exc:
        return f"cannot fetch the posted message back: {exc}"
    if reply.status == 404:
        return f"Discord has no message {output['message_id']} in the webhook's channel"
    if not reply.ok:
        return f"fetching the posted message back answered HTTP {reply.status}"
    return None


@action(
    "social.discord_post",
    risk=Risk.external,
    egress=True,
    secrets=("DISCORD_WEBHOOK_URL",),
    verify=_verify_discord,
    find_effect=effects.recorded("social.discord_post"),
)
async def discord_post(
    ctx: ActionContext,
    content: str,
    username: str = "",
    target: str = "",
    allow_mentions: bool = False,
) -> WebhookPost:
    """Post a message to a Discord channel through a webhook.

    Mentions (@everyone, @here, users, roles) do not ping anyone unless allow_mentions
    is true.

    Args:
        content: The message, at most 2000 characters; Discord Markdown works.
        username: Show the post under this name instead of the webhook's.
        target: Which webhook: empty for DISCORD_WEBHOOK_URL, "ops" for DISCORD_WEBHOOK_URL_OPS.
        allow_mentions: Let mentions in the content notify people.
    """
    if len(content) > DISCORD_MAX_CHARS:
        raise ActionError(
            f"Discord accepts at most {DISCORD_MAX_CHARS} characters per "
            f"message; this one has {len(content)}: shorten or split it"
        )
    name, url = _webhook(ctx, "DISCORD_WEBHOOK_URL", "Discord", target)
    payload: dict[str, Any] = {"content": _non_empty(content, "content")}
    if not allow_mentions:
        payload["allowed_mentions"] = {"parse": []}
    if username:
        payload["username"] = username

    async def post() -> WebhookPost:
        reply = await _post(ctx, "Discord", name, url, payload, params={"wait": "true"})
        message = reply.json("the Discord webhook") if reply.body.strip() else {}
        message_id = str(message.get("id", "")) if isinstance(message, dict) else ""
        return {
            "service": "discord",
            "webhook": name,
            "message_id": message_id,
            "chars": len(content),
        }

    return await effects.once(ctx, "social.discord_post", post)


@action(
    "social.mattermost_post",
    risk=Risk.external,
    egress=True,
    secrets=("MATTERMOST_WEBHOOK_URL",),
    find_effect=effects.recorded("social.mattermost_post"),
)
async def mattermost_post(
    ctx: ActionContext, text: str, channel: str = "", username: str = "", target: str = ""
) -> WebhookPost:
    """Post a message to Mattermost through an incoming webhook.

    Args:
        text: The message; Markdown works.
        channel: Post to this channel (its name, e.g. town-square) instead of the webhook's
            default, if the webhook allows it.
        username: Show the post under this name, if the server allows overriding it.
        target: Which webhook: empty for MATTERMOST_WEBHOOK_URL, "dev" for
            MATTERMOST_WEBHOOK_URL_DEV.
    """
    name, url = _webhook(ctx, "MATTERMOST_WEBHOOK_URL", "Mattermost", target)
    payload = {"text": _non_empty(text, "text")}
    if channel:
        payload["channel"] = channel
    if username:
        payload["username"] = username

    async def post() -> WebhookPost:
        await _post(ctx, "Mattermost", name, url, payload)
        return {"service": "mattermost", "webhook": name, "message_id": "", "chars": len(text)}

    return await effects.once(ctx, "social.mattermost_post", post)


def _mastodon(ctx: ActionContext) -> tuple[str, str, float]:
    """(server base URL, access token, timeout) from [social.mastodon] and the secrets."""
    config = SocialConfig.of(ctx).mastodon
    base = config.base_url.strip().rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise ActionError(
            "no Mastodon server is configured: set base_url under "
            "[social.mastodon] in openlam.toml, e.g. base_url = "
            '"https://mastodon.social"'
        )
    token = (ctx.secret("MASTODON_TOKEN") or "").strip()
    if not token:
        raise ActionError(
            "no Mastodon access token: create an application with the "
            "write:statuses scope in your Mastodon preferences (Development) "
            "and set its token as the secret MASTODON_TOKEN "
            "(openlam secrets set MASTODON_TOKEN)"
        )
    return base, token, config.timeout


async def _verify_status(args: dict[str, Any], output: Any, ctx: ActionContext) -> str | None:
    """Fetch the status back by its id (GET /api/v1/statuses/<id>)."""
    base, token, deadline = _mastodon(ctx)
    try:
        reply = await httpkit.send(
            ctx.settings,
            "GET",
            f"{base}/api/v1/statuses/{output['id']}",
            headers={"Authorization": f"Bearer {token}"},
            what=f"Mastodon at {base}",
            idempotent=True,
            deadline=deadline,
            max_bytes=MAX_REPLY_BYTES,
            redact=(token,),
            configured=[base],
        )
    except ActionError as exc:
        return f"cannot fetch status {output['id']} back: {exc}"
    if reply.status == 404:
        return f"Mastodon at {base} has no status {output['id']}"
    if not reply.ok:
        return f"fetching status {output['id']} back answered HTTP {reply.status}"
    return None


@action(
    "social.mastodon_post",
    risk=Risk.external,
    egress=True,
    keyed=True,
    secrets=("MASTODON_TOKEN",),
    verify=_verify_status,
)
async def mastodon_post(
    ctx: ActionContext,
    status: str,
    visibility: Literal["public", "unlisted", "private", "direct"] = "public",
    spoiler_text: str = "",
    sensitive: bool = False,
    language: str = "",
    in_reply_to_id: str = "",
) -> Status:
    """Publish a status (a post) on Mastodon with the configured account.

    Args:
        status: The text of the post (the server's limit applies, 500 characters by default).
        visibility: public, unlisted (not in public timelines), private (followers only) or
            direct (mentioned people only).
        spoiler_text: A content warning shown before the text.
        sensitive: Mark attached media as sensitive.
        language: ISO 639 language code of the text, e.g. "en".
        in_reply_to_id: Post as a reply to this status ID.
    """
    base, token, deadline = _mastodon(ctx)
    body: dict[str, Any] = {
        "status": _non_empty(status, "status"),
        "visibility": visibility,
        "sensitive": sensitive,
    }
    for key, value in (
        ("spoiler_text", spoiler_text),
        ("language", language),
        ("in_reply_to_id", in_reply_to_id),
    ):
        if value:
            body[key] = value
    what = f"Mastodon at {base}"
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": ctx.idempotency_key}
    reply = await httpkit.send(
        ctx.settings,
        "POST",
        f"{base}/api/v1/statuses",
        json=body,
        headers=headers,
        what=what,
        idempotent=True,
        deadline=deadline,
        max_bytes=MAX_REPLY_BYTES,
        redact=(token,),
        configured=[base],
    )
    if reply.status == 401:
        raise ActionError(
            f"{what} refused the access token (HTTP 401: "
            f"{_error_detail(reply)}); check the secret MASTODON_TOKEN"
        )
    if reply.status == 403:
        raise ActionError(
            f"{what} refused the post (HTTP 403: {_error_detail(reply)}); the "
            "token needs the write:statuses scope"
        )
    if not reply.ok:
        raise httpkit.status_error(what, reply.status, _error_detail(reply))
    data = reply.json(what)
    if not isinstance(data, dict) or "id" not in data:
        raise ActionError(f"{what} answered without a status id; is base_url a Mastodon server?")
    return {
        "id": str(data["id"]),
        "url": str(data.get("url") or ""),
        "uri": str(data.get("uri") or ""),
        "created_at": str(data.get("created_at") or ""),
        "visibility": str(data.get("visibility") or visibility),
    }
