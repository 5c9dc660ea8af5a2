"""The reader thread that fetches pages ahead of the writes: order, errors, early stops."""

import threading

import pytest

from assignar_pipeline.readahead import read_ahead


def test_yields_every_item_in_order_from_another_thread() -> None:
    threads = []

    def numbers():
        for n in range(50):
            threads.append(threading.current_thread())
            yield n

    assert list(read_ahead(numbers(), ahead=3)) == list(range(50))
    assert threading.current_thread() not in threads


def test_reads_ahead_while_the_caller_works_on_an_item() -> None:
    fetched = threading.Event()

    def pages():
        yield "first"
        fetched.set()  # the second page is being fetched
        yield "second"

    pages_ahead = read_ahead(pages())
    assert next(pages_ahead) == "first"
    assert fetched.wait(10), "the next page was not fetched while the first was handled"
    assert list(pages_ahead) == ["second"]


def test_an_error_reaches_the_caller_after_the_items_before_it() -> None:
    def failing():
        yield 1
        yield 2
        raise LookupError("page 3 failed")

    seen = []
    with pytest.raises(LookupError, match="page 3 failed"):
        for item in read_ahead(failing()):
            seen.append(item)
    assert seen == [1, 2]


def test_a_caller_that_stops_early_stops_the_reader() -> None:
    produced = []
    finished = threading.Event()

    def endless():
        try:
            n = 0
            while True:
                produced.append(n)
                yield n
                n += 1
        finally:
            finished.set()

    pages = read_ahead(endless(), ahead=2)
    assert next(pages) == 0
    pages.close()
    assert finished.wait(10), "the reader kept going after the caller stopped"
    assert len(produced) <= 4  # the item handed over, up to 2 queued, 1 being offered


def test_ahead_must_be_positive() -> None:
    with pytest.raises(ValueError):
        list(read_ahead(iter([1]), ahead=0))
