"""Where the base layer lets the apps act: observers that apps connect in ``AppConfig.ready()``.

``celaest`` imports no app (the dependency order is enforced by import-linter, see
``[tool.importlinter]`` in pyproject.toml). When a base class needs an app to act on what it saw
— the audit trail of a write through the admin or the API, the record of a failed periodic job,
a change made by identity, which sits below audit — it tells the observers connected here.
With no observer connected, nothing happens. Observers run in the caller's thread and
transaction, in the order they were connected; what one raises reaches the caller.
"""

from collections.abc import Iterator
from typing import Any, Generic, Protocol, TypeVar

Observer = TypeVar("Observer")


class Observers(Generic[Observer]):
    """An ordered set of observers of one kind. ``connect`` is idempotent, so a ``ready()`` that
    runs twice (some test runners do) does not make an observer act twice."""

    def __init__(self) -> None:
        self._observers: list[Observer] = []

    def connect(self, observer: Observer) -> Observer:
        if observer not in self._observers:
            self._observers.append(observer)
        return observer

    def disconnect(self, observer: Observer) -> None:
        if observer in self._observers:
            self._observers.remove(observer)

    def __iter__(self) -> Iterator[Observer]:
        return iter(tuple(self._observers))


class AdminWriteObserver(Protocol):
    """Told of every write made through a ``celaest.admin.CelaestModelAdmin``."""

    def object_loaded(self, *, request, obj) -> None:
        """``obj`` was loaded by a POST (a change or delete form), before anything was written."""

    def added(self, *, request, obj) -> None: ...

    def changed(self, *, request, obj) -> None: ...

    def deleted(self, *, objects, removed: bool) -> None:
        """``objects`` are about to be deleted: removed (``removed``) or marked (soft delete)."""

    def action_run(self, *, request, model_label: str, action_name: str, selected: list[str]) -> None:
        """An admin action other than a deletion ran on the ``selected`` primary keys."""


class ApiWriteObserver(Protocol):
    """Told of every write made through a ``celaest.api.viewsets`` base viewset."""

    def object_loaded(self, *, view, obj) -> None:
        """A write request loaded ``obj`` (``get_object``), before anything was written."""

    def write_succeeded(self, *, view, response) -> None:
        """A write request was answered 2xx."""


class JobFailureObserver(Protocol):
    def __call__(self, *, name: str, data: dict[str, Any]) -> None:
        """The periodic job ``name`` failed (``data``: the error and the duration)."""


class ChangeObserver(Protocol):
    def __call__(self, *, action: str, resource, user=None, organization=None, changes: dict[str, Any]) -> None:
        """A service of identity (below the audit app) changed ``resource``: ``action`` is an
        audit action (``create``, ``update``, ``member.invited``), ``changes`` the changed fields
        as ``{"field": [before, after]}``."""


#: connected by audit: the audit trail of admin writes
admin_write_observers: Observers[AdminWriteObserver] = Observers()
#: connected by audit: the audit trail of API writes
api_write_observers: Observers[ApiWriteObserver] = Observers()
#: connected by audit: a ``job.failed`` system event (``celaest.jobs``)
job_failure_observers: Observers[JobFailureObserver] = Observers()
#: connected by audit: the audit row of a change identity's services made
change_observers: Observers[ChangeObserver] = Observers()


def change_record(*, action: str, resource, user=None, organization=None, changes: dict[str, Any]) -> None:
    """Tell the change observers that ``resource`` changed (identity's services call this: they
    cannot import the audit app, which depends on identity's models)."""
    for observer in change_observers:
        observer(action=action, resource=resource, user=user, organization=organization, changes=changes)


class ServingLoopStopObserver(Protocol):
    """Awaited when an ASGI server's event loop stops serving (the lifespan of ``celaest.asgi``):
    what was kept open on that loop across its requests (connection pools) is closed."""

    async def __call__(self) -> None: ...


serving_loop_stop_observers: Observers[ServingLoopStopObserver] = Observers()
