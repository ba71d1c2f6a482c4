"""The vocabulary of the offline generator: entity kinds, group kinds, lifecycles, categories.

An *item* is the domain's main record kind (it has a status, a counter and belongs to a
group); a *group* is what items are assigned to. Lifecycles are status enums with named
transitions; every lifecycle has a cycle, so status goals stay satisfiable in long chains.
Nouns are chosen so that no generated tool name collides with a built-in zoo tool.
"""

from __future__ import annotations

from pydantic import BaseModel

CATEGORIES = ["commerce", "healthcare", "travel", "education", "logistics", "finance", "hospitality",
              "media", "manufacturing", "government", "energy", "agriculture", "sports", "science"]


class Item(BaseModel):
    noun: str
    plural: str
    category: str
    counters: list[str]  # quantity field names that make sense for this noun
    kinds: list[str]  # lifecycle kinds that fit it


class Group(BaseModel):
    noun: str
    plural: str


class Transition(BaseModel):
    verb: str
    phrase: str  # how a user says it ("put ... on hold")
    src: str
    dst: str


class Lifecycle(BaseModel):
    kind: str
    statuses: list[str]
    initial: str
    final: str  # records in this status may be deleted
    transitions: list[Transition]


def _t(verb: str, src: str, dst: str, phrase: str | None = None) -> Transition:
    return Transition(verb=verb, phrase=phrase or verb.replace("_", " "), src=src, dst=dst)


LIFECYCLES = [
    Lifecycle(kind="asset", statuses=["available", "reserved", "in_use", "maintenance"], initial="available",
              final="maintenance",
              transitions=[_t("reserve", "available", "reserved"), _t("release", "reserved", "available"),
                           _t("check_out", "reserved", "in_use"), _t("check_in", "in_use", "available"),
                           _t("service", "available", "maintenance", "send for maintenance"),
                           _t("restore", "maintenance", "available")]),
    Lifecycle(kind="review", statuses=["pending", "approved", "rejected", "archived"], initial="pending",
              final="archived",
              transitions=[_t("approve", "pending", "approved"), _t("reject", "pending", "rejected"),
                           _t("reconsider", "rejected", "pending"), _t("archive", "approved", "archived"),
                           _t("unarchive", "archived", "approved")]),
    Lifecycle(kind="work", statuses=["open", "in_progress", "blocked", "done"], initial="open", final="done",
              transitions=[_t("start", "open", "in_progress"), _t("block", "in_progress", "blocked"),
                           _t("unblock", "blocked", "in_progress"), _t("finish", "in_progress", "done"),
                           _t("reopen", "done", "open")]),
    Lifecycle(kind="trip", statuses=["scheduled", "boarding", "departed", "cancelled"], initial="scheduled",
              final="cancelled",
              transitions=[_t("begin_boarding", "scheduled", "boarding", "begin boarding for"),
                           _t("depart", "boarding", "departed", "mark as departed"),
                           _t("cancel", "scheduled", "cancelled"), _t("reinstate", "cancelled", "scheduled")]),
    Lifecycle(kind="member", statuses=["new", "verified", "suspended", "closed"], initial="new", final="closed",
              transitions=[_t("verify", "new", "verified"), _t("suspend", "verified", "suspended"),
                           _t("unsuspend", "suspended", "verified", "lift the suspension of"),
                           _t("close", "suspended", "closed")]),
    Lifecycle(kind="job", statuses=["queued", "running", "failed", "completed"], initial="queued",
              final="completed",
              transitions=[_t("launch", "queued", "running"), _t("mark_failed", "running", "failed", "mark as failed"),
                           _t("retry", "failed", "queued"), _t("complete", "running", "completed"),
                           _t("requeue", "completed", "queued")]),
    Lifecycle(kind="listing", statuses=["listed", "sold", "returned", "delisted"], initial="listed",
              final="delisted",
              transitions=[_t("sell", "listed", "sold"), _t("take_back", "sold", "returned", "take back"),
                           _t("relist", "returned", "listed"), _t("delist", "listed", "delisted"),
                           _t("restock", "delisted", "listed")]),
    Lifecycle(kind="care", statuses=["waiting", "admitted", "under_observation", "discharged"], initial="waiting",
              final="discharged",
              transitions=[_t("admit", "waiting", "admitted"), _t("observe", "admitted", "under_observation",
                                                                  "put under observation"),
                           _t("stabilize", "under_observation", "admitted"),
                           _t("discharge", "admitted", "discharged"), _t("readmit", "discharged", "waiting")]),
]
LIFECYCLE_BY_KIND = {lc.kind: lc for lc in LIFECYCLES}


def _i(noun: str, plural: str, category: str, counters: str, kinds: str) -> Item:
    return Item(noun=noun, plural=plural, category=category, counters=counters.split(), kinds=kinds.split())


