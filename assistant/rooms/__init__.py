"""Live co-drafting rooms: persisted state (:mod:`.store`), the draft structure (:mod:`.draft`),
the program's reading of the contributions (:mod:`.analysis`) and synthesis/revision on the
answer engine (:mod:`.synthesis`). Nothing here imports Chainlit; the app's glue is
:mod:`assistant.app.rooms`."""

from assistant.rooms.models import (
    KINDS, AccessDenied, Contribution, Feedback, Member, NewVersion, Room, RoomError, RoomState, SharedDocument, Version,
)
from assistant.rooms.store import Cursor, RoomStore

__all__ = [
    "KINDS", "AccessDenied", "Contribution", "Cursor", "Feedback", "Member", "NewVersion", "Room", "RoomError",
    "RoomState", "RoomStore", "SharedDocument", "Version",
]
