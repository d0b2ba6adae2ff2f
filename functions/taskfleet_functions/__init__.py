"""taskfleet's orchestrator: Lambda handlers (handlers/), the orchestrator (orchestrator/), AWS adapters (dal/)."""
