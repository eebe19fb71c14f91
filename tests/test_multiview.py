"""Depth levels, StyleMesh's gradient weighting, the multi-view loss module and full-resolution export."""

import math

import numpy as np
import pytest
import torch
import trimesh

from conftest import camera, quad, textured
from meshstyle.engine import vgg16_onnx
from meshstyle.engine.objective import Objective
from meshstyle.engine.options import EngineOptions
from meshstyle.engine.runplan import make_plan
from meshstyle.mesh.raycast import _tiles, compute_level_views, tile_cells
from meshstyle.mesh.textured import TexturedMesh
from meshstyle.mesh.weights import (
    angle_weight,
    centred_reference,
    continuous_level,
    level_count,
    level_shares,
    level_weight,
)
from meshstyle.stylize.mesh import MultiViewLoss, export_texture, render_stages, stylize_mesh

DEPTH_AWARE = True
TINY = dict(views=2, resolution=48, depth_levels=2, batch_views=2, iterations=4, vgg_weights="random",
            texture_size=64, seed=0)


def test_reference_depth_moves_the_bulk_of_the_surface_to_level_centres():
    # 5% of the pixels at depth 1 (the near percentile), the rest at 1.5 and 3 (the same phase, an octave
    # apart): the reference moves down by 0.41 octave (the circular mean of the phases, hand-computed:
    # atan2(0.95 sin a, 0.95 cos a + 0.05) / 2 pi with a = 2 pi log2(1.5)) so that 1.5 and 3 sit at c = 1, 2
    depths = torch.tensor([1.0] * 5 + [1.5] * 50 + [3.0] * 45 + [0.0] * 20)
    a = 2 * math.pi * math.log2(1.5)
    mu = math.atan2(0.95 * math.sin(a), 0.95 * math.cos(a) + 0.05) / (2 * math.pi)
    ref = centred_reference(depths, 1.0)
    assert ref == pytest.approx(2 ** mu, rel=1e-4) and mu == pytest.approx(-0.41, abs=0.01)
    c = continuous_level(torch.tensor([1.0, 1.5, 3.0]), ref, 3)
    assert c.tolist() == pytest.approx([-mu, 1 - 0.005, 2 - 0.005], abs=0.01)
    # depths all within a sliver of an octave stay at the near percentile's level
    assert centred_reference(torch.tensor([1.0, 1.01, 1.02, 1.03]), 0.0) == pytest.approx(1.015, rel=0.01)


def test_soft_levels_sum_to_one_and_double_distance_is_one_level_finer():
    depth = torch.tensor([0.0, 1.0, 1.5, 2.0, 3.0, 8.0])
    c = continuous_level(depth, 1.0, 3)
    assert torch.allclose(c, torch.tensor([0.0, 0.0, math.log2(1.5), 1.0, math.log2(3.0), 2.0]))
    w = torch.stack([level_weight(depth, 1.0, k, 3) for k in range(3)])
    assert torch.allclose(w[:, 1:].sum(0), torch.ones(5)) and float(w[:, 0].sum()) == 0.0
    assert torch.allclose(w[:, 2], torch.tensor([1 - math.log2(1.5), math.log2(1.5), 0.0]))  # blended 0/1
    assert level_count(torch.tensor([1.0, 1.1, 1.4]), 1.0, 3) == 1       # < 1/2 octave: one level
    assert level_count(torch.tensor([1.0, 1.1, 1.5]), 1.0, 3) == 2
    assert level_count(torch.tensor([1.0, 1.9, 2.0]), 1.0, 3) == 2
    assert level_shares(depth[None], torch.ones(1, 6), 1.0, 3) == pytest.approx([(1 + 1 - math.log2(1.5)) / 6,
                                                                                (math.log2(1.5) + 1 + 2 - math.log2(3)) / 6,
                                                                                (math.log2(3) - 1 + 1) / 6])
    assert torch.equal(angle_weight(torch.tensor([0.5, 0.49, 1.0]), 60.0), torch.tensor([0.5, 0.0, 1.0]))


