"""Settings a person got wrong (``[runtime]``, ``[server]``, ``[governance]``,
``[network]``): the
command says which one and how to fix it, before it starts anything — no "internal
error", no half-started worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.procs import openlam

ABOVE_0 = "must be a number of seconds above 0"
BAD = [
    ('heartbeat_seconds = "abc"', f"[runtime] heartbeat_seconds {ABOVE_0}"),
    ("lease_seconds = 0", f"[runtime] lease_seconds {ABOVE_0}"),
    ("threads = 1.5", "[runtime] threads must be a whole number of at least 1"),
]
WORKER_ONLY = [
    ("drain_seconds = -1", "[runtime] drain_seconds must be a number of seconds 0 or more"),
    ('requeue_seconds = "soon"', f"[runtime] requeue_seconds {ABOVE_0}"),
]


@pytest.mark.parametrize(("line", "said"), BAD)
def test_run_names_a_bad_runtime_setting_and_its_fix(workspace: Path, line: str, said: str):
    (workspace / "openlam.toml").write_text(f"[runtime]\n{line}\n")
    proc = openlam(workspace, "run", "write 'x' to x.md")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert said in err and "fix: e.g. " in err
    assert "internal error" not in err and "Traceback" not in err
    assert not (workspace / "x.md").exists()


@pytest.mark.parametrize(("line", "said"), BAD[:1] + WORKER_ONLY)
def test_a_worker_refuses_a_bad_runtime_setting_before_it_starts(
    workspace: Path, line: str, said: str
):
    (workspace / "openlam.toml").write_text(f"[runtime]\n{line}\n")
    proc = openlam(workspace, "worker")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert said in err and "fix: e.g. " in err
    assert "listening" not in out + err  # it never took work


def test_serve_names_a_bad_reply_limit_before_it_serves(workspace: Path):
    (workspace / "openlam.toml").write_text('[server]\nreply_seconds = "long"\n')
    proc = openlam(workspace, "serve", "--port", "0")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert f"[server] reply_seconds {ABOVE_0} (got 'long')" in err and "fix: e.g. " in err


def test_run_names_a_roles_setting_that_is_not_a_path(workspace: Path):
    (workspace / "openlam.toml").write_text("[governance]\nroles = 5\n")
    proc = openlam(workspace, "run", "write 'x' to x.md")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert "[governance] roles must be the path of a YAML file, got 5" in err
    assert 'fix: e.g. roles = "roles.yaml"' in err and "internal error" not in err


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("runtime = 5\n", "runtime in "),
        ('governance = "strict"\n', "governance in "),
        ("[governance]\nbudgets = 5\n", "[governance.budgets] in openlam.toml must be tables"),
        ("[governance.budgets]\nagent = 5\n", "[governance.budgets] in openlam.toml must be"),
    ],
)
def test_run_names_a_setting_that_should_be_a_table(workspace: Path, text: str, said: str):
    (workspace / "openlam.toml").write_text(text)
    proc = openlam(workspace, "run", "write 'x' to x.md")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert said in err and "fix: " in err and "internal error" not in err


def test_schedule_add_names_an_unknown_time_zone(workspace: Path):
    (workspace / "openlam.toml").write_text('[runtime]\ntimezone = "Mars/Olympus"\n')
    proc = openlam(workspace, "schedule", "add", "every day at 9:00", "write 'x' to x.md")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert "unknown time zone 'Mars/Olympus' (from [runtime] timezone" in err
    assert "fix: use an IANA name" in err and "internal error" not in err
    listed = openlam(workspace, "schedule", "list")
    assert "No schedules" in listed.communicate(timeout=60)[0]  # nothing half-made


@pytest.mark.parametrize(
    "table",
    [
        '[network]\nallow_networks = "10.0.0.0/8"\n',  # a string, not a list
        '[network]\nallow_networks = ["not a network"]\n',
        '[network]\nallow_private = "yes"\n',
    ],
)
def test_run_names_a_bad_network_setting_before_any_step(workspace: Path, table: str):
    (workspace / "openlam.toml").write_text(table)
    proc = openlam(workspace, "run", "write 'x' to x.md")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert "[network] in openlam.toml is invalid" in err and "fix: " in err
    assert "internal error" not in err and "Traceback" not in err
    assert not (workspace / "x.md").exists()  # refused before the run, not at a step


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ('[runtime]\nthreads = "x"\n', "[runtime] threads must be a whole number"),
        ("[runtime]\ndrain_seconds = -1\n", "[runtime] drain_seconds must be a number"),
        ('[network]\nallow_hosts = "intranet"\n', "[network] in openlam.toml is invalid"),
    ],
)
def test_serve_names_a_bad_runtime_or_network_setting_before_it_serves(
    workspace: Path, table: str, said: str
):
    """Its worker starts in the app's lifespan: a bad setting used to surface there as a
    traceback and "Application startup failed"."""
    (workspace / "openlam.toml").write_text(table)
    proc = openlam(workspace, "serve", "--port", "0")
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert said in err and "fix: " in err
    assert "Traceback" not in out + err and "startup failed" not in out + err


@pytest.mark.parametrize(
    ("url", "shown"),
    [("nonsense", "'nonsense'"), ("mysql://root:secret@127.0.0.1/test", "'mysql://root:***@")],
)
def test_a_database_url_of_another_kind_is_named_without_its_password(
    workspace: Path, url: str, shown: str
):
    proc = openlam(workspace, "run", "write 'x' to x.md", env={"OPENLAM_DATABASE_URL": url})
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert f"the database URL must be a PostgreSQL or SQLite one, got {shown}" in err
    assert "fix: e.g. OPENLAM_DATABASE_URL=postgresql://" in err
    assert "secret" not in out + err and "internal error" not in err
    assert not (workspace / "x.md").exists()


@pytest.mark.parametrize(
    ("env", "toml", "said"),
    [
        ({"OPENLAM_MAX_STEPS": "0"}, "", "max_steps must be a whole number of at least 1, got '0'"),
        ({"OPENLAM_STEP_RETRIES": "-1"}, "", "step_retries must be a whole number of at least 0"),
        ({"OPENLAM_STEP_TIMEOUT": "nan"}, "", "step_timeout must be a number of seconds above 0"),
        ({"OPENLAM_MODEL_TIMEOUT": "0"}, "", "model_timeout must be a number of seconds above 0"),
        (
            {},
            "[openlam]\nmax_steps = 2.7\n",
            "max_steps must be a whole number of at least 1, got 2.7",
        ),
    ],
    ids=["no steps", "negative retries", "nan timeout", "zero model timeout", "fractional steps"],
)
def test_a_loop_setting_out_of_range_is_refused_before_the_run(
    workspace: Path, env: dict[str, str], toml: str, said: str
):
    """Accepted, these failed every run in confusing ways ("the plan has 2 steps; at most
    0 are allowed", every step timing out at once)."""
    (workspace / "openlam.toml").write_text(toml)
    proc = openlam(workspace, "run", "write 'x' to x.md", env=env)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, out + err
    assert f"error: setting {said}" in err and "fix: e.g. OPENLAM_" in err
    assert not (workspace / "x.md").exists()
