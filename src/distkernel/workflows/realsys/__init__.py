"""A real Debian system on its own disk for whole-life tests and benchmarks: the root
(root.py), its configuration and kernel (system.py), its GPT disk (disk.py), and the
guest under qemu and OVMF driven through its serial console (guest.py)."""
