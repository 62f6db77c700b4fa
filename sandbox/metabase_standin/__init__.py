"""A stand-in for a Metabase server that checks every request against Metabase's own
OpenAPI spec (spec) and keeps the objects provisioning creates (server)."""
