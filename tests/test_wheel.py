"""The installed wheel: handlers and migrations inside the package, no generic top-level names.

tox builds the wheel and installs it into a fresh virtualenv; these tests look at that install.
"""

import importlib.metadata
import importlib.resources
import sysconfig
from pathlib import Path

import agentspace_gateway
from agentspace_gateway.storage import available_migrations


def installed_files() -> list[str]:
    files = importlib.metadata.distribution("agentspace-gateway").files or []
    return [str(file) for file in files]


def test_package_is_imported_from_the_installed_wheel() -> None:
    site_packages = Path(sysconfig.get_paths()["purelib"]).resolve()
    assert Path(agentspace_gateway.__file__).resolve().is_relative_to(site_packages)


def test_migrations_and_handlers_are_inside_the_package() -> None:
    files = installed_files()
    assert "agentspace_gateway/migrations/0001_initial.sql" in files
    assert "agentspace_gateway/handlers/__init__.py" in files
    sql = importlib.resources.files("agentspace_gateway.migrations").joinpath("0001_initial.sql")
    assert "CREATE TABLE" in sql.read_text(encoding="utf-8")
    assert next(m.name for m in available_migrations()) == "0001_initial"


def test_the_console_files_are_inside_the_package() -> None:
    files = installed_files()
    for name in ("index.html", "console.css", "js/main.js", "js/gateway.js"):
        assert f"agentspace_gateway/static/{name}" in files
    page = importlib.resources.files("agentspace_gateway").joinpath("static/index.html")
    assert "/static/js/main.js" in page.read_text(encoding="utf-8")


def test_no_generic_top_level_names_are_claimed() -> None:
    inside = [file for file in installed_files() if "/" in file and not file.startswith("..")]
    top_levels = {file.split("/")[0] for file in inside}
    packages = {name for name in top_levels if not name.endswith((".dist-info", ".data"))}
    assert packages == {"agentspace_gateway"}
    assert "../../../bin/agentspace-gateway" in installed_files() or any(
        file.endswith("bin/agentspace-gateway") for file in installed_files()
    )


def test_every_module_of_the_checkout_is_in_the_wheel() -> None:
    """setup.cfg lists its packages by hand (handlers/ and migrations/ are mapped into the
    package): a new subpackage left off that list would install without its modules."""
    checkout = Path(__file__).resolve().parents[1]
    source = {
        str(path.relative_to(checkout))
        for path in (checkout / "agentspace_gateway").rglob("*.py")
        if "__pycache__" not in path.parts
    }
    source |= {
        f"agentspace_gateway/{path.relative_to(checkout)}"
        for folder in ("handlers", "migrations")
        for path in (checkout / folder).glob("*.py")
    }
    assert source - set(installed_files()) == set()
