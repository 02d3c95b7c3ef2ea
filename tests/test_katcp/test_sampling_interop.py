"""Strategy parameter handling cross-checked against katcp 0.9.3."""
import pytest

from katcp_compat.sampling import SampleStrategy
from katcp_compat.sensor import Sensor

katcp = pytest.importorskip("katcp")
from katcp import sampling as real_sampling  # noqa: E402

pytestmark = pytest.mark.interop

CASES = [
    ("none", ()), ("none", (b"1",)), ("auto", ()), ("event", ()), ("event", (b"x",)),
    ("period", (b"0.5",)), ("period", ()), ("period", (b"0",)),
    ("differential", (b"2",)), ("differential", (b"0",)), ("differential", ()),
    ("event-rate", (b"0.5", b"2")), ("event-rate", (b"3", b"2")), ("event-rate", (b"1",)),
    ("differential-rate", (b"1", b"0.5", b"2")), ("differential-rate", (b"1",)),
    ("bogus", ()),
]


def _outcome(module, sensor, name, params, **kwargs):
    try:
        strategy = module.SampleStrategy.get_strategy(name, lambda *a: None, sensor, *params,
                                                      **kwargs)
    except ValueError as exc:
        text = str(exc)
        return ("error", text.split(" Parameters passed")[0])
    return ("ok", strategy.get_sampling(), strategy.get_sampling_formatted())


@pytest.mark.parametrize("name, params", CASES)
@pytest.mark.parametrize("kind", ["integer", "float", "string"])
def test_strategy_creation_matches_original(name, params, kind):
    ours = _outcome(__import__("katcp_compat.sampling", fromlist=["x"]),
                    getattr(Sensor, kind)("s"), name, params)
    theirs = _outcome(real_sampling, getattr(katcp.Sensor, kind)("s"), name, params)
    assert ours == theirs


def test_strategy_constants_match_original():
    assert SampleStrategy.SAMPLING_LOOKUP == real_sampling.SampleStrategy.SAMPLING_LOOKUP
