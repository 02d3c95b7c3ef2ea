"""Sensor trees: sensors whose values are computed from other sensors.

A tree is a directed acyclic graph of :class:`~katcp_compat.sensor.Sensor`
objects; an edge from a parent to a child means the parent's value depends on
the child. The tree observes every sensor in it, and when a child is set it
recalculates each parent (which may in turn update the parent's parents). The
graph must be acyclic for updates to end; this is not checked.

Recalculation runs on the thread that set the child sensor. The trees hold no
lock: build and change a tree from one thread.
"""

from collections.abc import Collection
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Set, Tuple

from .sensor import Sensor

__all__ = ["GenericSensorTree", "BooleanSensorTree", "AggregateSensorTree"]

Rule = Callable[[Sensor, Any], Any]


def _reusable(children: Iterable[Sensor]) -> Iterable[Sensor]:
    """The caller's collection itself; a one-shot iterator read into a list."""
    return children if isinstance(children, Collection) else list(children)


class GenericSensorTree:
    """A tree of sensors; subclasses say how a parent is recalculated."""

    def __init__(self) -> None:
        self._child_to_parents: Dict[Sensor, Set[Sensor]] = {}
        self._parent_to_children: Dict[Sensor, Set[Sensor]] = {}

    def update(self, sensor: Sensor, reading: Any = None) -> None:
        """Observer hook: recalculate the parents of a sensor that was set.

        Parameters
        ----------
        sensor : Sensor
            The sensor whose reading changed.
        reading : Reading, optional
            Its new reading.
        """
        for parent in list(self._child_to_parents.get(sensor, ())):
            self.recalculate(parent, (sensor,))

    def recalculate(self, parent: Sensor, updates: Sequence[Sensor]) -> None:
        """Set a parent's value from its children (subclasses implement this).

        Parameters
        ----------
        parent : Sensor
            The sensor to update.
        updates : sequence of Sensor
            The children that changed (or were linked or unlinked).

        Raises
        ------
        NotImplementedError
            In this base class.
        """
        raise NotImplementedError

    def _add_sensor(self, sensor: Sensor) -> None:
        self._parent_to_children[sensor] = set()
        self._child_to_parents[sensor] = set()

    def _remove_sensor(self, sensor: Sensor) -> None:
        del self._parent_to_children[sensor]
        del self._child_to_parents[sensor]

    def add_links(self, parent: Sensor, children: Iterable[Sensor]) -> None:
        """Make ``parent`` depend on ``children``, then recalculate it.

        Sensors new to the tree are added and observed. Existing links are
        left as they are. :meth:`recalculate` gets ``children`` as passed.

        Parameters
        ----------
        parent : Sensor
        children : sequence of Sensor
        """
        children = _reusable(children)
        new_sensors = []
        for sensor in (parent, *children):
            if sensor not in self:
                self._add_sensor(sensor)
                new_sensors.append(sensor)
        for child in children:
            self._parent_to_children[parent].add(child)
            self._child_to_parents[child].add(parent)
        self.recalculate(parent, children)
        for sensor in new_sensors:
            sensor.attach(self)

    def remove_links(self, parent: Sensor, children: Iterable[Sensor]) -> None:
        """Remove the dependencies of ``parent`` on ``children``, then recalculate it.

        Sensors left without any link leave the tree and are no longer
        observed. Missing links are ignored. :meth:`recalculate` gets
        ``children`` as passed.

        Parameters
        ----------
        parent : Sensor
        children : sequence of Sensor
        """
        children = _reusable(children)
        old_sensors = []
        if parent in self:
            for child in children:
                if child not in self:
                    continue
                self._parent_to_children[parent].discard(child)
                self._child_to_parents[child].discard(parent)
                if self._is_unlinked(child):
                    self._remove_sensor(child)
                    old_sensors.append(child)
            if self._is_unlinked(parent):
                self._remove_sensor(parent)
                old_sensors.append(parent)
        for sensor in old_sensors:
            sensor.detach(self)
        self.recalculate(parent, children)

    def _is_unlinked(self, sensor: Sensor) -> bool:
        return not self._child_to_parents[sensor] and not self._parent_to_children[sensor]

    def children(self, parent: Sensor) -> Set[Sensor]:
        """Return the children of a sensor.

        Parameters
        ----------
        parent : Sensor

        Returns
        -------
        children : set of Sensor
            A copy.

        Raises
        ------
        ValueError
            If the sensor is not in the tree.
        """
        if parent not in self._parent_to_children:
            raise ValueError("Parent sensor %r not in tree." % (parent,))
        return set(self._parent_to_children[parent])

    def parents(self, child: Sensor) -> Set[Sensor]:
        """Return the parents of a sensor.

        Parameters
        ----------
        child : Sensor

        Returns
        -------
        parents : set of Sensor
            A copy.

        Raises
        ------
        ValueError
            If the sensor is not in the tree.
        """
        if child not in self._child_to_parents:
            raise ValueError("Child sensor %r not in tree." % (child,))
        return set(self._child_to_parents[child])

    def __contains__(self, sensor: object) -> bool:
        """Whether a sensor is in the tree."""
        return sensor in self._parent_to_children


