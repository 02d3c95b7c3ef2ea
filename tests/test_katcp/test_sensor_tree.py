"""Boolean and aggregate sensor trees."""
import pytest

from katcp_compat.sensor import Sensor
from katcp_compat.sensortree import AggregateSensorTree, BooleanSensorTree, GenericSensorTree
from katcp_io_helpers import IMPLEMENTATIONS


@pytest.fixture(params=IMPLEMENTATIONS)
def impl(request):
    """katcp_compat, and katcp 0.9.3 to show the tests describe the original."""
    return request.param


def _sum_rule(parent, children):
    parent.set_value(sum(child.value() for child in children))


def test_boolean_parent_is_and_of_children():
    tree = BooleanSensorTree()
    parent, a, b = Sensor.boolean("p"), Sensor.boolean("a"), Sensor.boolean("b")
    tree.add(parent, a)
    tree.add(parent, b)
    a.set_value(True)
    assert parent.value() is False
    b.set_value(True)
    assert parent.value() is True
    a.set_value(False)
    assert parent.value() is False


def test_boolean_remove_unlinks_and_recalculates():
    tree = BooleanSensorTree()
    parent, child = Sensor.boolean("p"), Sensor.boolean("c")
    tree.add(parent, child)
    assert parent.value() is False
    tree.remove(parent, child)
    assert parent.value() is True
    assert child not in tree and parent not in tree
    child.set_value(False)
    assert parent.value() is True


def test_boolean_tree_rejects_other_types():
    with pytest.raises(ValueError, match="not boolean"):
        BooleanSensorTree().add(Sensor.boolean("p"), Sensor.integer("c"))


def test_children_and_parents_are_reported():
    tree = BooleanSensorTree()
    parent, child = Sensor.boolean("p"), Sensor.boolean("c")
    tree.add(parent, child)
    assert tree.children(parent) == {child}
    assert tree.parents(child) == {parent}
    with pytest.raises(ValueError):
        tree.children(Sensor.boolean("other"))


def test_aggregate_rule_runs_when_children_change():
    tree = AggregateSensorTree()
    total, a, b = Sensor.integer("total"), Sensor.integer("a"), Sensor.integer("b")
    tree.add(total, _sum_rule, (a, b))
    a.set_value(2)
    b.set_value(3)
    assert total.value() == 5
    assert tree.fetch(total) == (_sum_rule, (a, b))
    tree.remove(total)
    a.set_value(10)
    assert total.value() == 5


def test_aggregate_rule_added_twice_is_an_error():
    tree = AggregateSensorTree()
    total, a = Sensor.integer("total"), Sensor.integer("a")
    tree.add(total, _sum_rule, (a,))
    with pytest.raises(ValueError, match="already has an aggregate rule"):
        tree.add(total, _sum_rule, (a,))


def test_delayed_rule_activates_when_all_children_are_registered():
    tree = AggregateSensorTree()
    total = Sensor.integer("total")
    tree.add_delayed(total, _sum_rule, ("a", "b"))
    a, b = Sensor.integer("a", default=5), Sensor.integer("b", default=3)
    tree.register_sensor(a)
    assert total.value() == 0
    tree.register_sensor(b)
    assert total.value() == 8
    tree.deregister_sensor(a)
    assert total.value() == 3
    b.set_value(100)
    assert total.value() == 3


def test_generic_tree_needs_recalculate():
    with pytest.raises(NotImplementedError):
        GenericSensorTree().add_links(Sensor.integer("p"), [Sensor.integer("c")])


def _recording_tree(impl):
    class RecordingTree(impl.GenericSensorTree):
        def __init__(self):
            super().__init__()
            self.calls = []

        def recalculate(self, parent, updates):
            self.calls.append((parent, updates))

    return RecordingTree()


def test_add_links_recalculates_with_the_callers_list(impl):
    tree = _recording_tree(impl)
    parent, children = impl.Sensor.integer("p"), [impl.Sensor.integer("c")]
    tree.add_links(parent, children)
    assert tree.calls[-1][0] is parent
    assert tree.calls[-1][1] is children


def test_remove_links_recalculates_with_the_callers_list(impl):
    tree = _recording_tree(impl)
    parent, child = impl.Sensor.integer("p"), impl.Sensor.integer("c")
    tree.add_links(parent, [child])
    children = [child]
    tree.remove_links(parent, children)
    assert tree.calls[-1][1] is children


def test_child_update_recalculates_with_that_child(impl):
    tree = _recording_tree(impl)
    parent, child = impl.Sensor.integer("p"), impl.Sensor.integer("c")
    tree.add_links(parent, [child])
    child.set_value(3)
    assert tree.calls[-1] == (parent, (child,))


def test_deregistered_child_leaves_the_parent_recalculated(impl):
    tree = impl.AggregateSensorTree()
    total = impl.Sensor.integer("total")
    tree.add_delayed(total, _sum_rule, ("a", "b"))
    a = impl.Sensor.integer("a", default=5)
    b = impl.Sensor.integer("b", default=3)
    tree.register_sensor(a)
    tree.register_sensor(b)
    assert total.value() == 8
    tree.deregister_sensor(b)
    assert total.value() == 5


def test_deregistered_child_stops_updating_the_parent(impl):
    tree = impl.AggregateSensorTree()
    total = impl.Sensor.integer("total")
    tree.add_delayed(total, _sum_rule, ("a", "b"))
    a = impl.Sensor.integer("a", default=5)
    b = impl.Sensor.integer("b", default=3)
    tree.register_sensor(a)
    tree.register_sensor(b)
    tree.deregister_sensor(b)
    b.set_value(50)
    a.set_value(7)
    assert total.value() == 5


def test_rule_is_active_again_once_the_child_is_registered_again():
    tree = AggregateSensorTree()
    total = Sensor.integer("total")
    tree.add_delayed(total, _sum_rule, ("a",))
    a = Sensor.integer("a", default=5)
    tree.register_sensor(a)
    tree.deregister_sensor(a)
    tree.register_sensor(a)
    a.set_value(9)
    assert total.value() == 9
