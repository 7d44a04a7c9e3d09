"""The device agent: drivers read the sensors, an on-device outbox keeps every frame until the server has
acknowledged it, a transport (MQTT QoS 1 or HTTP) sends them oldest first."""
