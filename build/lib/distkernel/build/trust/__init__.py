"""Keys, signatures, secure boot and the binhost's trust checks."""
