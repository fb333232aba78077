"""Render the README's Blender pictures: a real depth2mesh result imported with the add-on.

Run inside Blender (the ``bpy`` module), after ``depth2mesh convert`` wrote the result::

    BLENDER_USER_SCRIPTS=$(mktemp -d) .venv-blender/bin/python tests/blender_docs_renders.py \
        OUT_DIR/rgb_00065 docs/images

The first argument is the result's stem (``<stem>.glb``, ``<stem>_points.ply`` beside it);
the add-on is enabled from ``blender_addon/`` as a legacy add-on, exactly as the tests do.
Cycles renders on the CPU: about a minute in all.
"""

from __future__ import annotations

import os
import sys

import bpy
from mathutils import Vector

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "tests"))

from blender_facts import clear_scene, enable_addon  # noqa: E402 (needs the path above)


def setup_render(scene, width: int, height: int, samples: int) -> None:
    """Cycles on the CPU; even white light from the world, a dark grey background."""
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = True
    scene.render.resolution_x = width
    scene.render.resolution_y = height
    scene.render.resolution_percentage = 100
    scene.render.film_transparent = False
    scene.view_settings.view_transform = "Standard"
    world = bpy.data.worlds.new("even light")
    world.use_nodes = True
    nodes, links = world.node_tree.nodes, world.node_tree.links
    light = nodes["Background"]
    light.inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
    seen = nodes.new("ShaderNodeBackground")
    seen.inputs["Color"].default_value = (0.05, 0.05, 0.05, 1.0)
    path = nodes.new("ShaderNodeLightPath")
    mix = nodes.new("ShaderNodeMixShader")
    links.new(path.outputs["Is Camera Ray"], mix.inputs["Fac"])
    links.new(light.outputs["Background"], mix.inputs[1])
    links.new(seen.outputs["Background"], mix.inputs[2])
    links.new(mix.outputs["Shader"], nodes["World Output"].inputs["Surface"])
    scene.world = world


def oblique_camera(scene, location, target, lens: float = 28.0):
    """A camera at ``location`` looking at ``target`` (Blender axes, metres)."""
    data = bpy.data.cameras.new("oblique view")
    data.lens = lens
    data.clip_start = 0.05
    camera = bpy.data.objects.new("oblique view", data)
    scene.collection.objects.link(camera)
    camera.location = location
    direction = Vector(target) - Vector(location)
    camera.rotation_euler = direction.to_track_quat("-Z", "Y").to_euler()
    return camera


def render(scene, camera, path: str) -> None:
    scene.camera = camera
    scene.render.filepath = path
    bpy.ops.render.render(write_still=True)


def show_only(names: set[str]) -> None:
    for obj in bpy.data.objects:
        if obj.type == "MESH":
            obj.hide_render = obj.name not in names


def main() -> None:
    stem, out_dir = sys.argv[-2], sys.argv[-1]
    os.makedirs(out_dir, exist_ok=True)
    enable_addon({"mode": "legacy", "source": os.path.join(REPO, "blender_addon")})
    clear_scene()
    base = os.path.basename(stem)
    for path in (stem + ".glb", stem + "_points.ply"):
        result = bpy.ops.import_scene.depth2mesh_result(filepath=path)
        if "FINISHED" not in result:
            raise SystemExit(f"import of {path} returned {result}")
    scene = bpy.context.scene
    photo_camera = scene.camera
    width, height = scene.render.resolution_x, scene.render.resolution_y

    # 1. Through the photo's camera that the add-on set up: the mesh looks like the photo.
    setup_render(scene, width, height, samples=16)
    show_only({base})
    render(scene, photo_camera, os.path.join(out_dir, "blender_camera_view.png"))

    # 2. and 3. From the right of and above the photo's camera: the mesh, then the points.
    side = oblique_camera(scene, location=(1.6, -0.3, 1.1), target=(0.5, 3.0, 0.2), lens=24.0)
    setup_render(scene, 800, 600, samples=16)
    render(scene, side, os.path.join(out_dir, "blender_oblique_mesh.png"))
    show_only({base + "_points"})
    render(scene, side, os.path.join(out_dir, "blender_oblique_points.png"))


if __name__ == "__main__":
    main()
