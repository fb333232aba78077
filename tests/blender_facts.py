"""Run inside real Blender (the ``bpy`` module): enable the add-on, run actions, print facts.

Usage: ``.venv-blender/bin/python tests/blender_facts.py SPEC.json``

SPEC is a JSON object:

- ``addon``: ``{"mode": "legacy", "source": DIR}`` (the add-on folder, enabled as a legacy
  add-on from ``$BLENDER_USER_SCRIPTS/addons``) or ``{"mode": "extension", "zip": ZIP}``
  (installed with Blender's extension installer into the ``user_default`` repository).
- ``preferences``: values to set on the add-on preferences (optional).
- ``actions``: a list of ``{"op": "import", "filepath": ...}`` (the import operator),
  ``{"op": "import_files", "directory": ..., "files": [names]}`` (the same, given files the
  way the file browser and drag and drop give them),
  ``{"op": "photo", "filepath": ..., "output_dir": ..., "model": ...}`` ("Photo to 3D", as a script
  runs it: blocking), ``{"op": "photo_modal", "filepath": ..., "escape_after": N}`` (the
  background job that the UI starts, driven by hand with timer events, or Esc at tick N) and
  ``{"op": "preferences", "values": {...}}`` (set preferences).
- ``rows``: ``{object name: grid columns}`` for row-major point clouds (optional).
- ``overlay``: ``{"grid": name, "points": name, "cols": columns}``: compare the grid mesh's
  vertices with the cloud's points of the same pixels (optional).

The last line of stdout is ``DEPTH2MESH_FACTS <json>``. The test asserts on the facts; this
script only observes (it never decides what is right).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import sys
import time
import traceback
from array import array
from types import SimpleNamespace

import bpy
from bpy_extras.object_utils import world_to_camera_view
from mathutils import Vector

LEGACY_NAME = "depth2mesh_blender"
SAMPLE_LIMIT = 4000


def enable_addon(spec: dict) -> str:
    """Enable the add-on; return its module name."""
    import addon_utils  # Blender's own module: importable only once bpy is

    if spec["mode"] == "legacy":
        scripts = os.environ["BLENDER_USER_SCRIPTS"]
        addons = os.path.join(scripts, "addons")
        os.makedirs(addons, exist_ok=True)
        target = os.path.join(addons, LEGACY_NAME)
        if not os.path.exists(target):
            try:
                os.symlink(spec["source"], target, target_is_directory=True)
            except OSError:
                shutil.copytree(spec["source"], target)
        bpy.utils.refresh_script_paths()
        module = addon_utils.enable(LEGACY_NAME, default_set=True, handle_error=raise_error)
        if module is None:
            raise RuntimeError(f"addon_utils.enable({LEGACY_NAME!r}) returned None")
        return LEGACY_NAME
    result = bpy.ops.extensions.package_install_files(
        filepath=spec["zip"], repo="user_default", enable_on_install=True
    )
    if "FINISHED" not in result:
        raise RuntimeError(f"extension install returned {result}")
    return "bl_ext.user_default.depth2mesh"


def raise_error(error: BaseException) -> None:
    raise error


def clear_scene() -> None:
    for obj in list(bpy.data.objects):
        bpy.data.objects.remove(obj, do_unlink=True)


def run_action(action: dict) -> dict:
    """Run one operator; an operator's ERROR report comes back as the RuntimeError text."""
    try:
        if action["op"] == "preferences":
            module = action["module"]
            preferences = bpy.context.preferences.addons[module].preferences
            for key, value in action["values"].items():
                setattr(preferences, key, value)
            return {"result": ["FINISHED"]}
        if action["op"] == "photo_modal":
            return drive_modal_job(action)
        if action["op"] == "import":
            result = bpy.ops.import_scene.depth2mesh_result(filepath=action["filepath"])
        elif action["op"] == "import_files":  # what the file browser and a drop pass
            result = bpy.ops.import_scene.depth2mesh_result(
                directory=action["directory"], files=[{"name": name} for name in action["files"]]
            )
        elif action["op"] == "photo":
            chosen = {"model": action["model"]} if "model" in action else {}
            result = bpy.ops.import_scene.depth2mesh_photo(
                filepath=action["filepath"],
                output_dir=action.get("output_dir", ""),
                timeout=action.get("timeout", 300.0),
                **chosen,
            )
        else:
            raise ValueError(f"unknown action {action['op']!r}")
    except RuntimeError as error:
        return {"error": str(error)}
    return {"result": sorted(result)}


class _FakeWindowManager:
    """Stands in for the window manager: bpy has no event loop, so the test sends the events."""

    def __init__(self):
        self.timers = []

    def event_timer_add(self, seconds, window=None):
        timer = SimpleNamespace(time_step=seconds)
        self.timers.append(timer)
        return timer

    def event_timer_remove(self, timer):
        self.timers.remove(timer)

    def modal_handler_add(self, _operator):
        return True


