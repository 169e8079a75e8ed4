"""The practice's data: the SQLite database and its access, and the seeding of a synthetic practice."""
