"""What operators and their tools ask the service: the health probes /healthz and
/readyz, Prometheus' /metrics, and 503s while the database is away."""
