"""Run Data-Juicer's character-repetition, word-repetition and special-characters filters (their defaults)
over texts from a JSON file, in Data-Juicer's own venv; write keep flags and seconds as JSON.

Usage (called by bench/filters.py): <dj-python> bench/_dj_worker.py IN.json OUT.json
"""

import json
import sys
import time


def main() -> None:
    from data_juicer.ops.filter.character_repetition_filter import CharacterRepetitionFilter
    from data_juicer.ops.filter.special_characters_filter import SpecialCharactersFilter
    from data_juicer.ops.filter.word_repetition_filter import WordRepetitionFilter
    from data_juicer.utils.constant import Fields

    texts = json.load(open(sys.argv[1], encoding="utf-8"))
    ops = {
        "character_repetition": CharacterRepetitionFilter(),
        "word_repetition": WordRepetitionFilter(),
        "special_characters": SpecialCharactersFilter(),
    }
    keep = {name: [] for name in ops}
    seconds = {name: 0.0 for name in ops}
    bs = 1000
    for start in range(0, len(texts), bs):
        chunk = texts[start : start + bs]
        for name, op in ops.items():
            batch = {"text": chunk, Fields.stats: [{} for _ in chunk]}
            t0 = time.process_time()
            batch = op.compute_stats_batched(batch)
            flags = list(op.process_batched(batch))
            seconds[name] += time.process_time() - t0
            keep[name] += [bool(f) for f in flags]
    json.dump({"keep": keep, "seconds": seconds}, open(sys.argv[2], "w"))


if __name__ == "__main__":
    main()
