"""The Connect protocol of the Tilebox Workflows SDK (tilebox-workflows 0.66, transport="http1") on taskfleet's
engine: wire.py (bytes in and out), convert.py (pure message mapping), service.py (jobs, clusters, who may
call what), runners.py (TaskService for Tilebox runners), proto/ (the vendored messages). The Lambda entry point
is handlers/connect.py; docs/architecture.md, "Tilebox SDK clients", has the design."""
