"""The telemetry service: HTTP API (FastAPI), MQTT bridge and embedded broker, live pipeline, auth."""
