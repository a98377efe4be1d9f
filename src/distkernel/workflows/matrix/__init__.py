"""`distkernel matrix`: recipes x arches, each cell built in isolation, boot-tested,
published to a signed binhost, old packages pruned, and a report per run."""
