"""Rows kept ready: pages with `fields` are cut out of the stored rows, and windowed keyset pages
come from the date index. Every change to the tenant must show in both, byte for byte.

The reference for a page with `fields` is the same page of whole rows, parsed and projected here
(what the simulator did on every request before rows were kept ready); the reference for a
windowed keyset page is the whole list filtered and sorted here.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import orjson
import pytest

from assignar_pipeline.extract import FIELDS
from assignar_pipeline.simulator import TenantConfig
from assignar_pipeline.simulator.resources import TIMESHEETS
from assignar_pipeline.simulator.state import Simulator
from assignar_pipeline.simulator.store import MAX_SPLIT_ROW, RowEncoder

from .conftest import Api

TS = "/timesheets-expanded"
PIPELINE_FIELDS = ",".join(FIELDS["timesheets"])
# Fields out of schema order, with a run of neighbours (user_id, project_id) and the last field.
ODD_FIELDS = "site_diary,comments,user_id,project_id,id,activity_entries,user"


def projected(whole: bytes, fields: str) -> bytes:
    """The response to the same request with `fields`, made from the whole-row response."""
    doc = orjson.loads(whole)
    data = doc["data"]
    rows = data["rows"] if isinstance(data, dict) and "rows" in data else data
    names = fields.split(",")
    picked: Any
    if isinstance(rows, list):
        picked = [{f: r[f] for f in names} for r in rows]
    else:
        picked = {f: rows[f] for f in names}
    if isinstance(data, dict) and "rows" in data:
        doc["data"] = {"count": data["count"], "rows": picked}
    else:
        doc["data"] = picked
    return orjson.dumps(doc)


def assert_fields_exact(api: Api, path: str, **params: Any) -> None:
    """With each field set, the page equals the projection of the same page of whole rows."""
    whole = api.get(path, **params)
    assert whole.status_code == 200, whole.text
    field_sets = (PIPELINE_FIELDS, ODD_FIELDS, ",".join(TIMESHEETS.fields))
    if path.startswith("/users"):
        field_sets = ("email,id,full_name,modified_time,tags",)
    for fields in field_sets:
        got = api.get(path, fields=fields, **params)
        assert got.status_code == 200, got.text
        assert got.content == projected(whole.content, fields), (path, fields)


def windows(api: Api) -> list[tuple[str, str]]:
    """7-day windows over the tenant's timesheet dates, as the pipeline's extract asks for them."""
    dates = sorted({t["submitted_date"] for t in api.everything(TS)})
    first, last = date.fromisoformat(dates[0]), date.fromisoformat(dates[-1])
    out = []
    while last >= first:
        out.append(((last - timedelta(days=6)).isoformat(), last.isoformat()))
        last -= timedelta(days=7)
    return out


def assert_windows_exact(api: Api, page_size: int = 40) -> None:
    """Keyset pages through every window (with `fields`) hold exactly the window's records,
    by id, each page byte for byte the projection of the same page of whole rows."""
    everything = api.everything(TS)
    for lo, hi in windows(api):
        expected = sorted(t["id"] for t in everything if lo <= t["submitted_date"] <= hi)
        got: list[int] = []
        params: dict[str, Any] = {
            "submitted_date__between": f"{lo},{hi}",
            "sort": "id",
            "page": 1,
            "page_size": page_size,
        }
        while True:
            assert_fields_exact(api, TS, **params)
            page = api.rows(TS, fields=PIPELINE_FIELDS, **params)
            got += [t["id"] for t in page]
            if len(page) < page_size:
                break
            params["id__gt"] = page[-1]["id"]
        assert got == expected, (lo, hi)


def first_ids(api: Api, n: int = 3) -> list[int]:
    return [t["id"] for t in api.rows(TS, sort="id", page_size=n)]


def test_fields_pages_equal_projected_whole_rows(demo_api: Api):
    """Every field set, on lists, windows and by id, is the exact projection of whole rows."""
    assert_fields_exact(demo_api, TS, page_size=1000, sort="id")
    assert_fields_exact(demo_api, TS, page_size=7, page=3, sort="-submitted_date")
    assert_fields_exact(demo_api, "/users", page_size=1000)
    tid = first_ids(demo_api, 1)[0]
    assert_fields_exact(demo_api, f"{TS}/{tid}")


def test_windowed_keyset_pages_are_exact(demo_api: Api):
    """Keyset paging through 7-day windows yields each window's records once, in id order."""
    assert_windows_exact(demo_api)


