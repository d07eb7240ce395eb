"""AuditRecord: one entry of the append-only ``audit`` topic (withdrawals and purges).

No identifier is in clear: the subject is a keyed pseudonym of the research ID
(:func:`subject_of`), which only a holder of the secret key can match to a participant, and
which stays meaningless once the participant's data is gone. ``purge`` records are also the
list every consumer skips (``runtime/purges.py``): their subject is all a consumer needs.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from enum import StrEnum

import orjson

from models._validate import load_object, req_float, req_str
from models.errors import DecodeError, Reason

__all__ = ["AUDIT_SCHEMA_VERSION", "Action", "Actor", "AuditRecord", "subject_of"]

AUDIT_SCHEMA_VERSION = 1


class Action(StrEnum):
    WITHDRAW = "withdraw"  # the participant left the study (collection stopped, tokens deleted)
    PURGE = "purge"  # their data is to be removed everywhere; every consumer skips them from now on
    REMOVED = "removed"  # a component removed what it held of theirs (``removed`` says what)


class Actor(StrEnum):
    PARTICIPANT = "participant"  # on the portal
    STAFF = "staff"  # ``wearables withdraw``
    SYSTEM = "system"  # a component carrying out a purge


def subject_of(secret: bytes, research_id: str) -> str:
    """The keyed pseudonym an audit record names a participant by (hex)."""
    return hmac.new(secret, f"audit\x00{research_id}".encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """What happened to whose data (``subject``), by whom, when, in which component.

    :param removed: counts of what was removed, by kind (``{"daily_summary": 12, ...}``).
    """

    subject: str
    action: Action
    actor: Actor
    at: float
    component: str
    removed: dict[str, int] = field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return orjson.dumps({"schema_version": AUDIT_SCHEMA_VERSION, "subject": self.subject,
                             "action": self.action.value, "actor": self.actor.value, "at": self.at,
                             "component": self.component, "removed": self.removed})

    @classmethod
    def from_bytes(cls, data: bytes) -> AuditRecord:
        record = load_object(data, "audit record")
        try:
            action = Action(req_str(record, "action"))
        except ValueError as error:
            raise DecodeError(str(error), reason=Reason.BAD_FIELD, field="action") from None
        try:
            actor = Actor(req_str(record, "actor"))
        except ValueError as error:
            raise DecodeError(str(error), reason=Reason.BAD_FIELD, field="actor") from None
        removed = record.get("removed")
        removed = {} if removed is None else removed
        if not isinstance(removed, dict) or not all(isinstance(v, int) and not isinstance(v, bool)
                                                    for v in removed.values()):
            raise DecodeError("removed must map kinds to counts", reason=Reason.BAD_FIELD, field="removed")
        return cls(subject=req_str(record, "subject"), action=action, actor=actor, at=req_float(record, "at"),
                   component=req_str(record, "component"), removed={str(k): int(v) for k, v in removed.items()})
