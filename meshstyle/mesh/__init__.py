"""The mesh layer: textured-mesh IO and export, UV unwrap and padding, cameras, ray casting into views,
angle/depth weights and previews. Knows nothing of VGG or losses. See docs/ARCHITECTURE.md."""
