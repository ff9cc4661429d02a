"""Local tooling that is never deployed: embedded AWS (moto) and an API Gateway built from template.yaml."""
