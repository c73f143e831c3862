"""The shipped catalog's integrity, and the loader's answers to bad or custom input."""

from __future__ import annotations

import importlib.util
import re
import textwrap
from collections import Counter
from fnmatch import fnmatchcase
from importlib import resources
from importlib.metadata import entry_points
from pathlib import Path

import pytest
import yaml

from openlam.actions.registry import PLUGIN_GROUP, load_plugins
from openlam.errors import UserError
from openlam.loop.perceive import SHARED_ACTIONS, perceive
from openlam.org import load_catalog
from openlam.org.loader import ROUTER_ID, Catalog

REQUIRED_DEPARTMENTS = {
    "executive",
    "sales",
    "marketing",
    "research",
    "support",
    "operations",
    "finance",
    "people",
    "engineering",
    "legal",
    "product",
    "data",
}

# Action names announced for plugins that are still being built (issue text). A pattern
# over a plugin whose module is not importable yet must match one of these; once the
# plugin is installed, its pattern is checked against the live registry instead.
ANNOUNCED = """files.write files.read http.get email.send email.list email.read email.search
crm.contact_upsert crm.contact_get crm.contact_find crm.company_upsert crm.deal_create
crm.deal_update_stage crm.note_add crm.activity_log crm.search web.fetch search.web
search.documents browser.open browser.click browser.fill browser.text browser.screenshot
documents.markdown documents.csv documents.html documents.pdf social.slack social.discord
social.mattermost social.mastodon payments.customer_create payments.payment_link_create
payments.invoice_create payments.refund_create human.ask""".split()


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def write(ws: Path, name: str, text: str) -> Path:
    folder = ws / "agents"
    folder.mkdir(exist_ok=True)
    path = folder / name
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def problem(ws: Path) -> str:
    """What is wrong with the workspace's agent files: a file with a problem is left out
    and named, and the rest of the workspace loads (issue 8 §8)."""
    catalog = load_catalog(ws)
    assert catalog.load_errors, "the broken file was not reported"
    assert len(catalog) >= 100  # the shipped catalog is still there
    return "\n".join(catalog.load_errors)


# -- the shipped catalog -----------------------------------------------------------------


def test_size_and_departments(catalog: Catalog):
    assert len(catalog) >= 100
    assert len(catalog.departments) >= 12
    assert set(catalog.departments) >= REQUIRED_DEPARTMENTS
    sizes = Counter(a.department for a in catalog)
    assert all(sizes[d] >= 5 for d in catalog.departments), sizes


def test_one_file_per_department_with_unique_ids():
    folder = resources.files("openlam.org") / "catalog"
    seen: Counter[str] = Counter()
    departments = []
    for path in folder.iterdir():
        if not path.name.endswith(".yaml"):
            continue
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
        departments.append(doc["department"]["id"])
        assert path.name == f"{doc['department']['id']}.yaml"
        seen.update(a["id"] for a in doc["agents"])
    assert len(departments) == len(set(departments)) >= 12
    assert [i for i, n in seen.items() if n > 1] == []
    assert sum(seen.values()) >= 100


def test_one_tree_rooted_at_the_chief_executive(catalog: Catalog):
    roots = [a for a in catalog if a.manager is None]
    assert [a.id for a in roots] == ["ceo"]
    assert all(a.manager in catalog.agents for a in catalog if a.manager is not None)
    # Walking down from the root reaches every agent exactly once: no cycles, no orphans.
    reached, todo = [], [catalog.root]
    while todo:
        agent = todo.pop()
        reached.append(agent.id)
        todo.extend(catalog.reports(agent.id))
    assert sorted(reached) == sorted(catalog.agents)
    assert catalog.router.id == ROUTER_ID
    assert catalog.agent(ROUTER_ID).manager == "ceo"


def test_every_department_has_a_head_reporting_to_the_ceo(catalog: Catalog):
    for dept in catalog.departments:
        head = catalog.head(dept)
        assert head is not None, dept
        assert head.id == "ceo" or head.manager == "ceo", (dept, head.id)


