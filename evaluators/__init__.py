"""Train real networks with a candidate backward equation (no search code, no MLflow)."""
