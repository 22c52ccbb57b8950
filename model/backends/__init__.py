"""Model backends the scoring steps use: each loads once per worker (actor) and scores batches.

``causal_lm`` scores chosen tokens under a causal LM, ``vlm`` the response tokens
under a VLM, ``generate`` answers prompts for judges, classifiers and
translation; ``ocr`` and ``detector`` wrap the text recogniser and the
open-vocabulary detector. Heavy imports stay inside the functions that need
them: importing this package loads no model library.
"""