class _FakeWorkspace:
    def __init__(self):
        self.texts = []

    def status_text_set(self, text):
        self.texts.append(text)


def drive_modal_job(action: dict) -> dict:
    """Run the background "Photo to 3D" job by hand: invoke, then timer events (or Esc).

    The operator's own ``invoke``/``modal`` functions run on a stand-in instance, with the
    real scene and a window manager that records timers and status texts.
    """
    operators = sys.modules[action["module"] + ".operators"]
    job_class = operators.IMPORT_SCENE_OT_depth2mesh_photo_job
    names = ("invoke", "modal", "cancel", "_show_status", "_stop")
    stand_in = type("JobStandIn", (), {name: job_class.__dict__[name] for name in names})
    operator = stand_in()
    operator.filepath = action["filepath"]
    operator.output_dir = action.get("output_dir", "")
    operator.model = action.get("model", "")
    reports = []
    operator.report = lambda kinds, message: reports.append([sorted(kinds), message])
    window_manager, workspace = _FakeWindowManager(), _FakeWorkspace()
    context = SimpleNamespace(
        window=bpy.context.window,
        window_manager=window_manager,
        workspace=workspace,
        scene=bpy.context.scene,
        collection=bpy.context.collection,
        preferences=bpy.context.preferences,
    )
    result = operator.invoke(context, None)
    started = time.monotonic()
    ticks = 0
    while result == {"RUNNING_MODAL"} or result == {"PASS_THROUGH"}:
        if time.monotonic() - started > 300:
            raise RuntimeError("the background job ran past 300 s")
        time.sleep(0.25)
        ticks += 1
        if action.get("escape_after") == ticks:
            event = SimpleNamespace(type="ESC", value="PRESS", timer=None)
        else:
            event = SimpleNamespace(type="TIMER", value="NOTHING", timer=operator._timer)
        result = operator.modal(context, event)
    process = getattr(operator, "_job", None)
    return {
        "result": sorted(result),
        "reports": reports,
        "status_texts": workspace.texts,
        "timers_left": len(window_manager.timers),
        "ticks": ticks,
        "process_returncode": process.process.returncode if process is not None else None,
    }


def upstream(node, seen=None):
    """Every node that feeds ``node``, directly or not."""
    seen = set() if seen is None else seen
    for socket in node.inputs:
        for link in socket.links:
            source = link.from_node
            if source.name not in seen:
                seen.add(source.name)
                yield source
                yield from upstream(source, seen)


def base_color_sources(material) -> list[dict]:
    """What feeds the Base Color of the material's Principled BSDF."""
    if material is None or material.node_tree is None:
        return []
    shaders = [node for node in material.node_tree.nodes if node.type == "BSDF_PRINCIPLED"]
    found = []
    for shader in shaders:
        socket = shader.inputs["Base Color"]
        if not socket.is_linked:
            continue
        for link in socket.links:
            for node in [link.from_node, *upstream(link.from_node)]:
                entry = {"type": node.type}
                if node.type == "TEX_IMAGE" and node.image is not None:
                    entry["image_size"] = list(node.image.size)
                    entry["image_mean"] = image_mean(node.image)
                elif node.type == "ATTRIBUTE":
                    entry["attribute"] = node.attribute_name
                    entry["attribute_type"] = node.attribute_type
                elif node.type == "VERTEX_COLOR":
                    entry["attribute"] = node.layer_name
                found.append(entry)
    return found


def image_mean(image) -> list[float]:
    """Mean R, G, B of an image's pixels as Blender stores them (0..1)."""
    pixels = array("f", bytes(4 * len(image.pixels)))
    image.pixels.foreach_get(pixels)
    count = len(pixels) // 4
    return [sum(pixels[channel::4]) / count for channel in range(3)]


