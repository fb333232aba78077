"""``python -m depth2mesh`` runs the command line."""

from depth2mesh.apps.cli import main

main()
