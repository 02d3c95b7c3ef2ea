"""Tab completion of the interactive KATCP client (katcp_compat._cli_completion.Completer)."""

import pytest

from katcp_compat._cli_completion import STRATEGIES, Completer

REQUESTS = ["help", "sensor-list", "sensor-sampling", "sensor-value", "set-mode", "watchdog"]
SENSORS = ["wave", "counter", "toggle", "mode", "last-update"]


@pytest.fixture
def completer():
    return Completer(REQUESTS, SENSORS, commands=["watch", "help", "quit"],
                     sensor_commands=["watch"])


def test_a_question_mark_completes_to_request_names(completer):
    assert completer.matches("?sen") == ["?sensor-list", "?sensor-sampling", "?sensor-value"]


def test_an_empty_line_offers_local_commands_then_every_request(completer):
    found = completer.matches("")
    assert found[:3] == ["help", "quit", "watch"]
    assert found[3:] == ["?" + name for name in sorted(REQUESTS)]


def test_a_bare_word_completes_local_commands_and_requests(completer):
    assert completer.matches("wa") == ["watch"]
    assert completer.matches("he") == ["help"]


def test_sensor_requests_complete_sensor_names(completer):
    assert completer.matches("?sensor-value ") == sorted(SENSORS)
    assert completer.matches("?sensor-sampling co") == ["counter"]
    assert completer.matches("?sensor-list l") == ["last-update"]


def test_sensor_sampling_completes_a_strategy_after_the_sensor(completer):
    assert completer.matches("?sensor-sampling wave ") == sorted(STRATEGIES)
    assert completer.matches("?sensor-sampling wave ev") == ["event", "event-rate"]


def test_help_completes_request_names_without_question_mark(completer):
    assert completer.matches("?help set") == ["set-mode"]


def test_watch_completes_sensor_names_for_every_argument(completer):
    assert completer.matches("watch wave t") == ["toggle"]


def test_arguments_of_other_requests_get_nothing(completer):
    assert completer.matches("?set-mode ") == []
    assert completer.matches("?sensor-value wave ") == []


def test_complete_returns_each_candidate_with_a_space_then_none():
    line = "?sensor-v"
    completer = Completer(REQUESTS, SENSORS, line=lambda: line)
    assert completer.complete("?sensor-v", 0) == "?sensor-value "
    assert completer.complete("?sensor-v", 1) is None


def test_complete_follows_the_line_before_the_cursor():
    lines = iter(["?sensor-value w", "?help wat"])
    completer = Completer(REQUESTS, SENSORS, line=lambda: next(lines))
    assert [completer.complete("w", 0), completer.complete("w", 1)] == ["wave ", None]
    assert completer.complete("wat", 0) == "watchdog "


def test_update_replaces_the_names():
    completer = Completer(REQUESTS, SENSORS)
    completer.update(requests=["ping"], sensors=["temperature"])
    assert completer.matches("?") == ["?ping"]
    assert completer.matches("?sensor-value t") == ["temperature"]
