"""agentspace-gateway: a self-hosted, local-first AI agent gateway."""

from pathlib import Path

__version__ = "0.1.0"


def _adopt_checkout_subpackages() -> None:
    # The wheel maps the repository's top-level handlers/ and migrations/ into this package.
    # Running from a source checkout (adev runserver, python -m from the repository) has no
    # such mapping, so let the package path reach the checkout root to find them the same way.
    package_dir = Path(__file__).resolve().parent
    checkout = package_dir.parent
    if (package_dir / "migrations").is_dir():
        return
    if (checkout / "setup.cfg").is_file() and (checkout / "migrations").is_dir():
        __path__.append(str(checkout))


_adopt_checkout_subpackages()
