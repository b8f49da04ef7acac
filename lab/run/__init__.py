"""Running stages: the runner (coordinator, leases) and the stage worker process."""