def test_instructions_are_specific_not_boilerplate(catalog: Catalog):
    texts = [a.instructions for a in catalog]
    assert len(set(texts)) == len(texts)
    openings = Counter(" ".join(t.split()[:6]) for t in texts)
    assert openings.most_common(1)[0][1] <= 3, openings.most_common(3)
    for agent in catalog:
        sentences = [s for s in re.split(r"(?<=[.!?])\s+", agent.instructions) if s]
        assert 2 <= len(sentences) <= 5, (agent.id, len(sentences))
        assert agent.actions, agent.id


def _pending_plugins() -> set[str]:
    """Plugins declared in the package metadata whose module is not importable yet."""
    pending = set()
    for ep in entry_points(group=PLUGIN_GROUP):
        if importlib.util.find_spec(ep.value.split(":")[0]) is None:
            pending.add(ep.name)
    return pending


def test_every_action_pattern_matches_a_registered_action(catalog: Catalog):
    registry = load_plugins()
    live = [s.name for s in registry]
    pending = _pending_plugins()
    unmatched, provisional = [], []
    for agent in catalog:
        for pattern in agent.actions:
            if any(fnmatchcase(n, pattern) for n in live):
                continue
            plugin = pattern.split(".", 1)[0]
            if plugin in pending and any(fnmatchcase(n, pattern) for n in ANNOUNCED):
                provisional.append(f"{agent.id}:{pattern}")
                continue
            unmatched.append(f"{agent.id}:{pattern}")
    assert unmatched == [], f"patterns that match no action: {unmatched}"
    if provisional:
        # Only ever for plugins not installed yet; reported, not hidden.
        print(
            f"{len(provisional)} patterns checked against announced names of "
            f"uninstalled plugins {sorted(pending)}"
        )
    assert catalog.unmatched_patterns(live + ANNOUNCED) == {}


def test_profile_feeds_the_core_loop(catalog: Catalog):
    registry = load_plugins()
    profile = catalog.profile("accounts_receivable_specialist")
    assert profile.id == "accounts_receivable_specialist"
    assert profile.actions == catalog.agent(profile.id).actions
    assert (
        "You report to" in profile.instructions and "(agent id controller)" in profile.instructions
    )
    seen = perceive("invoice Initech", profile, registry)
    names = [s.name for s in seen.actions]
    assert "files.write" in names  # files.* is permitted
    granted = (*profile.actions, *SHARED_ACTIONS)  # + the tree's notes board, for everyone
    assert all(any(fnmatchcase(n, p) for p in granted) for n in names)
    lead = catalog.profile("controller")
    assert "accounts_receivable_specialist" in lead.instructions  # it may delegate to reports


def test_chain_reports_and_lookup_errors(catalog: Catalog):
    chain = [a.id for a in catalog.chain("analytics_engineer")]
    assert chain == ["analytics_engineer", "data_engineer", "head_of_data", "ceo"]
    assert catalog.department("Customer Support").id == "support"
    assert catalog.department("FINANCE").id == "finance"
    with pytest.raises(UserError, match="did you mean 'copywriter'"):
        catalog.agent("copywritr")
    with pytest.raises(UserError, match=r"no department 'salez'.*'sales'"):
        catalog.department("salez")


# -- the workspace layer --------------------------------------------------------------------


def test_workspace_adds_a_department_and_agents_and_overrides_by_id(workspace: Path):
    write(
        workspace,
        "partnerships.yaml",
        """
        department:
          id: alliances
          name: Alliances
          description: Strategic alliances with platform vendors.
          keywords: [alliance, marketplace listing]
        agents:
          - id: alliances_lead
            name: Robin Vega
            title: Head of Alliances
            manager: ceo
            instructions: >-
              You build alliances with platform vendors. Each alliance has a joint plan
              with named owners and a quarterly review.
            actions: [email.send, crm.*]
    """,
    )
    write(
        workspace,
        "tweaks.yml",
        """
        agents:
          - id: copywriter
            model: ollama:qwen3
            budget: {max_steps: 8}
    """,
    )
    base = load_catalog()
    cat = load_catalog(workspace)
    assert len(cat) == len(base) + 1
    assert cat.agent("alliances_lead").department == "alliances"
    head = cat.head("alliances")
    assert head is not None and head.id == "alliances_lead"
    copy = cat.agent("copywriter")
    assert copy.model == "ollama:qwen3" and copy.budget and copy.budget.max_steps == 8
    assert copy.instructions == base.agent("copywriter").instructions  # untouched fields kept
    assert cat.source("copywriter") == "agents/tweaks.yml:2"


