"""Error bodies in each vendor's own shape (DashScope §1.8, BigModel §2.6, OSS-style XML)."""

from __future__ import annotations

import uuid
from xml.sax.saxutils import escape

from starlette.responses import JSONResponse, Response


class Rejected(Exception):
    """A request the vendor refuses; raised by the pure validators, rendered by the routes."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message


def dashscope_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    body = {"code": code, "message": message, "request_id": str(uuid.uuid4())}
    return JSONResponse(body, status_code=status, headers=headers)


def bigmodel_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    return JSONResponse({"error": {"code": code, "message": message}}, status, headers=headers)


def oss_error(status: int, code: str, message: str) -> Response:
    """What an object-storage host answers: XML, like Aliyun OSS."""
    request_id = uuid.uuid4().hex[:24].upper()
    xml = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error>\n'
        f"  <Code>{escape(code)}</Code>\n  <Message>{escape(message)}</Message>\n"
        f"  <RequestId>{request_id}</RequestId>\n  <HostId>simulator</HostId>\n</Error>\n"
    )
    return Response(xml, status, media_type="application/xml")


# Documented messages, so every place that answers with a code says the same thing.
DS_MESSAGES = {
    "InvalidParameter": "Required parameter(s) missing or invalid, please check the request "
    "parameters.",
    "DataInspectionFailed": "Input or output data may contain inappropriate content.",
    "InvalidParameter.DataInspection": "The media format is not supported or incorrect for the "
    "data inspection.",
    "Arrearage": "Access denied, plesase make sure your account is in good standing.",
    "UnsupportedOperation": "The operation is unsupported on the referee object.",
    "AccessDenied": "Access denied.",
    "AllocationQuota.FreeTierOnly": "The free tier of the model has been exhausted. If you wish "
    'to continue access the model on a paid basis, please disable the "use free tier only" mode '
    "in the management console.",
    "Throttling": "Requests throttling triggered.",
    "Throttling.RateQuota": "Requests rate limit exceeded, please try again later.",
    "Throttling.AllocationQuota": "Allocated quota exceeded, please increase your quota limit.",
    "InternalError": "An internal error has occured, please try again later or contact service "
    "support.",
    "InternalError.Algo": "An internal error has occured during execution, please try again "
    "later or contact service support.",
    "ServiceUnavailable": "Service temporarily unavailable, possibly overloaded or not ready.",
    "GatewayTimeout": "Gateway timeout, please try again later.",
}

BM_MESSAGES = {
    "500": "Internal Error",
    "1110": "Your account is currently inactive. Please check your account information",
    "1111": "Your account does not exist",
    "1112": "Your account has been locked, please contact customer service to unlock",
    "1121": "Account has irregular activities and has been locked",
    "1220": "You do not have permission to access this API",
    "1300": "API call blocked by policy",
    "1113": "Your account is in arrears, please recharge and try again",
    "1301": "System detected potentially unsafe or sensitive content in input or generation.",
    "1302": "Your account has reached the rate limit, please control the request frequency",
    "1303": "High frequency of requests to this API, please try again later",
    "1304": "The daily call limit for this API has been reached",
    "1305": "The API has triggered a rate limit.",
}


def ds_message(code: str) -> str:
    return DS_MESSAGES.get(code, code)


def bm_message(code: str) -> str:
    return BM_MESSAGES.get(code, f"error {code}")
