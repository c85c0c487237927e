"""bocker-oci: a runc-compatible OCI runtime over bocker's shim."""
