"""Route tree, aggregation groups and the dispatcher step (Alertmanager's dispatch/)."""
