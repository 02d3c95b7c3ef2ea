"""``python -m samp_compat``: run a hub, or ``--demo`` for a self-contained tour."""
import sys


def main() -> None:
    """Run the hub script, or the demo when ``--demo`` is given."""
    if "--demo" in sys.argv[1:]:
        from ._demo import demo
        sys.exit(demo())
    from .hub_script import hub_script
    hub_script()


if __name__ == "__main__":
    main()
