"""The API's commonest field messages (English, from marshmallow and the services), listed
so pybabel extracts them and the console can show them in Chinese beside their fields.
A message not listed here is shown as the API wrote it."""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark only"
    return message


MESSAGES = (
    N_("must be in the future"),
    N_("Missing data for required field."),
    N_("Not a valid integer."),
    N_("Not a valid number."),
    N_("Not a valid datetime."),
    N_("Not a valid date."),
    N_("Not a valid string."),
    N_("Field may not be null."),
    N_("Unknown field."),
    N_("date is in the past"),
    N_("no such tutor"),
    N_("no such district"),
    N_("each class label may appear once"),
    N_("each session may appear once"),
    N_("must be [min, max] with min <= max"),
    N_("not a consent link"),
    N_("expired"),
)
