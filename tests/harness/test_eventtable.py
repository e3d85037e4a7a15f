"""harness.eventtable: a column-wise sequence of events must behave as the list of the same
events (order, indexing, slicing, equality, pickling), with constant and formatted columns."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from harness.events import FileAccess, FileOperation, ProcessStart
from harness.eventtable import EventBlock, EventTable, Prefixed, positional
from harness.telemetry import split_index


def _table() -> tuple[EventTable, list[object]]:
    files = EventBlock(
        FileAccess,
        (
            np.array([3, 1]),
            np.array([30, 10]),
            "ws1",
            ["{g1}", "{g2}"],
            ["a", "b"],
            FileOperation.READ,
            np.array([5, 6]),
        ),
        positions=np.array([2, 0]),
        formats=((0, Prefixed("e")),),
    )
    procs = EventBlock(
        ProcessStart,
        (
            np.array([2]),
            np.array([20]),
            ["ws1"],
            ["{g1}"],
            [4],
            ["C:\\x.exe"],
            ["x.exe"],
            ["x"],
            None,
            ["u"],
            None,
        ),
        positions=np.array([1]),
        formats=((0, Prefixed("e")),),
    )
    expected = [
        FileAccess(event_id="e1", ts_ns=10, host="ws1", process_guid="{g2}", path="b",
                   operation=FileOperation.READ, bytes=6),
        ProcessStart(event_id="e2", ts_ns=20, host="ws1", process_guid="{g1}", pid=4,
                     image="C:\\x.exe", name="x.exe", command_line="x", parent_guid=None,
                     user="u"),
        FileAccess(event_id="e3", ts_ns=30, host="ws1", process_guid="{g1}", path="a",
                   operation=FileOperation.READ, bytes=5),
    ]  # fmt: skip
    return EventTable([files, procs], np.array([10, 20, 30])), expected


def test_table_is_the_list_of_its_events() -> None:
    table, expected = _table()
    assert len(table) == 3
    assert repr(table) == "<EventTable of 3 events (columns)>"
    assert table == expected
    assert list(table) == expected
    assert table[1] == expected[1]
    assert list(table[1:]) == expected[1:]
    assert table == tuple(expected)
    assert table != expected[:2]
    assert "made" in repr(table)


def test_split_index_uses_the_time_column_without_making_events() -> None:
    table, expected = _table()
    assert split_index(table, 20) == 1
    assert split_index(table, 21) == 2
    assert "columns" in repr(table)  # nothing made
    assert split_index(expected, 20) == 1  # a list is bisected the same way


def test_table_pickles_before_and_after_its_events_are_made() -> None:
    table, expected = _table()
    assert pickle.loads(pickle.dumps(table)) == expected
    list(table)
    assert pickle.loads(pickle.dumps(table)) == expected


def test_table_checks_that_blocks_and_time_column_agree() -> None:
    table, _ = _table()
    with pytest.raises(ValueError, match="3 events, the time column 2"):
        EventTable(table._blocks, np.array([1, 2]))


def test_positional_constructor_equals_keyword_constructor_and_checks_arity() -> None:
    make = positional(FileAccess)
    event = make("e1", 1, "h", "g", "p", FileOperation.READ, 9)
    assert event == FileAccess(event_id="e1", ts_ns=1, host="h", process_guid="g", path="p",
                               operation=FileOperation.READ, bytes=9)  # fmt: skip
    with pytest.raises(TypeError, match="missing 5 required positional arguments"):
        make("e1", 1)
