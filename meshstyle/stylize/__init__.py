"""The jobs that join the engine and the mesh layer: :mod:`.image` (style transfer, texture synthesis,
content reconstruction on one identity view) and :mod:`.mesh` (the multi-view objective and
``stylize_mesh``). See docs/ARCHITECTURE.md."""
