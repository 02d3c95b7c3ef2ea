"""katcp_compat.testutils: the helpers behave as katcp's."""

import threading
import unittest

from katcp_compat.core import FailReply, Message
from katcp_compat.kattypes import Float, Int, request, return_reply
from katcp_compat.sensor import Sensor
from katcp_compat.testutils import (BlockingTestClient, DeviceTestSensor, DeviceTestServer,
                                    SensorComparisonMixin, SensorTransitionWaiter,
                                    TestLogHandler, TestUtilMixin, WaitingMock,
                                    counting_callback, handle_mock_req, mock_req,
                                    start_thread_with_cleanup, wait_sensor)

WAIT = 5.0


class TestBlockingTestClient(unittest.TestCase, TestUtilMixin):
    def setUp(self):
        self.server = DeviceTestServer("127.0.0.1", 0)
        start_thread_with_cleanup(self, self.server, timeout=WAIT, start_timeout=WAIT)
        self.client = BlockingTestClient(self, *self.server.bind_address)
        start_thread_with_cleanup(self, self.client, timeout=WAIT, start_timeout=WAIT)
        self.assertTrue(self.client.wait_protocol(WAIT))

    def test_assert_request_succeeds_returns_reply_args(self):
        self.assertEqual(self.client.assert_request_succeeds("new-command"), ["param1", "param2"])

    def test_assert_request_succeeds_checks_args(self):
        self.client.assert_request_succeeds("new-command", args_equal=["param1", "param2"])
        with self.assertRaises(AssertionError):
            self.client.assert_request_succeeds("new-command", args_length=3)

    def test_assert_request_succeeds_fails_for_failing_request(self):
        with self.assertRaises(AssertionError):
            self.client.assert_request_succeeds("raise-fail")

    def test_assert_request_fails_checks_error(self):
        self.client.assert_request_fails(
            "raise-fail", error_equals="There was a problem with your request.")
        self.client.assert_request_fails("no-such", status_equals="invalid")

    def test_decorated_request(self):
        self.client.assert_request_succeeds("decorated", "abc", 1.5, 2, 0,
                                            args_equal=["abc", "1.5", "2", "0"], informs_count=4)

    def test_sensor_helpers(self):
        self.assertEqual(self.client.get_sensor("an.int", int), (3, "nominal", 12345.0))
        self.client.assert_sensor_equals("a.float", 12.0, float)
        self.client.assert_sensor_status_equals("a.discrete", "nominal")
        self.client.assert_sensor_not_equal("an.int", 4, int)
        self.client.assert_sensors_equal([("an.int", 3, int), ("a.discrete", "one")])
        with self.assertRaises(AssertionError):
            self.client.assert_sensor_equals("an.int", 4, int)

    def test_wait_until_sensor_equals(self):
        sensor = self.server.get_sensor("an.int")
        threading.Thread(target=sensor.set_value, args=(5,)).start()
        self.client.wait_until_sensor_equals(WAIT, "an.int", 5, int)

    def test_sensor_list_and_help(self):
        self.client.test_sensor_list([
            ("a.discrete", "A Discrete.", "", "discrete", "one", "two", "three"),
            ("a.float", "A Float.", "", "float", "-123.4", "123.4"),
            ("a.floatwithzero", "A Float with zero.", "", "float", "-123.0", "123.0"),
            ("an.int", "An Integer.", "count", "integer", "-5", "5")])
        self.client.test_help([("new-command", "A new command.")] + [
            name for name in self.server.request_names if name != "new-command"])

    def test_message_recorder_sees_mass_informs(self):
        recorder = self.client.message_recorder(whitelist=["hello"])
        self.server.mass_inform(Message.inform("hello", "x"))
        self.server.mass_inform(Message.inform("other"))
        msgs = recorder(1, WAIT)
        self._assert_msgs_equal(msgs, ["#hello x"])

    def test_slow_command_can_be_cancelled(self):
        result = []
        thread = threading.Thread(target=lambda: result.append(
            self.client.blocking_request(Message.request("slow-command", "30"), timeout=WAIT)))
        thread.start()
        self.server.until_messages(1).result(WAIT)  # ?slow-command has arrived
        self.client.assert_request_succeeds("cancel-slow-command")
        thread.join(WAIT)
        self.assertTrue(result[0][0].reply_ok())

    def test_server_records_messages(self):
        self.client.assert_request_succeeds("watchdog")
        self.assertIn("watchdog", [m.name for m in self.server.messages])


class SetterDevice(DeviceTestServer):
    """The test device with requests that set its sensors."""

    @request(Int())
    @return_reply(Int())
    def request_set_int(self, req, value):
        """Set an.int within its range."""
        if not -5 <= value <= 5:
            raise FailReply("out of range")
        self.get_sensor("an.int").set_value(value)
        return ("ok", value)

    @request(Int(), Float())
    @return_reply()
    def request_set_both(self, req, int_value, float_value):
        """Set an.int and a.float; a.float turns warn when negative."""
        self.get_sensor("an.int").set_value(int_value)
        status = Sensor.WARN if float_value < 0 else Sensor.NOMINAL
        self.get_sensor("a.float").set_value(float_value, status)
        return ("ok",)


