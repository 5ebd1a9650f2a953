"""The Gradio UI: one tab per product, as the course's typical app has them.

Failures are raised as `gr.Error` with the same messages the JSON API gives, so a person sees why
(the API is overloaded, the token was rejected, ...) instead of a generic "Error".
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import gradio as gr

from app.errors import AppError
from app.services import Services
from app.validation import check_text

EXAMPLES = ["I am so happy today!", "This is the worst day ever.", "I feel okay, I guess."]


def build_ui(services: Services) -> gr.Blocks:
    def failure(problem: AppError) -> gr.Error:
        """The message the user sees; no traceback printed: the app logged the cause already."""
        services.count_error(problem.kind)
        return gr.Error(str(problem), print_exception=False)

    async def classify(text: str) -> dict[str, float]:
        try:
            checked = check_text(text, "The text", services.limits)
            [prediction] = await services.model.classify([checked])
        except AppError as problem:
            raise failure(problem) from None
        services.metrics.labels.labels(prediction.label).inc()
        return {prediction.label: prediction.score}

    async def generate(prompt: str) -> AsyncIterator[str]:
        try:
            checked = check_text(prompt, "The prompt", services.limits) if prompt.strip() else None
            async for text in services.api.stream(checked):
                yield text
        except AppError as problem:
            raise failure(problem) from None

    with gr.Blocks(title="Sentiment and positive thoughts") as blocks:
        gr.Markdown("# Sentiment and positive thoughts")
        with gr.Tab("Analyze Sentiment (Local Model)"):
            text = gr.Textbox(label="Text", lines=3, placeholder="Type a sentence…")
            analyze = gr.Button("Analyze", variant="primary")
            sentiment = gr.Label(label="Sentiment")
            gr.Examples(EXAMPLES, inputs=text)
            gr.on(
                [analyze.click, text.submit],
                classify,
                inputs=text,
                outputs=sentiment,
                api_name="classify",
                concurrency_limit=None,
            )
        with gr.Tab("Generate Positive Thought (API Model)"):
            if services.api.not_configured:
                # Said before anyone clicks: what is missing and where to set it.
                gr.Markdown(f"**{services.api.not_configured}**", elem_id="api-not-configured")
            prompt = gr.Textbox(
                label="Prompt (optional)",
                lines=2,
                placeholder="Leave empty for a positive thought, or ask anything.",
            )
            create = gr.Button("Generate", variant="primary")
            answer = gr.Textbox(label="Answer", lines=5, interactive=False)
            gr.on(
                [create.click, prompt.submit],
                generate,
                inputs=prompt,
                outputs=answer,
                api_name="generate",
                concurrency_limit=None,
            )
    return blocks
