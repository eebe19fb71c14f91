"""The lowest layer, shared by the engine and the mesh layer: user errors, atomic writes, image files,
the UV convention, views (:class:`~meshstyle.core.views.ViewStack`) and rendering through them, and
the option table. Imports nothing else of meshstyle. See docs/ARCHITECTURE.md."""