class BooleanSensorTree(GenericSensorTree):
    """A tree of boolean sensors; a parent is the AND of its children.

    Examples
    --------
    >>> tree = BooleanSensorTree()
    >>> ok, part = Sensor.boolean("ok"), Sensor.boolean("part")
    >>> tree.add(ok, part)
    >>> part.set_value(True)
    >>> ok.value()
    True
    """

    def __init__(self) -> None:
        super().__init__()
        self._parent_to_not_ok: Dict[Sensor, Set[Sensor]] = {}

    def add(self, parent: Sensor, child: Sensor) -> None:
        """Make boolean ``parent`` depend on boolean ``child``.

        Parameters
        ----------
        parent : Sensor
        child : Sensor

        Raises
        ------
        ValueError
            If either sensor is not boolean.
        """
        for role, sensor in (("Parent", parent), ("Child", child)):
            if sensor not in self:
                if sensor.stype != "boolean":
                    raise ValueError("%s sensor %r is not boolean" % (role, sensor))
                self._parent_to_not_ok.setdefault(sensor, set())
        self.add_links(parent, (child,))

    def remove(self, parent: Sensor, child: Sensor) -> None:
        """Remove the dependency of ``parent`` on ``child``.

        Parameters
        ----------
        parent : Sensor
        child : Sensor
        """
        self.remove_links(parent, (child,))
        for sensor in (parent, child):
            if sensor not in self:
                self._parent_to_not_ok.pop(sensor, None)

    def recalculate(self, parent: Sensor, updates: Sequence[Sensor]) -> None:
        """Set the parent to True when no linked child is False.

        Parameters
        ----------
        parent : Sensor
        updates : sequence of Sensor
        """
        not_ok = self._parent_to_not_ok.setdefault(parent, set())
        children = self.children(parent) if parent in self else set()
        for sensor in updates:
            if sensor not in children or sensor.value():
                not_ok.discard(sensor)
            else:
                not_ok.add(sensor)
        parent.set_value(not not_ok)


