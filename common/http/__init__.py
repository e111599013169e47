"""HTTP plumbing written once for every function: routing, the request pipeline, problem+json, OpenAPI."""

from __future__ import annotations

from common.http.app import FunctionApp, RequestContext, to_response
from common.http.problem import problem_response
from common.http.routing import ResponseDoc, Route

__all__ = ["FunctionApp", "RequestContext", "Route", "problem_response", "to_response"]
