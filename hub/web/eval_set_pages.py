"""The evaluation pages for people: the test sets with search, the upload form of a new test
set, and a test set's page with its versions, a preview of a version's cases and the form
that uploads the next version.

They use the same `EvalSetLibrary` calls as the API, so the same people may do the same
things: anyone signed in reads every test set; the owning team's builders and admins upload.
A refused upload is shown again with the reason (the file's line) and what was typed.
"""

from fastapi import APIRouter, Request
from starlette.responses import RedirectResponse, Response

from hub.api.deps import OptionalActor
from hub.api.errors import status_of
from hub.api.routes.eval_sets import EvalSetLibraryDep
from hub.api.uploads import read_upload
from hub.core.errors import Refusal
from hub.core.roles import Permission
from hub.evaluation.case_files import MAX_CASES, MAX_FILE_BYTES
from hub.evaluation.sets import EvalSetLibrary, Upload
from hub.models.actor import Actor
from hub.web.pages import page, refusal_of, to_login

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

# How many of a version's cases its page shows at a time.
PREVIEW_CASES = 50
_LIMITS = {"max_cases": MAX_CASES, "max_megabytes": MAX_FILE_BYTES // (1024 * 1024)}


@router.get("/evaluation")
async def evaluation_page(
    request: Request, actor: OptionalActor, sets: EvalSetLibraryDep, q: str = "", team: str = ""
) -> Response:
    if actor is None:
        return to_login(request)
    found = await sets.find(q[:200] or None, team[:100] or None)
    return page(
        request,
        "eval_sets.html",
        actor=actor,
        may_build=actor.may(Permission.build),
        sets=found,
        q=q,
        team=team,
        error=None,
    )


def _new_set_form(
    request: Request,
    actor: Actor,
    form: dict[str, str],
    status: int = 200,
    error: str | None = None,
) -> Response:
    return page(
        request,
        "eval_set_new.html",
        status=status,
        actor=actor,
        form=form,
        teams=sorted(actor.teams or {actor.team}),
        error=error,
        **_LIMITS,
    )


@router.get("/evaluation/sets/new")
async def new_set_form(request: Request, actor: OptionalActor) -> Response:
    if actor is None:
        return to_login(request)
    return _new_set_form(request, actor, {"team": actor.team})


@router.post("/evaluation/sets/new")
async def create_from_form(
    request: Request, actor: OptionalActor, sets: EvalSetLibraryDep
) -> Response:
    if actor is None:
        return to_login(request)
    upload: Upload | None = None
    try:
        upload = await read_upload(request)
        created = await sets.create(upload, actor)
    except Refusal as error:
        status, message = refusal_of(error)
        return _new_set_form(request, actor, upload.fields if upload else {}, status, message)
    return RedirectResponse(f"/evaluation/sets/{created.name}", status_code=303)


async def _set_page(
    request: Request,
    actor: Actor,
    sets: EvalSetLibrary,
    name: str,
    *,
    version: int | None = None,
    offset: int = 0,
    status: int = 200,
    error: str | None = None,
    note: str = "",
) -> Response:
    try:
        eval_set = await sets.get(name)
        shown = version or eval_set.latest_version
        preview = await sets.cases(name, shown, max(offset, 0), PREVIEW_CASES)
    except Refusal as refusal:
        return page(
            request,
            "eval_sets.html",
            status=status_of(refusal),
            actor=actor,
            may_build=actor.may(Permission.build),
            sets=await sets.find(None, None),
            q="",
            team="",
            error=refusal.message,
        )
    return page(
        request,
        "eval_set.html",
        status=status,
        actor=actor,
        eval_set=eval_set,
        shown=next(v for v in eval_set.versions if v.number == shown),
        preview=preview,
        can_change=actor.can_manage(eval_set.team),
        error=error,
        note=note,
        **_LIMITS,
    )


@router.get("/evaluation/sets/{name}")
async def set_page(
    request: Request,
    name: str,
    actor: OptionalActor,
    sets: EvalSetLibraryDep,
    version: int | None = None,
    offset: int = 0,
) -> Response:
    """The set's versions and a preview of `version`'s cases (the latest when left out)."""
    if actor is None:
        return to_login(request)
    return await _set_page(request, actor, sets, name, version=version, offset=offset)


@router.post("/evaluation/sets/{name}/versions")
async def add_version_from_form(
    request: Request, name: str, actor: OptionalActor, sets: EvalSetLibraryDep
) -> Response:
    if actor is None:
        return to_login(request)
    upload: Upload | None = None
    try:
        upload = await read_upload(request)
        await sets.add_version(name, upload, actor)
    except Refusal as error:
        status, message = refusal_of(error)
        note = upload.fields.get("note", "") if upload else ""
        return await _set_page(request, actor, sets, name, status=status, error=message, note=note)
    return RedirectResponse(f"/evaluation/sets/{name}", status_code=303)
