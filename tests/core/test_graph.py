"""The object-graph walker: identity and cycles kept, pickle's state rules, process resources refused by path."""

from __future__ import annotations

import enum
import socket
import threading

import pytest

from tapster.core._persist import walker as _graph
from tapster.core._persist.walker import Atom, Call, Global, Instance, Mapping, Method, Ref, Seq, apply_state, walk
from tapster.core.errors import PersistError
from tapster.core.internet import TCPServer
from tapster.core.protocol import Factory, Protocol
from tapster.core.service import Application, MultiService, Service


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Slotted:
    __slots__ = ("x", "y")


class WithSetstate:
    def __init__(self) -> None:
        self.value = 1
        self.restored = False

    def __getstate__(self) -> dict:
        return {"value": self.value}

    def __setstate__(self, state: dict) -> None:
        self.value = state["value"]
        self.restored = True


class HoldsThing(Service):
    """A service holding whatever the test gives it."""

    def __init__(self, thing: object) -> None:
        self.thing = thing

    def tick(self) -> None:
        pass


class SocketFactory(Factory):
    protocol = Protocol

    def __init__(self) -> None:
        self.sock = socket.socket()


def module_function() -> None:
    pass


def app_with(*services: Service) -> Application:
    app = Application("demo")
    for i, service in enumerate(services):
        service.setName(f"s{i}")
        service.setServiceParent(app)
    return app


def state_of(node: Instance) -> dict:
    assert isinstance(node.state, Mapping)
    return {k.value: v for k, v in node.state.items}


# -- plain data -------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, True, 0, -7, 10**40, 1.5, 2j, "text", b"\x00bytes"])
def test_plain_values_are_atoms(value):
    node = walk(value).root
    assert isinstance(node, Atom) and node.value == value and type(node.value) is type(value)


def test_containers_keep_their_kind_and_order():
    node = walk([(1, 2), {"b": 1, "a": 2}, {3, 1, 2}, frozenset({"y", "x"})]).root
    assert isinstance(node, Seq) and node.kind == "list"
    tup, dct, st, fst = node.items
    assert tup.kind == "tuple" and [i.value for i in tup.items] == [1, 2]
    assert isinstance(dct, Mapping) and [k.value for k, _ in dct.items] == ["b", "a"]  # insertion order kept
    assert st.kind == "set" and [i.value for i in st.items] == [1, 2, 3]  # sorted: files diff cleanly
    assert fst.kind == "frozenset" and [i.value for i in fst.items] == ["x", "y"]


def test_unshared_nodes_have_no_id():
    graph = walk([[1], {"a": [2]}])
    assert graph.shared == []
    assert graph.root.id is None and graph.root.items[0].id is None


def test_shared_list_is_walked_once_and_referenced_after():
    inner = [1, 2]
    graph = walk([inner, inner, {"again": inner}])
    first, second, mapping = graph.root.items
    assert isinstance(first, Seq) and first.id == 1
    assert isinstance(second, Ref) and second.target is first
    assert mapping.items[0][1].target is first
    assert graph.shared == [first]


def test_self_containing_list_is_a_cycle_through_a_ref():
    loop: list = []
    loop.append(loop)
    graph = walk(loop)
    assert isinstance(graph.root.items[0], Ref) and graph.root.items[0].target is graph.root
    assert graph.root.id == 1


def test_ids_are_numbered_in_walk_order_for_shared_nodes_only():
    a, b = [1], [2]
    graph = walk([b, a, [3], a, b])
    assert [n.id for n in graph.shared] == [1, 2]
    assert graph.shared[0] is graph.root.items[0]  # b was seen first


def test_tuple_containing_itself_through_a_list_is_refused():
    holder: list = []
    tup = (holder,)
    holder.append(tup)
    with pytest.raises(PersistError, match=r"contains itself"):
        walk(tup, "application")


# -- the service tree -------------------------------------------------------------


def test_application_tree_keeps_parent_pointing_back_at_the_root():
    app = app_with(Service(), Service())
    graph = walk(app)
    root = graph.root
    assert isinstance(root, Instance) and root.cls.path == "tapster.core.service.Application"
    services = state_of(root)["services"]
    first = services.items[0]
    assert isinstance(first, Instance) and first.cls.path == "tapster.core.service.Service"
    parent = state_of(first)["parent"]
    assert isinstance(parent, Ref) and parent.target is root
    named = state_of(root)["namedServices"]
    assert named.items[0][1].target is first  # the same object, not a copy
    assert root.id == 1 and first.id == 2


def test_getstate_is_respected_running_service_saved_stopped():
    app = app_with(Service())
    app.startService()
    child = state_of(walk(app).root)["services"].items[0]
    assert "running" not in state_of(child)
    assert "running" not in state_of(walk(app).root)


def test_factory_drops_numports_and_server_drops_its_port():
    factory = Factory()
    factory.numPorts = 3
    factory.marker = "kept"
    server = TCPServer(8007, factory, interface="127.0.0.1")
    server._port = object()  # stands for a live port: must not be reached
    server.reactor = object()
    state = state_of(walk(server).root)
    assert "_port" not in state and "reactor" not in state
    assert state_of(state["args"].items[1]).keys() == {"marker"}


def test_setstate_class_is_walked_from_getstate():
    node = walk(WithSetstate()).root
    assert isinstance(node, Instance) and state_of(node).keys() == {"value"}


def test_slots_give_a_dict_and_slots_pair():
    obj = Slotted()
    obj.x = 1
    node = walk(obj).root
    assert isinstance(node.state, Seq) and node.state.kind == "tuple"
    none, slots = node.state.items
    assert isinstance(none, Atom) and none.value is None
    assert [(k.value, v.value) for k, v in slots.items] == [("x", 1)]