def test_plane_at_two_distances_gets_levels_one_octave_apart_and_crops():
    mesh = TexturedMesh(quad(size=20.0))
    views, plan = compute_level_views(mesh, [camera((0, 0, 2.0)), camera((0, 0, 4.0))], 64, depth_levels=3,
                                      angle_threshold=89.0, depth_aware=DEPTH_AWARE)
    assert plan.levels == 2 and plan.base == 32 and plan.reference == pytest.approx(2.0, rel=0.1)
    near, far = views
    # the near view's centre is at level 0 (32 px), the far view's at level 1 (64 px); a level whose
    # only pixels are off-centre slivers is cropped to them
    assert near[0].level == 0 and near[0].frame == 32 and near[0].share > 0.9
    assert far[-1].level == 1 and far[-1].frame == 64 and far[-1].share > 0.9
    for lv in near + far:
        h, w = lv.weight.shape[-2:]
        assert (h, w) == (lv.window[2], lv.window[3]) and h <= lv.frame
        assert float(lv.weight.max()) > 0


def test_level_crops_hug_their_weighted_pixels():
    # a small square: the level-1 window, found on the level-0 map with a margin, is trimmed to the pixels
    # that carry weight, so no band of zero weight runs along an edge of the encoder's input
    mesh = TexturedMesh(quad(size=1.0))
    views, plan = compute_level_views(mesh, [camera((0.1, 0.05, 2.0)), camera((0.1, 0.05, 4.0))], 128,
                                      depth_levels=3, angle_threshold=89.0)
    assert plan.levels == 2
    for lv in views[0] + views[1]:
        pos = lv.weight[0, 0] > 0
        assert min(pos.shape) > 16
        assert bool(pos[0].any() and pos[-1].any() and pos[:, 0].any() and pos[:, -1].any()), lv.window


def _step() -> TexturedMesh:
    """Three unit squares in a row: one facing the camera on +z (UV u in [0, 0.3]), one turned 75 degrees
    (u in [0.35, 0.65]) and one facing the camera again, further back (u in [0.7, 1]), so the oblique face
    lies inside the crop of the two it joins."""
    a = math.radians(75)
    x, z = math.cos(a), -math.sin(a)
    v = np.array([[-1, -1, 0], [0, -1, 0], [0, 1, 0], [-1, 1, 0],
                  [0, -1, 0], [x, -1, z], [x, 1, z], [0, 1, 0],
                  [x, -1, z], [x + 1, -1, z], [x + 1, 1, z], [x, 1, z]], float)
    f = np.array([[0, 1, 2], [0, 2, 3], [4, 5, 6], [4, 6, 7], [8, 9, 10], [8, 10, 11]])
    uv = np.array([[0, 0], [0.3, 0], [0.3, 1], [0, 1], [0.35, 0], [0.65, 0], [0.65, 1], [0.35, 1],
                   [0.7, 0], [1, 0], [1, 1], [0.7, 1]], float)
    return TexturedMesh(textured(trimesh.Trimesh(v, f, process=False), uv, np.full((32, 32, 3), 128, np.uint8)))


def _objective(**kw):
    options = EngineOptions(vgg_weights="random", device="cpu", **kw)
    objective = Objective(make_plan(options, use_content=False))
    objective.set_style([torch.rand(3, 64, 64, generator=torch.Generator().manual_seed(1))], [1.0])
    return objective


def test_pixels_beyond_the_angle_threshold_receive_zero_gradient():
    views, _ = compute_level_views(_step(), [camera((0, 0, 5), target=(0.6, 0, 0))], 64, depth_levels=1)
    loss = MultiViewLoss(_objective(), views)
    texture = torch.rand(3, 32, 32, requires_grad=True)
    loss([texture], [0])["style"].backward()
    grad = texture.grad.abs().sum(0)
    assert float(grad[:, :9].sum()) > 0 and float(grad[:, 23:].sum()) > 0  # the faces seen head-on
    assert float(grad[:, 12:20].abs().max()) == 0.0               # the face seen at 75 degrees: exactly zero
    # weighting inside the Gram (no hook) lets deep features of mixed cells reach that face
    texture.grad = None
    MultiViewLoss(_objective(), views, weighting="gram")([texture], [0])["style"].backward()
    assert float(texture.grad.abs().sum(0)[:, 12:20].max()) > 0.0


