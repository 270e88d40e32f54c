from tripost.formats import Feedback, final_response, format_prompt, parse_feedback, render_feedback, split_steps


def test_prompt_format():
    assert format_prompt("1 + 2 =", " Info.") == "Q: 1 + 2 =\nAnswer: Let's think step by step. Info.\n"


def test_split_steps_and_final_response():
    attempt = "(1) a\n(2) b\n(2.1) c\n(Final response) So the answer is 3.\n"
    steps = split_steps(attempt)
    assert [s.id for s in steps] == ["1", "2", "2.1", "Final response"]
    assert final_response(attempt) == "So the answer is 3."
    assert split_steps("(1) a\nnot a step\n") is None


def test_positive_feedback_rendering():
    assert render_feedback(Feedback.correct(), ["1", "2", "3"]) == (
        "Step (1) to step (3) are correct. The final response is also correct."
    )
    assert render_feedback(Feedback.correct(), ["1"]) == "Step (1) is correct. The final response is also correct."


def test_negative_feedback_rendering_prefixes():
    fb = Feedback.error("3", "2 + 2 = 5", "there is a calculation error, since 4 is not equal to 5")
    assert render_feedback(fb, ["1", "2", "3", "4"]) == (
        'Step (1) to step (2) are correct. In step (3) the part "2 + 2 = 5" is incorrect. '
        "This is because there is a calculation error, since 4 is not equal to 5."
    )
    fb2 = Feedback.error("2", "x", "y")
    assert render_feedback(fb2, ["1", "2"]).startswith('Step (1) is correct. In step (2) the part "x"')
    fb1 = Feedback.error("1", "x", "y")
    assert render_feedback(fb1, ["1", "2"]).startswith('In step (1) the part "x"')
    fbf = Feedback.error("Final response", "So the answer is 3.", "the answer should be 4")
    assert render_feedback(fbf, ["1", "2"]).startswith("Step (1) to step (2) are correct. In step (Final response)")


def test_feedback_round_trip():
    for fb in [Feedback.error("3.2", 'the "x"', "reason here"), Feedback.error("Final response", "s", "r")]:
        assert parse_feedback(render_feedback(fb, ["1", "2", "3", "3.1", "3.2"])) == fb
    assert parse_feedback("Feedback: Step (1) is correct. The final response is also correct.").is_correct


def test_unparsable_feedback():
    for text in ["", "Step (1) is wrong.", 'In step (2) the part "x" is incorrect.', "a\nb"]:
        assert parse_feedback(text).is_unparsable
