"""Which model made the stored embeddings: two models' vectors cannot be compared.

After REID_MODEL_PATH changes, the rows still hold the old model's embeddings.
The gallery then refuses to enroll or search (``ModelVersionMismatch``) until
``python -m app.reembed`` has re-embedded them, and says so everywhere.
"""

from __future__ import annotations

from app.gallery.errors import ModelVersionMismatch
from app.gallery.store import EntryStore


class ModelVersions:
    def __init__(self, store: EntryStore) -> None:
        self._store = store
        self.loaded = store.model_version
        self.foreign: dict[str, int] = {}

    def foreign_in(self, census: dict[str, int]) -> dict[str, int]:
        return {version: n for version, n in census.items() if version != self.loaded}

    def refresh(self) -> bool:
        """Re-read the census; True when foreign versions were held and now are gone."""
        foreign = self.foreign_in(self._store.census())
        cleared = bool(self.foreign) and not foreign
        self.foreign = foreign
        return cleared

    def mismatch_message(self, foreign: dict[str, int] | None = None) -> str:
        held = ", ".join(f"{n} from {v}" for v, n in sorted((foreign or self.foreign).items()))
        return (
            f"the gallery holds embeddings from another model ({held}) but the loaded model is "
            f"{self.loaded}; embeddings of two models cannot be compared. Either run "
            "`python -m app.reembed` (re-embeds every stored crop with the loaded model), or "
            "set REID_MODEL_PATH to the checkpoint that enrolled them."
        )

    def mismatch(self) -> ModelVersionMismatch:
        return ModelVersionMismatch(
            self.mismatch_message(), {"loaded": self.loaded, "gallery": self.foreign}
        )
