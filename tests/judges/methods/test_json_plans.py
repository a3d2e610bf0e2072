"""Plans and details are JSON-able, and a plan read back from JSON (as a cache would store it) scores the same."""

from __future__ import annotations

import json

from aigve.judges.methods import dsg, tifa, viescore
from tests.judges.methods import test_dsg, test_tifa
from tests.judges.methods.fakes import ScriptedJudge, frames


def roundtrip(obj: object) -> object:
    return json.loads(json.dumps(obj))


def test_viescore_plan_and_details_roundtrip() -> None:
    judge = ScriptedJudge(lambda text, images: '{"score": [6, 7], "reasoning": "r"}')
    plan = viescore.prepare(judge, "a cat")
    fr = frames(2)
    a = viescore.score_video(judge, plan, fr)
    b = viescore.score_video(judge, roundtrip(plan), fr)  # type: ignore[arg-type]
    assert a.values == b.values and roundtrip(a.details) == a.details


def test_tifa_plan_and_details_roundtrip() -> None:
    fr = frames(2)
    answers = [["yes", "apple", "nope", "crimson red"], ["no", "pear", "yes", "red"]]
    judge = test_tifa.vqa_judge(answers, fr)
    plan = tifa.prepare(judge, test_tifa.CAPTION)
    a = tifa.score_video(judge, plan, fr, embed=test_tifa.embed)
    b = tifa.score_video(judge, roundtrip(plan), fr, embed=test_tifa.embed)  # type: ignore[arg-type]
    assert a.values == b.values and roundtrip(a.details) == a.details


def test_dsg_plan_and_details_roundtrip() -> None:
    fr = frames(2)
    answers = [{1: "no", 2: "yes", 3: "yes", 4: "yes"}, {1: "yes", 2: "no", 3: "yes", 4: "yes"}]
    judge = test_dsg.make_judge(answers, fr)
    plan = dsg.prepare(judge, test_dsg.CAPTION)
    a = dsg.score_video(judge, plan, fr)
    b = dsg.score_video(judge, roundtrip(plan), fr)  # type: ignore[arg-type]
    assert a.values == b.values and roundtrip(a.details) == a.details
