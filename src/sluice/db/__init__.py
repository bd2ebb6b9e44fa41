"""The database adapter: SQLAlchemy tables, the unit of work, repositories. All SQL lives here."""
