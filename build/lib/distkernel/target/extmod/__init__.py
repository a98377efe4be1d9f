"""External (out-of-tree) modules: registry, dkms.conf, rebuild for each kernel."""
