"""Module signing as a config input: the recipe's `[sign] modules` asks Kbuild to sign
every module at modules_install with the key that trust/modsign.py links into the build
folder under KEY_LINK."""

from __future__ import annotations

from distkernel.build.config.values import Origin, Setting
from distkernel.build.recipe import Recipe
from distkernel.build.trust.modsign import KEY_LINK


def module_sig_settings(recipe: Recipe) -> list[Setting]:
    """The config input for `[sign] modules`: sign every module with SHA-256 at
    modules_install, with the key behind KEY_LINK."""
    if recipe.sign.modules is None:
        return []
    origin = Origin(recipe.display(recipe.path), recipe.line("sign", "modules"))
    values = {
        "CONFIG_MODULE_SIG": "y",
        "CONFIG_MODULE_SIG_ALL": "y",
        "CONFIG_MODULE_SIG_SHA256": "y",
        "CONFIG_MODULE_SIG_KEY": f'"{KEY_LINK}"',
    }
    return [Setting(symbol, value, origin) for symbol, value in values.items()]
