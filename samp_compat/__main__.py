"""``python -m samp_compat``: run a hub, or ``--demo`` for a self-contained tour."""
import sys

from ._demo import demo
from .hub_script import hub_script


def main() -> None:
    """Run the hub script, or the demo when ``--demo`` is given."""
    if "--demo" in sys.argv[1:]:
        sys.exit(demo())
    hub_script()


if __name__ == "__main__":
    main()
