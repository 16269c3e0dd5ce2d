"""Rejection messages for parameters: each names the parameter and what the model allows.

Pydantic's own texts ("Input should be a valid boolean") name neither the model nor the
allowed values, so they are rebuilt here from the error type and the schema's descriptions.
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from providers.base import ModelParameters
from providers.describe import describe_field
from providers.params import ParameterProblem, show_value


def explain(model: str, schema: type[ModelParameters], error: ValidationError) -> list[str]:
    """One line per problem, in the order of the schema's fields."""
    return [_explain_one(model, schema, detail) for detail in error.errors()]


def _explain_one(model: str, schema: type[ModelParameters], detail: ErrorDetails) -> str:
    problem = detail.get("ctx", {}).get("error")
    if isinstance(problem, ParameterProblem):
        return f"parameters.{problem.field}: {problem.render(model)}"
    loc = detail["loc"]
    if not loc:
        return f"parameters: must be a JSON object, got {show_value(detail['input'])}"
    name = str(loc[0])
    where = "parameters." + name + "".join(f"[{i}]" for i in loc[1:])
    if detail["type"] == "extra_forbidden":
        names = ", ".join(schema.model_fields)
        return f"{where}: unknown parameter for {model}; allowed parameters: {names}"
    allowed = describe_field(schema, name).allowed
    if detail["type"] == "missing":
        return f"{where}: required for {model}; allowed: {allowed}"
    return f"{where}: {show_value(detail['input'])} is not allowed for {model}; allowed: {allowed}"
