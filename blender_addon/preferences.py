# SPDX-License-Identifier: GPL-3.0-or-later
"""Add-on preferences: where depth2mesh is and how "Photo to 3D" runs it."""

from __future__ import annotations

from bpy.props import BoolProperty, EnumProperty, FloatProperty, StringProperty
from bpy.types import AddonPreferences

from .runner import METRIC_MODELS, MODELS, ConvertSettings

ADDON_PACKAGE = __package__

MESH_ITEMS = (
    ("grid", "Grid", "The textured pixel-grid mesh (fast)"),
    ("poisson", "Poisson", "The Poisson surface with vertex colours (slower)"),
    ("both", "Both", "The grid mesh and the Poisson surface"),
)


MODEL_ITEMS = tuple((name, title, summary) for name, title, summary, _ in MODELS)
"""The depth model choice: depth2mesh's ``--model`` names (see ``runner.MODELS``)."""


class Depth2MeshPreferences(AddonPreferences):
    """Settings of the depth2mesh add-on."""

    bl_idname = ADDON_PACKAGE

    executable: StringProperty(
        name="depth2mesh executable",
        description=(
            "The depth2mesh command of your depth2mesh installation, for example "
            "/path/to/venv/bin/depth2mesh; empty: found on PATH"
        ),
        subtype="FILE_PATH",
        default="",
    )
    weights: StringProperty(
        name="Weights",
        description=(
            "MiDaS v2.1 small checkpoint (.pt) passed as --weights with that model; empty: "
            "depth2mesh finds it ($DEPTH2MESH_WEIGHTS, the torch.hub cache) or downloads it "
            "once. The other models' weights: their own variable "
            "($DEPTH2MESH_WEIGHTS_DAV2_SMALL, ...) or the torch.hub cache"
        ),
        subtype="FILE_PATH",
        default="",
    )
    model: EnumProperty(
        name="Depth model",
        description="The network that predicts depth (depth2mesh convert --model)",
        items=MODEL_ITEMS,
        default="midas-small",
    )
    mesh: EnumProperty(name="Mesh", items=MESH_ITEMS, default="grid")
    near: FloatProperty(
        name="Near",
        description="Depth of the nearest content, metres (relative models only)",
        default=1.0,
        min=0.001,
        soft_max=100.0,
        unit="LENGTH",
    )
    far: FloatProperty(
        name="Far",
        description="Depth of the farthest content and sky, metres (relative models only)",
        default=10.0,
        min=0.002,
        soft_max=1000.0,
        unit="LENGTH",
    )
    fov: FloatProperty(
        name="Horizontal FOV",
        description="Field of view of the photo, degrees; 0: from EXIF, else 60",
        default=0.0,
        min=0.0,
        max=179.0,
    )
    extra_args: StringProperty(
        name="Extra arguments",
        description="More depth2mesh convert options, for example: --grid 512 --drop-far",
        default="",
    )
    output_dir: StringProperty(
        name="Output folder",
        description="Where results are written; empty: a new temporary folder for each photo",
        subtype="DIR_PATH",
        default="",
    )
    overwrite: BoolProperty(
        name="Replace earlier results",
        description="Convert again when the output folder has a result of the same photo "
        "(--overwrite); off: import the earlier result",
        default=True,
    )
    import_points: BoolProperty(
        name="Import the point cloud too",
        description="Also import <photo>_points.ply as coloured points",
        default=False,
    )

    def draw(self, _context):
        """Draw the preferences."""
        layout = self.layout
        layout.use_property_split = True
        layout.prop(self, "executable")
        layout.prop(self, "weights")
        layout.prop(self, "output_dir")
        layout.prop(self, "overwrite")
        column = layout.column(heading="Conversion")
        column.prop(self, "model")
        column.prop(self, "mesh")
        scaled = column.column()
        scaled.active = self.model not in METRIC_MODELS  # metric models give metres
        scaled.prop(self, "near")
        scaled.prop(self, "far")
        column.prop(self, "fov")
        column.prop(self, "extra_args")
        layout.prop(self, "import_points")

    def convert_settings(self) -> ConvertSettings:
        """The options for ``depth2mesh convert``."""
        import bpy

        return ConvertSettings(
            executable=bpy.path.abspath(self.executable) if self.executable else "",
            weights=bpy.path.abspath(self.weights) if self.weights else "",
            model=self.model,
            mesh=self.mesh,
            near=self.near,
            far=self.far,
            fov=self.fov,
            extra_args=self.extra_args,
            overwrite=self.overwrite,
        )


def get_preferences(context):
    """The add-on's preferences (None when it was registered without Blender's add-on list)."""
    addon = context.preferences.addons.get(ADDON_PACKAGE)
    return addon.preferences if addon is not None else None