class Empty:
    pass


def test_instance_without_state_has_none_and_empty_getstate_keeps_its_empty_dict():
    node = walk(Empty()).root
    assert isinstance(node, Instance) and node.state is None
    node = walk(MultiService.__new__(MultiService)).root  # Service.__getstate__ returns {}: kept, as pickle does
    assert isinstance(node.state, Mapping) and node.state.items == []


# -- names ------------------------------------------------------------------------


def test_classes_and_functions_are_globals_by_import_path():
    node = walk([TCPServer, module_function, len]).root
    paths = [(n.module, n.qualname) for n in node.items]
    assert paths == [
        ("tapster.core.internet", "TCPServer"),
        ("tests.core.test_graph", "module_function"),
        ("builtins", "len"),
    ]
    assert all(isinstance(n, Global) for n in node.items)


def test_enum_member_is_a_call_of_its_class():
    node = walk(Color.BLUE).root
    assert isinstance(node, Call) and node.func.qualname == "Color" and [a.value for a in node.args] == [2]


def test_bound_method_is_a_method_of_its_object():
    service = HoldsThing(None)
    service.thing = service.tick
    node = walk(service).root
    method = state_of(node)["thing"]
    assert isinstance(method, Method) and method.name == "tick"
    assert isinstance(method.obj, Ref) and method.obj.target is node


def test_lambda_is_refused_with_its_path():
    app = app_with(HoldsThing(lambda: None))
    with pytest.raises(PersistError) as info:
        walk(app)
    message = str(info.value)
    assert message.startswith("application.services[0].thing: a lambda")
    assert "module level" in message


def test_local_class_is_refused():
    class Local:
        pass

    with pytest.raises(PersistError, match=r"application\.thing: the class .*Local is defined inside a function"):
        walk(HoldsThing(Local()))


def test_main_module_class_is_refused():
    cls = type("Script", (), {"__module__": "__main__"})
    with pytest.raises(PersistError, match="__main__"):
        walk(HoldsThing(cls()))


def test_function_not_reachable_by_its_name_is_refused():
    def impostor() -> None:
        pass

    impostor.__qualname__ = "module_function"  # claims a name that resolves to another object
    with pytest.raises(PersistError, match="cannot be found again"):
        walk(HoldsThing(impostor))


# -- process resources ------------------------------------------------------------


def test_socket_is_refused_naming_the_path_and_the_getstate_to_fix():
    factory = SocketFactory()
    try:
        app = app_with(TCPServer(0, factory))
        with pytest.raises(PersistError) as info:
            walk(app)
    finally:
        factory.sock.close()
    assert str(info.value) == (
        "application.services[0].args[1].sock: a socket.socket cannot be saved; "
        "drop it in SocketFactory.__getstate__ and recreate it when the service starts"
    )


@pytest.mark.parametrize(
    "make, what",
    [
        (lambda: open(__file__), "an open file"),
        (threading.Lock, "a thread lock"),
        (lambda: threading.Thread(target=print), "a threading.Thread"),
        (lambda: (x for x in ()), "a generator"),
        (lambda: pytest, "the module pytest"),
    ],
)
def test_process_resources_are_refused(make, what):
    thing = make()
    try:
        with pytest.raises(PersistError) as info:
            walk(app_with(HoldsThing(thing)))
    finally:
        if hasattr(thing, "close"):
            thing.close()
    assert str(info.value).startswith(f"application.services[0].thing: {what}")
    assert "cannot be saved" in str(info.value)


def test_asyncio_loop_and_future_are_refused():
    import asyncio

    loop = asyncio.new_event_loop()
    try:
        for thing, what in [(loop, "an asyncio."), (loop.create_future(), "an asyncio.Future")]:
            with pytest.raises(PersistError, match=rf"application\.thing: {what}"):
                walk(HoldsThing(thing))
    finally:
        loop.close()


def test_unpicklable_object_gets_pickles_reason():
    with pytest.raises(PersistError, match=r"application\.thing\[0\]: .*cannot be saved"):
        walk(HoldsThing([_Unpicklable()]))


class _Unpicklable:
    def __reduce_ex__(self, protocol: int):
        raise TypeError("not today")


# -- restoring --------------------------------------------------------------------


def test_apply_state_uses_setstate_when_defined():
    obj = WithSetstate.__new__(WithSetstate)
    apply_state(obj, {"value": 5})
    assert (obj.value, obj.restored) == (5, True)


def test_apply_state_updates_dict_and_slots():
    service = apply_state(Service.__new__(Service), {"name": "x"})
    assert service.name == "x" and "running" not in vars(service)
    slotted = apply_state(Slotted.__new__(Slotted), (None, {"x": 1, "y": 2}))
    assert (slotted.x, slotted.y) == (1, 2)


def test_apply_state_refuses_dunder_names():
    with pytest.raises(TypeError, match="__class__"):
        apply_state(Slotted.__new__(Slotted), (None, {"__class__": WithSetstate}))
    with pytest.raises(TypeError, match="strings"):
        apply_state(Service.__new__(Service), {1: "x"})


def test_apply_state_adds_list_and_dict_items():
    assert apply_state([], None, [1, 2]) == [1, 2]
    assert apply_state({}, None, None, [("a", 1)]) == {"a": 1}


def test_walk_is_exported():
    assert set(_graph.__all__) >= {"walk", "Graph", "Instance", "Ref"}
