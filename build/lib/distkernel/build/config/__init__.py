"""The config stage: assemble inputs in layers, let `make olddefconfig` resolve them,
then report each requested value against the effective .config."""
