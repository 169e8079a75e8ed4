"""API Events: receive Open Dental's webhooks, decoded into the SDK's models, each new row handled once.

```python
from odapi_async.events import EventReceiver, SQLiteEventStore

receiver = EventReceiver(customer_keys={"main-street": "VzkmZEaUWOjnQX2z"}, store=SQLiteEventStore("events.db"))

@receiver.on("Appointment")
async def appointment_changed(event):
    print(event.office, event.row.AptNum, event.row.AptStatus)

app = receiver.asgi()  # uvicorn module:app, or mount it in Starlette/FastAPI
```

See docs/events.md.
"""

from odapi_async.events._asgi import EventsApp
from odapi_async.events._models import UI_EVENT_TYPES, WATCH_TABLES, Event, PatientSelected
from odapi_async.events._receiver import EventReceiver
from odapi_async.events._store import EventStore, MemoryEventStore, StoreFull
from odapi_async.events._store_redis import RedisEventStore
from odapi_async.events._store_sqlite import SQLiteEventStore
from odapi_async.resources._subscriptions import EnsureResult, SubscriptionSpec, ensure_subscriptions

__all__ = [
    "UI_EVENT_TYPES",
    "WATCH_TABLES",
    "EnsureResult",
    "Event",
    "EventReceiver",
    "EventStore",
    "EventsApp",
    "MemoryEventStore",
    "PatientSelected",
    "RedisEventStore",
    "SQLiteEventStore",
    "StoreFull",
    "SubscriptionSpec",
    "ensure_subscriptions",
]
