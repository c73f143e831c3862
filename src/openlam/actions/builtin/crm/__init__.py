"""crm: OpenLAM's own CRM on the project database — contacts, companies, deals, notes,
activities and search.

The tables (prefixed ``crm_``) live in the project database (SQLite by default,
PostgreSQL when ``OPENLAM_DATABASE_URL`` is set) and are created on first use. Contacts are
deduplicated by email address, case-insensitively; companies by domain, else by name.
Creating actions (deals, notes, activities) remember the step's idempotency key, so a
retried or recovered step returns the row it already made instead of adding a second one.

The package: :mod:`.config` (``[crm]``), :mod:`.storage` (the tables),
:mod:`.records` (rows as results, shared lookups) and :mod:`.actions`. The plugin is
this package: its actions and ``CONFIG`` are here.
"""

from openlam.actions.builtin.crm.actions import (
    activity_log,
    company_get,
    company_upsert,
    contact_find,
    contact_get,
    contact_upsert,
    deal_create,
    deal_list,
    deal_update_stage,
    note_add,
    search,
)
from openlam.actions.builtin.crm.config import CONFIG

__all__ = [
    "CONFIG",
    "activity_log",
    "company_get",
    "company_upsert",
    "contact_find",
    "contact_get",
    "contact_upsert",
    "deal_create",
    "deal_list",
    "deal_update_stage",
    "note_add",
    "search",
]
