"""Model backends the scoring signals use: each loads once per worker and scores batches.

``base`` holds the small shared pieces (dtype parsing, device choice, the
tokenizer adapter); ``causal_lm`` scores chosen tokens under a causal LM
(transformers, or vLLM on GPUs); ``ocr`` and ``detector`` wrap the text
recogniser and the open-vocabulary detector. Heavy imports stay inside the
functions that need them: importing this package loads no model library.
"""
