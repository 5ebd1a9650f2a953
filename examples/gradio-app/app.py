"""Sentiment analysis + chat: a local transformers model and the Hugging Face Inference API."""

import os

import gradio as gr
from huggingface_hub import InferenceClient
from transformers import pipeline

# Local model: a directory with the fine-tuned model, or a model id from the Hub.
MODEL_DIR = os.environ.get("MODEL_DIR", "distilbert-base-uncased-finetuned-sst-2-english")
# Inference API: a model id, or the URL of an endpoint.
API_MODEL = os.environ.get("API_MODEL", "HuggingFaceH4/zephyr-7b-beta")

classifier = pipeline("sentiment-analysis", model=MODEL_DIR)
client = InferenceClient(model=API_MODEL, token=os.environ.get("HF_TOKEN"))


def analyze(text):
    result = classifier(text)[0]
    return {result["label"]: result["score"]}


def ask(message):
    response = client.chat_completion(
        messages=[{"role": "user", "content": message}], max_tokens=200
    )
    return response.choices[0].message.content


with gr.Blocks(title="Sentiment & Chat") as demo:
    gr.Markdown("# Sentiment & Chat\nA local model and the Hugging Face Inference API.")
    with gr.Tab("Sentiment (local model)"):
        text = gr.Textbox(label="Your text", placeholder="I am so happy today!")
        sentiment = gr.Label(label="Sentiment")
        gr.Button("Analyze").click(analyze, inputs=text, outputs=sentiment, api_name="predict")
    with gr.Tab("Chat (Inference API)"):
        message = gr.Textbox(label="Your message")
        answer = gr.Textbox(label="Answer")
        gr.Button("Send").click(ask, inputs=message, outputs=answer, api_name="ask")

if __name__ == "__main__":
    demo.launch()