def test_style_statistics_ignore_background_and_levels_are_weighted_by_share():
    mesh = TexturedMesh(quad(size=1.0))
    views, _ = compute_level_views(mesh, [camera((0, 0, 4))], 64, depth_levels=1)
    lv = views[0][0]
    assert lv.share == pytest.approx(1.0)
    objective = _objective()
    loss = MultiViewLoss(objective, views)
    cells = loss.cells[0][0]
    active = (lv.weight > 0).float()
    for layer, size in {"relu1_1": (64, 64), "relu3_1": (16, 16), "relu5_1": (4, 4)}.items():
        mask = cells.at(size)  # no counted cell covers a pixel of zero weight
        h, w = mask.shape[-2:]
        covered = torch.nn.functional.adaptive_avg_pool2d(active, (h, w))
        assert bool((covered[mask > 0] == 1).all()), layer
    texture = torch.rand(3, 16, 16)
    base = loss([texture], [0])["style"]
    views[0][0] = type(lv)(lv.view, lv.weight, lv.level, lv.window, lv.frame, 0.25)
    assert float(MultiViewLoss(objective, views)([texture], [0])["style"]) == pytest.approx(0.25 * float(base))


def _stripe_period(texture: np.ndarray) -> tuple[float, float]:
    """Period in texels of the dominant horizontal frequency of a (H, W, 3) texture, and its strength.

    Each row, mean removed and Hann-windowed, is zero-padded to 1024 samples (frequency steps of 1/1024
    cycle per texel, so a period of 12 texels is resolved to about 0.15 texel); the period is 1 / the
    frequency of the highest mean power between 2 cycles per window and Nyquist, and the strength the share
    of that power within +-15 % of the peak frequency (about 0.5 for the stripes here, near 0.1 for noise).
    """
    gray = texture.astype(np.float64).mean(2)
    gray -= gray.mean(1, keepdims=True)
    width = gray.shape[1]
    power = (np.abs(np.fft.rfft(gray * np.hanning(width), n=1024, axis=1)) ** 2).mean(0)
    freqs = np.fft.rfftfreq(1024)
    valid = freqs >= 2.0 / width
    peak = freqs[np.flatnonzero(valid)[np.argmax(power[valid])]]
    band = valid & (np.abs(freqs - peak) <= 0.15 * peak)
    return float(1.0 / peak), float(power[band].sum() / power[valid].sum())


ENCODER_SETTINGS = {"mobilenetv2-magenta": {"encoder": "mobilenetv2-magenta"},
                    "vgg16-nnfm": {"encoder": "vgg16", "style_loss": "nnfm", "style_layers": "relu1_1,relu2_1,relu3_1"}}


@pytest.mark.parametrize("encoder", ["mobilenetv2-magenta",
                                     pytest.param("vgg16-nnfm", marks=pytest.mark.skipif(
                                         not vgg16_onnx.available(), reason="needs meshstyle[pretrained]"))])