def test_windowed_keyset_pages_with_another_filter_and_descending(demo_api: Api):
    """A window plus a filter the index cannot serve, and id descending, match the reference."""
    everything = demo_api.everything(TS)
    for lo, hi in windows(demo_api)[:3]:
        expected = sorted(
            (
                t["id"]
                for t in everything
                if lo <= t["submitted_date"] <= hi and t["status"] == "APPROVED"
            ),
            reverse=True,
        )
        rows = demo_api.rows(
            TS,
            submitted_date__between=f"{lo},{hi}",
            status="APPROVED",
            sort="-id",
            page_size=1000,
        )
        assert [t["id"] for t in rows] == expected
        window = [t["id"] for t in everything if lo <= t["submitted_date"] <= hi]
        ceiling = sorted(window)[len(window) // 2]
        below = demo_api.rows(TS, submitted_date__between=f"{lo},{hi}", sort="-id", id__lt=ceiling)
        assert [t["id"] for t in below] == sorted((i for i in window if i < ceiling), reverse=True)[
            :100
        ]


def test_update_shows_in_fields_pages(api: Api):
    """An update that changes field lengths shows, byte for byte, in pages with fields."""
    tid = first_ids(api, 1)[0]
    api.server.simulator.update(
        "timesheets-expanded", tid, {"comments": "x" * 300, "user_id": 123456789}
    )
    assert_fields_exact(api, TS, page_size=5, sort="id")
    assert_fields_exact(api, f"{TS}/{tid}")
    assert api.rows(TS, fields="id,comments", sort="id", page_size=1)[0]["comments"] == "x" * 300


def test_delete_shows_in_windowed_pages(api: Api):
    """A deleted record leaves windowed keyset pages and pages with fields."""
    gone = first_ids(api, 2)
    for tid in gone:
        assert api.control("DELETE", f"records/timesheets-expanded/{tid}").status_code == 200
    assert not set(gone) & {t["id"] for t in api.rows(TS, sort="id", page_size=10)}
    assert_fields_exact(api, TS, page_size=5, sort="id")
    assert_windows_exact(api)


def test_insert_shows_in_windowed_and_fields_pages(api: Api):
    """Inserted records, one too long to keep field offsets for and one with odd key order, are
    served with fields exactly like every other record."""
    sim = api.server.simulator
    source = sim.get("timesheets-expanded", first_ids(api, 1)[0])
    assert source is not None
    big = {**source, "id": None, "comments": "long " * (MAX_SPLIT_ROW // 5)}
    inserted = sim.insert("timesheets-expanded", big)
    odd = dict(reversed(list({**source, "id": sim.next_id("timesheets-expanded")}.items())))
    sim.tables["timesheets-expanded"].put(odd)  # the drift/churn copies go straight to the table
    table = sim.tables["timesheets-expanded"]
    assert table.slot_of(inserted["id"]) in table.unsplit
    assert table.slot_of(odd["id"]) in table.unsplit
    day = source["submitted_date"]
    window = {"submitted_date__between": f"{day},{day}", "sort": "id", "page_size": 1000}
    ids = [t["id"] for t in api.rows(TS, fields=PIPELINE_FIELDS, **window)]
    assert {inserted["id"], odd["id"]} <= set(ids)
    assert_fields_exact(api, TS, **window)
    assert_windows_exact(api)


def test_advance_shows_in_fields_and_windowed_pages(api: Api):
    """A day of simulated changes (creations, approvals, retimed shifts, deletions, staff and
    project edits re-rendering embedded copies) shows in both, exactly."""
    changes = api.control("POST", "advance", minutes=24 * 60).json()["changes"]
    assert changes["timesheets_edited"] and changes["timesheets_approved"]
    assert_fields_exact(api, TS, page_size=1000, sort="-modified_time")
    assert_windows_exact(api, page_size=100)


def test_embedded_copies_follow_a_renamed_project(api: Api):
    """Renaming a project re-renders its timesheets' embedded copy in place; fields pages that
    include it (and the fields after it) are exact."""
    tid = first_ids(api, 1)[0]
    record = api.server.simulator.get("timesheets-expanded", tid)
    assert record is not None
    pid = record["project_id"]
    name = "A much longer project name " * 9
    resp = api.http.patch(f"{api.server.control_url}/records/projects/{pid}", json={"name": name})
    assert resp.status_code == 200, resp.text
    rows = api.rows(TS, fields="project,activity_entries", project_id=pid, page_size=1000)
    assert {r["project"]["name"] for r in rows} == {name}
    assert_fields_exact(api, TS, project_id=pid, page_size=1000)


def test_control_api_changes_show_in_fields_pages_already_served(api: Api):
    """Pages with fields are kept once served: an edit, an approval, a delete, an insert and a
    renamed project made through the control API after that show in the next read, exactly."""
    window = {"sort": "id", "page_size": 1000}
    for fields in (PIPELINE_FIELDS, ODD_FIELDS, "id,project,comments"):
        api.rows(TS, fields=fields, **window)  # every row of the field set is now kept
    edited, approved, deleted = first_ids(api, 3)

    def patch(path: str, **body: Any) -> None:
        resp = api.http.patch(f"{api.server.control_url}/records/{path}", json=body)
        assert resp.status_code == 200, resp.text

    patch(f"timesheets-expanded/{edited}", total_time=123.25, comments="y" * 400, end_time="23:59")
    patch(f"timesheets-expanded/{approved}", status="APPROVED", processed_at="2024-05-01T10:00:00Z")
    assert api.control("DELETE", f"records/timesheets-expanded/{deleted}").status_code == 200
    source = api.server.simulator.get("timesheets-expanded", edited)
    assert source is not None
    created = api.control("POST", "records/timesheets-expanded", **{**source, "id": None})
    assert created.status_code == 200, created.text
    pid = source["project_id"]
    patch(f"projects/{pid}", name="Renamed after the page was served " * 4)

    rows = {r["id"]: r for r in api.rows(TS, fields=PIPELINE_FIELDS, **window)}
    assert rows[edited]["total_time"] == 123.25 and rows[edited]["end_time"] == "23:59"
    assert rows[approved]["status"] == "APPROVED"
    assert rows[approved]["processed_at"] == "2024-05-01T10:00:00.000Z"
    assert deleted not in rows
    one = api.data(f"{TS}/{edited}", fields="id,project,comments")
    assert one["comments"] == "y" * 400
    assert one["project"]["name"] == "Renamed after the page was served " * 4
    assert_fields_exact(api, TS, **window)
    assert_fields_exact(api, TS, id__gte=created.json()["id"], **window)
    assert_fields_exact(api, TS, project_id=pid, page_size=1000)
    assert_fields_exact(api, f"{TS}/{edited}")


@pytest.mark.parametrize("kind", ["churn", "drift"])
def test_list_faults_changes_show_in_fields_pages(api: Api, kind: str):
    """The churn and drift faults' deletes, edits and copies show exactly in later pages."""
    resp = api.control("POST", "faults", kind=kind, count=3, path="/v2/timesheets-expanded")
    assert resp.status_code == 200, resp.text
    for page in (1, 2, 3):  # drift needs numbered pages after the first
        api.rows(TS, fields=PIPELINE_FIELDS, page=page, page_size=50)
    applied = api.control("GET", "stats").json()["faults_applied"]
    assert applied[kind] >= 2
    api.control("DELETE", "faults")
    assert_fields_exact(api, TS, page_size=1000, sort="id")
    assert_windows_exact(api, page_size=100)


def test_the_pipelines_field_set_is_ready_from_generation():
    """The simulator prepares the field set the extract asks for (the first read is a join too);
    it must be the extract's, or the preparation is memory spent for nothing."""
    assert TIMESHEETS.ready_fields == (FIELDS["timesheets"],)
    sim = Simulator(TenantConfig(workers=3, projects=2, days=10, orders=5))
    table = sim.tables["timesheets-expanded"]
    kept = table.projections[FIELDS["timesheets"]]
    assert all(kept[slot] is not None for slot in table.order.values())
    for other in ("id", "id,status", "user_id,id", "project,id", "site_diary", "status,id"):
        table.project(table.id_slots, other.split(","))
    assert FIELDS["timesheets"] in table.projections  # never evicted by other field sets


def test_row_encoder_writes_exactly_orjson_and_the_field_offsets():
    """Each generated row is byte for byte orjson.dumps of the record, and each field's segment
    sits where its offset says."""
    sim = Simulator(TenantConfig(workers=3, projects=2, days=10, orders=5))
    for key, table in sim.tables.items():
        names = list(table.spec.fields)
        for slot in table.order.values():
            blob = table.blobs[slot]
            assert blob is not None
            record = orjson.loads(blob)
            assert orjson.dumps(record) == blob, key
            starts = [table.starts[i][slot] for i in range(len(names))] + [len(blob)]
            for i, name in enumerate(names):
                segment = blob[starts[i] : starts[i + 1] - 1]
                assert segment == orjson.dumps(name) + b":" + orjson.dumps(record[name])
    encoder = RowEncoder(TIMESHEETS)
    assert encoder.split({"id": 1})[1] is None  # not the schema's fields: no offsets
