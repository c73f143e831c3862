"""Memory: the project database (runs, steps, experience) and recall."""