class TestSetterRequests(unittest.TestCase):
    def setUp(self):
        self.server = SetterDevice("127.0.0.1", 0)
        start_thread_with_cleanup(self, self.server, timeout=WAIT, start_timeout=WAIT)
        self.client = BlockingTestClient(self, *self.server.bind_address)
        start_thread_with_cleanup(self, self.client, timeout=WAIT, start_timeout=WAIT)
        self.assertTrue(self.client.wait_protocol(WAIT))

    def test_setter_request_checks_good_and_bad_values(self):
        self.client.test_setter_request("set-int", "an.int", int, good=[2, -4], bad=[9],
                                        args_echo=True)
        with self.assertRaises(AssertionError):
            self.client.test_setter_request("set-int", "an.int", int, bad=[1])

    def test_setter_request_reports_the_sensor_value_read(self):
        with self.assertRaisesRegex(AssertionError, "value of sensor 'a.float' is 12.0"):
            self.client.test_setter_request("set-int", "a.float", float, good=[3])

    def test_multi_setter_request_checks_values_and_statuses(self):
        self.client.test_multi_setter_request("set-both", good=[
            (("1", "2.5"), [("an.int", 1, int), ("a.float", 2.5, float)]),
            (("2", "-1.5"), [("an.int", 2, int)], {"statuses": [("a.float", "warn")]}),
        ], bad=[("x", "1"), ("1",)])
        with self.assertRaises(AssertionError):
            self.client.test_multi_setter_request("set-both", good=[
                (("1", "2.5"), [("an.int", 1, int)], {"statuses": [("a.float", "warn")]})])

    def test_wait_until_sensor_equals_takes_a_poll_period(self):
        self.client.wait_until_sensor_equals(WAIT, "an.int", 3, int, pollperiod=0.01)

    def test_custom_assertion_message_gets_the_value_read(self):
        with self.assertRaisesRegex(AssertionError, "an.int read 3"):
            self.client.assert_sensor_equals("an.int", 4, int, msg="an.int read %r")


class TestMocks(unittest.TestCase):
    def test_mock_req_against_an_unstarted_server(self):
        server = DeviceTestServer("127.0.0.1", 0)
        req = mock_req("sensor-value", "an.int")
        reply, informs = handle_mock_req(server, req).result(WAIT)
        self.assertEqual(str(reply), "!sensor-value ok 1")
        self.assertEqual(str(informs[0]), "#sensor-value 12345.000000 1 an.int nominal 3")

    def test_waiting_mock_waits_for_calls(self):
        m = WaitingMock()
        threading.Thread(target=m, args=(1,)).start()
        m.assert_wait_call_count(1, timeout=WAIT)
        with self.assertRaises(AssertionError):
            m.assert_wait_call_count(2, timeout=0.05)

    def test_counting_callback(self):
        @counting_callback(number_of_calls=2)
        def cb(x):
            return x * 2

        self.assertEqual(cb(1), 2)
        self.assertFalse(cb.done.is_set())
        cb(2)
        self.assertTrue(cb.assert_wait(WAIT))
        self.assertEqual(cb.get_no_calls(), 2)
        cb.reset()
        self.assertEqual(cb.get_no_calls(), 0)


class TestSensorHelpers(unittest.TestCase, SensorComparisonMixin):
    def setUp(self):
        self.sensor = DeviceTestSensor(Sensor.INTEGER, "s", "S.", "u", [0, 10],
                                       timestamp=1.0, status=Sensor.NOMINAL, value=1)

    def test_device_test_sensor_starts_with_its_reading(self):
        self.assertEqual(tuple(self.sensor.read()), (1.0, Sensor.NOMINAL, 1))

    def test_sensor_comparison(self):
        self.assert_sensor_equal_description(self.sensor, {"value": 1, "units": "u"})
        with self.assertRaises(AssertionError):
            self.assert_sensor_equal_description(self.sensor, {"value": 2})

    def test_transition_waiter_sees_a_sequence(self):
        waiter = SensorTransitionWaiter(self.sensor, [1, 2, 3])
        thread = threading.Thread(target=lambda: [self.sensor.set_value(v) for v in (2, 2, 3)])
        thread.start()
        self.assertTrue(waiter.wait(WAIT))
        thread.join(WAIT)

    def test_transition_waiter_rejects_a_wrong_sequence(self):
        waiter = SensorTransitionWaiter(self.sensor, [1, 2])
        self.sensor.set_value(7)
        self.assertFalse(waiter.wait(WAIT))

    def test_wait_sensor(self):
        threading.Thread(target=self.sensor.set_value, args=(4,)).start()
        self.assertTrue(wait_sensor(self.sensor, 4, timeout=WAIT))

    def test_log_handler_records(self):
        import logging
        handler = TestLogHandler()
        logger = logging.getLogger("katcp_compat.test.handler")
        logger.addHandler(handler)
        try:
            logger.warning("hello")
        finally:
            logger.removeHandler(handler)
        self.assertEqual([r.getMessage() for r in handler._records], ["hello"])
