"""The front ends: the command line, the web page and the Open3D preview."""
