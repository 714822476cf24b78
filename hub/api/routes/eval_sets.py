"""Test sets API: upload a test set (CSV or JSONL) as a new set or as a set's next version,
list and read them, and page through a version's cases. The file formats are in
hub/evaluation/case_files.py and the README."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from hub.api.deps import CurrentActor, HubStateDep, RowId
from hub.api.paging import PageDep
from hub.api.uploads import multipart_body, read_upload
from hub.evaluation.sets import MAX_CASES_PER_PAGE, EvalSetLibrary, Upload
from hub.models.evaluation import (
    EvalCasePage,
    EvalSetListItem,
    EvalSetPublic,
    EvalSetVersionPublic,
)

__all__ = ["EvalSetLibraryDep", "UploadDep", "router"]


async def get_eval_set_library(hub_state: HubStateDep) -> EvalSetLibrary:
    return EvalSetLibrary(engine=hub_state.engine)


EvalSetLibraryDep = Annotated[EvalSetLibrary, Depends(get_eval_set_library)]
UploadDep = Annotated[Upload, Depends(read_upload)]

router = APIRouter(prefix="/api/evaluation/sets", tags=["evaluation"])

_NEW_SET = multipart_body(
    name="lower-case letters, digits and dashes",
    team="one of your teams (your first when left out)",
    description="what the cases test",
)


# The caller comes before the upload, so that nobody signed in is refused before the body is read.
@router.post("", response_model=EvalSetPublic, status_code=201, openapi_extra=_NEW_SET)
async def create_set(
    actor: CurrentActor, upload: UploadDep, sets: EvalSetLibraryDep
) -> EvalSetPublic:
    """Make a test set for one of the caller's teams with the file's cases as version 1."""
    return await sets.create(upload, actor)


@router.get("", response_model=list[EvalSetListItem])
async def list_sets(
    _: CurrentActor,
    sets: EvalSetLibraryDep,
    page: PageDep,
    q: Annotated[str | None, Query(max_length=200)] = None,
    team: Annotated[str | None, Query(max_length=100)] = None,
) -> list[EvalSetListItem]:
    """Every test set with its latest version and number of cases, searched by `q` in name
    and description. Paged."""
    return page.of(await sets.find(q, team))


@router.get("/{name}", response_model=EvalSetPublic)
async def get_set(name: str, _: CurrentActor, sets: EvalSetLibraryDep) -> EvalSetPublic:
    """The test set and its versions, newest first."""
    return await sets.get(name)


@router.post(
    "/{name}/versions",
    response_model=EvalSetVersionPublic,
    status_code=201,
    openapi_extra=multipart_body(note="what changed"),
)
async def add_version(
    name: str, actor: CurrentActor, upload: UploadDep, sets: EvalSetLibraryDep
) -> EvalSetVersionPublic:
    """Upload the file's cases as the next version; earlier versions stay as they are."""
    return await sets.add_version(name, upload, actor)


@router.get("/{name}/versions/{number}/cases", response_model=EvalCasePage)
async def list_cases(
    name: str,
    number: RowId,
    _: CurrentActor,
    sets: EvalSetLibraryDep,
    offset: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_CASES_PER_PAGE)] = 100,
) -> EvalCasePage:
    """The version's cases in the file's order: `offset` skipped, at most `limit`."""
    return await sets.cases(name, number, offset, limit)
