"""Cyclic garbage holding Qt objects is collected on the GUI thread, never on a job thread."""

import gc
import threading

import pytest

pytest.importorskip("PySide6")

from PySide6.QtCore import QObject  # noqa: E402

from restorer.app import gcguard  # noqa: E402
from restorer.app.workers import JobWorker  # noqa: E402


class _Tracked(QObject):
    deleted_on: list = []

    def __del__(self):
        _Tracked.deleted_on.append(threading.current_thread().name)


def test_job_start_turns_automatic_gc_off_and_timer_collects(qtbot):
    worker = JobWorker(lambda progress, cancel: 1, title="noop")
    with qtbot.waitSignal(worker.finished, timeout=10_000):
        worker.start()
    assert not gc.isenabled()
    collector = gcguard.install(None)  # already installed: the same object
    assert collector is gcguard._INSTALLED

    _Tracked.deleted_on.clear()
    for _ in range(1000):  # cycles that only the cyclic collector can free (past generation 0's threshold)
        obj = _Tracked()
        obj.me = obj
    del obj

    def allocate_in_job(progress, cancel):  # with automatic GC on, this would collect the cycles here
        junk = [[i] for i in range(200_000)]
        return len(junk)

    job = JobWorker(allocate_in_job, title="alloc")
    with qtbot.waitSignal(job.finished, timeout=10_000):
        job.start()
    qtbot.waitUntil(lambda: len(_Tracked.deleted_on) == 1000, timeout=10_000)
    assert set(_Tracked.deleted_on) == {threading.main_thread().name}
