# SPDX-License-Identifier: GPL-3.0-or-later
"""Bring depth2mesh results into the scene: meshes, coloured points, the photo's camera.

Axes: depth2mesh writes glTF's axes (Y up, the camera at the origin looking down -Z).
Blender's glTF importer turns them into Blender's (Z up, the camera looking down +Y); PLY
files are imported with the same conversion, ``(x, y, z) -> (x, -z, y)``, so every file of a
result overlays the others and the camera.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

import bpy

from . import sidecar
from .sidecar import ResultError

CAMERA_TAG = "depth2mesh_sidecar"
"""Custom property of a camera made for a result: the sidecar's absolute path."""

POINTS_MODIFIER = "depth2mesh points"


@dataclass
class ImportReport:
    """What one import added."""

    objects: list = field(default_factory=list)
    camera: object | None = None
    warnings: list[str] = field(default_factory=list)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[-1].strip() if text else type(error).__name__


def _call_importer(operator, path: str, **options) -> list:
    """Run one of Blender's importers; return the objects it created."""
    before = {obj.as_pointer() for obj in bpy.data.objects}
    try:
        result = operator(filepath=path, **options)
    except RuntimeError as error:
        raise ResultError(f"{path}: Blender's importer failed: {_first_line(error)}") from None
    if "FINISHED" not in result:
        raise ResultError(f"{path}: Blender's importer did not finish ({', '.join(result)})")
    return [obj for obj in bpy.data.objects if obj.as_pointer() not in before]


def _principled(material):
    for node in material.node_tree.nodes:
        if node.type == "BSDF_PRINCIPLED":
            return node
    return None


def _base_color_is_linked(material) -> bool:
    if material is None or not material.use_nodes or material.node_tree is None:
        return False
    shader = _principled(material)
    return shader is not None and shader.inputs["Base Color"].is_linked


def _colour_material(name: str, attribute: str, *, on_points: bool):
    """A Principled material whose base colour is the geometry's colour attribute.

    Meshes read it with a Color Attribute node; point clouds with an Attribute node (the
    colour attribute is carried onto the points by Mesh to Points).
    """
    material = bpy.data.materials.new(name)
    material.use_nodes = True
    nodes = material.node_tree.nodes
    shader = _principled(material)
    if shader is None:
        shader = nodes.new("ShaderNodeBsdfPrincipled")
    shader.inputs["Metallic"].default_value = 0.0
    shader.inputs["Roughness"].default_value = 1.0
    if on_points:
        reader = nodes.new("ShaderNodeAttribute")
        reader.attribute_type = "GEOMETRY"
        reader.attribute_name = attribute
        output = reader.outputs["Color"]
    else:
        reader = nodes.new("ShaderNodeVertexColor")
        reader.layer_name = attribute
        output = reader.outputs["Color"]
    reader.location = (shader.location.x - 300, shader.location.y)
    material.node_tree.links.new(output, shader.inputs["Base Color"])
    return material


def _colour_attribute_name(mesh) -> str | None:
    attributes = mesh.color_attributes
    if len(attributes) == 0:
        return None
    active = attributes.active_color
    return active.name if active is not None else attributes[0].name


def show_vertex_colours(obj) -> bool:
    """Give a mesh with colour attributes a material showing them, unless one does already.

    Returns:
        True when a material was added.
    """
    if obj.type != "MESH":
        return False
    attribute = _colour_attribute_name(obj.data)
    if attribute is None:
        return False
    if any(_base_color_is_linked(slot.material) for slot in obj.material_slots):
        return False
    material = _colour_material(f"{obj.name} colours", attribute, on_points=False)
    obj.data.materials.clear()
    obj.data.materials.append(material)
    return True


