"""Boolean and aggregate sensor trees."""
import pytest

from katcp_compat.sensor import Sensor
from katcp_compat.sensortree import AggregateSensorTree, BooleanSensorTree, GenericSensorTree


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
    b.set_value(100)
    assert total.value() == 8


def test_generic_tree_needs_recalculate():
    with pytest.raises(NotImplementedError):
        GenericSensorTree().add_links(Sensor.integer("p"), [Sensor.integer("c")])
