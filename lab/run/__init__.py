"""Running stages: the runner (order, gates, lease), the worker lifecycle API (workers) and the worker process."""
