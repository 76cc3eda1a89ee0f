"""Pure task logic: no HTTP, no torch; the standard library, numpy and pydantic at most."""
