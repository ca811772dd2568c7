"""User apps: references, classes, functions, state, dispatch, and the errors a user sees."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from flower_actors import AppSpec, ConfigError, ErrorKind, LocalFederation, NodeConfig, TaskIns, app_spec
from tests import apps

Node = Callable[..., LocalFederation]


def test_app_given_as_class_or_function_becomes_a_reference() -> None:
    assert app_spec(apps.Recorder).ref == "tests.apps:Recorder"
    assert app_spec(apps.plain_function, {"k": 1}) == AppSpec("tests.apps:plain_function", {"k": 1})
    with pytest.raises(ConfigError, match="not importable"):
        app_spec(lambda task: task)
    with pytest.raises(ConfigError, match=r"package\.module:Name"):
        AppSpec("no_colon_here")


def test_state_lives_in_the_workload_and_dispatch_follows_message_type(node: Node) -> None:
    fed = node(app=apps.Recorder, long_poll=True)
    driver = fed.driver()
    first = driver.run([TaskIns.create(7, "a"), TaskIns.create(7, "b")], timeout=30)
    boom = driver.run([TaskIns.create(7, "c", message_type="boom")], timeout=30)[0]
    after = driver.run([TaskIns.create(7, "d")], timeout=30)[0]

    assert first[1].content["history"] == ["a", "b"]
    assert boom.error is not None and boom.error.kind == ErrorKind.HANDLER_ERROR
    assert boom.error.exception_type == "RuntimeError" and "boom on c" in boom.error.message
    assert "handle_boom" in boom.error.traceback
    assert after.content["history"] == ["a", "b", "d"], "the workload kept its state after the error"
    assert after.content["pid"] == first[0].content["pid"]


def test_unknown_message_type_and_unpicklable_result_are_error_results(node: Node) -> None:
    fed = node(app="tests.apps:Recorder", long_poll=True)
    results = fed.driver().run(
        [TaskIns.create(1, "x", message_type="nope"), TaskIns.create(1, "y", message_type="unpicklable")], timeout=30
    )
    assert results[0].error is not None and results[0].error.kind == ErrorKind.UNKNOWN_MESSAGE_TYPE
    assert "handle_nope" in results[0].error.message
    assert results[1].error is not None and results[1].error.kind == ErrorKind.UNPICKLABLE_RESULT


def test_function_app_and_per_workload_overrides(node: Node) -> None:
    fed = node(app="tests.apps:plain_function", workload_apps={"rec": "tests.apps:Recorder"}, long_poll=True)
    results = fed.driver().run([TaskIns.create("any", "x"), TaskIns.create("rec", "y")], timeout=30)
    assert results[0].content == "fn:x"
    assert results[1].content["history"] == ["y"]


@pytest.mark.parametrize(
    "ref, expected",
    [
        ("no_such_module_xyz:App", "cannot import module 'no_such_module_xyz'"),
        ("tests.apps:Missing", "has no attribute 'Missing'"),
        ("tests.apps:BrokenInit", "failed in __init__: ValueError: cannot start"),
    ],
)
def test_bad_app_reference_is_an_error_result_not_a_crash(node: Node, ref: str, expected: str) -> None:
    fed = node(app=ref, long_poll=True)
    results = fed.driver().run([TaskIns.create(1, "x"), TaskIns.create(1, "y")], timeout=30)
    for r in results:
        assert r.error is not None and r.error.kind == ErrorKind.APP_LOAD_ERROR
        assert expected in r.error.message
    assert fed.status().workloads_live == 1, "the node and the workload keep running"


def test_unknown_workload_without_default_app_and_registration_while_running(node: Node) -> None:
    fed = node(long_poll=True)
    driver = fed.driver()
    unknown = driver.run([TaskIns.create("late", "x")], timeout=30)[0]
    assert unknown.error is not None and unknown.error.kind == ErrorKind.UNKNOWN_WORKLOAD

    fed.register_workload("late", "tests.apps:Recorder")
    known = driver.run([TaskIns.create("late", "y")], timeout=30)[0]
    assert known.ok and known.content["history"] == ["y"]
    with pytest.raises(ConfigError, match="is running"):
        fed.register_workload("late", "tests.apps:Sleeper")


def test_config_errors_are_clear() -> None:
    with pytest.raises(ConfigError, match="poll_interval must be a positive number"):
        NodeConfig(poll_interval=0)
    with pytest.raises(ConfigError, match="node_id must be an int or a str"):
        NodeConfig(node_id=1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="max_pull_batch must be a positive integer"):
        NodeConfig(max_pull_batch=2.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="share_imports must be True or False"):
        NodeConfig(share_imports="yes")  # type: ignore[arg-type]


PROBE = "tests.apps_import_probe:ImportedWhere"


def _probe(fed: LocalFederation, workloads: list[str]) -> list[dict[str, object]]:
    results = fed.driver("probe").run([TaskIns.create(w, None) for w in workloads], timeout=60)
    assert all(r.ok for r in results), [r.error for r in results]
    return [r.content for r in results]


def test_an_app_imported_cleanly_once_is_imported_by_the_spawner_for_later_workloads(node: Node) -> None:
    fed = node(app=PROBE, long_poll=True, warm_pool=0)
    (first,) = _probe(fed, ["first"])
    assert first["imported_here"], "the first workload's process imports the app itself"
    later = _probe(fed, [f"w{i}" for i in range(6)])
    assert not any(r["imported_here"] for r in later), "later processes are forked with it loaded"
    assert len({r["pid"] for r in later}) == 6


def test_the_default_app_a_warm_process_imported_ahead_is_shared_with_the_first_burst(node: Node) -> None:
    fed = node(app=PROBE, long_poll=True, warm_pool=2)
    time.sleep(0.5)  # the warm processes' reports (pid, then AppImported) reach the LeadClient and the Spawner
    first = _probe(fed, [f"w{i}" for i in range(6)])
    assert len({r["pid"] for r in first}) == 6
    assert sum(bool(r["imported_here"]) for r in first) <= 2, f"only the warm processes imported it: {first}"


def test_share_imports_false_imports_the_app_in_every_process(node: Node) -> None:
    fed = node(app=PROBE, long_poll=True, warm_pool=0, share_imports=False)
    _probe(fed, ["first"])
    assert all(r["imported_here"] for r in _probe(fed, [f"w{i}" for i in range(4)]))


def test_a_workload_client_inherits_no_descriptor_of_its_siblings(node: Node) -> None:
    """multiprocessing kept two pipe ends per live child in the Spawner, and each new child inherited them all."""
    fed = node(app=PROBE, long_poll=True)
    first = _probe(fed, [f"a{i}" for i in range(5)])
    later = _probe(fed, [f"b{i}" for i in range(40)])
    assert max(r["fds"] for r in later) <= max(r["fds"] for r in first) + 4, (first, later)


def test_an_app_may_use_multiprocessing_inside_its_workload_client(node: Node) -> None:
    fed = node(app="tests.apps:uses_multiprocessing", long_poll=True)
    results = fed.driver().run([TaskIns.create(w, 7) for w in range(3)] + [TaskIns.create(0, 9)], timeout=60)
    assert [r.error for r in results] == [None] * 4
    for result in results:
        seen = result.content
        assert seen["square"] in (49, 81) and seen["exitcode"] == 0 and seen["active_children"] == 0
        assert seen["child_pid"] != seen["pid"] == result.handler_pid
