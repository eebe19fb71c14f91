"""The UV convention, angles and depths of the ray-cast view maps, pinned against known geometry."""

import math

import numpy as np
import pytest
import torch
import trimesh

from conftest import camera, colour_at, cube, quad, quadrant_checks
from meshstyle.core.views import render
from meshstyle.mesh.cameras import orbit_cameras
from meshstyle.mesh.raycast import RayScene, compute_views
from meshstyle.mesh.textured import TexturedMesh
from meshstyle.stylize.mesh import render_views


@pytest.mark.parametrize("shape", ["quad", "cube"])
def test_checkerboard_colours_match_viewer_convention(shape):
    # glTF/OBJ viewers show texture row 0 at v = 1, i.e. at the top of an upright face
    mesh = TexturedMesh(quad() if shape == "quad" else cube())
    cams = [camera((0, 0, 4))]
    if shape == "cube":
        cams += [camera((4, 0, 0)), camera((-4, 0, 0)), camera((0, 0, -4))]
    stack = compute_views(mesh, cams, [64])
    images = render_views(mesh, stack)
    for image in images:
        quadrant_checks(image, 64)


def test_checkerboard_texel_centres():
    # an 8x8 checker on a quad filling the view: each pixel centre in a cell shows that cell's value
    from conftest import checker

    tex = checker(8, 8)
    tex[0, 1] = [200, 100, 50]  # one marked texel pins orientation: row 0 (top), column 1
    mesh = TexturedMesh(quad(texture=tex))
    fov = 2 * math.degrees(math.atan(1 / 4))  # the quad (-1..1) exactly fills the view from z = 4
    stack = compute_views(mesh, [camera((0, 0, 4), fov=fov)], [8])
    image = render_views(mesh, stack)[0]
    # pixel centres fall on texel centres, so bilinear sampling returns each texel exactly
    for row in range(8):
        for col in range(8):
            assert np.allclose(colour_at(image, row, col), tex[row, col], atol=1)


def test_glb_round_trip_keeps_the_uv_convention(tmp_path):
    TexturedMesh(quad()).save(tmp_path / "quad.glb")
    mesh = TexturedMesh.load(tmp_path / "quad.glb")
    image = render_views(mesh, compute_views(mesh, [camera((0, 0, 4))], [64]))[0]
    quadrant_checks(image, 64)


def test_cos_angle_on_a_sphere_matches_analytic_value():
    sphere = trimesh.creation.icosphere(subdivisions=4, radius=1.0)
    uv = np.zeros((len(sphere.vertices), 2))
    from conftest import textured

    mesh = TexturedMesh(textured(sphere, uv, np.zeros((4, 4, 3), np.uint8)))
    cam = camera((0, 0, 4))
    maps = RayScene(mesh).cast(cam, 96, 96)
    origins, dirs = cam.rays(96, 96)
    hit = maps["face"].reshape(-1) >= 0
    points = origins[hit] + dirs[hit] * maps["depth"].reshape(-1)[hit, None]
    normals = points / np.linalg.norm(points, axis=1, keepdims=True)
    analytic = np.abs(np.einsum("nc,nc->n", normals, dirs[hit]))
    assert hit.sum() > 1000
    assert np.abs(maps["cos_angle"].reshape(-1)[hit] - analytic).max() < 0.02


def test_depth_of_a_plane_at_known_distance():
    mesh = TexturedMesh(quad(size=10.0))
    cam = camera((0, 0, 5))
    maps = RayScene(mesh).cast(cam, 33, 33)
    assert abs(maps["depth"][16, 16] - 5.0) / 5.0 < 1e-3
    _, dirs = cam.rays(33, 33)
    cos_ray = -dirs.reshape(33, 33, 3)[0, 0, 2]
    assert abs(maps["depth"][0, 0] - 5.0 / cos_ray) / (5.0 / cos_ray) < 1e-3
    assert np.allclose(maps["cos_angle"][16, 16], 1.0, atol=1e-6)


def test_supersampled_views_average_coverage():
    """2x2 rays per pixel: the mask is each pixel's covered share, the 2x2 average of the hits of a view
    at twice the size (the camera is shifted so the quad's edges cross pixels: partial coverage)."""
    mesh = TexturedMesh(quad())
    cams = [camera((0.03, 0.05, 4), target=(0.03, 0.05, 0))]
    stacks = compute_views(mesh, cams, [32], supersample=2)
    assert stacks[0].grid.shape == (1, 64, 64, 2) and stacks[0].mask.shape == (1, 1, 32, 32)
    fine = compute_views(mesh, cams, [64])[0].mask
    assert torch.equal(stacks[0].mask, torch.nn.functional.avg_pool2d(fine, 2))
    partial = (stacks[0].mask > 0) & (stacks[0].mask < 1)
    assert int(partial.sum()) > 0 and set(stacks[0].mask.unique().tolist()) <= {0.0, 0.25, 0.5, 0.75, 1.0}
    assert render([torch.rand(3, 4, 4)], stacks[0]).shape == (1, 3, 32, 32)


