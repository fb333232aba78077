# SPDX-License-Identifier: GPL-3.0-or-later
"""Operators: import a depth2mesh result, and turn a photo into 3D with the depth2mesh CLI.

Failures are reported in Blender's UI with one line (``self.report({'ERROR'}, ...)``); an
operator never lets an exception out, so there is no traceback dialog.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    StringProperty,
)
from bpy.types import FileHandler, Operator, OperatorFileListElement
from bpy_extras.io_utils import ImportHelper, poll_file_object_drop

from . import importer
from .preferences import MODEL_ITEMS, get_preferences
from .runner import (
    METRIC_MODELS,
    ConvertError,
    ConvertJob,
    ConvertSettings,
    build_command,
    expected_files,
)
from .sidecar import ResultError

PHOTO_GLOB = "*.jpg;*.jpeg;*.png;*.tif;*.tiff;*.webp;*.bmp"
POLL_SECONDS = 0.25


def _selected_paths(operator) -> list[str]:
    """The files an import operator was given: ``directory`` + ``files``, else ``filepath``."""
    directory = operator.directory
    names = [item.name for item in operator.files if item.name]
    if directory and names:
        return [os.path.join(directory, name) for name in names]
    return [operator.filepath] if operator.filepath else []


class IMPORT_SCENE_OT_depth2mesh_result(Operator, ImportHelper):  # noqa: N801 (Blender naming)
    """Import a depth2mesh result: GLB mesh, PLY point cloud or Poisson mesh, and its camera."""

    bl_idname = "import_scene.depth2mesh_result"
    bl_label = "Import depth2mesh result"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a set)

    filter_glob: StringProperty(default="*.glb;*.ply", options={"HIDDEN"})
    directory: StringProperty(subtype="DIR_PATH", options={"HIDDEN", "SKIP_SAVE"})
    files: CollectionProperty(type=OperatorFileListElement, options={"HIDDEN", "SKIP_SAVE"})
    use_camera: BoolProperty(
        name="Photo camera",
        description=(
            "Set up the photo's camera from the <stem>.json sidecar beside the file and make "
            "it the scene camera, with the photo's aspect ratio"
        ),
        default=True,
    )
    point_size: FloatProperty(
        name="Point size",
        description="Multiplier of the automatic point radius of point clouds",
        default=1.0,
        min=0.01,
        soft_max=10.0,
    )

    def invoke(self, context, _event):
        """Open the file browser, or (drag and drop) confirm the dropped files."""
        return self.invoke_popup(context)

    def execute(self, context):
        """Import every selected file."""
        paths = _selected_paths(self)
        if not paths:
            self.report({"ERROR"}, "depth2mesh: no file given")
            return {"CANCELLED"}
        count = 0
        for path in paths:
            try:
                report = importer.import_result(
                    context, path, use_camera=self.use_camera, point_size=self.point_size
                )
            except ResultError as error:
                self.report({"ERROR"}, f"depth2mesh: {error}")
                return {"CANCELLED"}
            for warning in report.warnings:
                self.report({"WARNING"}, f"depth2mesh: {warning}")
            count += len(report.objects)
        self.report({"INFO"}, f"depth2mesh: imported {len(paths)} file(s), {count} object(s)")
        return {"FINISHED"}


class IMPORT_SCENE_FH_depth2mesh(FileHandler):  # noqa: N801 (Blender naming)
    """Drag and drop of .glb and .ply files onto the 3D Viewport."""

    bl_idname = "IMPORT_SCENE_FH_depth2mesh"
    bl_label = "depth2mesh result"
    bl_import_operator = "import_scene.depth2mesh_result"
    bl_file_extensions = ".glb;.ply"

    @classmethod
    def poll_drop(cls, context):
        """Accept drops on the 3D Viewport and the Outliner."""
        return poll_file_object_drop(context)


def _settings_and_output(
    context, output_dir: str, model: str = ""
) -> tuple[ConvertSettings, str, bool]:
    """The conversion settings, the output folder, and whether to import the point cloud.

    ``model`` (a ``--model`` name) replaces the preferences' model; "" keeps it.
    """
    preferences = get_preferences(context)
    if preferences is None:
        settings, folder, points = ConvertSettings(), "", False
    else:
        settings = preferences.convert_settings()
        folder, points = preferences.output_dir, preferences.import_points
    if model:
        settings = dataclasses.replace(settings, model=model)
    folder = output_dir or folder
    if folder:
        folder = os.path.abspath(bpy.path.abspath(folder))
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as error:
            raise ConvertError(f"cannot create {folder}: {error.strerror or error}") from None
    else:
        folder = tempfile.mkdtemp(prefix="depth2mesh_")
    return settings, folder, points


def _start(
    context, photo: str, output_dir: str, model: str = ""
) -> tuple[ConvertJob, str, str, bool]:
    """Check the photo and start ``depth2mesh convert`` (with ``model``, else the preferences')."""
    photo = os.path.abspath(bpy.path.abspath(photo))
    if not os.path.isfile(photo):
        raise ConvertError(f"{photo}: no such photo")
    settings, folder, points = _settings_and_output(context, output_dir, model)
    job = ConvertJob(build_command(settings, photo, folder))
    return job, folder, settings.mesh, points


def _import_outputs(context, photo: str, folder: str, mesh: str, points: bool) -> int:
    """Import the files a finished conversion wrote; return how many objects came in."""
    files = expected_files(folder, os.path.abspath(bpy.path.abspath(photo)), mesh)
    wanted = []
    if mesh in ("grid", "both"):
        wanted.append(files["grid"])
    if "poisson" in files:
        wanted.append(files["poisson"])
    if points:
        wanted.append(files["points"])
    count = 0
    for path in wanted:
        if not os.path.isfile(path):
            raise ResultError(f"depth2mesh finished but {path} is missing")
        count += len(importer.import_result(context, path).objects)
    return count


def _report_text(error: RuntimeError) -> str:
    """The message of an operator's error report, as ``bpy.ops`` raised it: one line."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    text = lines[-1] if lines else "depth2mesh: failed"
    return text.removeprefix("Error: ")


def _finished_message(photo: str, folder: str, count: int, seconds: float) -> str:
    name = os.path.basename(photo)
    return f"depth2mesh: {name} converted in {seconds:.1f} s, {count} object(s) from {folder}"


class IMPORT_SCENE_OT_depth2mesh_photo(Operator, ImportHelper):  # noqa: N801 (Blender naming)
    """Turn a photo into 3D with the depth2mesh command line, then import the result."""

    bl_idname = "import_scene.depth2mesh_photo"
    bl_label = "Photo to 3D (depth2mesh)"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 (Blender reads a set)

    filter_glob: StringProperty(default=PHOTO_GLOB, options={"HIDDEN"})
    filter_image: BoolProperty(default=True, options={"HIDDEN", "SKIP_SAVE"})
    output_dir: StringProperty(
        name="Output folder",
        description="Where the result is written; empty: the add-on preferences' folder, "
        "else a new temporary folder",
        subtype="DIR_PATH",
        default="",
        options={"SKIP_SAVE"},
    )
    model: EnumProperty(
        name="Depth model",
        description="The network that predicts depth (--model); the add-on preferences' "
        "model unless chosen here",
        items=MODEL_ITEMS,
        default="midas-small",
        options={"SKIP_SAVE"},
    )
    timeout: FloatProperty(
        name="Timeout",
        description="Seconds to wait for depth2mesh when run from a script (0: no limit)",
        default=0.0,
        min=0.0,
        options={"HIDDEN", "SKIP_SAVE"},
    )
    use_modal: BoolProperty(default=False, options={"HIDDEN", "SKIP_SAVE"})

    def invoke(self, context, event):
        """Pick a photo in the file browser; then run in the background (see ``execute``)."""
        self.use_modal = True
        preferences = get_preferences(context)
        if preferences is not None and not self.properties.is_property_set("model"):
            self.model = preferences.model
        return ImportHelper.invoke(self, context, event)

    def _model(self) -> str:
        """The model chosen for this run: this operator's, else "" (the preferences')."""
        return self.model if self.properties.is_property_set("model") else ""

    def draw(self, context):
        """Show where the result goes and the conversion settings in the file browser."""
        layout = self.layout
        layout.prop(self, "output_dir")
        layout.prop(self, "model")
        preferences = get_preferences(context)
        if preferences is not None:
            column = layout.column(align=True)
            column.label(text=f"Mesh: {preferences.mesh}")
            if self.model in METRIC_MODELS:
                column.label(text="Depth in metres from the model")
            else:
                column.label(text=f"Near {preferences.near:g} m, far {preferences.far:g} m")
            column.label(text="(Preferences > Add-ons > depth2mesh)")

    def execute(self, context):
        """Convert and import: in the background when invoked from the UI, else blocking."""
        if self.use_modal and context.window is not None and not bpy.app.background:
            try:
                result = bpy.ops.import_scene.depth2mesh_photo_job(
                    "INVOKE_DEFAULT",
                    filepath=self.filepath,
                    output_dir=self.output_dir,
                    model=self._model(),
                )
            except RuntimeError as error:  # the job reported an error: pass on its line
                self.report({"ERROR"}, _report_text(error))
                return {"CANCELLED"}
            return {"FINISHED"} if "RUNNING_MODAL" in result else {"CANCELLED"}
        try:
            job, folder, mesh, points = _start(
                context, self.filepath, self.output_dir, self._model()
            )
            code = job.wait(timeout=self.timeout or None)
            if code != 0:
                self.report({"ERROR"}, f"depth2mesh failed: {job.failure(code)}")
                return {"CANCELLED"}
            count = _import_outputs(context, self.filepath, folder, mesh, points)
        except (ConvertError, ResultError) as error:
            self.report({"ERROR"}, f"depth2mesh: {error}")
            return {"CANCELLED"}
        self.report({"INFO"}, _finished_message(self.filepath, folder, count, job.elapsed))
        return {"FINISHED"}


class IMPORT_SCENE_OT_depth2mesh_photo_job(Operator):  # noqa: N801 (Blender naming)
    """Run depth2mesh on a photo in the background; the status bar shows how it goes."""

    bl_idname = "import_scene.depth2mesh_photo_job"
    bl_label = "depth2mesh: convert photo"
    bl_options = {"INTERNAL", "UNDO"}  # noqa: RUF012 (Blender reads a set)

    filepath: StringProperty(subtype="FILE_PATH", options={"SKIP_SAVE"})
    output_dir: StringProperty(subtype="DIR_PATH", options={"SKIP_SAVE"})
    model: StringProperty(options={"SKIP_SAVE"})  # a --model name; "": the preferences'

    def invoke(self, context, _event):
        """Start depth2mesh and poll it with a timer."""
        try:
            self._job, self._folder, self._mesh, self._points = _start(
                context, self.filepath, self.output_dir, self.model
            )
        except ConvertError as error:
            self.report({"ERROR"}, f"depth2mesh: {error}")
            return {"CANCELLED"}
        self._name = os.path.basename(self.filepath)
        window_manager = context.window_manager
        self._timer = window_manager.event_timer_add(POLL_SECONDS, window=context.window)
        window_manager.modal_handler_add(self)
        self._show_status(context)
        return {"RUNNING_MODAL"}

    def _show_status(self, context) -> None:
        elapsed = self._job.elapsed
        last = self._job.last_line
        if len(last) > 90:
            last = last[:87] + "..."
        text = f"depth2mesh: converting {self._name}, {elapsed:.0f} s"
        if last:
            text += f"  |  {last}"
        context.workspace.status_text_set(text + "  |  Esc: cancel")

    def _stop(self, context) -> None:
        context.window_manager.event_timer_remove(self._timer)
        if context.workspace is not None:
            context.workspace.status_text_set(None)

    def modal(self, context, event):
        """Poll the process on each timer tick; Esc cancels it."""
        if event.type == "ESC" and event.value == "PRESS":
            self._job.cancel()
            self._stop(context)
            self.report({"WARNING"}, f"depth2mesh: conversion of {self._name} cancelled")
            return {"CANCELLED"}
        if event.type != "TIMER" or event.timer is not self._timer:
            return {"PASS_THROUGH"}
        code = self._job.poll()
        if code is None:
            self._show_status(context)
            return {"PASS_THROUGH"}
        self._stop(context)
        if code != 0:
            self.report({"ERROR"}, f"depth2mesh failed: {self._job.failure(code)}")
            return {"CANCELLED"}
        try:
            count = _import_outputs(context, self.filepath, self._folder, self._mesh, self._points)
        except ResultError as error:
            self.report({"ERROR"}, f"depth2mesh: {error}")
            return {"CANCELLED"}
        message = _finished_message(self.filepath, self._folder, count, self._job.elapsed)
        self.report({"INFO"}, message)
        return {"FINISHED"}

    def cancel(self, context):
        """Blender is closing the operator (e.g. a new file was loaded): stop the process."""
        self._job.cancel()
        self._stop(context)


def menu_import(self, _context):
    """Entries in File > Import."""
    self.layout.operator(
        IMPORT_SCENE_OT_depth2mesh_result.bl_idname, text="depth2mesh result (.glb/.ply)"
    )
    self.layout.operator(
        IMPORT_SCENE_OT_depth2mesh_photo.bl_idname, text="Photo to 3D (depth2mesh)"
    )


CLASSES = (
    IMPORT_SCENE_OT_depth2mesh_result,
    IMPORT_SCENE_OT_depth2mesh_photo,
    IMPORT_SCENE_OT_depth2mesh_photo_job,
    IMPORT_SCENE_FH_depth2mesh,
)
