"""Property test of the option table: any value of any flag gives a valid run plan or one clean error line."""

from __future__ import annotations

import contextlib
import io
import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshstyle.cli import build_parser
from meshstyle.core import optiontable
from meshstyle.core.errors import MeshstyleError
from meshstyle.engine.options import EngineOptions
from meshstyle.stylize.options import ENGINE_DEFAULTS, ImageOptions, MeshOptions

COMMANDS = {"image": ["c.png", "--style", "s.png", "-o", "o.png"],
            "texture": ["--style", "s.png", "-o", "o.png"],
            "reconstruct": ["c.png", "-o", "o.png"],
            "mesh": ["m.obj", "--style", "s.png", "-o", "o.glb"]}
TABLES = {"image": ImageOptions, "texture": ImageOptions, "reconstruct": ImageOptions, "mesh": MeshOptions}

numbers = st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, 1, -1, 0.5, 1e308, -0.0, 16, 4096, 8192, 2**63]))
number_text = numbers.map(lambda v: repr(v) if isinstance(v, float) else str(v))
list_text = st.lists(number_text, min_size=0, max_size=4).map(",".join)
junk_text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)
value_text = st.one_of(number_text, list_text, junk_text, st.sampled_from(
    ["auto", "none", "random", "random:7", "random:abc", "relu1_1,relu9_9", "pool5", "relu4_2:-1",
     "relu1_1:nan", "512x512", "0x0", "lbfgs", "adam", "sgd", "gram", "sw", "cuda"]))


def _flags(command: str) -> list[tuple[str, str]]:
    tables = (EngineOptions, TABLES[command])
    return [(optiontable.flag_name(f, s), s.kind) for t in tables for f, s in optiontable.specs(t)
            if command in s.commands]


def _plan(command: str, argv: list[str]) -> None:
    """Parse and validate like the CLI does, without running anything."""
    args = build_parser().parse_args([command, *COMMANDS[command], *argv])
    options = optiontable.from_args(EngineOptions, args, ENGINE_DEFAULTS[command]).validated()
    table = optiontable.from_args(TABLES[command], args)
    table.validate()
    for value in (options.content_weight, options.style_weight, options.tv_weight):
        assert math.isfinite(value) and value >= 0


@pytest.mark.parametrize("command", sorted(COMMANDS))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_flag_value_is_planned_or_refused_in_one_line(command, data):
    flags = _flags(command)
    chosen = data.draw(st.lists(st.sampled_from(flags), min_size=1, max_size=4, unique=True))
    argv = []
    for flag, kind in chosen:
        if kind == "bool":
            argv.append(flag)
        else:
            argv.append(f"{flag}={data.draw(value_text)}")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            _plan(command, argv)
        except SystemExit as exc:
            assert exc.code == 2
            lines = err.getvalue().strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("meshstyle: error: "), err.getvalue()
        except MeshstyleError as exc:
            assert "\n" not in str(exc) and str(exc)


@given(value=st.one_of(numbers, st.text(max_size=8), st.none(), st.booleans(),
                       st.lists(numbers, max_size=3).map(tuple)))
@settings(max_examples=200, deadline=None)
def test_api_values_are_checked_by_the_same_table(value):
    for table in (EngineOptions, ImageOptions, MeshOptions):
        for field, _ in optiontable.specs(table):
            instance = table(**{field.name: value})
            try:
                if table is EngineOptions:
                    instance.validated()
                else:
                    instance.validate()
            except MeshstyleError as exc:
                assert "\n" not in str(exc)


# the glTF loader: nesting depth and data URIs (issue 25) ----------------------------------------------

_MEDIA = st.sampled_from(["application/octet-stream", "application/gltf-buffer", "image/png", "image/jpeg",
                          "text/plain", "", "IMAGE/PNG", "application/json"])


@settings(max_examples=40, deadline=None)
@given(depth=st.integers(0, 3000), brackets=st.sampled_from(["[]", "{}"]),
       buffer_media=_MEDIA, image_media=_MEDIA, base64_flag=st.booleans(),
       mangle=st.sampled_from(["none", "junk", "truncate", "no-comma"]))
def test_gltf_loader_nesting_and_data_uris_load_or_refuse_in_one_line(depth, brackets, buffer_media, image_media,
                                                                      base64_flag, mangle):
    import base64
    import json
    import tempfile
    from pathlib import Path

    from conftest import checker, png_bytes, quad_gltf
    from meshstyle.mesh.gltf import MAX_JSON_DEPTH
    from meshstyle.mesh.textured import TexturedMesh

    image = base64.b64encode(png_bytes(checker(16, 4))).decode()
    if mangle == "junk":
        image = "@@" + image
    elif mangle == "truncate":
        image = image[:len(image) // 2]
    flag = ";base64" if base64_flag else ""
    uri = f"data:{image_media}{flag}" + ("" if mangle == "no-comma" else ",") + image
    doc = quad_gltf(uri)
    doc["buffers"][0]["uri"] = f"data:{buffer_media};base64," + doc["buffers"][0]["uri"].split(",", 1)[1]
    opening, closing = brackets
    text = json.dumps(doc)[:-1] + ', "extras": ' + (opening * depth + closing * depth if depth else "1") + "}"
    if opening == "{" and depth:  # objects need keys: {"a":{"a":{}}}
        text = json.dumps(doc)[:-1] + ', "extras": ' + '{"a":' * (depth - 1) + "{}" + "}" * (depth - 1) + "}"
    valid = (depth + 1 <= MAX_JSON_DEPTH and base64_flag and mangle == "none"
             and buffer_media in ("application/octet-stream", "application/gltf-buffer")
             and image_media.lower() in ("image/png", "image/jpeg"))
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "q.gltf"
        path.write_text(text)
        try:
            mesh = TexturedMesh.load(path)
        except MeshstyleError as exc:
            assert "\n" not in str(exc) and str(exc)
            assert not valid, str(exc)
        else:
            assert valid, (depth, buffer_media, image_media, mangle)
            assert mesh.texture(mesh.stylizable[0]).shape == (16, 16, 3)