def sample_indices(count: int) -> range:
    step = max(1, count // SAMPLE_LIMIT)
    return range(0, count, step)


def mesh_facts(obj, scene, rows: dict) -> dict:
    mesh = obj.data
    world = obj.matrix_world
    facts = {
        "vertices": len(mesh.vertices),
        "faces": len(mesh.polygons),
        "color_attributes": [
            {"name": a.name, "domain": a.domain, "type": a.data_type} for a in mesh.color_attributes
        ],
        "modifiers": [m.type for m in obj.modifiers],
    }
    if len(mesh.vertices):
        coordinates = array("f", bytes(12 * len(mesh.vertices)))
        mesh.vertices.foreach_get("co", coordinates)
        low = Vector([min(coordinates[axis::3]) for axis in range(3)])
        high = Vector([max(coordinates[axis::3]) for axis in range(3)])
        # Every transform here is a rotation by quarter turns: the box's corners stay corners.
        corners = [
            world @ Vector((x, y, z))
            for x in (low.x, high.x)
            for y in (low.y, high.y)
            for z in (low.z, high.z)
        ]
        facts["bbox_min"] = [min(c[i] for c in corners) for i in range(3)]
        facts["bbox_max"] = [max(c[i] for c in corners) for i in range(3)]
    attribute = mesh.color_attributes[0] if mesh.color_attributes else None
    if attribute is not None and attribute.domain == "POINT":
        step = max(1, len(mesh.vertices) // 50)
        facts["sample_colors"] = [
            [i, *list(attribute.data[i].color)[:3]] for i in range(0, len(mesh.vertices), step)
        ]
    camera = scene.camera
    if mesh.uv_layers:
        uv_layer = mesh.uv_layers[0]
        vertex_uv = {}
        part_u, part_v = spec_photo_part(obj.name)
        for loop in mesh.loops:  # the photo's part of the texture, as photo coordinates
            u, v = uv_layer.data[loop.index].uv
            if u <= part_u + 1e-6 and 1.0 - v <= part_v + 1e-6:  # not the layer's strip
                vertex_uv.setdefault(loop.vertex_index, (u / part_u, 1.0 - (1.0 - v) / part_v))
        top = [(world @ mesh.vertices[i].co).z for i, uv in vertex_uv.items() if uv[1] > 0.9]
        bottom = [(world @ mesh.vertices[i].co).z for i, uv in vertex_uv.items() if uv[1] < 0.1]
        facts["top_mean_z"] = sum(top) / len(top) if top else None
        facts["bottom_mean_z"] = sum(bottom) / len(bottom) if bottom else None
        if camera is not None:
            error = 0.0
            for index in sample_indices(len(mesh.vertices)):
                if index not in vertex_uv:
                    continue
                seen = world_to_camera_view(scene, camera, world @ mesh.vertices[index].co)
                uv = vertex_uv[index]
                error = max(error, abs(seen.x - uv[0]), abs(seen.y - uv[1]))
            facts["projection_vs_uv_max_error"] = error
    cols = rows.get(obj.name)
    if cols:
        count = len(mesh.vertices)
        height = count // cols
        first = [(world @ mesh.vertices[i].co).z for i in range(cols)]
        last = [(world @ mesh.vertices[i].co).z for i in range(count - cols, count)]
        facts["first_row_mean_z"] = sum(first) / cols
        facts["last_row_mean_z"] = sum(last) / cols
        if camera is not None:
            error = 0.0
            for index in sample_indices(count):
                row, col = divmod(index, cols)
                seen = world_to_camera_view(scene, camera, world @ mesh.vertices[index].co)
                expected = ((col + 0.5) / cols, 1.0 - (row + 0.5) / height)
                error = max(error, abs(seen.x - expected[0]), abs(seen.y - expected[1]))
            facts["projection_vs_grid_max_error"] = error
    return facts


PHOTO_PARTS: dict = {}
"""By object name: the (u, v) share of its texture that is the photo (the rest: the guessed
layer's strip, whose vertices stand for no pixel of the photo)."""


def spec_photo_part(name: str) -> tuple[float, float]:
    """The photo's share of an object's texture, (1, 1) when it is the photo alone."""
    part = PHOTO_PARTS.get(name, (1.0, 1.0))
    return float(part[0]), float(part[1])


def overlay_error(grid, points, cols: int) -> float:
    """Largest distance between a grid-mesh vertex and the cloud's point of the same pixel."""
    mesh, cloud = grid.data, points.data
    rows = len(cloud.vertices) // cols
    uv_layer = mesh.uv_layers[0]
    part_u, part_v = spec_photo_part(grid.name)
    error = 0.0
    for index in sample_indices(len(mesh.loops)):
        loop = mesh.loops[index]
        u, v = uv_layer.data[loop.index].uv
        if u > part_u + 1e-6 or 1.0 - v > part_v + 1e-6:
            continue  # a vertex of the guessed layer: no pixel of the cloud
        u, v = u / part_u, 1.0 - (1.0 - v) / part_v
        col, row = round(u * cols - 0.5), round((1.0 - v) * rows - 0.5)
        if abs(u * cols - 0.5 - col) > 0.01 or abs((1.0 - v) * rows - 0.5 - row) > 0.01:
            continue  # not at a pixel's centre: the rim on the photo's edge, no pixel either
        here = grid.matrix_world @ mesh.vertices[loop.vertex_index].co
        there = points.matrix_world @ cloud.vertices[row * cols + col].co
        error = max(error, (here - there).length)
    return error


def evaluated_facts(obj, depsgraph) -> dict:
    evaluated = obj.evaluated_get(depsgraph)
    geometry = evaluated.evaluated_geometry()
    facts = {}
    cloud = geometry.pointcloud
    if cloud is not None:
        radii = array("f", bytes(4 * len(cloud.points)))
        cloud.attributes["radius"].data.foreach_get("value", radii)
        facts["points"] = len(cloud.points)
        facts["point_attributes"] = sorted(a.name for a in cloud.attributes)
        facts["point_materials"] = [m.name for m in cloud.materials if m is not None]
        facts["radius_min"] = min(radii) if radii else None
        facts["radius_max"] = max(radii) if radii else None
    mesh = geometry.mesh
    facts["mesh_vertices"] = len(mesh.vertices) if mesh is not None else 0
    return facts


def camera_facts(scene) -> dict | None:
    camera = scene.camera
    if camera is None:
        return None
    frame = camera.data.view_frame(scene=scene)
    distance = -frame[0].z
    xs = [corner.x / distance for corner in frame]
    ys = [corner.y / distance for corner in frame]
    location = camera.matrix_world.translation
    rotation = camera.matrix_world.to_3x3()
    forward = rotation @ Vector((0.0, 0.0, -1.0))
    up = rotation @ Vector((0.0, 1.0, 0.0))
    return {
        "name": camera.name,
        "hfov_deg": math.degrees(2.0 * math.atan((max(xs) - min(xs)) / 2.0)),
        "vfov_deg": math.degrees(2.0 * math.atan((max(ys) - min(ys)) / 2.0)),
        "center_tan": [(max(xs) + min(xs)) / 2.0, (max(ys) + min(ys)) / 2.0],
        "location": list(location),
        "forward": list(forward),
        "up": list(up),
        "sensor_fit": camera.data.sensor_fit,
        "tag": camera.get("depth2mesh_sidecar"),
    }


def collect(spec: dict, module: str) -> dict:
    scene = bpy.context.scene
    depsgraph = bpy.context.evaluated_depsgraph_get()
    rows = spec.get("rows", {})
    PHOTO_PARTS.update(spec.get("photo_parts", {}))
    objects = {}
    for obj in bpy.data.objects:
        entry = {
            "type": obj.type,
            "materials": [],
            "properties": {
                key: obj[key]
                for key in obj.keys()  # noqa: SIM118 (bpy objects give their keys only so)
                if key.startswith("depth2mesh_")
            },
        }
        for slot in obj.material_slots:
            entry["materials"].append(
                {
                    "name": slot.material.name if slot.material else None,
                    "base_color": base_color_sources(slot.material),
                }
            )
        if obj.type == "MESH":
            entry.update(mesh_facts(obj, scene, rows))
            entry["evaluated"] = evaluated_facts(obj, depsgraph)
            for modifier in obj.modifiers:
                if modifier.type == "NODES" and modifier.node_group is not None:
                    entry["node_group"] = sorted(n.bl_idname for n in modifier.node_group.nodes)
        objects[obj.name] = entry
    overlay = spec.get("overlay")
    overlay_max = None
    if overlay:
        objects_by_name = bpy.data.objects
        overlay_max = overlay_error(
            objects_by_name[overlay["grid"]], objects_by_name[overlay["points"]], overlay["cols"]
        )
    return {
        "overlay_max_error": overlay_max,
        "blender": bpy.app.version_string,
        "addon_module": module,
        "addon_enabled": module in bpy.context.preferences.addons,
        "objects": objects,
        "cameras": [obj.name for obj in bpy.data.objects if obj.type == "CAMERA"],
        "camera": camera_facts(scene),
        "resolution": [scene.render.resolution_x, scene.render.resolution_y],
        "resolution_percentage": scene.render.resolution_percentage,
        "import_menu_has_entries": menu_has_entries(),
        "file_handler": file_handler_facts(),
    }


def file_handler_facts() -> dict | None:
    handler = getattr(bpy.types, "IMPORT_SCENE_FH_depth2mesh", None)
    if handler is None:
        return None
    return {
        "operator": handler.bl_import_operator,
        "extensions": handler.bl_file_extensions,
    }


def menu_has_entries() -> bool:
    functions = getattr(bpy.types.TOPBAR_MT_file_import, "_dyn_ui_initialize", lambda: [])()
    return any(getattr(f, "__name__", "") == "menu_import" for f in functions)


def main() -> None:
    with open(sys.argv[-1], encoding="utf-8") as handle:
        spec = json.load(handle)
    module = enable_addon(spec["addon"])
    preferences = bpy.context.preferences.addons[module].preferences
    for key, value in spec.get("preferences", {}).items():
        setattr(preferences, key, value)
    clear_scene()
    actions = [run_action({"module": module, **action}) for action in spec.get("actions", [])]
    facts = collect(spec, module)
    facts["actions"] = actions
    print("DEPTH2MESH_FACTS " + json.dumps(facts), flush=True)


if __name__ == "__main__":
    try:
        main()
    except Exception:
        traceback.print_exc()
        sys.exit(1)
