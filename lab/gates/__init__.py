"""Gate rules: turn a stage's stored results into a go / no-go / inconclusive recommendation."""
