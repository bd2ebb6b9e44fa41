"""`/docs`: Swagger UI over the OpenAPI document, served from Sluice's own copy.

The page loads nothing from elsewhere, so it works offline and behind a strict egress policy;
its script and styles come from `sluice/api/static` (vendored from the npm package pinned in
tools/package.json by scripts/vendor_assets.py).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_DIR = Path(__file__).parent / "static"
STATIC_PATH = "/static"

#: The page's policy: scripts, styles and images from this origin only (Swagger UI sets inline
#: style attributes and draws some icons as data: URLs).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)

_PAGE = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice API</title>
<link rel="icon" type="image/png" href="{STATIC_PATH}/swagger-ui/favicon-32x32.png">
<link rel="stylesheet" href="{STATIC_PATH}/swagger-ui/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"><noscript>The API reference needs JavaScript; the document itself is
<a href="/openapi.json">/openapi.json</a>.</noscript></div>
<script src="{STATIC_PATH}/swagger-ui/swagger-ui-bundle.js"></script>
<script src="{STATIC_PATH}/docs.js"></script>
</body>
</html>
"""

router = APIRouter()


@router.get("/docs", include_in_schema=False)
async def docs() -> HTMLResponse:
    """The interactive API reference."""
    return HTMLResponse(_PAGE, headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY})


def install(app: FastAPI) -> None:
    """Serve `/docs` and its assets."""
    app.include_router(router)
    app.mount(STATIC_PATH, StaticFiles(directory=STATIC_DIR), name="static")