def _points_node_group(name: str, material, radius_per_metre: float):
    """Geometry Nodes: Mesh to Points (radius growing with distance) and Set Material."""
    group = bpy.data.node_groups.new(name, "GeometryNodeTree")
    interface = group.interface
    interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    size = interface.new_socket("Point Size", in_out="INPUT", socket_type="NodeSocketFloat")
    size.description = "Point radius per metre of distance from the photo's camera"
    size.default_value = radius_per_metre
    size.min_value = 0.0
    interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")

    nodes, links = group.nodes, group.links
    group_in = nodes.new("NodeGroupInput")
    group_out = nodes.new("NodeGroupOutput")
    position = nodes.new("GeometryNodeInputPosition")
    distance = nodes.new("ShaderNodeVectorMath")
    distance.operation = "LENGTH"
    radius = nodes.new("ShaderNodeMath")
    radius.operation = "MULTIPLY"
    to_points = nodes.new("GeometryNodeMeshToPoints")
    to_points.mode = "VERTICES"
    set_material = nodes.new("GeometryNodeSetMaterial")
    set_material.inputs["Material"].default_value = material

    for column, node in enumerate(
        (group_in, position, distance, radius, to_points, set_material, group_out)
    ):
        node.location = (200 * column - 600, 0 if node in (group_in, to_points) else -150)

    links.new(position.outputs["Position"], distance.inputs[0])
    links.new(distance.outputs["Value"], radius.inputs[0])
    links.new(group_in.outputs["Point Size"], radius.inputs[1])
    links.new(group_in.outputs["Geometry"], to_points.inputs["Mesh"])
    links.new(radius.outputs["Value"], to_points.inputs["Radius"])
    links.new(to_points.outputs["Points"], set_material.inputs["Geometry"])
    links.new(set_material.outputs["Geometry"], group_out.inputs["Geometry"])
    return group


def show_as_points(obj, radius_per_metre: float) -> None:
    """Render a vertex-only mesh as coloured points (Geometry Nodes + an Attribute material).

    The position is in object space, centred on the photo's camera, so the radius grows
    with distance like the spacing of the points does.
    """
    attribute = _colour_attribute_name(obj.data)
    material = _colour_material(f"{obj.name} colours", attribute or "Col", on_points=True)
    obj.data.materials.clear()
    obj.data.materials.append(material)
    group = _points_node_group(f"{obj.name} points", material, radius_per_metre)
    modifier = obj.modifiers.new(POINTS_MODIFIER, "NODES")
    modifier.node_group = group


def _tagged_camera(json_path: str):
    for obj in bpy.data.objects:
        if obj.type == "CAMERA" and obj.get(CAMERA_TAG) == json_path:
            return obj
    return None


def _remove_object(obj) -> None:
    data = obj.data
    bpy.data.objects.remove(obj, do_unlink=True)
    if data is not None and data.users == 0 and isinstance(data, bpy.types.Camera):
        bpy.data.cameras.remove(data)


def _new_camera(context, name: str):
    data = bpy.data.cameras.new(name)
    obj = bpy.data.objects.new(name, data)
    context.collection.objects.link(obj)
    return obj


def _configure_camera(camera, intrinsics: sidecar.Intrinsics, depth: dict | None, scene) -> None:
    """Put the camera at the origin with the photo's view, and frame the render like it."""
    settings = sidecar.camera_settings(intrinsics)
    camera.location = (0.0, 0.0, 0.0)
    camera.rotation_mode = "XYZ"
    camera.rotation_euler = (math.pi / 2.0, 0.0, 0.0)  # looking down +Y, Z up
    camera.scale = (1.0, 1.0, 1.0)
    data = camera.data
    data.type = "PERSP"
    data.lens_unit = "MILLIMETERS"
    data.sensor_fit = settings.sensor_fit
    data.sensor_width = settings.sensor_width
    data.lens = settings.lens
    data.shift_x = settings.shift_x
    data.shift_y = settings.shift_y
    near = far = None
    if isinstance(depth, dict):  # a metric model's depth reaches its max depth at most
        near, far = depth.get("near_m"), depth.get("far_m", depth.get("max_depth_m"))
    if isinstance(near, (int, float)) and near > 0:
        data.clip_start = max(0.001, 0.1 * float(near))
    if isinstance(far, (int, float)) and far > 0:
        data.clip_end = max(100.0, 10.0 * float(far))
    render = scene.render
    render.resolution_x = settings.resolution_x
    render.resolution_y = settings.resolution_y
    render.resolution_percentage = 100
    render.pixel_aspect_x = 1.0
    render.pixel_aspect_y = 1.0


