"""Every endpoint's paths, envelopes, field names (in schema order) and JSON types.

The expectations below are transcribed from the Assignar API description's component schemas:
a type with '?' may be null. 'dt' is an ISO date-time with milliseconds and 'Z', 'date' is
YYYY-MM-DD and 'hhmm' is HH:MM (all JSON strings).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from .conftest import Api

DT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
HHMM = re.compile(r"^\d{2}:\d{2}$")
NAIVE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}$")
DECIMAL = re.compile(r"^\d+\.\d{2}$")


def spec(text: str) -> dict[str, str]:
    return dict(item.split(":") for item in text.split())


REF3 = spec("id:int name:str external_id:str")
NAME_EXT = spec("name:str external_id:str")
GEO = spec("type:str coordinates:arr")
USER_REF = spec("user_id:int username:str first_name:str last_name:str")

PROJECT = spec(
    "id:int client_id:int name:str email:str address:str address_geo:obj suburb:str state:str "
    "postcode:str external_id:str integration_id:str? active:bool parent_id:int? modified_by:str "
    "modified_time:dt deleted_at:dt? deleted_by_id:int? root_path:str charge_code_id:int "
    "client:obj parent:obj? sub_projects:arr charge_code:obj tags:arr activities:arr "
    "supervisors:arr"
)
PROJECT_NESTED = {
    "address_geo": GEO,
    "client": REF3,
    "parent": REF3,
    "sub_projects": REF3,
    "charge_code": spec("id:int code:str label:str"),
    "activities": REF3,
    "supervisors": spec("id:int first_name:str last_name:str employee_id:str"),
}
CLIENT = spec(
    "id:int name:str company_name:str abn:str email:str office_phone:str mobile:str address_1:str "
    "address_geo:str? address_2:str city:str postcode:str state:str comments:str external_id:str "
    "active:bool modified_by:str modified_time:dt integration_id:str?"
)
USER = spec(
    "id:int user_type_id:int employee_id:str first_name:str last_name:str full_name:str dob:date "
    "address:str address_geo:obj tasks:arr suppliers:arr tags:arr suburb:str state:str "
    "postcode:str email:str contact:str employment_type:int emergency_contact:str "
    "emergency_contact_name:str username:str active:bool modified_by:str modified_time:dt "
    "comments:str user_pic:str eula:int usi:str integration_id:str?"
)
USER_NESTED = {
    "address_geo": GEO,
    "tasks": spec("task_id:str name:str external_id:str"),
    "suppliers": spec("supplier_id:int name:str external_id:str? active:bool"),
    "tags": spec("tag_id:int name:str description:str? color:str?"),
}
TIMESHEET = spec(
    "id:int client_id:int user_id:int project_id:int task_id:int location:str? order_id:int? "
    "supplier_id:int? job_number:str? start_time:hhmm start_datetime:dt? end_time:hhmm "
    "end_datetime:dt? total_time:hhmm comments:str office_use:str? submitted_date:date "
    "date_of_creation:dt created_by_id:int modified_time:dt modified_by:str submitted_by:str? "
    "latitude:num longitude:num latitude2:num? longitude2:num? signature_name:str? "
    "signature_url:obj? client_signature_name:str? client_signature_url:obj? document_url:obj? "
    "completed_at:dt? completed_by_id:int? processed_by_id:int? processed_at:dt? "
    "deleted_time:dt? integration_id:str? status:str client:obj? project:obj? task:obj? "
    "user:obj? supplier:obj? order:obj? digitaldocket:obj? activity_entries:arr asset_entries:arr "
    "leave_request_entries:arr docket:obj? allowances:arr site_diary:obj?"
)
TIMESHEET_NESTED = {
    "client": NAME_EXT,
    "project": NAME_EXT,
    "task": NAME_EXT,
    "supplier": NAME_EXT,
    "user": spec(
        "user_id:int username:str full_name:str first_name:str last_name:str employee_id:str "
        "employment_type_id:int email:str"
    ),
    "order": spec("id:int job_number:str job_description:str"),
    "document_url": spec("url:str expiry:int"),
    "activity_entries": spec(
        "id:int start_at:dt? start_at_tz:str? end_at:dt? end_at_tz:str? start_at_naive:naive? "
        "end_at_naive:naive? is_naive_datetime:bool created_at:dt modified_at:dt duration:int "
        "activity:obj created_by:obj modified_by:obj related_asset_entries:arr"
    ),
    "allowances": spec("id:int timesheet_id:int allowance_id:int quantity:num allowance:obj"),
}
ENTRY_NESTED = {
    "activity": spec("id:int name:str external_id:str is_payable:bool"),
    "created_by": USER_REF,
    "modified_by": USER_REF,
}
ORDER = spec(
    "id:int active:bool job_number:str po_number:str client_id:int order_owner:int project_id:int "
    "location:str location2:str job_description:str start_time:hhmm shift_duration:hhmm "
    "start_date:date end_date:date comments:str date_created:dt modified_time:dt modified_by:str "
    "status_id:int type_id:int supplier_id:int? integration_id:str? geolocation:obj "
    "geolocation2:obj? tags:arr activities:arr"
)
ORDER_NESTED = {
    "geolocation": GEO,
    "activities": spec(
        "id:int activity_id:int name:str external_id:str uom_code:str quantity:num?"
    ),
}
ACTIVITY = spec(
    "id:int name:str rule:int billable:int active:bool sortorder:int type_id:int is_payable:bool "
    "date_added:dt date_modified:dt modified_by:int external_id:str uom_code:str? deleted_at:dt? "
    "deleted_by_id:int? integration_id:str? activity_type:obj"
)
TASK = spec(
    "id:int name:str external_id:str active:bool modified_by:str modified_time:dt "
    "req_machines:bool pay_level:str payroll_acc:str charge_code_id:int supervisor:bool "
    "integration_id:str?"
)
PAY_CODE = spec(
    "id:int code:str label:str time_code_id:int? created_at:dt created_by_id:int modified_at:dt "
    "modified_by_id:int deleted_at:dt? deleted_by_id:int?"
)

# (list path, item path prefix, field spec, nested specs, envelope)
ENDPOINTS: list[tuple[str, str, dict[str, str], dict[str, dict[str, str]], str]] = [
    ("/projects/", "/projects/", PROJECT, PROJECT_NESTED, "list"),
    ("/clients/", "/clients/", CLIENT, {}, "list"),
    ("/users", "/users/", USER, USER_NESTED, "list"),
    ("/timesheets-expanded", "/timesheets-expanded/", TIMESHEET, TIMESHEET_NESTED, "count_rows"),
    ("/orders", "/orders/", ORDER, ORDER_NESTED, "list"),
    (
        "/activities",
        "/activities/",
        ACTIVITY,
        {"activity_type": spec("id:int type:str label:str")},
        "list",
    ),
    ("/tasks", "/tasks/", TASK, {}, "list"),
    ("/allowances", "/allowances/", spec("id:int name:str active:bool"), {}, "list"),
    ("/pay-codes", "/pay-codes/", PAY_CODE, {}, "list"),
    (
        "/charge-codes",
        "/charge-codes/",
        spec("id:int code:str label:str modified_by:int modified_at:dt integration_id:str?"),
        {},
        "list",
    ),
    (
        "/charge-items",
        "/charge-items/",
        spec("id:int name:str rate:decimal charge_code_id:int"),
        {},
        "list",
    ),
    ("/order-statuses", "/order-statuses/", spec("id:int name:str"), {}, "list"),
    ("/order-types", "/order-types/", spec("id:int label:str"), {}, "list"),
    ("/employment-types", "/employment-types/", spec("id:int name:str"), {}, "list"),
    (
        "/user-types",
        "/user-types/",
        spec("id:int user_type:str label:str modified_by:str modified_time:dt"),
        {},
        "list",
    ),
]

CHECKS: dict[str, Any] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "num": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "bool": lambda v: isinstance(v, bool),
    "obj": lambda v: isinstance(v, dict),
    "arr": lambda v: isinstance(v, list),
    "dt": lambda v: isinstance(v, str) and bool(DT.match(v)),
    "date": lambda v: isinstance(v, str) and bool(DATE.match(v)),
    "hhmm": lambda v: isinstance(v, str) and bool(HHMM.match(v)),
    "naive": lambda v: isinstance(v, str) and bool(NAIVE.match(v)),
    "decimal": lambda v: isinstance(v, str) and bool(DECIMAL.match(v)),
}


def problems(record: dict[str, Any], fields: dict[str, str], where: str) -> list[str]:
    """Differences between a record and a field spec: names, order and types."""
    found = []
    if list(record) != list(fields):
        found.append(f"{where}: fields {list(record)} != {list(fields)}")
    for name, kind in fields.items():
        if name not in record:
            continue
        value = record[name]
        nullable = kind.endswith("?")
        kind = kind.rstrip("?")
        if value is None:
            if not nullable:
                found.append(f"{where}.{name} is null")
        elif not CHECKS[kind](value):
            found.append(f"{where}.{name}={value!r} is not {kind}")
    return found


def check_nested(
    record: dict[str, Any], nested: dict[str, dict[str, str]], where: str
) -> list[str]:
    found = []
    for name, fields in nested.items():
        value = record.get(name)
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            if item is None:
                continue
            found += problems(item, fields, f"{where}.{name}[{i}]")
            if name == "activity_entries":
                found += check_nested(item, ENTRY_NESTED, f"{where}.{name}[{i}]")
            if name == "allowances":
                found += problems(
                    item["allowance"], spec("id:int name:str active:bool code:str"), where
                )
    return found


@pytest.mark.parametrize(
    ("path", "item", "fields", "nested", "envelope"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS]
)
def test_list_envelope_fields_and_types(demo_api: Api, path, item, fields, nested, envelope):
    """A list page has the documented envelope and every record the schema's fields and types."""
    resp = demo_api.get(path, page_size=1000)
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    body = resp.json()
    assert list(body) == ["status", "data"] and body["status"] == 200
    if envelope == "count_rows":
        assert list(body["data"]) == ["count", "rows"]
        rows = body["data"]["rows"]
        assert body["data"]["count"] == len(rows)
    else:
        rows = body["data"]
    assert isinstance(rows, list) and rows
    found = []
    for i, row in enumerate(rows):
        found += problems(row, fields, f"{path}[{i}]")
        found += check_nested(row, nested, f"{path}[{i}]")
    assert not found, "\n".join(found[:20])


