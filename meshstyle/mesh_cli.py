def add_mesh_commands(sub, fmt):
    pass
