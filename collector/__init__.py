"""benchwatch collector: ingest sample batches into bounded, durable windows."""
