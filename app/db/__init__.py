"""The source of truth: SQLAlchemy tables (``models``) and how to open a database (``engine``)."""
