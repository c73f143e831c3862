"""Recurring goals: DBOS schedules that submit a goal to the workers' queue.

``openlam schedule add "every weekday at 9:00" "send me the open deals summary"`` stores
a DBOS schedule (cron, in the system database, so every worker knows it). When it fires,
DBOS runs :func:`scheduled_goal` once for that time — whichever worker gets there
first — and it submits the goal as an ordinary run with an id made of the schedule's
name and the time, so a firing can never start the run twice.

Missed firings (every worker was down): by default they are skipped and the schedule
goes on at its next time; with ``--catch-up`` each missed firing runs once when a
worker is back (DBOS's automatic backfill).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any

from dbos import DBOS

from openlam.errors import UserError
from openlam.runtime.admin import client

DAYS = ("sunday", "monday", "tuesday", "wednesday", "thursday", "friday", "saturday")
_AT = r"(?:\s+at\s+(?P<h>\d{1,2})(?::(?P<m>\d{2}))?\s*(?P<ampm>am|pm)?)?"
_EVERY_N = re.compile(r"every\s+(?P<n>\d+)\s*(?P<unit>seconds?|minutes?|hours?)", re.I)
_DAILY = re.compile(rf"(?:every\s+day|daily){_AT}", re.I)
_WEEKDAY = re.compile(rf"every\s+(?:weekday|working\s+day){_AT}", re.I)
_DAYS = re.compile(rf"every\s+(?P<days>[a-z, ]+?){_AT}$", re.I)
_SIMPLE = {
    "every second": "* * * * * *",
    "every minute": "0 * * * * *",
    "every hour": "0 0 * * * *",
    "hourly": "0 0 * * * *",
}


def to_cron(when: str) -> str:
    """A schedule in words ("every weekday at 9:00", "every 15 minutes", "every monday,
    thursday at 17:30") or cron (5 fields, or 6 with seconds first) → 6-field cron."""
    text = " ".join(when.strip().lower().split())
    if re.fullmatch(r"[\d*/,\-a-z?]+(\s+[\d*/,\-a-z?]+){4,5}", text) and not text.startswith(
        "every"
    ):
        return text if len(text.split()) == 6 else f"0 {text}"
    if text in _SIMPLE:
        return _SIMPLE[text]
    if m := _EVERY_N.fullmatch(text):
        n, unit = int(m.group("n")), m.group("unit")[0]
        if n < 1:
            raise UserError(f"{when!r}: the period must be at least 1")
        return {"s": f"*/{n} * * * * *", "m": f"0 */{n} * * * *", "h": f"0 0 */{n} * * *"}[unit]
    for pattern, days in ((_DAILY, "*"), (_WEEKDAY, "1-5")):
        if m := pattern.fullmatch(text):
            return _at(m, days, when)
    if (m := _DAYS.fullmatch(text)) is not None:
        names = [d.strip() for d in re.split(r",|\band\b", m.group("days")) if d.strip()]
        numbers = [_day(name, when) for name in names]
        return _at(m, ",".join(str(n) for n in numbers), when)
    raise UserError(
        f"cannot read the schedule {when!r}",
        'say e.g. "every weekday at 9:00", "every day at 18:30", "every 15 '
        'minutes", "every monday, thursday at 8:00", or give cron ("0 9 * * 1-5")',
    )


def _day(name: str, when: str) -> int:
    for number, day in enumerate(DAYS):
        if day.startswith(name.rstrip("s")) and len(name) >= 3:
            return number
    raise UserError(f"{when!r}: {name!r} is not a day of the week")


def _at(m: re.Match[str], days: str, when: str) -> str:
    hour, minute = int(m.group("h") or 9), int(m.group("m") or 0)
    if m.group("ampm") == "pm" and hour < 12:
        hour += 12
    if m.group("ampm") == "am" and hour == 12:
        hour = 0
    if hour > 23 or minute > 59:
        raise UserError(f"{when!r}: {hour}:{minute:02d} is not a time of day")
    return f"0 {minute} {hour} * * {days}"


WORKFLOW = "openlam.scheduled_goal"


@DBOS.workflow(name=WORKFLOW)
async def scheduled_goal(when: datetime, context: dict[str, Any]) -> str:
    """One firing of a schedule: submit its goal as a run named after the firing."""
    from openlam.runtime.process import current

    rt = current()
    if rt.submit is None:
        raise RuntimeError("this process's runtime was started without a way to submit goals")
    run_id = f"sch-{context['name']}-{when.strftime('%Y%m%dT%H%M%S')}"
    await rt.submit(  # False: this firing was submitted before a crash
        context["goal"],
        agent=context.get("agent"),
        department=context.get("department"),
        route=True,
        run_id=run_id,
        deadline=context.get("deadline"),
    )
    return run_id


def add(
    settings: Any,
    when: str,
    goal: str,
    *,
    name: str | None = None,
    agent: str | None = None,
    department: str | None = None,
    catch_up: bool = False,
    timezone: str | None = None,
    deadline: str | None = None,
) -> dict[str, Any]:
    """Create a schedule; the workers fire it (in the workspace's time zone by default)."""
    from openlam.runtime.admin import check_goal
    from openlam.runtime.queues import DEFAULT

    cron = to_cron(when)
    zone = timezone or local_timezone(settings)
    if zone is not None:  # before asking the database anything
        _check_zone(zone, "--timezone" if timezone else "[runtime] timezone (or $TZ)")
    name = name or _slug(goal)
    if not re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,47}", name):
        raise UserError(
            f"schedule name {name!r} is not allowed",
            "use lowercase letters, digits, - and _, at most 48 characters",
        )
    if any(s["name"] == name for s in list_all(settings)):
        raise UserError(
            f"there is already a schedule named {name}",
            "remove it first (openlam schedule rm NAME) or choose --name",
        )
    context = {
        "name": name,
        "goal": check_goal(goal),
        "agent": agent,
        "department": department,
        "when": when,
        "deadline": deadline,
    }
    client(settings).create_schedule(
        schedule_name=name,
        workflow_name=WORKFLOW,
        schedule=cron,
        context=context,
        automatic_backfill=catch_up,
        cron_timezone=zone,
        queue_name=DEFAULT,
    )
    return {"name": name, "cron": cron, "timezone": zone, **context}


