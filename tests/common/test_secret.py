"""One Secret type, one redaction rule: no way of turning it into text shows the value."""

from __future__ import annotations

import copy
import json
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path

import pytest

from stacksense_common.secret import MARK, Secret, reveal

VALUE = "hunter2-s3cret"


@dataclass(frozen=True)
class Holder:
    url: str
    token: Secret


@pytest.mark.parametrize(
    "render",
    [
        repr,
        str,
        lambda s: f"{s}",
        lambda s: f"{s!r}",
        lambda s: f"{s:>30}",
        lambda s: "%s %r" % (s, s),  # noqa: UP031 - %-formatting is what logging does
        lambda s: "{}".format(s),  # noqa: UP032 - str.format is its own path
        lambda s: str([s, {"k": s}]),
        lambda s: repr(Holder("http://x", s)),
        lambda s: str((s,)),
    ],
)
def test_text_never_shows_the_value(render: object) -> None:
    text = render(Secret(VALUE))  # type: ignore[operator]
    assert VALUE not in text and MARK in text


def test_logging_shows_the_mark(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    secret = Secret(VALUE)
    logging.getLogger("t").warning("token %s in %r", secret, Holder("u", secret))
    logging.getLogger("t").info("extra", extra={"token": secret})
    assert VALUE not in caplog.text and MARK in caplog.text


def test_serialising_fails_rather_than_leaks() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        json.dumps({"token": Secret(VALUE)})
    assert VALUE not in json.dumps({"token": Secret(VALUE)}, default=str)
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(Secret(VALUE))


def test_reveal_is_the_one_accessor() -> None:
    secret = Secret(VALUE)
    assert secret.reveal() == VALUE
    assert reveal(secret) == VALUE and reveal("plain") == "plain" and reveal(None) is None
    assert not hasattr(secret, "get") and not hasattr(secret, "value")
    with pytest.raises(AttributeError):
        secret.__dict__  # noqa: B018 - slots: no attribute bag to dump


def test_equality_hashing_copying_and_truth() -> None:
    assert Secret("a") == Secret("a") and Secret("a") != Secret("b")
    assert Secret("a") != "a"  # never equal to its plain text by accident
    assert len({Secret("a"), Secret("a"), Secret("b")}) == 2
    secret = Secret(VALUE)
    assert copy.deepcopy({"s": secret})["s"] is secret and copy.copy(secret) is secret
    assert Secret(secret).reveal() == VALUE
    assert Secret("")  # present, however short: `if creds.password:` means "was one given"


def test_a_wrongly_typed_value_is_refused_without_showing_it() -> None:
    with pytest.raises(TypeError) as err:
        Secret(12345678)  # type: ignore[arg-type]
    assert "12345678" not in str(err.value)


def test_from_file_strips_the_newline(tmp_path: Path) -> None:
    f = tmp_path / "token"
    f.write_text(VALUE + "\n")
    assert Secret.from_file(f).reveal() == VALUE
