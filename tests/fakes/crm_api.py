"""A small CRM REST service (FastAPI) for OpenAPI tests: authentication (bearer token,
API-key header or HTTP basic), path/query/header/body parameters, and real error
responses (401, 404, 409, 422, 503, a slow endpoint).

``serve(app)`` runs it with uvicorn on a free loopback port in a thread.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Annotated

import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException, Query, Request, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel, Field

TOKEN = "crm-test-token-7f3a"
API_KEY = "crm-api-key-91c2"
USER, PASSWORD = "crm-user", "crm-pass-5d1e"


class ContactIn(BaseModel):
    name: str = Field(min_length=1, description="Full name")
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$", description="E-mail address")
    company: str | None = None
    tags: list[str] = Field(default_factory=list)


class Contact(ContactIn):
    id: int


class ContactPatch(BaseModel):
    name: str | None = None
    company: str | None = None


class NoteIn(BaseModel):
    text: str = Field(min_length=1)


class Note(BaseModel):
    id: int
    contact_id: int
    text: str
    request_id: str | None = None


def create_app() -> FastAPI:
    app = FastAPI(title="Fake CRM", version="1.2.0")
    app.state.contacts = {}
    app.state.notes = []
    app.state.requests = []
    app.state.stopping = threading.Event()  # ends slow answers when the server stops
    bearer = HTTPBearer(auto_error=False, description="Bearer token")

    def authorized(request: Request, _creds=Depends(bearer)) -> None:
        auth = request.headers.get("authorization", "")
        ok = auth == f"Bearer {TOKEN}" or request.headers.get("x-api-key") == API_KEY
        if auth.startswith("Basic "):
            ok = ok or base64.b64decode(auth[6:]).decode() == f"{USER}:{PASSWORD}"
        if not ok:
            raise HTTPException(401, detail="invalid or missing credentials")

    def record(request: Request) -> None:
        app.state.requests.append(
            {
                "method": request.method,
                "path": request.url.path,
                "query": str(request.url.query),
                "idempotency_key": request.headers.get("idempotency-key"),
            }
        )

    guarded = [Depends(authorized), Depends(record)]

    @app.get(
        "/contacts",
        dependencies=guarded,
        operation_id="listContacts",
        summary="List contacts, optionally filtered",
    )
    def list_contacts(
        q: Annotated[str | None, Query(description="Text to search for")] = None,
        tag: Annotated[list[str] | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=100)] = 20,
    ) -> list[Contact]:
        found = [
            c
            for c in app.state.contacts.values()
            if (not q or q.lower() in (c.name + " " + c.email).lower())
            and (not tag or set(tag) <= set(c.tags))
        ]
        return found[:limit]

    @app.post(
        "/contacts",
        dependencies=guarded,
        status_code=201,
        operation_id="createContact",
        summary="Create a contact",
    )
    def create_contact(contact: ContactIn) -> Contact:
        if any(c.email == contact.email for c in app.state.contacts.values()):
            raise HTTPException(409, detail=f"a contact with email {contact.email} exists")
        new = Contact(id=len(app.state.contacts) + 1, **contact.model_dump())
        app.state.contacts[new.id] = new
        return new

    @app.get(
        "/contacts/{contact_id}",
        dependencies=guarded,
        operation_id="getContact",
        summary="One contact",
    )
    def get_contact(contact_id: int) -> Contact:
        if contact_id not in app.state.contacts:
            raise HTTPException(404, detail=f"contact {contact_id} not found")
        return app.state.contacts[contact_id]

    @app.patch("/contacts/{contact_id}", dependencies=guarded, operation_id="updateContact")
    def update_contact(contact_id: int, patch: ContactPatch) -> Contact:
        contact = get_contact(contact_id)
        updated = contact.model_copy(update=patch.model_dump(exclude_none=True))
        app.state.contacts[contact_id] = updated
        return updated

    @app.delete(
        "/contacts/{contact_id}",
        dependencies=guarded,
        status_code=204,
        operation_id="deleteContact",
    )
    def delete_contact(contact_id: int) -> Response:
        get_contact(contact_id)
        del app.state.contacts[contact_id]
        return Response(status_code=204)

    @app.post("/contacts/{contact_id}/notes", dependencies=guarded, status_code=201)
    def add_note(
        contact_id: int, note: NoteIn, x_request_id: Annotated[str | None, Header()] = None
    ) -> Note:
        get_contact(contact_id)
        new = Note(
            id=len(app.state.notes) + 1,
            contact_id=contact_id,
            text=note.text,
            request_id=x_request_id,
        )
        app.state.notes.append(new)
        return new

    @app.get("/slow", dependencies=guarded, operation_id="slowReport")
    async def slow(seconds: float = 5.0) -> dict[str, float]:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not app.state.stopping.is_set():
            await asyncio.sleep(0.02)
        return {"slept": seconds}

    @app.get("/unavailable", dependencies=guarded, operation_id="maintenance")
    def unavailable() -> dict[str, str]:
        raise HTTPException(503, detail="down for maintenance")

    return app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def serve(app: FastAPI, port: int | None = None) -> Iterator[str]:
    """Run ``app`` on 127.0.0.1 in a thread; yields its base URL."""
    port = port or free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        timeout_graceful_shutdown=1,
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the fake CRM did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stopping = getattr(app.state, "stopping", None)
        if stopping is not None:
            stopping.set()
        server.should_exit = True
        thread.join(timeout=5)
