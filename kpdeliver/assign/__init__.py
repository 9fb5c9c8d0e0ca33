"""assign stage."""