def test_workspace_can_remove_an_agent_but_not_orphan_its_reports(workspace: Path):
    write(
        workspace,
        "trim.yaml",
        """
        agents:
          - id: fact_checker
            remove: true
    """,
    )
    assert "fact_checker" not in load_catalog(workspace)
    write(
        workspace,
        "trim.yaml",
        """
        agents:
          - id: controller
            remove: true
    """,
    )
    text = problem(workspace)
    assert "agent 'accountant', field 'manager': unknown manager 'controller'" in text
    assert "removed with 'remove: true'" in text


def test_one_broken_override_file_does_not_take_the_workspace_down(workspace: Path):
    """Issue 8 §8: a broken agents/*.yaml stopped every run in the workspace. It is left
    out and named; the other workspace files still apply."""
    write(
        workspace,
        "a_good.yaml",
        """
        agents:
          - id: copywriter
            model: ollama:qwen3
    """,
    )
    write(
        workspace,
        "b_broken.yaml",
        """
        agents:
          - id: helper
            name: [unclosed
    """,
    )
    write(
        workspace,
        "c_orphans.yaml",
        """
        agents:
          - id: controller
            remove: true
    """,
    )
    catalog = load_catalog(workspace)
    assert catalog.agent("copywriter").model == "ollama:qwen3"  # the good file applies
    assert "controller" in catalog  # the file that would orphan its reports is left out
    assert [e.split(" ", 1)[0] for e in catalog.load_errors] == [
        "agents/b_broken.yaml",
        "agents/c_orphans.yaml",
    ]
    assert "agents/b_broken.yaml:4: could not parse YAML" in catalog.load_errors[0]
    with pytest.raises(UserError, match=r"b_broken\.yaml:4"):  # a custom org has no fallback
        load_catalog(workspace, builtin=False)


def test_malformed_yaml_names_file_and_line(workspace: Path):
    write(
        workspace,
        "broken.yaml",
        """
        agents:
          - id: helper
            name: [unclosed
            title: Helper
    """,
    )
    text = problem(workspace)
    assert "agents/broken.yaml:4: could not parse YAML" in text
    assert "agents/broken.yaml was skipped (the workspace runs without it" in text


def test_duplicate_key_in_yaml_is_an_error(workspace: Path):
    write(
        workspace,
        "dup.yaml",
        """
        agents:
          - id: copywriter
            model: a
            model: b
    """,
    )
    assert "agents/dup.yaml:4: duplicate key 'model' (also at line 3)" in problem(workspace)


def test_unknown_manager_names_file_agent_and_field(workspace: Path):
    write(
        workspace,
        "new.yaml",
        """
        agents:
          - id: growth_hacker
            name: Sam Lee
            title: Growth Hacker
            department: marketing
            manager: chief_marketing_officr
            instructions: Find cheap channels and test each with a small budget first.
            actions: [social.*]
    """,
    )
    text = problem(workspace)
    assert (
        "agents/new.yaml:6: agent 'growth_hacker', field 'manager': unknown manager "
        "'chief_marketing_officr' (did you mean 'chief_marketing_officer'?)"
    ) in text


def test_cycle_names_file_agent_and_field(workspace: Path):
    write(
        workspace,
        "loop.yaml",
        """
        agents:
          - id: copywriter
            manager: seo_specialist
          - id: seo_specialist
            manager: copywriter
    """,
    )
    text = problem(workspace)
    assert (
        "agents/loop.yaml:3: agent 'copywriter', field 'manager': management cycle "
        "copywriter → seo_specialist → copywriter" in text
    )


def test_self_management_is_a_cycle(workspace: Path):
    write(workspace, "self.yaml", "agents:\n  - id: paralegal\n    manager: paralegal\n")
    assert "management cycle paralegal → paralegal" in problem(workspace)


def test_duplicate_id_in_workspace_names_both_places(workspace: Path):
    entry = """
        agents:
          - id: copywriter
            model: ollama:small
    """
    write(workspace, "a.yaml", entry)
    write(workspace, "b.yaml", entry)
    text = problem(workspace)
    assert (
        "agents/b.yaml:2: duplicate agent id 'copywriter': already defined at agents/a.yaml:2"
    ) in text


