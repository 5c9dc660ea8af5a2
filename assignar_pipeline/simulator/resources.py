"""The Assignar resources the simulator serves: paths, top-level fields (spec order), kinds.

Field names, order and types follow the component schemas of the public API description; a kind says
how a query parameter for that field is parsed and compared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# int/num/bool/str compare as their JSON type; date ('YYYY-MM-DD') and datetime (ISO instant)
# compare as points in time; obj/arr can be selected with `fields` but not filtered or sorted.
Kind = Literal["int", "num", "bool", "str", "date", "datetime", "obj", "arr"]
Envelope = Literal["list", "count_rows"]


@dataclass(frozen=True)
class ResourceSpec:
    key: str  # control-plane name, e.g. "timesheets-expanded"
    list_path: str  # path under /v2 exactly as in the spec, e.g. "/projects/"
    item_prefix: str  # GET {item_prefix}{id}
    label: str  # object name in 404 messages: "[404] Object Not Found - Project (id:7)"
    fields: dict[str, Kind]
    modified_field: str | None = None  # bumped to the simulated now on every change
    envelope: Envelope = "list"
    # Equality (hash) and range (sorted) indexes kept on top of the always-present id order.
    hash_indexes: tuple[str, ...] = ()
    sorted_indexes: tuple[str, ...] = ()
    # Columns kept decoded in memory from the start; others are decoded on first use. None = all.
    eager: tuple[str, ...] | None = None
    # Field sets whose rows are projected when the tenant is generated and always kept (other
    # field sets are kept once asked for): those a known client asks for on every page.
    ready_fields: tuple[tuple[str, ...], ...] = ()
    scalar_fields: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        scalars = tuple(k for k, v in self.fields.items() if v not in ("obj", "arr"))
        object.__setattr__(self, "scalar_fields", scalars)


def _f(spec: str) -> dict[str, Kind]:
    """Parse 'name:kind name:kind …' (kept compact so each schema reads as one block)."""
    out: dict[str, Kind] = {}
    for item in spec.split():
        name, kind = item.split(":")
        out[name] = kind  # type: ignore[assignment]
    return out


PROJECTS = ResourceSpec(
    key="projects",
    list_path="/projects/",
    item_prefix="/projects/",
    label="Project",
    fields=_f(
        "id:int client_id:int name:str email:str address:str address_geo:obj suburb:str state:str "
        "postcode:str external_id:str integration_id:str active:bool parent_id:int modified_by:str "
        "modified_time:datetime deleted_at:datetime deleted_by_id:int root_path:str "
        "charge_code_id:int client:obj parent:obj sub_projects:arr charge_code:obj tags:arr "
        "activities:arr supervisors:arr"
    ),
    modified_field="modified_time",
    hash_indexes=("client_id",),
    sorted_indexes=("modified_time",),
)

CLIENTS = ResourceSpec(
    key="clients",
    list_path="/clients/",
    item_prefix="/clients/",
    label="Client",
    fields=_f(
        "id:int name:str company_name:str abn:str email:str office_phone:str mobile:str "
        "address_1:str address_geo:str address_2:str city:str postcode:str state:str comments:str "
        "external_id:str active:bool modified_by:str modified_time:datetime integration_id:str"
    ),
    modified_field="modified_time",
    sorted_indexes=("modified_time",),
)

USERS = ResourceSpec(
    key="users",
    list_path="/users",
    item_prefix="/users/",
    label="User",
    fields=_f(
        "id:int user_type_id:int employee_id:str first_name:str last_name:str full_name:str "
        "dob:date "
        "address:str address_geo:obj tasks:arr suppliers:arr tags:arr suburb:str state:str "
        "postcode:str email:str contact:str employment_type:int emergency_contact:str "
        "emergency_contact_name:str username:str active:bool modified_by:str "
        "modified_time:datetime comments:str user_pic:str eula:int usi:str integration_id:str"
    ),
    modified_field="modified_time",
    sorted_indexes=("modified_time",),
)

TIMESHEETS = ResourceSpec(
    key="timesheets-expanded",
    list_path="/timesheets-expanded",
    item_prefix="/timesheets-expanded/",
    label="Timesheet",
    fields=_f(
        "id:int client_id:int user_id:int project_id:int task_id:int location:str order_id:int "
        "supplier_id:int job_number:str start_time:str start_datetime:datetime end_time:str "
        "end_datetime:datetime total_time:str comments:str office_use:str submitted_date:date "
        "date_of_creation:datetime created_by_id:int modified_time:datetime modified_by:str "
        "submitted_by:str latitude:num longitude:num latitude2:num longitude2:num "
        "signature_name:str signature_url:obj client_signature_name:str client_signature_url:obj "
        "document_url:obj completed_at:datetime completed_by_id:int processed_by_id:int "
        "processed_at:datetime deleted_time:datetime integration_id:str status:str client:obj "
        "project:obj task:obj user:obj supplier:obj order:obj digitaldocket:obj "
        "activity_entries:arr "
        "asset_entries:arr leave_request_entries:arr docket:obj allowances:arr site_diary:obj"
    ),
    modified_field="modified_time",
    envelope="count_rows",
    hash_indexes=("user_id", "project_id"),
    sorted_indexes=("modified_time", "submitted_date"),
    # At 1.5 million rows every decoded column costs ~100 MB, so only the commonly filtered ones are
    # decoded up front; other fields are decoded from the stored JSON the first time one is queried.
    eager=(
        "id",
        "user_id",
        "project_id",
        "client_id",
        "task_id",
        "order_id",
        "status",
        "submitted_date",
        "modified_time",
    ),
    # What the pipeline's extract asks for (`extract.FIELDS`; test_ready_rows checks they agree).
    ready_fields=(
        (
            "id",
            "modified_time",
            "user_id",
            "project_id",
            "task_id",
            "order_id",
            "start_datetime",
            "end_datetime",
            "total_time",
            "status",
            "processed_at",
            "submitted_date",
            "start_time",
            "end_time",
            "activity_entries",
        ),
    ),
)

ORDERS = ResourceSpec(
    key="orders",
    list_path="/orders",
    item_prefix="/orders/",
    label="Order",
    fields=_f(
        "id:int active:bool job_number:str po_number:str client_id:int order_owner:int "
        "project_id:int location:str location2:str job_description:str start_time:str "
        "shift_duration:str start_date:date end_date:date comments:str date_created:datetime "
        "modified_time:datetime modified_by:str status_id:int type_id:int supplier_id:int "
        "integration_id:str geolocation:obj geolocation2:obj tags:arr activities:arr"
    ),
    modified_field="modified_time",
    hash_indexes=("project_id",),
    sorted_indexes=("modified_time", "start_date"),  # start_date: the extract's window
)

ACTIVITIES = ResourceSpec(
    key="activities",
    list_path="/activities",
    item_prefix="/activities/",
    label="Activity",
    fields=_f(
        "id:int name:str rule:int billable:int active:bool sortorder:int type_id:int "
        "is_payable:bool "
        "date_added:datetime date_modified:datetime modified_by:int external_id:str uom_code:str "
        "deleted_at:datetime deleted_by_id:int integration_id:str activity_type:obj"
    ),
    modified_field="date_modified",
)

TASKS = ResourceSpec(
    key="tasks",
    list_path="/tasks",
    item_prefix="/tasks/",
    label="Task",
    fields=_f(
        "id:int name:str external_id:str active:bool modified_by:str modified_time:datetime "
        "req_machines:bool pay_level:str payroll_acc:str charge_code_id:int supervisor:bool "
        "integration_id:str"
    ),
    modified_field="modified_time",
)

ALLOWANCES = ResourceSpec(
    key="allowances",
    list_path="/allowances",
    item_prefix="/allowances/",
    label="Allowance",
    fields=_f("id:int name:str active:bool"),
)

PAY_CODES = ResourceSpec(
    key="pay-codes",
    list_path="/pay-codes",
    item_prefix="/pay-codes/",
    label="PayCode",
    fields=_f(
        "id:int code:str label:str time_code_id:int created_at:datetime created_by_id:int "
        "modified_at:datetime modified_by_id:int deleted_at:datetime deleted_by_id:int"
    ),
    modified_field="modified_at",
)

CHARGE_CODES = ResourceSpec(
    key="charge-codes",
    list_path="/charge-codes",
    item_prefix="/charge-codes/",
    label="ChargeCode",
    fields=_f("id:int code:str label:str modified_by:int modified_at:datetime integration_id:str"),
    modified_field="modified_at",
)

CHARGE_ITEMS = ResourceSpec(
    key="charge-items",
    list_path="/charge-items",
    item_prefix="/charge-items/",
    label="ChargeItem",
    fields=_f("id:int name:str rate:str charge_code_id:int"),
)

ORDER_STATUSES = ResourceSpec(
    key="order-statuses",
    list_path="/order-statuses",
    item_prefix="/order-statuses/",
    label="OrderStatus",
    fields=_f("id:int name:str"),
)

ORDER_TYPES = ResourceSpec(
    key="order-types",
    list_path="/order-types",
    item_prefix="/order-types/",
    label="OrderType",
    fields=_f("id:int label:str"),
)

EMPLOYMENT_TYPES = ResourceSpec(
    key="employment-types",
    list_path="/employment-types",
    item_prefix="/employment-types/",
    label="EmploymentType",
    fields=_f("id:int name:str"),
)

USER_TYPES = ResourceSpec(
    key="user-types",
    list_path="/user-types",
    item_prefix="/user-types/",
    label="UserType",
    fields=_f("id:int user_type:str label:str modified_by:str modified_time:datetime"),
    modified_field="modified_time",
)

ALL: tuple[ResourceSpec, ...] = (
    PROJECTS,
    CLIENTS,
    USERS,
    TIMESHEETS,
    ORDERS,
    ACTIVITIES,
    TASKS,
    ALLOWANCES,
    PAY_CODES,
    CHARGE_CODES,
    CHARGE_ITEMS,
    ORDER_STATUSES,
    ORDER_TYPES,
    EMPLOYMENT_TYPES,
    USER_TYPES,
)
# Sub-resources: served only under their parent (`/tasks/{taskId}/pay-rate-groups`), listed with
# the same paging, sort, fields and filters; `task_id` says which task a group is listed under.
PAY_RATE_GROUPS = ResourceSpec(
    key="pay-rate-groups",
    list_path="/tasks/{taskId}/pay-rate-groups",
    item_prefix="/tasks/{taskId}/pay-rate-groups/",
    label="PayRateGroup",
    fields=_f(
        "id:int task_id:int name:str priority:int active:bool modified_time:datetime pay_rates:arr"
    ),
    modified_field="modified_time",
    hash_indexes=("task_id",),
)
NESTED: tuple[ResourceSpec, ...] = (PAY_RATE_GROUPS,)
BY_KEY: dict[str, ResourceSpec] = {r.key: r for r in (*ALL, *NESTED)}
