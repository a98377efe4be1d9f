"""Boot-test packages under qemu: a test initramfs whose init prints a marker unique to
the run; PASS only on that marker, every other ending classified from the console.

    boot_test(package, BootOptions(...)) -> BootResult
    boot_installed(root, release | None, BootOptions(...)) -> BootResult
"""

from distkernel.workflows.boottest.result import Attempt, BootResult
from distkernel.workflows.boottest.run import FIRMWARE_LAYOUTS, FIRMWARES, BootOptions, boot_installed, boot_test

__all__ = ["FIRMWARES", "FIRMWARE_LAYOUTS", "Attempt", "BootOptions", "BootResult", "boot_installed", "boot_test"]
