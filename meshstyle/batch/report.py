"""``index.html``: one self-contained page (no network, no other file needed) with every job's thumbnails
and the table of results.

Thumbnails are JPEGs of at most 256 px embedded as ``data:`` URIs: for an image job the input and the
output, for a mesh job its before/after sheet (the ``.preview.png`` beside the output). A job with nothing
to show (an error, a missing file) gets a text cell, never a broken image. A small inline script marks
any image that did not decode (class ``broken``) and sets ``data-images="LOADED/TOTAL"`` on the body.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path
from typing import Any

from PIL import Image

from ..core.atomic import write_text
from ..core.errors import MeshstyleError
from ..core.imageio import open_image

INDEX = "index.html"
THUMB = 256

_STYLE = """body{font:14px system-ui,sans-serif;margin:1.5em;color:#222}table{border-collapse:collapse}
td,th{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
img{max-width:256px;display:block}.error{color:#b00}.skipped{color:#666}.broken{outline:3px solid red}
code{font-size:12px}"""
_SCRIPT = """window.addEventListener("load",function(){var im=document.images,n=0;
for(var i=0;i<im.length;i++){if(im[i].complete&&im[i].naturalWidth>0){n++}else{im[i].classList.add("broken")}}
document.body.setAttribute("data-images",n+"/"+im.length)});"""


def thumbnail_uri(path: str | os.PathLike, size: int = THUMB) -> str | None:
    """A ``data:image/jpeg;base64,...`` thumbnail (long edge ``size``) of an image file, or None when it
    cannot be read (missing, not a regular file, not an image)."""
    try:
        img = open_image(path).convert("RGB")
    except (MeshstyleError, OSError):
        return None
    img.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(uri: str | None, alt: str) -> str:
    return f'<img src="{uri}" alt="{html.escape(alt)}">' if uri else '<span class="skipped">no preview</span>'


def _thumbs(record: dict[str, Any], outdir: Path, source: str | None) -> tuple[str, str]:
    outputs = [outdir / item["path"] for item in record.get("outputs") or []]
    if record.get("command") == "mesh":
        sheets = [p for p in outputs if p.name.endswith(".preview.png")]
        sheet = _img(thumbnail_uri(sheets[0]), "before (top) and after (bottom)") if sheets else _img(None, "")
        return sheet, ""
    before = _img(thumbnail_uri(source), "before") if source else _img(None, "")
    after = _img(thumbnail_uri(outputs[0]), "after") if outputs else _img(None, "")
    return before, after


def write_index(outdir: str | os.PathLike, records: list[dict[str, Any]], sources: dict[str, str]) -> Path:
    """Write OUTDIR/index.html for ``records`` (the last one per job), atomically; returns its path.

    ``sources`` maps a job key to its input file (for the "before" thumbnail of image jobs).
    """
    outdir = Path(outdir)
    counts = {s: sum(r.get("status") == s for r in records) for s in ("ok", "skipped", "error")}
    rows = []
    for record in records:
        before, after = _thumbs(record, outdir, sources.get(record["input"]))
        status = record.get("status", "")
        links = "<br>".join(f'<a href="{html.escape(item["path"])}"><code>{html.escape(item["path"])}</code></a>'
                            for item in record.get("outputs") or [])
        detail = html.escape(record.get("error") or "; ".join(record.get("warnings") or []))
        rss = record.get("peak_rss_mb")
        rows.append(
            f'<tr><td><code>{html.escape(record["input"])}</code></td><td>{html.escape(record.get("command", ""))}</td>'
            f'<td>{before}</td><td>{after}</td><td class="{html.escape(status)}">{html.escape(status)}</td>'
            f'<td>{detail}</td><td>{record.get("seconds", 0):.1f}</td><td>{"" if rss is None else f"{rss:.0f}"}</td>'
            f'<td>{html.escape(str(record.get("encoder") or ""))}</td><td>{html.escape(str(record.get("method") or ""))}'
            f'</td><td>{links}</td></tr>')
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>meshstyle batch: {html.escape(outdir.name)}</title>
<style>{_STYLE}</style><script>{_SCRIPT}</script></head>
<body><h1>meshstyle batch</h1>
<p>{len(records)} jobs: {counts["ok"]} done, {counts["skipped"]} skipped (already done), {counts["error"]} failed.
Every line of <a href="results.jsonl">results.jsonl</a> has the details (hashes, options, provenance).
Meshes show their before/after sheet (before on top).</p>
<table><thead><tr><th>input</th><th>job</th><th>before</th><th>after</th><th>status</th><th>error / warnings</th>
<th>seconds</th><th>peak MiB</th><th>encoder</th><th>method</th><th>outputs</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody></table></body></html>
"""
    path = outdir / INDEX
    write_text(path, page)
    return path
