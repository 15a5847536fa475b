"""The pieces of ``bench/run.py``: backends, servers, load, seeding and the report."""
