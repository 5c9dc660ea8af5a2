"""Static catalogue the tenant generator draws from: sites per time zone, names and lookup tables.

Kept separate from the generator so the plausible-looking construction data is easy to review.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Site:
    street: str
    suburb: str
    state: str
    postcode: str
    lat: float
    lng: float
    zone: str
    country: str


SITES: tuple[Site, ...] = (
    Site(
        "Church St",
        "Parramatta",
        "NSW",
        "2150",
        -33.8150,
        151.0011,
        "Australia/Sydney",
        "Australia",
    ),
    Site("George St", "Sydney", "NSW", "2000", -33.8688, 151.2093, "Australia/Sydney", "Australia"),
    Site("High St", "Penrith", "NSW", "2750", -33.7507, 150.6877, "Australia/Sydney", "Australia"),
    Site(
        "Macquarie St",
        "Liverpool",
        "NSW",
        "2170",
        -33.9200,
        150.9238,
        "Australia/Sydney",
        "Australia",
    ),
    Site(
        "Hunter St", "Newcastle", "NSW", "2300", -32.9283, 151.7817, "Australia/Sydney", "Australia"
    ),
    Site(
        "Victoria Ave",
        "Chatswood",
        "NSW",
        "2067",
        -33.7969,
        151.1803,
        "Australia/Sydney",
        "Australia",
    ),
    Site("Hay St", "Perth", "WA", "6000", -31.9523, 115.8613, "Australia/Perth", "Australia"),
    Site(
        "Grand Blvd", "Joondalup", "WA", "6027", -31.7448, 115.7661, "Australia/Perth", "Australia"
    ),
    Site(
        "Market St", "Fremantle", "WA", "6160", -32.0569, 115.7439, "Australia/Perth", "Australia"
    ),
    Site(
        "Welcome Rd", "Karratha", "WA", "6714", -20.7364, 116.8460, "Australia/Perth", "Australia"
    ),
    Site("Wynkoop St", "Denver", "CO", "80202", 39.7530, -105.0002, "America/Denver", "USA"),
    Site("E Alameda Ave", "Aurora", "CO", "80012", 39.7294, -104.8319, "America/Denver", "USA"),
    Site("Pearl St", "Boulder", "CO", "80302", 40.0150, -105.2705, "America/Denver", "USA"),
    Site("W Colfax Ave", "Lakewood", "CO", "80226", 39.7405, -105.0758, "America/Denver", "USA"),
)


# The first projects carry the deliberate rough edges; `dup_of` marks a near-duplicate of an earlier
# entry (same job entered twice with a slightly different name), `parent` a sub-project.
@dataclass(frozen=True)
class ProjectTemplate:
    name: str
    suburb: str
    night: bool = False
    parent: int | None = None  # index into PROJECT_TEMPLATES
    dup_of: int | None = None
    ends_early: bool = False  # finished inside the window -> inactive now


PROJECT_TEMPLATES: tuple[ProjectTemplate, ...] = (
    ProjectTemplate("Westfield Parramatta Stage 2", "Parramatta"),
    ProjectTemplate("Westfield Parramatta - Stage 2", "Parramatta", dup_of=0),
    ProjectTemplate("Perth Airport Terminal Upgrade", "Perth"),
    ProjectTemplate("Denver Union Station Refurbishment", "Denver"),
    ProjectTemplate("Metro North Tunnel", "Chatswood"),
    ProjectTemplate("Metro North Tunnel - Night Works", "Chatswood", night=True, parent=4),
    ProjectTemplate("Joondalup Health Campus", "Joondalup", ends_early=True),
    ProjectTemplate("Aurora Light Rail Depot", "Aurora", night=True),
)

PROJECT_KINDS = (
    "Residential Tower",
    "Hospital Expansion",
    "Bridge Upgrade",
    "Road Widening",
    "School Redevelopment",
    "Water Treatment Plant",
    "Data Centre",
    "Logistics Hub",
    "Rail Station Upgrade",
    "Stadium Works",
    "Retail Centre Fitout",
    "Civic Plaza",
)

CLIENT_NAMES: tuple[tuple[str, str], ...] = (
    ("Lendlease", "Lendlease Building Pty Ltd"),
    ("Multiplex", "Multiplex Constructions Pty Ltd"),
    ("CPB", "CPB Contractors Pty Ltd"),
    ("John Holland", "John Holland Group Pty Ltd"),
    ("Kiewit", "Kiewit Infrastructure Co."),
    ("PCL", "PCL Construction Services, Inc."),
    ("BGC", "BGC Construction Pty Ltd"),
    ("Laing O'Rourke", "Laing O'Rourke Australia Construction Pty Ltd"),
    ("Mortenson", "M. A. Mortenson Company"),
    ("Built", "Built Pty Ltd"),
    ("Hansen Yuncken", "Hansen Yuncken Pty Ltd"),
    ("Saunders", "Saunders Construction, LLC"),
)

FIRST_NAMES = (
    "Liam",
    "Noah",
    "Oliver",
    "Jack",
    "William",
    "Lucas",
    "Henry",
    "Leo",
    "Thomas",
    "James",
    "Charlotte",
    "Olivia",
    "Amelia",
    "Isla",
    "Mia",
    "Ava",
    "Grace",
    "Chloe",
    "Sofia",
    "Zoe",
    "Mateo",
    "Diego",
    "Aroha",
    "Tane",
    "Wei",
    "Jun",
    "Priya",
    "Arjun",
    "Sione",
    "Mele",
    "Connor",
    "Declan",
    "Fatima",
    "Omar",
    "Hannah",
    "Ethan",
    "Ruby",
    "Kai",
    "Nikolai",
    "Elena",
)

LAST_NAMES = (
    "Smith",
    "Nguyen",
    "Williams",
    "Brown",
    "Wilson",
    "Taylor",
    "Johnson",
    "Martin",
    "Anderson",
    "Thompson",
    "O'Brien",
    "Walker",
    "Harris",
    "Ryan",
    "Robinson",
    "Kelly",
    "King",
    "Tran",
    "Lee",
    "Singh",
    "Patel",
    "Garcia",
    "Martinez",
    "Rodriguez",
    "Kowalski",
    "Papadopoulos",
    "Rossi",
    "Fifita",
    "Ngata",
    "Chen",
    "Wang",
    "Murphy",
    "MacDonald",
    "Sanchez",
    "Novak",
    "Haddad",
)

EMPLOYMENT_TYPES = (
    (1, "Full Time"),
    (2, "Part Time"),
    (3, "Casual - Daily"),
    (4, "Casual - Hourly"),
    (5, "Contractor"),
    (6, "Labour Hire"),
)

USER_TYPES = (
    (1, "admin", "Administrator"),
    (2, "mobile", "Field Worker"),
    (3, "supervisor", "Supervisor"),
    (4, "office", "Office User"),
)

# Order statuses are tenant data in Assignar; the simulator's tenant uses these four.
ORDER_STATUSES = ((1, "Unconfirmed"), (2, "Confirmed"), (3, "Completed"), (4, "Cancelled"))
STATUS_UNCONFIRMED, STATUS_CONFIRMED, STATUS_COMPLETED, STATUS_CANCELLED = 1, 2, 3, 4
CONFIRMED_STATUSES = frozenset({STATUS_CONFIRMED, STATUS_COMPLETED})

ORDER_TYPES = ((1, "Labour Hire"), (2, "Plant Hire"), (3, "Labour and Plant"), (4, "Subcontract"))

CHARGE_CODES = (
    (1, "LAB-GEN", "General Labour"),
    (2, "LAB-SKL", "Skilled Labour"),
    (3, "PLT-OP", "Plant Operator"),
    (4, "SUPV", "Supervision"),
    (5, "TC", "Traffic Control"),
)

# (id, name, rate as the API sends it: a decimal string, charge_code_id)
CHARGE_ITEMS = (
    (1, "General Labourer - Ordinary", "68.50", 1),
    (2, "General Labourer - Overtime", "102.75", 1),
    (3, "Carpenter - Ordinary", "89.00", 2),
    (4, "Carpenter - Overtime", "133.50", 2),
    (5, "Excavator Operator - Ordinary", "95.20", 3),
    (6, "Crane Operator - Ordinary", "118.65", 3),
    (7, "Supervisor - Ordinary", "112.40", 4),
    (8, "Traffic Controller - Ordinary", "72.10", 5),
    (9, "Night Shift Loading", "18.25", 1),
    (10, "Saturday Loading", "34.05", 1),
)

# (id, code, label, time_code_id, deleted): one soft-deleted code is still listed, as the API
# lists soft-deleted rows with deleted_at set.
PAY_CODES = (
    (1, "ORD", "Ordinary Hours", 1, False),
    (2, "OT15", "Overtime x1.5", 2, False),
    (3, "OT20", "Overtime x2.0", 3, False),
    (4, "NIGHT", "Night Shift Penalty", 4, False),
    (5, "SAT", "Saturday Penalty", 5, False),
    (6, "SUN", "Sunday Penalty", 6, False),
    (7, "PH", "Public Holiday", 7, False),
    (8, "TRAVEL", "Travel Time", None, False),
    (9, "OT-OLD", "Overtime (superseded)", None, True),
)

# (id, name, active, code): the allowance list schema has id/name/active; the code shows up only in
# the allowance object embedded in a timesheet's allowances.
ALLOWANCES = (
    (1, "Meal Allowance", True, "MEAL"),
    (2, "Travel Allowance (km)", True, "TRAVEL-KM"),
    (3, "Tool Allowance", True, "TOOL"),
    (4, "Site Allowance", True, "SITE"),
    (5, "Height Allowance", True, "HEIGHT"),
    (6, "Living Away From Home", False, "LAFHA"),
)
MEAL_ALLOWANCE, TRAVEL_ALLOWANCE, TOOL_ALLOWANCE, SITE_ALLOWANCE = 1, 2, 3, 4

ACTIVITY_TYPES = {
    1: ("labour", "Labour"),
    2: ("plant", "Plant"),
    3: ("non_productive", "Non-Productive"),
}

# (id, name, external_id, billable, is_payable, type_id, uom_code, active)
ACTIVITIES = (
    (1, "Site Preparation", "ACT-100", 1, True, 1, "HR", True),
    (2, "Excavation", "ACT-110", 1, True, 2, "HR", True),
    (3, "Formwork", "ACT-120", 1, True, 1, "HR", True),
    (4, "Concrete Pour", "ACT-130", 1, True, 1, "M3", True),
    (5, "Steel Fixing", "ACT-140", 1, True, 1, "HR", True),
    (6, "Traffic Management", "ACT-150", 1, True, 1, "HR", True),
    (7, "Plant Operation", "ACT-160", 1, True, 2, "HR", True),
    (8, "Travel", "ACT-900", 0, True, 3, "KM", True),
    (9, "Rain Delay", "ACT-910", 0, True, 3, "HR", True),
    (10, "Safety Induction", "ACT-920", 0, True, 3, None, True),
    (11, "Rework - Defects", "ACT-930", 0, False, 3, None, False),
)
WORK_ACTIVITIES = (1, 2, 3, 4, 5, 6, 7)

# (id, name, external_id, pay_level, payroll_acc, charge_code_id, req_machines, supervisor, weight)
TASKS = (
    (1, "General Labourer", "ROLE-LAB", "L1", "5100", 1, False, False, 30),
    (2, "Carpenter", "ROLE-CARP", "L3", "5110", 2, False, False, 14),
    (3, "Concreter", "ROLE-CONC", "L2", "5120", 2, False, False, 10),
    (4, "Steel Fixer", "ROLE-STFX", "L3", "5130", 2, False, False, 8),
    (5, "Excavator Operator", "ROLE-EXOP", "L4", "5200", 3, True, False, 8),
    (6, "Crane Operator", "ROLE-CROP", "L5", "5210", 3, True, False, 4),
    (7, "Traffic Controller", "ROLE-TC", "L1", "5300", 5, False, False, 10),
    (8, "Leading Hand", "ROLE-LH", "L4", "5400", 4, False, True, 6),
    (9, "Site Supervisor", "ROLE-SUPV", "L6", "5410", 4, False, True, 4),
    (10, "Electrician", "ROLE-ELEC", "L4", "5500", 2, False, False, 6),
)
SUPERVISOR_TASKS = frozenset({8, 9})

# Pay-rate groups (Assignar: Settings → Pay Rates, assigned to roles): one per task, named after
# its pay level. Ordinary rate per pay level, AUD per hour; overtime codes are multiples of it.
# Pay's demo team assumed exactly these (assignar_pipeline/pay/seed.py, a test keeps them equal).
PAY_RATE_BY_LEVEL = {
    "L1": "38.50",
    "L2": "41.20",
    "L3": "44.80",
    "L4": "48.30",
    "L5": "50.60",
    "L6": "52.80",
}
# (pay code id, multiplier) of each rate in a group: ORD, OT15, OT20 (see PAY_CODES).
PAY_RATE_ITEMS = ((1, "1"), (2, "1.5"), (3, "2"))
PAY_RATE_GROUP_BASE = 601  # group ids: 601 + task id - 1

# Labour-hire suppliers referenced by users, orders and timesheets (the /suppliers endpoint itself
# is not simulated).
SUPPLIERS = (
    (1, "Acme Labour Hire", "SUP-1"),
    (2, "Skilled Crews Pty Ltd", "SUP-2"),
    (3, "Front Range Staffing", "SUP-3"),
)

TAGS = (
    (301, "First Aid", "Holds a current first aid certificate", "#4CAF50"),
    (302, "Night Crew", None, "#795548"),
    (303, "Working at Heights", "Heights ticket", "#2196F3"),
)

COMMENTS = (
    "",
    "",
    "",
    "",
    "Completed formwork on level 3",
    "Waited 40 min for concrete truck",
    "Toolbox talk at start of shift",
    "Rain stopped work early",
    "Pump broke down, swapped to manual",
)
