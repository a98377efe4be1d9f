"""Check every recipe input that needs no kernel tree (feature names, fragment files)
before the source is prepared: a typo then costs milliseconds, not an extraction and a
`make tinyconfig`."""

from __future__ import annotations

from distkernel.build.config.features import known_features
from distkernel.build.config.values import parse_fragment
from distkernel.build.recipe import Recipe
from distkernel.core.errors import UserError


def check_inputs(recipe: Recipe) -> None:
    """Raise the one-line UserError of the first bad input, naming the recipe line."""
    for name in recipe.config.features:
        if name not in known_features():
            raise UserError(
                f"{recipe.line_of('config', 'features')}: config.features: unknown feature `{name}` "
                f"(known: {', '.join(known_features())})"
            )
    for fragment in recipe.config.fragments:
        parse_fragment(fragment, recipe.display(fragment), echo=recipe.owns(fragment))
