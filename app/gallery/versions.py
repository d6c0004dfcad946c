"""Which model made the stored embeddings: two models' vectors cannot be compared.

After REID_MODEL_PATH changes, the rows hold the old model's embeddings. Until every
entry also holds the loaded model's (computed from the stored crops: by this replica
in the background, or by ``python -m app.reembed``), the gallery refuses to enroll or
search (``ModelVersionMismatch``) and says so everywhere.

Once it has served, it keeps serving: an entry enrolled meanwhile through a replica of
another version (both generations run side by side during an upgrade) lacks this
model's embedding for the moment it takes to compute it, which is replication lag,
not a reason to refuse.
"""

from __future__ import annotations

from app.gallery.embedding_slots import EmbeddingSlots
from app.gallery.errors import ModelVersionMismatch


class ModelVersions:
    def __init__(self, slots: EmbeddingSlots) -> None:
        self.slots = slots
        self.loaded = slots.model_version
        self.foreign: dict[str, int] = {}  # entries lacking the loaded model's embedding
        self.serving = False

    def refresh(self) -> bool:
        """Re-read the census; True when entries lacked this model's embedding and now
        none does."""
        foreign = self.slots.lacking_census()
        cleared = bool(self.foreign) and not foreign
        self.foreign = foreign
        self.serving = self.serving or not foreign
        return cleared

    @property
    def refusing(self) -> bool:
        return bool(self.foreign) and not self.serving

    def mismatch_message(self) -> str:
        held = ", ".join(f"{n} from {v}" for v, n in sorted(self.foreign.items()))
        return (
            f"the gallery holds entries without an embedding of the loaded model {self.loaded} "
            f"({held}); embeddings of two models cannot be compared. Either wait while "
            "this replica re-embeds the stored crops in the background (when "
            "REID_REEMBED_IN_BACKGROUND is on; /ready shows what is left), run "
            "`python -m app.reembed`, or set REID_MODEL_PATH to the checkpoint that "
            "enrolled them."
        )

    def mismatch(self) -> ModelVersionMismatch:
        return ModelVersionMismatch(
            self.mismatch_message(), {"loaded": self.loaded, "gallery": self.foreign}
        )