def _check_zone(zone: str, where: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        raise UserError(
            f"unknown time zone {zone!r} (from {where})",
            "use an IANA name such as Europe/Lisbon or America/New_York",
        ) from None


def local_timezone(settings: Any) -> str | None:
    """``[runtime] timezone``, else $TZ, else this machine's zone (else UTC: None)."""
    import os

    configured = (getattr(settings, "raw", {}) or {}).get("runtime", {}).get("timezone")
    if configured or os.environ.get("TZ"):
        return str(configured or os.environ["TZ"])
    link = Path("/etc/localtime")
    if link.is_symlink() and "zoneinfo/" in str(link.resolve()):
        return str(link.resolve()).split("zoneinfo/", 1)[1]
    return None


def list_all(settings: Any) -> list[dict[str, Any]]:
    found = []
    for s in client(settings).list_schedules(workflow_name=WORKFLOW):
        context = s["context"] if isinstance(s["context"], dict) else {}
        found.append(
            {
                **context,
                "name": s["schedule_name"],
                "cron": s["schedule"],
                "status": s["status"],
                "last_fired_at": s["last_fired_at"],
                "catch_up": s["automatic_backfill"],
                "timezone": s["cron_timezone"],
            }
        )
    return found


def remove(settings: Any, name: str) -> None:
    if not any(s["name"] == name for s in list_all(settings)):
        raise UserError(f"no schedule named {name}", "list them with `openlam schedule list`")
    client(settings).delete_schedule(name)


def _slug(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())[:5]
    return "-".join(words)[:48] or "goal"
