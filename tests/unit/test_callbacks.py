"""The pure parts of callback tasks and completion webhooks: judging a callback's report,
the webhook signature and the retry schedule."""

from __future__ import annotations

import hashlib
import hmac
import itertools

import pytest
from pydantic import ValidationError

from engine.runtime.callbacks import callback_url, judge_callback, new_token
from engine.runtime.webhooks import WebhookSettings, retry_delay, sign
from engine.states import AttemptStatus, TaskStatus
from engine.store.callbacks import CallbackTarget
from engine.store.records import StoredTaskSpec
from schemas.callbacks import CallbackReport

SCHEMA = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}


def target(**spec: object) -> CallbackTarget:
    return CallbackTarget(
        task_id=7, job_id="j_1", task="work", attempt=2, spec=StoredTaskSpec(**spec)
    )


def test_a_report_that_fits_the_output_schema_succeeds_with_it_as_output() -> None:
    outcome = judge_callback(target(output_schema=SCHEMA), status="succeeded", output={"n": 1})
    assert (outcome.status, outcome.attempt_status) == (
        TaskStatus.SUCCEEDED,
        AttemptStatus.SUCCEEDED,
    )
    assert (outcome.task_id, outcome.attempt, outcome.response_body) == (7, 2, {"n": 1})
    assert outcome.error is None


def test_an_output_that_breaks_the_schema_fails_with_the_validator_errors() -> None:
    outcome = judge_callback(target(output_schema=SCHEMA), status="succeeded", output={"n": "x"})
    assert outcome.status is TaskStatus.FAILED
    assert outcome.error is not None and outcome.error["type"] == "output_invalid"
    assert outcome.error["errors"][0]["pointer"] == "/n"
    assert outcome.response_body == {"n": "x"}


def test_a_reported_failure_keeps_what_was_reported() -> None:
    outcome = judge_callback(target(), status="failed", error={"message": "gone", "code": 3})
    assert outcome.status is TaskStatus.FAILED
    assert outcome.error == {
        "type": "callback_failed",
        "message": "gone",
        "reported": {"message": "gone", "code": 3},
    }


def test_tokens_are_long_random_and_url_safe() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    assert all(len(t) >= 43 and t.replace("-", "").replace("_", "").isalnum() for t in tokens)
    assert callback_url("http://h:1/", "abc") == "http://h:1/api/v1/callbacks/abc"


@pytest.mark.parametrize(
    "report",
    [{"status": "done"}, {"status": "succeeded", "error": {}}, {"status": "failed", "output": 1}],
)
def test_a_report_has_one_of_two_shapes(report: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        CallbackReport.model_validate(report)


def test_the_signature_is_the_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"event":"job.finished"}'
    expected = hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert sign(b"k", body) == f"sha256={expected}"


def test_ten_tries_spread_over_about_a_day() -> None:
    settings = WebhookSettings()
    waits = [retry_delay(settings, attempt) for attempt in range(1, settings.max_attempts)]
    assert waits[0] == pytest.approx(180, rel=0.11)
    assert all(b > a for a, b in itertools.pairwise(waits))
    assert 22 * 3600 < sum(waits) < 29 * 3600
