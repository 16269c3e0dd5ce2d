"""`video-service-admin`: operator commands shipped with the service (they need its MongoDB and
Kafka, and read the service's own settings). See `consumers.admin.cli`."""
