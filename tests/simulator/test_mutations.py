"""Simulated time: `advance` changes the tenant; insert/update/delete through the control plane."""

from __future__ import annotations

from typing import Any

from assignar_pipeline.simulator import SimulatorServer, TenantConfig

from .conftest import Api

TS = "/timesheets-expanded"
START = "2025-11-14T07:00:00.000Z"


def _advance(api: Api, minutes: int) -> dict[str, Any]:
    resp = api.control("POST", "advance", minutes=minutes)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_advance_moves_the_clock(api: Api):
    """advance 90 minutes moves the simulated now from 07:00 to 08:30."""
    assert api.control("GET", "stats").json()["now"] == START
    assert _advance(api, 90)["now"] == "2025-11-14T08:30:00.000Z"
    assert api.control("GET", "stats").json()["now"] == "2025-11-14T08:30:00.000Z"


def test_a_day_of_changes_is_stamped_inside_the_interval(api: Api):
    """Every record created or changed by advance has a modified_time after the previous now."""
    before = {t["id"]: t for t in api.everything(TS)}
    result = _advance(api, 24 * 60)
    changes = result["changes"]
    for kind in (
        "timesheets_created",
        "timesheets_approved",
        "timesheets_edited",
        "timesheets_deleted",
    ):
        assert changes.get(kind, 0) > 0, kind
    after = {t["id"]: t for t in api.everything(TS)}
    changed = [t for t in after.values() if t["modified_time"] > START]
    assert all(START < t["modified_time"] <= result["now"] for t in changed)
    created = set(after) - set(before)
    # Some of the new timesheets may already have been deleted again within the day.
    made, deleted = changes["timesheets_created"], changes["timesheets_deleted"]
    assert made - deleted <= len(created) <= made
    assert created <= {t["id"] for t in changed}
    approved = [
        i
        for i in after
        if i in before
        and before[i]["status"] == "SUBMITTED"
        and after[i]["status"].startswith("APPROVED")
    ]
    assert approved and all(after[i]["modified_time"] > START for i in approved)


def test_no_record_is_stamped_after_the_simulated_now(api: Api):
    """After a day of changes, no modified field of any resource lies past the new now."""
    now = _advance(api, 24 * 60)["now"]
    fields = {
        "/users": "modified_time",
        "/orders": "modified_time",
        "/projects/": "modified_time",
        TS: "modified_time",
        "/clients/": "modified_time",
    }
    for path, field in fields.items():
        stamps = [r[field] for r in api.everything(path)]
        assert max(stamps) <= now, path
        assert any(s > START for s in stamps) or path == "/clients/", path


def test_edits_change_end_time_and_total_time(api: Api):
    """An edited timesheet has a new end time and a total_time that follows it."""
    before = {t["id"]: t for t in api.everything(TS)}
    _advance(api, 12 * 60)
    after = api.everything(TS)
    moved = [t for t in after if t["id"] in before and t["end_time"] != before[t["id"]]["end_time"]]
    assert moved
    for t in moved:
        old = before[t["id"]]
        assert t["total_time"] != old["total_time"] and t["modified_time"] > old["modified_time"]


def test_hard_deleted_timesheets_vanish(api: Api):
    """Deleted timesheets disappear from lists and their GET by id is a 404."""
    before = {t["id"] for t in api.everything(TS)}
    _advance(api, 24 * 60)
    gone = before - {t["id"] for t in api.everything(TS)}
    assert gone
    for rid in gone:
        assert api.get(f"{TS}/{rid}").status_code == 404


def test_changed_records_move_to_the_end_of_unsorted_lists(api: Api):
    """Without sort, the records changed by advance are exactly the last ones served."""
    _advance(api, 6 * 60)
    unsorted = []
    page = 1
    while chunk := api.rows(TS, page=page, page_size=1000):
        unsorted += chunk
        page += 1
    changed = {t["id"] for t in unsorted if t["modified_time"] > START}
    assert changed
    assert {t["id"] for t in unsorted[-len(changed) :]} == changed
    rest = [t["id"] for t in unsorted[: -len(changed)]]
    assert rest == sorted(rest)


