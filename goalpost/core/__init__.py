"""The bottom layer: the client registry, metric definitions, warehouse access and the control
schema, errors and identifiers. It imports no stage: each stage registers its vocabulary here
(goalpost.core.vocabulary) and the application wires them together."""