@pytest.mark.parametrize(
    ("path", "item", "fields", "nested", "envelope"), ENDPOINTS, ids=[e[0] for e in ENDPOINTS]
)
def test_get_by_id_envelope(demo_api: Api, path, item, fields, nested, envelope):
    """GET {item}{id} answers {status: 200, data: record} with the same record as the list."""
    first = demo_api.rows(path, page_size=1)[0]
    resp = demo_api.get(f"{item}{first['id']}")
    assert resp.status_code == 200
    body = resp.json()
    assert body == {"status": 200, "data": first}
    assert not problems(body["data"], fields, item)


@pytest.mark.parametrize(
    ("item", "label"),
    [
        ("/projects/", "Project"),
        ("/users/", "User"),
        ("/timesheets-expanded/", "Timesheet"),
        ("/orders/", "Order"),
        ("/clients/", "Client"),
        ("/pay-codes/", "PayCode"),
    ],
)
def test_unknown_id_is_404_in_the_spec_shape(demo_api: Api, item, label):
    """A missing id is 404 {errorType, errorMessage '[404] Object Not Found - X (id:N)', trace}."""
    resp = demo_api.get(f"{item}999999999")
    assert resp.status_code == 404
    assert resp.json() == {
        "errorType": "NotFoundError",
        "errorMessage": f"[404] Object Not Found - {label} (id:999999999)",
        "trace": [],
    }


@pytest.mark.parametrize("path", ["/projects", "/clients", "/users/", "/orders/", "/timesheets"])
def test_paths_are_exactly_the_documented_ones(demo_api: Api, path):
    """/projects/ and /clients/ need their trailing slash; /users and /orders must not have one."""
    resp = demo_api.get(path)
    assert resp.status_code == 404
    assert resp.json()["errorType"] == "NotFoundError"


def test_non_get_methods_are_refused(demo_api: Api):
    """The simulated API is read-only: POST to a list endpoint is 405."""
    headers = {"Authorization": f"Bearer {demo_api.token}"}
    resp = demo_api.http.post(demo_api.server.api_url + "/users", json={}, headers=headers)
    assert resp.status_code == 405
