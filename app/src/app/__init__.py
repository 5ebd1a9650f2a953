"""Sentiment service: a local transformers classifier and a Hugging Face Inference API product.

Run it with `python -m app`; build it in-process with `app.factory.create_app(settings)`.
"""

import os

# Gradio reads this when it is imported, and by default posts usage analytics to an outside host;
# setting it here, before any module of the package can import gradio, keeps the service quiet.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
