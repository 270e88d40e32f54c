"""Prompts through a tokenizer's chat template (``model.chat_template=true``), for instruct models.

The question goes in as the user's turn; the assistant's turn opens with the answer header
("Answer: Let's think step by step.") and goes on with the attempt, feedback and updates, as
without a template. Only ``prompt`` changes: every stage builds its prompts, training texts and
loss masks from ``task.prompt(question)``, so the masked prompt ends and the weighted section
("\\nFeedback:") starts at the same characters, and the stop rules read the continuation as before.
The expert keeps the plain task: its own prompts are not the policy's.
"""

from __future__ import annotations

from tripost.formats import ANSWER_HEADER


class ChatTemplatePrompts:
    """``task`` with its prompts written through ``tokenizer``'s chat template; everything else is the task's."""

    def __init__(self, task, tokenizer):
        from tripost.config import ConfigError

        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError("config key 'model.chat_template': the model's tokenizer has no chat template")
        self._task, self._tokenizer = task, tokenizer

    def prompt(self, question: str) -> str:
        user = self._tokenizer.apply_chat_template([{"role": "user", "content": f"Q: {question}"}], tokenize=False,
                                                   add_generation_prompt=True)
        return f"{user}{ANSWER_HEADER}{self._task.info}\n"

    def __getattr__(self, name):
        return getattr(self._task, name)


def with_chat_template(task, model_dir: str):
    """The task whose prompts the policy at ``model_dir`` gets through its tokenizer's chat template."""
    from transformers import AutoTokenizer

    return ChatTemplatePrompts(task, AutoTokenizer.from_pretrained(str(model_dir)))
