"""The Tilebox Workflows protobuf messages (`workflows.v1`, `tilebox.v1`), vendored unchanged from the MIT-licensed
`tilebox-workflows==0.66.0` and `tilebox-datasets==0.66.0` wheels (Copyright Tilebox, Inc.): generated code whose
only edit is the import lines, which name these modules instead of the wheels' packages. The serialized
descriptors are the wheels' byte for byte (tests/tilebox/test_wire.py checks them against the installed SDK).
Only protobuf's runtime is needed to import them (no grpc, no Tilebox SDK)."""