def _set_up_camera(context, report: ImportReport, new_cameras: list, data, json_path, stem):
    """Use one camera for the result: the GLB's, one made before, or a new one."""
    scene = context.scene
    if data is None:
        if new_cameras:  # a GLB without its sidecar: keep the importer's camera as it is
            report.camera = new_cameras[0]
            scene.camera = new_cameras[0]
        return
    try:
        intrinsics = sidecar.sidecar_intrinsics(data)
    except ResultError as error:
        report.warnings.append(f"{json_path}: {error}; no camera set up")
        return
    camera = _tagged_camera(json_path)
    if camera is not None:
        for extra in new_cameras:  # the same result imported again: keep one camera
            report.objects.remove(extra)
            _remove_object(extra)
    elif new_cameras:
        camera = new_cameras[0]
        for extra in new_cameras[1:]:
            report.objects.remove(extra)
            _remove_object(extra)
    else:
        camera = _new_camera(context, f"{stem} camera")
        report.objects.append(camera)
    camera[CAMERA_TAG] = json_path
    _configure_camera(camera, intrinsics, data.get("depth"), scene)
    scene.camera = camera
    report.camera = camera


def import_result(context, filepath: str, *, use_camera: bool = True, point_size: float = 1.0):
    """Import one depth2mesh file (GLB mesh, PLY point cloud or PLY mesh).

    Args:
        context: Blender's context (its scene and collection receive the objects).
        filepath: The ``.glb`` or ``.ply`` file.
        use_camera: Set up the photo's camera from the sidecar, when there is one.
        point_size: Multiplier of the automatic point radius of point clouds.

    Returns:
        An ImportReport.

    Raises:
        ResultError: The file is missing, of another kind, or Blender could not import it.
    """
    path = os.path.abspath(bpy.path.abspath(filepath))
    if not os.path.isfile(path):
        raise ResultError(f"{path}: no such file")
    name = os.path.basename(path)
    stem, extension = os.path.splitext(name)
    extension = extension.lower()

    report = ImportReport()
    json_path = sidecar.sidecar_path(path)
    data = None
    if json_path is not None:
        try:
            data = sidecar.read_sidecar(json_path)
        except ResultError as error:
            report.warnings.append(str(error))

    if extension in (".glb", ".gltf"):
        created = _call_importer(bpy.ops.import_scene.gltf, path)
        for obj in created:
            if obj.type == "MESH":
                show_vertex_colours(obj)
    elif extension == ".ply":
        info = sidecar.read_ply_header(path)
        created = _call_importer(
            bpy.ops.wm.ply_import,
            path,
            forward_axis="NEGATIVE_Z",
            up_axis="Y",
            import_colors="SRGB",
            merge_verts=False,
        )
        for obj in created:
            if obj.type != "MESH":
                continue
            if info.is_point_cloud:
                radius = sidecar.point_radius_per_metre(data, len(obj.data.vertices))
                show_as_points(obj, radius * point_size)
            else:
                show_vertex_colours(obj)
    else:
        raise ResultError(f"{path}: expected a .glb or .ply file written by depth2mesh")

    report.objects = list(created)
    for obj in created:  # which model made it, where its sidecar is (Object Properties)
        if obj.type != "CAMERA":
            for key, value in sidecar.result_properties(data, json_path).items():
                obj[key] = value
    new_cameras = [obj for obj in created if obj.type == "CAMERA"]
    if use_camera:
        result_stem = os.path.splitext(os.path.basename(json_path))[0] if json_path else stem
        _set_up_camera(context, report, new_cameras, data, json_path, result_stem)
    return report
