"""Geometry on pixel grids: the camera, disparity to depth, points, occlusion edges, meshes."""
