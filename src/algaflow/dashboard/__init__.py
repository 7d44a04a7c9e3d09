"""The operator's dashboard (Dash on the service's FastAPI app) and what its views read from the store."""
