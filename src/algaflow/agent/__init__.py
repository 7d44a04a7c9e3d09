"""The device agent: drivers read the sensors, an on-device outbox keeps every frame until the server has
acknowledged it (or has refused it for good: then it is kept as a dead letter), a transport (MQTT QoS 1 or
HTTP) sends them oldest first."""
