"""Whether a study's data are still the data its recorded trials read, and what it says of them on each run.

A study compares what it reads now with the fingerprint its first trials stored on every run, also when every trial
is done: a finished study whose folder gained images would otherwise print its old table as if it described them.
"""

from __future__ import annotations

import json

from medtransfer.data.fingerprint import DataFingerprint
from medtransfer.study.store import StudyStore

#: the key of the data fingerprint (what the finished trials read), in the store's blobs
FINGERPRINT = "fingerprint"


def data_changes(store: StudyStore, counts: dict[str, int], fingerprint: DataFingerprint) -> str | None:
    """How the data differ from what the store's trials read (``'3 added, 1 modified'``), or ``None`` when they do
    not (or nothing was recorded yet). ``counts``: the images per split now, which is all a study from before
    fingerprints can be compared by."""
    if not store.exists():
        return None
    old = store.blob(FINGERPRINT)
    if old is not None:
        diff = DataFingerprint.from_json(old.decode()).differences(fingerprint)
        return DataFingerprint.describe(diff) if any(diff.values()) else None
    card = json.loads(store.meta().get("data") or "{}").get("counts", {})
    if not card or all(card.get(k) == counts[k] for k in ("train", "val", "test")):
        return None
    return f"images per split {', '.join(f'{k} {card.get(k)} -> {counts[k]}' for k in counts)}"


def changed_data_message(data: str, folder, what: str) -> str:
    """Why a study does not go on with data that changed under it, and what to do."""
    return (f"{data}: the data changed since the study in {folder} started ({what}); its finished trials were "
            f"trained on the old data. Restore the data to resume, or pass --new-folder to start a new study beside "
            f"it.")


def notice_lines(notices: list[str], limit: int = 3) -> list[str]:
    """The source's notices (files skipped, duplicates kept) as console lines: the first ``limit``, then how many
    more the report's dataset section lists."""
    more = len(notices) - limit
    return notices[:limit] + ([f"… and {more} more notice(s) about the data (in the report)."] if more > 0 else [])
