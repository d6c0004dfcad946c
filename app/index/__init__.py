"""The FAISS index derived from the gallery table: backends, the id-keyed wrapper, snapshots."""
