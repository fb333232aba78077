"""``python -m depth2mesh`` runs the command line."""

from depth2mesh.cli import main

main()
