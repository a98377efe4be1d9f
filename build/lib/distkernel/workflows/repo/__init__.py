"""The binhost: a signed index of packages, served over HTTP, fetched by clients."""