@pytest.mark.parametrize("depth_aware", [True, False])
def test_plane_at_distance_d_and_2d_gets_the_same_world_period(tmp_path, depth_aware, encoder):
    """Two equal squares, one seen at distance D and one at 2D, each filling its own UV half: after
    synthesis with vertical stripes the texture period is the same on both (world units, +-15%).
    Without depth awareness the far square's stripes come out wider in world units (the control: the
    test can fail). The pretrained MobileNetV2 and ImageNet VGG-16 draw clean stripes in 150 steps (random
    VGG-19 draws blobs without a period); float32 so that the figures do not depend on the CPU. VGG-16 runs
    with the nearest-neighbour loss on relu1_1..relu3_1: with the Gram loss (either layer set) it draws
    irregular stripes on one half in 150-300 steps (period 18 vs 12.6 texels, or no stripes at all)."""
    grey = np.full((128, 128, 3), 128, np.uint8)
    left, right = quad(size=1.0, texture=grey), quad(size=1.0, texture=grey)
    for part, u0 in ((left, 0.0), (right, 0.5)):
        part.visual.uv = np.array([[u0 + 0.02, 0.02], [u0 + 0.48, 0.02], [u0 + 0.48, 0.98], [u0 + 0.02, 0.98]])
    right.apply_translation([10.0, 0, 0])
    both = trimesh.util.concatenate([left, right])
    both.visual = trimesh.visual.TextureVisuals(uv=np.concatenate([left.visual.uv, right.visual.uv]),
                                                image=left.visual.material.image)
    mesh = TexturedMesh(both)
    stripes = torch.zeros(3, 64, 64)
    stripes[:, :, (torch.arange(64) // 4) % 2 == 0] = 1.0   # period 8 px
    from meshstyle.stylize import mesh as job

    cams = [camera((0, 0, 2.6)), camera((10, 0, 5.2), target=(10, 0, 0))]
    orig = job.orbit_cameras
    job.orbit_cameras = lambda *a, **k: cams
    try:
        result = stylize_mesh(mesh, stripes, views=2, resolution=96, depth_levels=2, batch_views=2, iterations=150,
                              texture_size=128, content_weight=0.0, optimizer="adam", **ENCODER_SETTINGS[encoder],
                              levels=1, pyramid_weight=0.0, style_scales=(1.0,), style_size=64, angle_threshold=89.0,
                              depth_aware=depth_aware, precision="fp32")
    finally:
        job.orbit_cameras = orig
    tex = result.mesh.texture(result.mesh.stylizable[0])
    (p_near, s_near), (p_far, s_far) = _stripe_period(tex[8:120, 8:56]), _stripe_period(tex[8:120, 72:120])
    # both halves hold stripes (measured 0.41-0.62 with the MobileNetV2, 0.35-0.53 with VGG-16 NNFM)
    assert min(s_near, s_far) > 0.3, (s_near, s_far)
    if depth_aware:  # measured 12.6 and 12.1 texels (MobileNetV2), 13.8 and 12.6 (VGG-16 NNFM)
        assert abs(p_near - p_far) <= 0.15 * p_near, (p_near, p_far)
    else:  # the far square is seen at half the size: twice the world period (measured 5.9 and 12.3; 7.9, 12.5)
        assert p_far >= 1.4 * p_near, (p_near, p_far)


def test_export_keeps_full_resolution_detail_where_style_left_it_unchanged():
    gen = torch.Generator().manual_seed(0)
    full = torch.rand(3, 2048, 2048, generator=gen)   # detail at the finest texel scale
    start = torch.nn.functional.interpolate(full[None], size=(512, 512), mode="bilinear", antialias=True)[0]
    current = start.clone()
    current[:, :, :200] = torch.rand(3, 512, 200, generator=gen)  # the style changed the left part only
    out = export_texture(full, start, current, np.ones((512, 512), bool)).astype(np.float64) / 255
    ref = full.permute(1, 2, 0).numpy()
    untouched = (slice(None), slice(1000, None))
    mse = np.mean((out[untouched] - ref[untouched]) ** 2)
    assert 10 * np.log10(1 / max(mse, 1e-12)) >= 40
    # the former export (bicubic upsampling of the working texture) loses that detail
    old = torch.nn.functional.interpolate(current[None], size=(2048, 2048), mode="bicubic")[0].clamp(0, 1)
    mse_old = np.mean((old.permute(1, 2, 0).numpy()[untouched] - ref[untouched]) ** 2)
    assert 10 * np.log10(1 / mse_old) < 20
    assert np.abs(out[:, :700] - ref[:, :700]).mean() > 0.1


def test_ema_changes_the_mesh_output(spot_path, style_path):
    plain = stylize_mesh(spot_path, style_path, **TINY)
    averaged = stylize_mesh(spot_path, style_path, **{**TINY, "ema": 0.8})
    a, b = (r.mesh.texture(r.mesh.stylizable[0]).astype(int) for r in (plain, averaged))
    assert a.shape == b.shape and np.abs(a - b).mean() > 0.2
    assert plain.history == averaged.history  # the iterates are the same; only the export differs


def test_tile_cells_cut_an_l_shape_and_keep_a_square_whole():
    ell = torch.zeros(20, 20, dtype=torch.bool)
    ell[2:6, 2:18] = True           # a bar 4 x 16 ...
    ell[6:18, 2:6] = True           # ... and a leg 12 x 4: one box of 16 x 16 = 256 px, two of 64 + 48
    assert sorted(tile_cells(ell, 4)) == [(2, 2, 6, 18), (6, 2, 18, 6)]
    assert tile_cells(ell, 1) == [(2, 2, 18, 18)]
    square = torch.zeros(20, 20, dtype=torch.bool)
    square[5:15, 5:15] = True
    assert tile_cells(square, 4) == [(5, 5, 15, 15)]
    assert tile_cells(torch.zeros(8, 8, dtype=torch.bool), 4) == []
    # the cut saves 256 - 112 = 144 px: made when one more encoder call costs fewer pixels, not when more
    assert len(tile_cells(ell, 4, min_saving=143)) == 2
    assert tile_cells(ell, 4, min_saving=145) == [(2, 2, 18, 18)]


def test_crop_tiles_encode_fewer_pixels_with_the_same_weights_and_shares():
    # two squares far apart: one crop spans the gap between them, two tiles do not
    left, right = quad(size=1.0), quad(size=1.0)
    left.apply_translation([-3.0, 0, 0])
    right.apply_translation([3.0, 0, 0])
    mesh = TexturedMesh(trimesh.util.concatenate([left, right]))
    cam = [camera((0, 0, 12))]
    (one,), _ = compute_level_views(mesh, cam, 256, depth_levels=1, max_tiles=1)
    (tiles,), _ = compute_level_views(mesh, cam, 256, depth_levels=1, max_tiles=4)
    assert len(one) == 1 and len(tiles) == 2
    fed_one, fed_tiles = one[0].weight.numel(), sum(lv.weight.numel() for lv in tiles)
    assert fed_tiles < 0.6 * fed_one, (fed_tiles, fed_one)
    # every weighted pixel is owned by exactly one tile: the tiles' weights add up to the single crop's
    assert sum(float(lv.weight.sum()) for lv in tiles) == pytest.approx(float(one[0].weight.sum()), rel=1e-6)
    assert sum(lv.share for lv in tiles) == pytest.approx(one[0].share)
    assert all(lv.share == pytest.approx(0.5, abs=0.02) for lv in tiles)


def test_every_weighted_pixel_belongs_to_exactly_one_tile_with_a_positive_share():
    gen = torch.Generator().manual_seed(0)
    for _ in range(200):  # sparse random maps: thin cells next to each other must keep their own pixels
        active = torch.rand(24, 24, generator=gen) < 0.3 * float(torch.rand(1, generator=gen))
        if not active.any():
            continue
        for max_tiles in (2, 4, 8):
            tiles = _tiles(active, max_tiles, 1)
            owned = sum(own for own, _ in tiles)
            assert float(owned.max()) == 1.0 and bool((owned[active] == 1).all())
            assert all(share > 0 for _, share in tiles)
            assert sum(share for _, share in tiles) == pytest.approx(1.0)


def test_render_stages_give_the_coarse_scales_a_third_of_the_steps():
    assert render_stages(300, 1) == [0]
    assert render_stages(300, 2) == [0, 100]
    assert render_stages(300, 3) == [0, 50, 100]
    assert render_stages(1, 2) == [0]          # too few steps for a coarse scale


def test_coarse_render_scale_renders_half_size_with_half_size_style(spot_path, style_path, monkeypatch):
    import meshstyle.stylize.mesh as stylize3d

    seen = []  # (step, frame sizes of the views, style image sizes) of every step's loss
    base = stylize3d._StageLoss.at

    def at(self, step):
        loss = base(self, step)
        stage = self.stages[self.index]
        seen.append((step, {lv.frame for per_view in loss.views for lv in per_view},
                     {img.shape[-1] for img in stage.styles}))
        return loss

    monkeypatch.setattr(stylize3d._StageLoss, "at", at)
    result = stylize_mesh(spot_path, style_path, **{**TINY, "resolution": 64, "iterations": 6, "render_scales": 2,
                                                     "style_scales": (1.0,)})
    assert len(result.history) == 6
    coarse = [entry for entry in seen if entry[0] < 2]
    fine = [entry for entry in seen if entry[0] >= 2]
    assert coarse and fine
    assert max(max(frames) for _, frames, _ in coarse) == 32 and max(max(frames) for _, frames, _ in fine) == 64
    coarse_style, fine_style = max(coarse[0][2]), max(fine[0][2])
    assert fine_style == 64 and coarse_style == 32


def test_unseen_share_counts_island_texels_no_view_weights():
    from meshstyle.mesh.coverage import unseen_share

    mesh = TexturedMesh(quad(size=1.0))
    (front,), _ = compute_level_views(mesh, [camera((0, 0, 4))], 128, depth_levels=1)
    (grazing,), _ = compute_level_views(mesh, [camera((4, 0, 0.5))], 128, depth_levels=1)
    name = mesh.stylizable[0]
    assert unseen_share(mesh, [front])[name] < 0.05          # the whole quad faces the camera
    assert unseen_share(mesh, [grazing])[name] == 1.0        # seen at ~83 degrees: beyond the angle threshold
    assert unseen_share(mesh, [])[name] == 1.0


def test_mesh_run_warns_about_texture_no_camera_sees(spot_path, style_path, caplog):
    with caplog.at_level("WARNING", logger="meshstyle"):
        stylize_mesh(spot_path, style_path, **{**TINY, "views": 1, "iterations": 1})
    assert any("seen by no camera" in record.getMessage() for record in caplog.records)
