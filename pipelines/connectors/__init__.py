"""REST connectors: declarative manifests (manifest, manifests/*.yaml) read by one engine
(engine, http, templating), their settings and secrets (secrets), and what the CLI's source
commands call (operations)."""
