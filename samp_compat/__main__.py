"""``python -m samp_compat``: run a hub (``samp-compat-hub``), or ``--demo`` for a tour."""
from .hub_script import hub_script


def main() -> None:
    """Run the hub script (which runs the demo when ``--demo`` is given)."""
    hub_script()


if __name__ == "__main__":
    main()
