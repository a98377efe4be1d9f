"""export: a distkernel package as another package manager's packages (Debian .debs,
Gentoo .gpkg.tar), read with the one strict package reader."""
