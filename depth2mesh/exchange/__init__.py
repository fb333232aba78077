"""Files in and out: photos, depth pictures, textures, glTF, PLY and OBJ."""