def test_field_errors_name_file_line_agent_and_field(workspace: Path):
    write(
        workspace,
        "bad.yaml",
        """
        agents:
          - id: copywriter
            budget:
              max_steps: 0
          - id: newbie
            name: New Person
            title: Assistant
            department: sales
            manager: ceo
            instrutions: Help the sales team with whatever they need every day.
    """,
    )
    text = problem(workspace)
    assert text.startswith("agents/bad.yaml was skipped") and text.count("agents/bad.yaml:") == 3
    assert (
        "agents/bad.yaml:3: agent 'copywriter', field 'budget.max_steps': "
        "Input should be greater than or equal to 1" in text
    )
    assert (
        "agents/bad.yaml:10: agent 'newbie', field 'instrutions': unknown field "
        "(did you mean 'instructions'?)" in text
    )
    assert (
        "agents/bad.yaml:5: agent 'newbie', field 'instructions': required field is missing" in text
    )


def test_bad_action_glob_and_department_mismatch(workspace: Path):
    write(
        workspace,
        "sales.yaml",
        """
        department:
          id: sales
          keywords: [sales, revenue]
        agents:
          - id: intern
            name: Ida
            title: Sales Intern
            department: finance
            manager: chief_revenue_officer
            instructions: Research prospects and draft notes. Never email anyone.
            actions: ["crm search"]
    """,
    )
    text = problem(workspace)
    assert (
        "agents/sales.yaml:8: agent 'intern', field 'department': 'finance' differs "
        "from this file's department 'sales'" in text
    )
    write(
        workspace,
        "sales.yaml",
        """
        agents:
          - id: intern
            name: Ida
            title: Sales Intern
            department: sales
            manager: chief_revenue_officer
            instructions: Research prospects and draft notes. Never email anyone.
            actions: ["crm search"]
    """,
    )
    assert (
        "agent 'intern', field 'actions': Value error, not a glob over action names: "
        "'crm search'" in problem(workspace)
    )


def test_unknown_department_and_second_root(workspace: Path):
    write(
        workspace,
        "x.yaml",
        """
        agents:
          - id: shadow_ceo
            name: Shadow
            title: Shadow CEO
            department: executive
            manager: null
            instructions: Run a parallel company. Report to nobody at all.
            actions: [files.read]
          - id: lost
            name: Lost
            title: Lost Soul
            department: narnia
            manager: ceo
            instructions: Wander about. Report to the chief executive weekly.
    """,
    )
    text = problem(workspace)
    assert "agents/x.yaml:12: agent 'lost', field 'department': no department 'narnia'" in text
    write(
        workspace,
        "x.yaml",
        """
        agents:
          - id: shadow_ceo
            name: Shadow
            title: Shadow CEO
            department: executive
            manager: null
            instructions: Run a parallel company. Report to nobody at all.
            actions: [files.read]
    """,
    )
    assert (
        "agents/x.yaml:6: agent 'shadow_ceo', field 'manager': has no manager, so it and "
        "its reports are unreachable from the chief executive 'ceo'" in problem(workspace)
    )


def test_a_custom_organisation_without_the_shipped_catalog(workspace: Path):
    write(
        workspace,
        "org.yaml",
        """
        department:
          id: studio
          name: Studio
          description: A two-person design studio.
        agents:
          - id: owner
            name: Ola
            title: Owner
            manager: null
            instructions: Run the studio. Delegate design work to the designer.
          - id: designer
            name: Dee
            title: Designer
            manager: owner
            instructions: Design logos and sites. Ask the owner before quoting prices.
            actions: [documents.*, files.*]
    """,
    )
    cat = load_catalog(workspace, builtin=False)
    assert sorted(cat.agents) == ["designer", "owner"]
    assert cat.root.id == "owner" and cat.router.id == "owner"  # no chief of staff: the root
    assert [a.id for a in cat.reports("owner")] == ["designer"]


def test_non_mapping_entries_and_top_level_keys(workspace: Path):
    write(
        workspace,
        "odd.yaml",
        """
        agent:
          - id: typo
        agents:
          - just a string
    """,
    )
    text = problem(workspace)
    assert "agents/odd.yaml:1: unknown top-level key 'agent'" in text
    assert "each agent must be a mapping of fields, found str" in text
