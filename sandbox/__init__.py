"""The sandbox, beside the application and never on a production run's path: local servers
that behave like the vendor APIs (emulators) and like Metabase (metabase_standin), and the
PanPan demo (demo) that generates its data and starts its own emulators."""
