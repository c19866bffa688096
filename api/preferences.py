"""RFC 7240 `Prefer: return=minimal` on the routes that change a dispute: the caller takes
the action's small answer (`ActionResult`) and the API skips reading the whole case back.
Without it (`return=representation`, the default) the answer is the dispute's view."""

from typing import Annotated, Any

from fastapi import Depends, Header, Request, Response

MINIMAL = "return=minimal"


def prefers_minimal(
    request: Request,
    # Declared for the OpenAPI; parsed from every Prefer header the request carries.
    prefer: Annotated[str | None, Header(
        description="`return=minimal` answers with the action's small result (state, allowed actions, "
                    "open deadlines) instead of the dispute's view (RFC 7240)",
    )] = None,
) -> bool:
    for preference in ",".join(request.headers.getlist("prefer")).split(","):
        name, _, value = preference.split(";")[0].partition("=")
        if name.strip().lower() == "return":
            # Only a preference's first instance counts (RFC 7240 section 2).
            return value.strip().strip('"').lower() == "minimal"
    return False


ReturnMinimal = Annotated[bool, Depends(prefers_minimal)]


def answered_minimal(response: Response) -> None:
    response.headers["Preference-Applied"] = MINIMAL


def documented(status: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI of a route answering the view, or the small result when asked for it."""
    return {status: {
        "description": "The dispute's view; with `Prefer: return=minimal`, the action's small result "
                       "(`ActionResult`) and `Preference-Applied: return=minimal`",
        "headers": {"Preference-Applied": {
            "description": "`return=minimal` when the answer is the small result",
            "schema": {"type": "string", "enum": [MINIMAL]},
        }},
    }}
