"""Package format v1 (docs/package-format.md): one .tar.zst, metadata.json first, a
manifest of every payload file's sha256, an optional detached manifest signature."""
