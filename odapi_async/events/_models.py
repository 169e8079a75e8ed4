"""What a webhook carries: the event types, the models their rows decode into, and the :class:`Event` handed
to handlers.

Database events (``Event-Type: WatchTable: Appointment``) carry rows of the same shape as the REST resource,
so they decode into the same generated models. ``AppointmentDeleted`` carries the deleted appointment, so it
decodes into :class:`~odapi_async.resources.Appointment` as well. UI events (``Event-Type: UiEventType:
PatientSelected``) carry one object of their own shape.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Generic, Literal, TypeVar

from odapi_async._codec import Model

T = TypeVar("T")

EventKind = Literal["WatchTable", "UiEventType"]
WATCH_TABLE: EventKind = "WatchTable"
UI_EVENT: EventKind = "UiEventType"


class PatientSelected(Model):
    """The ``PatientSelected`` UI event: the patient a user just selected in Open Dental."""

    PatNum: int = 0
    LName: str = ""
    FName: str = ""
    MiddleI: str = ""
    Preferred: str = ""
    PatStatus: str = ""
    Gender: str = ""
    Position: str = ""
    Birthdate: dt.date | None = None
    SSN: str = ""
    Address: str = ""
    Address2: str = ""
    City: str = ""
    State: str = ""
    Zip: str = ""
    HmPhone: str = ""
    WkPhone: str = ""
    WirelessPhone: str = ""
    Guarantor: int = 0
    Email: str = ""
    EstBalance: float = 0.0
    PriProv: int = 0
    priProvAbbr: str = ""
    SecProv: int = 0
    secProvAbbr: str = ""
    BillingType: str = ""
    ImageFolder: str = ""
    ChartNumber: str = ""
    MedicaidID: str = ""
    BalTotal: float = 0.0
    DateFirstVisit: dt.date | None = None
    ClinicNum: int = 0
    clinicAbbr: str = ""
    PreferConfirmMethod: str = ""
    PreferContactMethod: str = ""
    PreferRecallMethod: str = ""
    Language: str = ""
    siteDesc: str = ""
    DateTStamp: dt.datetime | None = None
    TxtMsgOk: str = ""
    SecDateEntry: dt.date | None = None


@dataclass(frozen=True)
class EventType:
    """One documented event type: its model (by name in ``odapi_async.resources``) and primary key."""

    kind: EventKind
    name: str
    model_name: str
    primary_key: str
    #: Events of one family touch the same rows (an appointment changed, then deleted): handled in order.
    family: str


_TYPES = (
    EventType(WATCH_TABLE, "Appointment", "Appointment", "AptNum", "Appointment"),
    EventType(WATCH_TABLE, "AppointmentDeleted", "Appointment", "AptNum", "Appointment"),
    EventType(WATCH_TABLE, "Operatory", "Operatory", "OperatoryNum", "Operatory"),
    EventType(WATCH_TABLE, "PatField", "PatField", "PatFieldNum", "PatField"),
    EventType(WATCH_TABLE, "Patient", "Patient", "PatNum", "Patient"),
    EventType(WATCH_TABLE, "Provider", "Provider", "ProvNum", "Provider"),
    EventType(WATCH_TABLE, "Schedule", "Schedule", "ScheduleNum", "Schedule"),
    EventType(WATCH_TABLE, "ToothInitial", "ToothInitial", "ToothInitialNum", "ToothInitial"),
    EventType(UI_EVENT, "PatientSelected", "PatientSelected", "PatNum", "PatientSelected"),
)
#: (kind, name) -> the documented type.
KNOWN_TYPES: dict[tuple[str, str], EventType] = {(t.kind, t.name): t for t in _TYPES}
WATCH_TABLES: tuple[str, ...] = tuple(t.name for t in _TYPES if t.kind == WATCH_TABLE)
UI_EVENT_TYPES: tuple[str, ...] = tuple(t.name for t in _TYPES if t.kind == UI_EVENT)


def model_of(event_type: EventType) -> type[Model]:
    """The model class rows of ``event_type`` decode into."""
    if event_type.model_name == "PatientSelected":
        return PatientSelected
    from odapi_async import resources

    model: type[Model] = getattr(resources, event_type.model_name)
    return model


@dataclass(frozen=True)
class Event(Generic[T]):
    """One changed row (database event) or one user action (UI event), as handed to a handler.

    ``row`` is a model (``Appointment``, ``Patient``, ``PatientSelected``…) or, for an event type this version
    does not know, the row as a plain ``dict``. ``office`` names the customer key the call was authenticated
    with (its label, never the key). ``seq`` is the event's place in the receiver's queue.
    """

    kind: EventKind
    type: str
    row: T
    office: str
    workstation: str
    received_at: dt.datetime
    seq: int = 0

    def __repr__(self) -> str:  # rows hold patient data: keep them out of reprs and logs
        return (
            f"<Event {self.kind}: {self.type} office={self.office!r} workstation={self.workstation!r} "
            f"seq={self.seq}>"
        )


AnyEvent = Event[Any]
