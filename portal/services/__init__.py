"""Use cases: each loads what it needs, calls the domain, saves and commits once."""
