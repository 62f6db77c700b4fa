"""The application on top of the stages: one client's run (orchestrator), the scheduler, the
client and source commands, and the `goalpost` CLI, a thin shell over them."""