ITEMS = [
    _i("book", "books", "education", "copies loans", "asset listing"),
    _i("patient", "patients", "healthcare", "visits doses", "care member"),
    _i("flight", "flights", "travel", "seats bags", "trip"),
    _i("pallet", "pallets", "logistics", "units crates", "asset job"),
    _i("shipment", "shipments", "logistics", "parcels units", "trip job"),
    _i("invoice", "invoices", "finance", "credits items", "review"),
    _i("loan", "loans", "finance", "installments points", "review member"),
    _i("room", "rooms", "hospitality", "beds nights", "asset"),
    _i("booking", "bookings", "hospitality", "guests nights", "review trip"),
    _i("course", "courses", "education", "seats credits", "review listing"),
    _i("student", "students", "education", "credits points", "member"),
    _i("exam", "exams", "education", "questions points", "review job"),
    _i("vehicle", "vehicles", "logistics", "trips liters", "asset"),
    _i("drone", "drones", "logistics", "flights charges", "asset job"),
    _i("prescription", "prescriptions", "healthcare", "refills doses", "review"),
    _i("device", "devices", "manufacturing", "units hours", "asset"),
    _i("machine", "machines", "manufacturing", "hours cycles", "asset job"),
    _i("batch", "batches", "manufacturing", "units samples", "job"),
    _i("article", "articles", "media", "views edits", "review work"),
    _i("episode", "episodes", "media", "views clips", "review listing"),
    _i("album", "albums", "media", "tracks streams", "listing"),
    _i("permit", "permits", "government", "renewals pages", "review"),
    _i("grant", "grants", "government", "milestones tranches", "review work"),
    _i("turbine", "turbines", "energy", "hours faults", "asset job"),
    _i("meter", "meters", "energy", "readings units", "asset member"),
    _i("field", "fields", "agriculture", "hectares sacks", "asset work"),
    _i("harvest", "harvests", "agriculture", "tonnes crates", "job listing"),
    _i("herd", "herds", "agriculture", "animals doses", "care"),
    _i("match", "matches", "sports", "goals tickets", "trip"),
    _i("athlete", "athletes", "sports", "points medals", "member care"),
    _i("sample", "samples", "science", "aliquots tests", "job review"),
    _i("experiment", "experiments", "science", "runs trials", "work job"),
    _i("telescope", "telescopes", "science", "hours nights", "asset"),
    _i("product", "products", "commerce", "stock units", "listing"),
    _i("coupon", "coupons", "commerce", "uses points", "review listing"),
    _i("subscription", "subscriptions", "commerce", "seats months", "member"),
    _i("cart", "carts", "commerce", "items units", "work"),
    _i("tour", "tours", "travel", "seats guests", "trip"),
    _i("cabin", "cabins", "travel", "berths nights", "asset"),
    _i("ferry", "ferries", "travel", "cars seats", "trip"),
    _i("recipe", "recipes", "hospitality", "servings steps", "review listing"),
    _i("table", "tables", "hospitality", "chairs covers", "asset"),
    _i("donor", "donors", "healthcare", "donations points", "member"),
    _i("vaccine", "vaccines", "healthcare", "vials doses", "asset listing"),
    _i("contract", "contracts", "finance", "clauses payments", "review work"),
    _i("bond", "bonds", "finance", "coupons units", "listing"),
    _i("container", "containers", "logistics", "boxes units", "trip asset"),
    _i("locker", "lockers", "logistics", "slots parcels", "asset"),
    _i("podcast", "podcasts", "media", "downloads episodes", "listing review"),
    _i("license", "licenses", "government", "seats renewals", "member review"),
]

GROUPS = [Group(noun=n, plural=p) for n, p in [
    ("branch", "branches"), ("ward", "wards"), ("airline", "airlines"), ("warehouse", "warehouses"),
    ("depot", "depots"), ("region", "regions"), ("team", "teams"), ("department", "departments"),
    ("campus", "campuses"), ("clinic", "clinics"), ("studio", "studios"), ("fleet", "fleets"),
    ("farm", "farms"), ("league", "leagues"), ("lab", "labs"), ("store", "stores"), ("hotel", "hotels"),
    ("port", "ports"), ("office", "offices"), ("plant", "plants"), ("district", "districts"),
    ("school", "schools"), ("club", "clubs"), ("agency", "agencies"), ("hub", "hubs"),
]]

AREAS = [["north", "south", "east", "west"], ["alpha", "beta", "gamma"], ["red", "green", "blue", "amber"],
         ["coastal", "inland", "mountain"], ["downtown", "uptown", "harbor", "airport"]]
NAMES = ["Ada", "Ben", "Cleo", "Dan", "Eve", "Finn", "Gia", "Hal", "Ines", "Jo", "Kai", "Lea"]
PRIORITIES = ["low", "normal", "high"]