def test_advance_is_deterministic(api: Api):
    """The same seed advanced by the same steps ends in the same data."""
    _advance(api, 600)
    _advance(api, 900)
    with SimulatorServer(config=TenantConfig()) as other:
        other_api = Api(other)
        _advance(other_api, 600)
        _advance(other_api, 900)
        for path in (TS, "/users", "/orders", "/projects/"):
            assert other_api.everything(path) == api.everything(path), path


def test_orders_get_confirmed_over_time(api: Api):
    """Unconfirmed orders starting soon are confirmed (status_id 1 -> 2) as time passes."""
    before = {o["id"]: o["status_id"] for o in api.everything("/orders")}
    changes = _advance(api, 24 * 60)["changes"]
    after = {o["id"]: o for o in api.everything("/orders")}
    confirmed = [i for i, s in before.items() if s == 1 and after[i]["status_id"] == 2]
    assert 0 < len(confirmed) <= changes["orders_confirmed"]  # new orders may be confirmed too
    assert all(after[i]["modified_time"] > START for i in confirmed)


def test_insert_update_delete_through_the_control_plane(api: Api):
    """Records inserted, patched and deleted via /_simulator/records show up over the API."""
    resp = api.control(
        "POST",
        "records/users",
        first_name="Ada",
        last_name="Lovelace",
        user_type_id=2,
        employee_id="E99999",
        email="ada@example.com",
        username="ada@example.com",
        employment_type=1,
        active=True,
    )
    assert resp.status_code == 200, resp.text
    uid = resp.json()["id"]
    user = api.data(f"/users/{uid}")
    assert user["first_name"] == "Ada" and user["modified_time"] == START
    assert user["tasks"] == [] and user["dob"] is None
    _advance(api, 60)
    assert api.control("PATCH", f"records/users/{uid}", last_name="King").status_code == 200
    patched = api.data(f"/users/{uid}")
    assert patched["last_name"] == "King" and patched["modified_time"] > START
    assert api.rows("/users", page_size=1000)[-1]["id"] == uid
    assert api.control("DELETE", f"records/users/{uid}").json() == {"deleted": True}
    assert api.get(f"/users/{uid}").status_code == 404


def test_user_edit_shows_in_timesheet_embeds_without_touching_them(api: Api):
    """A worker's new email shows in their timesheets' user embed; their modified_time stays."""
    sheet = api.rows(TS, page_size=1)[0]
    uid = sheet["user_id"]
    api.server.simulator.update("users", uid, {"email": "renamed@example.com"})
    again = api.data(f"{TS}/{sheet['id']}")
    assert again["user"]["email"] == "renamed@example.com"
    assert again["modified_time"] == sheet["modified_time"]
    assert all(t["user"]["email"] == "renamed@example.com" for t in api.everything(TS, user_id=uid))


def test_python_helpers_match_the_http_view(api: Api):
    """Simulator.insert/update/delete act on the same data the API serves."""
    sim = api.server.simulator
    rec = sim.insert("clients", {"name": "Acme", "company_name": "Acme Pty Ltd", "active": True})
    assert api.data(f"/clients/{rec['id']}")["name"] == "Acme"
    sim.update("clients", rec["id"], {"name": "Acme Two"})
    assert api.data(f"/clients/{rec['id']}")["name"] == "Acme Two"
    assert sim.delete("clients", rec["id"]) is True
    assert api.get(f"/clients/{rec['id']}").status_code == 404


def test_bad_control_requests_are_400(api: Api):
    """A negative advance or an unknown fault kind is refused with a 400 and a reason."""
    assert api.control("POST", "advance", minutes=-5).status_code == 400
    resp = api.control("POST", "faults", kind="gremlins")
    assert resp.status_code == 400 and "gremlins" in resp.json()["error"]


def test_reset_restores_the_generated_tenant(api: Api):
    """After changes, POST /_simulator/reset brings back the original data and clock."""
    original = api.everything(TS)
    _advance(api, 24 * 60)
    assert api.control("POST", "reset").status_code == 200
    assert api.everything(TS) == original
    assert api.control("GET", "stats").json()["now"] == START
