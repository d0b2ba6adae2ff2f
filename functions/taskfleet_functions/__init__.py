"""taskfleet's orchestrator: Lambda handlers (handlers/), domain rules (logic/), AWS adapters (dal/)."""