def test_orbit_cameras_are_deterministic_and_look_at_the_centre():
    a = orbit_cameras(np.zeros(3), 1.0, 16, seed=3)
    b = orbit_cameras(np.zeros(3), 1.0, 16, seed=3)
    c = orbit_cameras(np.zeros(3), 1.0, 16, seed=4)
    assert all(np.allclose(x.position, y.position) for x, y in zip(a, b))
    assert not np.allclose(a[0].position, c[0].position)
    for cam in a:
        forward = -cam.rotation[:, 2]
        assert np.allclose(forward, -cam.position / np.linalg.norm(cam.position), atol=1e-9)
        assert np.allclose(cam.rotation.T @ cam.rotation, np.eye(3), atol=1e-9)


def test_fitted_cameras_frame_the_object():
    from meshstyle.mesh.cameras import fit_to_points

    points = np.array([[-2.0, -0.5, -0.5], [2.0, 0.5, 0.5], [2.0, -0.5, 0.5], [-2.0, 0.5, -0.5]])
    cam = fit_to_points(camera((0, 0, 20)), points, margin=0.0)
    local = (points - cam.position) @ cam.rotation
    extent = np.abs(local[:, :2]).max(1) / -local[:, 2]
    # the widest point touches the edge of the view exactly
    assert np.isclose(extent.max(), np.tan(np.radians(20)), rtol=1e-9)
    cams = orbit_cameras(np.zeros(3), np.linalg.norm(points, axis=1).max(), 8, points=points)
    for c in cams:
        local = (points - c.position) @ c.rotation
        assert (np.abs(local[:, :2]).max(1) / -local[:, 2]).max() <= np.tan(np.radians(20)) + 1e-9


@pytest.mark.parametrize("pixels", [8, 4, 2])
def test_footprint_of_a_facing_plane_is_texels_per_pixel(pixels):
    # the quad (-1..1, UVs 0..1) exactly fills the view: one pixel covers 8 / pixels texels of an 8x8 texture
    from conftest import checker

    mesh = TexturedMesh(quad(texture=checker(8, 8)))
    fov = 2 * math.degrees(math.atan(1 / 4))
    stack = compute_views(mesh, [camera((0, 0, 4), fov=fov)], [pixels])[0]
    texels = stack.footprint * 8
    assert torch.allclose(texels, torch.full_like(texels, 8 / pixels), rtol=1e-4)


def test_mip_sampling_antialiases_and_spreads_gradients_over_the_footprint():
    from meshstyle.core.uv import identity_grid, sample_texture, sample_texture_mip

    stripes = torch.zeros(3, 64, 64)
    stripes[:, :, ::2] = 1.0  # period 2 texels
    centres = (torch.arange(16) * 4 + 1.5) / 64 * 2 - 1  # 16 x 16 samples, 4 texels apart, at texel centres
    gy, gx = torch.meshgrid(centres, centres, indexing="ij")
    grid = torch.stack([gx, gy], -1)[None]
    footprint = torch.full((1, 16, 16), 4 / 64)
    plain = sample_texture(stripes, grid)
    mip = sample_texture_mip(stripes, grid, footprint)
    assert float((plain - 0.5).abs().mean()) > 0.4  # point sampling aliases to 0 or 1
    assert float((mip - 0.5).abs().max()) < 0.05  # the footprint's mean is 0.5
    # at one texel per sample the mip path is bilinear sampling itself
    assert torch.allclose(sample_texture_mip(stripes, identity_grid(64, 64), torch.full((1, 64, 64), 1 / 64)),
                          sample_texture(stripes, identity_grid(64, 64)), atol=1e-6)
    texture = torch.rand(3, 64, 64, requires_grad=True)
    sample_texture(texture, grid).sum().backward()
    reached_plain = float((texture.grad.abs().sum(0) > 0).float().mean())
    texture.grad = None
    sample_texture_mip(texture, grid, footprint).sum().backward()
    reached_mip = float((texture.grad.abs().sum(0) > 0).float().mean())
    assert reached_plain <= 0.25 and reached_mip == 1.0
