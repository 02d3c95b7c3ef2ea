"""The service table: how each received (Service-ID, Data-ID) is handled."""
import pytest

from sockproto import RequestSidExistsError, ResponseSidExistsError
from sockproto._services import MAX_ROUTES, REQUEST, RESPONSE, UNKNOWN_REQUEST, ServiceTable


def _callback(msg):
    return 0, None


@pytest.fixture
def table():
    table = ServiceTable(requires_auth=True, handlers={(0, 0): "own handler"})
    table.add_service(10, 11)
    return table


@pytest.mark.parametrize("key, kind", [((10, 5), REQUEST), ((11, 5), RESPONSE), ((41, 5), RESPONSE),
                                       ((40, 5), UNKNOWN_REQUEST)])
def test_route_kind_follows_the_services(table, key, kind):
    assert table.route(key).kind == kind


def test_route_of_a_request_names_its_response_service_id(table):
    table.add_service(50, 53)
    assert table.route((50, 1)).response_sid == 53
    assert table.route((40, 1)).response_sid == 41


def test_route_carries_the_protocols_own_handler_instead_of_a_callback(table):
    table.set_callback(None, None, (_callback, (), {}))
    route = table.route((0, 0))
    assert (route.handler, route.callback) == ("own handler", None)


def test_route_is_open_only_for_whitelisted_pairs_when_authentification_is_required(table):
    table.allow_untrusted(10, 1)
    assert table.route((10, 1)).open and not table.route((10, 2)).open
    assert ServiceTable(False, {}).route((10, 2)).open


def test_route_follows_a_callback_registered_after_it_was_worked_out(table):
    assert table.route((10, 1)).callback is None
    table.set_callback(10, None, (_callback, (), {}))
    assert table.route((10, 1)).callback == (_callback, (), {})


def test_set_callback_tells_whether_one_was_replaced(table):
    entry = (_callback, (), {})
    assert table.set_callback(10, 1, entry) is False
    assert table.set_callback(10, 1, entry) is True
    assert table.set_callback(10, 1, None) is False


def test_routes_kept_stay_bounded(table):
    for data_id in range(MAX_ROUTES + 10):
        table.route((10, data_id))
    assert table.route_count() <= MAX_ROUTES


def test_service_ids_in_use_are_refused(table):
    with pytest.raises(RequestSidExistsError, match="11"):
        table.add_service(11, 12)
    with pytest.raises(ResponseSidExistsError, match="10"):
        table.add_service(12, 10)


def test_names_for_log_lines(table):
    table.add_service(60, 61, "Lamp Request")
    table.add_data([60], 4, "Brightness")
    table.add_status(77, "Too dark")
    assert table.names(77, 60, 4) == ("Too dark", "Lamp Request", "Brightness")
    assert table.names(99, 98, 97) == (99, 98, 97)
