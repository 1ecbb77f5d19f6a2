"""Alembic migrations of the warehouse schema; ``warehouse.db.create_schema`` runs them."""
