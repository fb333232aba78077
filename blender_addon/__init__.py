# SPDX-License-Identifier: GPL-3.0-or-later
"""depth2mesh for Blender: import depth2mesh results, and turn a photo into 3D.

An extension (``blender_manifest.toml``, Blender 4.2+) that also installs as a legacy
add-on (``bl_info``). It needs nothing but Blender: no torch, no numpy; "Photo to 3D" runs the
depth2mesh command line of a separate installation in a subprocess.
"""

from __future__ import annotations

import bpy

from . import importer, operators, preferences, runner, sidecar

bl_info = {
    "name": "depth2mesh",
    "author": "depth2mesh developers",
    "version": (0, 1, 0),
    "blender": (4, 2, 0),
    "location": "File > Import > depth2mesh result (.glb/.ply), Photo to 3D (depth2mesh)",
    "description": "Import depth2mesh results (meshes, coloured points, the photo's camera) "
    "and turn a photo into 3D with the depth2mesh command line",
    "doc_url": "",
    "category": "Import-Export",
}

__all__ = ["importer", "operators", "preferences", "register", "runner", "sidecar", "unregister"]

_CLASSES = (preferences.Depth2MeshPreferences, *operators.CLASSES)


def register():
    """Register the preferences, operators, menu entries and the drag-and-drop handler."""
    for cls in _CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.TOPBAR_MT_file_import.append(operators.menu_import)


def unregister():
    """Undo ``register``."""
    bpy.types.TOPBAR_MT_file_import.remove(operators.menu_import)
    for cls in reversed(_CLASSES):
        bpy.utils.unregister_class(cls)
