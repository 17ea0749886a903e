"""Onboarding records that outlive Temporal's retention: the store (SQLAlchemy, Alembic
migrations) and the `save_record` activity that keeps it up to date."""
