"""Health and readiness endpoints for load balancers, orchestrators and the load benchmark."""
