"""The dashboard's static files (htmx, its SSE extension, the stylesheet), served from
the package: nothing is fetched from another site at run time."""

from __future__ import annotations

from pathlib import Path

from fastapi.responses import FileResponse, PlainTextResponse, Response

from openlam.server.web.routes import router

STATIC = Path(__file__).parent / "static"
TYPES = {".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml"}


@router.get("/static/{name}")
async def static_file(name: str) -> Response:
    path = STATIC / name
    if "/" in name or name.startswith(".") or path.suffix not in TYPES or not path.is_file():
        return PlainTextResponse(f"no static file {name}", status_code=404)
    return FileResponse(
        path, media_type=TYPES[path.suffix], headers={"Cache-Control": "public, max-age=3600"}
    )