class AggregateSensorTree(GenericSensorTree):
    """Sensors computed by rule functions from other sensors.

    ``rule_function(parent, children)`` sets the parent's value; it runs
    whenever a child is set.

    Examples
    --------
    >>> tree = AggregateSensorTree()
    >>> total = Sensor.integer("total")
    >>> a, b = Sensor.integer("a"), Sensor.integer("b")
    >>> tree.add(total, lambda p, cs: p.set_value(sum(c.value() for c in cs)), (a, b))
    >>> a.set_value(2); b.set_value(3)
    >>> total.value()
    5
    """

    def __init__(self) -> None:
        super().__init__()
        self._aggregates: Dict[Sensor, Tuple[Rule, Any]] = {}
        self._incomplete_aggregates: Dict[Sensor, Tuple[Rule, Set[str], Set[Sensor]]] = {}
        self._registered_sensors: Dict[str, Sensor] = {}

    def _check_free(self, parent: Sensor) -> None:
        if parent in self._aggregates or parent in self._incomplete_aggregates:
            raise ValueError("Sensor %r already has an aggregate rule associated" % (parent,))

    def add(self, parent: Sensor, rule_function: Rule, children: Iterable[Sensor]) -> None:
        """Add an aggregation rule.

        Parameters
        ----------
        parent : Sensor
            The aggregate sensor.
        rule_function : callable
            ``rule_function(parent, children)``.
        children : sequence of Sensor

        Raises
        ------
        ValueError
            If the parent already has a rule.
        """
        self._check_free(parent)
        self._aggregates[parent] = (rule_function, children)
        self.add_links(parent, children)

    def add_delayed(self, parent: Sensor, rule_function: Rule,
                    child_names: Iterable[str]) -> None:
        """Add a rule whose children are registered later by name.

        The rule becomes active once every named child has been passed to
        :meth:`register_sensor`.

        Parameters
        ----------
        parent : Sensor
        rule_function : callable
        child_names : sequence of str

        Raises
        ------
        ValueError
            If the parent already has a rule.
        """
        self._check_free(parent)
        registered = self._registered_sensors
        child_names = list(child_names)
        missing = {name for name in child_names if name not in registered}
        present = {registered[name] for name in child_names if name in registered}
        if missing:
            self._incomplete_aggregates[parent] = (rule_function, missing, present)
        else:
            self.add(parent, rule_function, present)

    def register_sensor(self, child: Sensor) -> None:
        """Register a sensor named by :meth:`add_delayed` rules.

        Parameters
        ----------
        child : Sensor

        Raises
        ------
        ValueError
            If a sensor of that name is already registered.
        """
        name = self._get_sensor_reference(child)
        if name in self._registered_sensors:
            raise ValueError("Sensor %r already registered with aggregate tree" % (child,))
        self._registered_sensors[name] = child
        completed = []
        for parent, (_rule, names, sensors) in self._incomplete_aggregates.items():
            if name in names:
                names.remove(name)
                sensors.add(child)
                if not names:
                    completed.append(parent)
        for parent in completed:
            rule_function, _names, sensors = self._incomplete_aggregates.pop(parent)
            self.add(parent, rule_function, sensors)

    def deregister_sensor(self, child: Sensor) -> None:
        """Undo :meth:`register_sensor`; rules using it become delayed again.

        Each such parent is recalculated without the sensor (its rule gets
        its remaining children) and then loses its links, until the sensor is
        registered again.

        Parameters
        ----------
        child : Sensor

        Raises
        ------
        ValueError
            If the sensor is not registered.
        """
        name = self._get_sensor_reference(child)
        if name not in self._registered_sensors:
            raise ValueError("Sensor %r not registered with aggregate tree" % (name,))
        child = self._registered_sensors.pop(name)
        if child not in self:
            return
        for parent in self.parents(child):
            if parent in self._incomplete_aggregates:
                rule, names, sensors = self._incomplete_aggregates[parent]
                names.add(name)
                sensors.discard(child)
                continue
            rule, children = self._aggregates[parent]
            # A rule completed by register_sensor holds the very set kept for
            # it while delayed: leaving the child out updates both.
            sensors = children if isinstance(children, set) else set(children)
            sensors.discard(child)
            self._incomplete_aggregates[parent] = (rule, {name}, sensors)
            self.remove_links(parent, [child])
            if parent in self:
                self.remove(parent)
            else:  # the child was its only link
                del self._aggregates[parent]

    def remove(self, parent: Sensor) -> None:
        """Remove an aggregation rule.

        Parameters
        ----------
        parent : Sensor

        Raises
        ------
        ValueError
            If the parent has no rule.
        """
        if parent not in self._aggregates:
            raise ValueError("Sensor %r does not have an aggregate rule associated" % (parent,))
        children = self.children(parent)
        self.remove_links(parent, children)
        del self._aggregates[parent]

    def fetch(self, parent: Sensor) -> Tuple[Rule, Any]:
        """Return the rule of an aggregate sensor.

        Parameters
        ----------
        parent : Sensor

        Returns
        -------
        rule_function : callable
        children : sequence of Sensor

        Raises
        ------
        KeyError
            If the parent has no rule.
        """
        return self._aggregates[parent]

    def recalculate(self, parent: Sensor, updates: Sequence[Sensor]) -> None:
        """Run the parent's rule.

        Parameters
        ----------
        parent : Sensor
        updates : sequence of Sensor
        """
        rule = self._aggregates.get(parent)
        if rule is not None:
            rule_function, children = rule
            rule_function(parent, children)

    def _get_sensor_reference(self, sensor: Sensor) -> str:
        return sensor.name

    def _child_from_reference(self, reference: str) -> Optional[Sensor]:
        for child in self._child_to_parents:
            if self._get_sensor_reference(child) == reference:
                return child
        return None
