"""Where kernel versions come from, exactly: Debian's archive (through apt's signed
chain) and kernel.org-style feeds (releases.json, signed sha256sums.asc, the tarball's
detached signature, checked with gpgv against the keyring a recipe names)."""
