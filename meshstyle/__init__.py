"""meshstyle: neural style transfer for 3D mesh textures and 2D images.

One engine: a texture is seen through precomputed views, rendered with ``grid_sample``, encoded by
VGG, compared with style and content targets, and optimized. A 2D image is the special case of one
identity view.

Public API (the CLI's commands, with the same options)::

    from meshstyle import stylize_mesh, stylize_image, synthesize_texture, reconstruct_content, stylize_batch
    from meshstyle import TexturedMesh, MeshOptions, EngineOptions
"""

__version__ = "0.1.0"

from .batch import BatchResult, stylize_batch  # noqa: E402
from .core.errors import MeshstyleError  # noqa: E402
from .engine.options import EngineOptions  # noqa: E402
from .mesh.textured import TexturedMesh  # noqa: E402
from .stylize.image import ImageResult, reconstruct_content, stylize_image, synthesize_texture  # noqa: E402
from .stylize.mesh import MeshOptions, MeshResult, stylize_mesh  # noqa: E402

__all__ = ["BatchResult", "EngineOptions", "ImageResult", "MeshOptions", "MeshResult", "MeshstyleError",
           "TexturedMesh", "reconstruct_content", "stylize_batch", "stylize_image", "stylize_mesh",
           "synthesize_texture", "__version__"]
