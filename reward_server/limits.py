"""The reward service's request limits, checked once per request as each endpoint translates it.

The contracts carry hard caps (written into the OpenAPI document); these are the working limits of
the service's settings, lower: ``REWARD_MAX_ITEMS_PER_REQUEST``, ``REWARD_MAX_FIELD_CHARS`` and
``REWARD_MAX_HISTORY_MESSAGES``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.core.errors import InvalidRequestError, LimitExceededError
from services.core.types import DialogueMessage, JudgeMode


@dataclass(frozen=True)
class Limits:
    """The working limits and their checks; each raises with the request field at fault.

    >>> Limits(max_items=2, max_field_chars=5, max_history_messages=1).text("too long", "items.0.candidate")
    Traceback (most recent call last):
    ...
    services.core.errors.InvalidRequestError: 8 characters; the limit is 5
    """

    max_items: int
    max_field_chars: int
    max_history_messages: int

    def text(self, text: str, param: str) -> None:
        """Refuse a text field over the length limit.

        Raises:
            InvalidRequestError: the text is too long.
        """
        if len(text) > self.max_field_chars:
            raise InvalidRequestError(
                f"{len(text)} characters; the limit is {self.max_field_chars}", param=param, code="string_too_long"
            )

    def item_count(self, count: int, param: str) -> None:
        """Refuse more items than one request may hold.

        Raises:
            LimitExceededError: too many items.
        """
        if count > self.max_items:
            raise LimitExceededError(f"{count} items in one request; the limit is {self.max_items}", param=param)

    def dialogue(self, prefix: str, history: Sequence[DialogueMessage], reference: str | None, mode: JudgeMode) -> None:
        """Refuse a history over the limits, or a missing reference in a mode that needs one.

        Raises:
            LimitExceededError: too many history messages.
            InvalidRequestError: a message or the reference is too long, or the reference is missing.
        """
        if len(history) > self.max_history_messages:
            raise LimitExceededError(
                f"{len(history)} history messages; the limit is {self.max_history_messages}", param=f"{prefix}.history"
            )
        for j, message in enumerate(history):
            self.text(message.content, f"{prefix}.history.{j}.content")
        self.text(reference or "", f"{prefix}.reference")
        if mode != "prm" and reference is None:
            raise InvalidRequestError(
                f"mode {mode!r} compares the reply with a reference; this item has none",
                param=f"{prefix}.reference",
                code="missing_reference",
            )
