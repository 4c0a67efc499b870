"""Survey links: a signed, expiring token per guardian and trip, like a consent link.

A JWT (HS256) with its own audience and purpose, signed with a key derived from
KEPU_JWT_SECRET for survey links alone: it is neither a login token nor a consent link,
and neither of those passes for it. It names the survey, the pupil and the guardian (ids,
never a name or contact: a JWT's payload is readable) and expires when the last change
to an answer is allowed (the survey's close plus the change window).

Tokens are never logged: the gateway logs the route template, and nothing here logs.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime
from typing import Any

import jwt

from services.kit import clock
from services.kit.errors import Forbidden

AUDIENCE = "kepu:survey"
PURPOSE = "survey"
ISSUER = "kepu"


def _key(secret: str) -> bytes:
    return hmac.new(secret.encode(), b"kepu survey links", hashlib.sha256).digest()


def respondent_id(secret: str, kind: str, who: str) -> str:
    """An opaque, stable id of a respondent for events (monitoring counts people, never
    learns who they are)."""
    digest = hmac.new(_key(secret), f"respondent|{kind}|{who}".encode(), hashlib.sha256)
    return f"rsp_{digest.hexdigest()[:20]}"


def sign(secret: str, survey_id: str, pupil_id: str, guardian_id: str,
         expires_at: str, language: str = "zh-CN") -> str:
    """The token of `guardian_id`'s link (about `pupil_id`'s trip); `language` is the one
    the page opens in unless the reader asks for another."""
    claims = {"iss": ISSUER, "aud": AUDIENCE, "purpose": PURPOSE, "survey_id": survey_id,
              "pupil_id": pupil_id, "guardian_id": guardian_id, "lang": language,
              "exp": int(clock.parse(expires_at).timestamp())}
    return jwt.encode(claims, _key(secret), algorithm="HS256")


def link(public_url: str, token: str) -> str:
    return f"{public_url}/v1/surveys/{token}"


def verify(secret: str, token: str, now: datetime | None = None) -> dict[str, Any]:
    """(survey_id, pupil_id, guardian_id, language, expires_at) a link grants, or
    Forbidden naming why not. Expiry is checked against `services.kit.clock` (tests move
    time)."""
    try:
        claims = jwt.decode(token, _key(secret), algorithms=["HS256"], audience=AUDIENCE,
                            issuer=ISSUER, options={"verify_exp": False,
                                                    "require": ["exp", "aud", "iss"]})
    except jwt.PyJWTError:
        raise Forbidden("this survey link is not valid (it was changed or is not a Kepu "
                        "link)", {"token": ["invalid signature or format"]},
                        code="survey-link-invalid") from None
    if claims.get("purpose") != PURPOSE or not all(
            isinstance(claims.get(k), str) and claims[k]
            for k in ("survey_id", "pupil_id", "guardian_id")):
        raise Forbidden("this is not a survey link", {"token": ["not a survey link"]},
                        code="survey-link-invalid")
    moment = now or clock.now()
    if moment.timestamp() >= int(claims["exp"]):
        raise Forbidden("this survey link has expired", {"token": ["expired"]},
                        code="survey-link-expired")
    expires = datetime.fromtimestamp(int(claims["exp"]), tz=UTC)
    return {"survey_id": claims["survey_id"], "pupil_id": claims["pupil_id"],
            "guardian_id": claims["guardian_id"],
            "language": claims.get("lang") if claims.get("lang") in ("zh-CN", "en")
            else "zh-CN", "expires_at": clock.stamp(expires)}
