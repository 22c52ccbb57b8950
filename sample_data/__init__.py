"""Sample raw datasets for the demo, tests and benchmarks, generated offline and deterministically.

``generate(root)`` writes about 340 image-text records in the four raw formats the
pipeline ingests (WebDataset tars, LLaVA JSON, JSON Lines, Parquet with embedded
images), covering all 8 task categories, plus 13 broken records planted on purpose
(listed in the returned :class:`SampleSet` and in ``sample_manifest.json``).
``generate(root, n_records=N)`` scales to N records for benchmarks, with one distinct
image per ``samples_per_image`` records (default per kind: about 2 for instruction data,
1 for captions and documents). :mod:`magicvl.sample_data.hostile` builds hostile inputs for tests.
"""

from magicvl.sample_data.generate import generate
from magicvl.sample_data.manifest import BrokenRecord, DatasetInfo, SampleSet

__all__ = ["BrokenRecord", "DatasetInfo", "SampleSet", "generate"]
