"""The engine: encoders (VGG features), style statistics and losses, the objective, texture
parameterizations, the optimizer loop and colour transfer. Knows nothing of meshes: it sees renders
(N, 3, H, W) and per-pixel weights. See docs/ARCHITECTURE.md."""
