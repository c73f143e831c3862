"""What `pip install openlam` gets: the wheel, built as a release is (hatchling, the
project's `[build-system]`, through `pip wheel`), holds every file the package reads at
run time besides its modules — the dashboard's templates and static files (htmx, its SSE
extension, the stylesheet), the database migrations, `py.typed`, the org catalog's YAML
and the bundled policy — and the dashboard renders from the unpacked wheel.

Slow-ish (a build, ~5 s here, up to a minute on a busy machine); it needs no network
beyond the package index pip is configured with (for hatchling, when it is not
installed)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "openlam"

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    isolated = importlib.util.find_spec("hatchling") is None
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out)]
    if not isolated:
        command.append("--no-build-isolation")
    built = subprocess.run(
        [*command, str(ROOT)],
        capture_output=True,
        text=True,
        timeout=150,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (found,) = out.glob("openlam-*.whl")
    return found


def data_files() -> list[str]:
    """Every file of the source package that is not Python: what the package reads."""
    return sorted(
        "openlam/" + path.relative_to(PACKAGE).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in (".py", ".pyc")
    )


def test_the_wheel_holds_the_dashboard_migrations_types_and_defaults(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    web = "openlam/server/web/"
    for static in ("htmx.min.js", "htmx-sse.min.js", "dashboard.css"):
        assert web + "static/" + static in names
    templates = {n for n in names if n.startswith(web + "templates/")}
    shipped = {web + "templates/" + p.name for p in (PACKAGE / "server/web/templates").iterdir()}
    assert (
        templates == shipped
        and {
            web + "templates/base.html",
            web + "templates/schedules.html",
            web + "templates/actions.html",
        }
        <= templates
    )
    migrations = sorted(
        "openlam/memory/migrations/" + p.relative_to(PACKAGE / "memory/migrations").as_posix()
        for p in (PACKAGE / "memory/migrations").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    assert "openlam/memory/migrations/env.py" in migrations
    assert "openlam/memory/migrations/script.py.mako" in migrations
    assert any(m.startswith("openlam/memory/migrations/versions/") for m in migrations)
    assert set(migrations) <= names
    assert "openlam/py.typed" in names
    catalog = [n for n in names if n.startswith("openlam/org/catalog/") and n.endswith(".yaml")]
    assert len(catalog) == len(list((PACKAGE / "org/catalog").glob("*.yaml"))) >= 13
    assert "openlam/learning/evals/agentdojo/policy.yaml" in names
    missing = [n for n in data_files() if n not in names]
    assert not missing, missing  # nothing the package reads is left out
    assert not [n for n in names if n.startswith(("tests/", "docs/", "bench/"))]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    metadata = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    assert "openlam = openlam.cli.main:main" in zipfile.ZipFile(wheel).read(metadata).decode()


def test_the_dashboard_renders_from_the_unpacked_wheel(wheel: Path, tmp_path: Path) -> None:
    zipfile.ZipFile(wheel).extractall(tmp_path)
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]); "
        "import openlam, openlam.server.web.render as r, openlam.server.web.static as s; "
        "assert openlam.__file__.startswith(sys.argv[1]), openlam.__file__; "
        "html = r.render('login.html', root='', me=None, nav='', csrf='', next='/'); "
        "assert 'htmx.min.js' in html; "
        "assert (s.STATIC / 'htmx.min.js').stat().st_size > 10000; "
        "from alembic.config import Config; from alembic.script import ScriptDirectory; "
        "import openlam.memory as m, pathlib; "
        "d = pathlib.Path(m.__file__).parent / 'migrations'; "
        "c = Config(); c.set_main_option('script_location', str(d)); "
        "assert ScriptDirectory.from_config(c).get_heads(); print('ok')"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stdout + done.stderr
