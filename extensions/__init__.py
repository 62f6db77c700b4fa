"""Python jobs that read a client's marts and write tables to its insights schema (see
extensions.api); the built-ins and a consultant's own extensions are the modules here."""
