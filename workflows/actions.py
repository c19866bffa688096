"""An action declared once, for every kind of case (disputes, complaints).

A kind of case roots its family of actions in a direct subclass of `ActionArgs`; each action
is then `class X(<family>, action="x")`: what the caller sends (the API's request body), its
docstring saying what the action does. The workflow's handler of the same name takes it as
`Call[X]`, beside the actor (`action_update`), and the API generates one route per action
from the family's `actions`.
"""

import typing
from collections.abc import Callable
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, SerializerFunctionWrapHandler, model_serializer, model_validator
from temporalio import workflow

from identity import Actor


class ActionArgs(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: ClassVar[str]
    # The family's actions by name, in the order they are declared.
    actions: ClassVar[dict[str, type["ActionArgs"]]]

    def __init_subclass__(cls, action: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if ActionArgs in cls.__bases__:
            cls.actions = {}
        if action is not None:
            cls.action = action
            cls.actions[action] = cls


ArgsT = TypeVar("ArgsT", bound=BaseModel)


class Call(BaseModel, Generic[ArgsT]):
    """An action as the case receives it: who acts, beside what they sent. On the wire the
    actor sits among the arguments (`{"actor": ..., "note": ...}`), the shape every recorded
    history holds."""

    actor: Actor
    args: ArgsT

    @model_validator(mode="before")
    @classmethod
    def _from_wire(cls, data: Any) -> Any:
        if isinstance(data, dict) and not isinstance(data.get("args"), BaseModel):
            return {"actor": data.get("actor"), "args": {k: v for k, v in data.items() if k != "actor"}}
        return data

    @model_serializer(mode="wrap")
    def _to_wire(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped = handler(self)
        return {"actor": dumped["actor"], **dumped["args"]}


def action_update(handler: Callable, run: Callable, validate: Callable):
    """`run` as the Update named after `handler`, with `validate` its validator; both take a
    `Call[<the handler's args>]`, which is what Temporal decodes the update's payload as."""
    call_type = Call[typing.get_type_hints(handler)["args"]]
    run.__name__ = run.__qualname__ = handler.__name__
    run.__doc__ = handler.__doc__
    run.__annotations__ = {"call": call_type, "return": run.__annotations__["return"]}
    validate.__annotations__ = {"call": call_type, "return": None}
    update = workflow.update(name=handler.__name__)(run)
    update.validator(validate)
    return update
