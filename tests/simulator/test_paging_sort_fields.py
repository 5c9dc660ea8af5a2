"""Paging (page/page_size), sort, field selection and the errors for unknown fields."""

from __future__ import annotations

import pytest

from .conftest import Api

TS = "/timesheets-expanded"


def test_default_page_size_is_100(demo_api: Api):
    """Without page_size a list answers at most 100 records."""
    assert len(demo_api.rows(TS)) == 100


def test_page_size_1000_is_allowed_and_1001_is_refused(demo_api: Api):
    """1000 is the maximum page size; above it the API answers 400 instead of clamping."""
    assert len(demo_api.rows(TS, page_size=1000)) == 1000
    resp = demo_api.get(TS, page_size=1001)
    assert resp.status_code == 400
    assert resp.json() == {"message": "[400] page_size must be between 1 and 1000"}


@pytest.mark.parametrize(("param", "value"), [("page_size", "0"), ("page", "0"), ("page", "x")])
def test_bad_paging_values_are_400(demo_api: Api, param, value):
    """page_size 0, page 0 or a non-number page are rejected with a 400 message."""
    resp = demo_api.get("/users", **{param: value})
    assert resp.status_code == 400
    assert resp.json()["message"].startswith("[400] ")


def test_numbered_pages_partition_the_sorted_list(demo_api: Api):
    """Pages 1..n with sort=id concatenate to exactly the full id-sorted list."""
    everything = [r["id"] for r in demo_api.everything(TS)]
    paged: list[int] = []
    page = 1
    while True:
        rows = demo_api.rows(TS, sort="id", page=page, page_size=250, fields="id")
        if not rows:
            break
        paged += [r["id"] for r in rows]
        page += 1
    assert paged == everything == sorted(everything)


def test_page_beyond_the_end_is_an_empty_list(demo_api: Api):
    """A page past the last record is 200 with no rows."""
    body = demo_api.data(TS, page=10_000, page_size=100)
    assert body == {"count": 0, "rows": []}
    assert demo_api.data("/users", page=500) == []


def test_sort_descending(demo_api: Api):
    """sort=-modified_time returns records newest first."""
    rows = demo_api.rows(TS, sort="-modified_time", page_size=1000)
    times = [r["modified_time"] for r in rows]
    assert times == sorted(times, reverse=True)
    assert len(set(times)) > 100


def test_sort_ascending_by_string_and_ties_by_id(demo_api: Api):
    """sort=last_name orders by name; equal names keep ascending ids."""
    rows = demo_api.rows("/users", sort="last_name", page_size=1000)
    keys = [(r["last_name"], r["id"]) for r in rows]
    assert keys == sorted(keys)


def test_multi_key_sort_mixes_directions(demo_api: Api):
    """sort=-active,name puts active projects first, each group by name ascending."""
    rows = demo_api.rows("/projects/", sort="-active,name")
    keys = [(not r["active"], r["name"]) for r in rows]
    assert keys == sorted(keys)
    assert {r["active"] for r in rows} == {True, False}


def test_sort_on_a_date_then_id(demo_api: Api):
    """sort=submitted_date,-id orders by day, and within a day by descending id."""
    rows = demo_api.rows(TS, sort="submitted_date,-id", page_size=1000)
    keys = [(r["submitted_date"], -r["id"]) for r in rows]
    assert keys == sorted(keys)


def test_without_sort_an_edited_record_moves_to_the_end(api: Api):
    """Storage order: records come in insertion order and an edited record is served last."""
    first = api.rows("/users", page_size=1000)
    assert [u["id"] for u in first] == sorted(u["id"] for u in first)
    edited = first[0]["id"]
    api.server.simulator.update("users", edited, {"contact": "0400 000 000"})
    after = [u["id"] for u in api.rows("/users", page_size=1000)]
    assert after[-1] == edited
    assert after[:-1] == [u["id"] for u in first[1:]]


def test_fields_selects_top_level_fields_in_the_requested_order(demo_api: Api):
    """fields=id,status,user returns only those keys, in that order, nested objects whole."""
    rows = demo_api.rows(TS, fields="id,status,user", page_size=5)
    assert [list(r) for r in rows] == [["id", "status", "user"]] * 5
    assert set(rows[0]["user"]) >= {"user_id", "employee_id", "email"}


def test_fields_on_get_by_id(demo_api: Api):
    """fields also narrows a single-record GET."""
    uid = demo_api.rows("/users", page_size=1)[0]["id"]
    resp = demo_api.get(f"/users/{uid}", fields="id,email")
    assert resp.json() == {
        "status": 200,
        "data": {"id": uid, "email": resp.json()["data"]["email"]},
    }


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"sort": "-nosuch"}, "[400] Unknown field - nosuch"),
        ({"fields": "id,nosuch"}, "[400] Unknown field - nosuch"),
        ({"nosuch": "1"}, "[400] Unknown field - nosuch"),
        ({"nosuch__gt": "1"}, "[400] Unknown field - nosuch"),
        ({"id__near": "1"}, "[400] Unknown operator - near"),
        ({"sort": "user"}, "[400] Cannot sort by field - user"),
        ({"user": "x"}, "[400] Cannot filter by field - user"),
    ],
)
def test_unknown_fields_and_operators_are_400_naming_them(demo_api: Api, params, message):
    """Unknown fields in sort, fields or filters, and unknown operators, are named in a 400."""
    resp = demo_api.get(TS, **params)
    assert resp.status_code == 400
    assert resp.json() == {"message": message}
