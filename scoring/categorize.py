"""Sort samples into the 8 task categories: the dataset's label, an inspection decision, a VLM, or rules.

Precedence per sample: a label from the record or the recipe (source ``label``),
then a dataset-wide inspection decision other than ``mixed`` (``inspection``),
then the VLM classifier's parsed answer when one is configured and it parsed
(``vlm``), else the rule-based classifier (``rules``). Rules, first match wins:

1. no image → text_only
2. screen/app/button/click/tap vocabulary in the prompt → gui
3. box coordinates in the answer (or a region in the prompt), "bounding box" / "locate" → grounding
4. transcription / document-reading prompts → ocr
5. step-by-step, "show your work", math problems → reasoning
6. chart / plot / axis / bar / legend / "value for" vocabulary → chart
7. "describe the image" prompts (or a bare image prompt) → caption
8. any other question about the image → vqa
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from magicvl.scoring.judge import ClassifierConfig
from magicvl.storage.schema import CATEGORIES

Source = Literal["label", "inspection", "vlm", "rules"]
IMAGE_PLACEHOLDER = "<image>"


def _rule(english: str, chinese: str) -> re.Pattern[str]:
    """One pattern from ``|``-separated English phrases (whole words) and Chinese phrases (substrings)."""
    en = [rf"\b{re.escape(p)}\b" for p in english.split("|")]
    zh = [re.escape(p) for p in chinese.split("|")]
    return re.compile("|".join(en + zh), re.IGNORECASE)


_NUM = r"-?\d+(?:\.\d+)?"
_BOX = re.compile(
    rf"<\|box_start\|>|<box>|<ref>|\[\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*,\s*{_NUM}\s*\]"
    rf"|\(\s*{_NUM}\s*,\s*{_NUM}\s*\)\s*,\s*\(\s*{_NUM}\s*,\s*{_NUM}\s*\)"
)
# fmt: off
RULES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("gui", _rule(
        "screen|screenshot|app|apps|button|buttons|click|tap|menu|menus|icon|icons|webpage|web page|website"
        "|navigation bar|toolbar|dialog|tab|ui|user interface|pixel|scroll|swipe|checkbox|text field|dropdown",
        "界面|按钮|点击|屏幕|截图|菜单|图标|网页|应用程序|导航栏",
    )),
    ("grounding", _rule(
        "bounding box|bounding boxes|locate|coordinates|region|grounding|detect",
        "边界框|定位|坐标|框出|区域",
    )),
    ("ocr", _rule(
        "ocr|transcribe|transcription|read the|written|text in the image|text in this image|document|receipt"
        "|invoice|form|page|handwriting|extract the text",
        "文字|识别|转录|文档|发票|收据|手写",
    )),
    ("reasoning", _rule(
        "step by step|step-by-step|show your work|show your steps|explain your reasoning|reason|math problem"
        "|solve|prove|calculate|compute|area|perimeter|circumference|angle|equation|theorem|how much change"
        "|find the length",
        "一步一步|逐步|推理|计算|求解|证明|数学题|面积|角度",
    )),
    ("chart", _rule(
        "chart|charts|graph|plot|axis|x-axis|y-axis|bar|bars|pie|legend|histogram|line graph|segment"
        "|largest share|value for|value in|lowest value|highest value|which year|trend",
        "图表|柱状图|折线图|饼图|坐标轴|图例|趋势",
    )),
    ("caption", _rule(
        "describe|description|caption|what do you see|what is happening in",
        "描述|描写|说明这张图|标题",
    )),
)
# fmt: on


class CategorizeConfig(BaseModel):
    """The recipe's ``categorize:`` section."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    method: Literal["rules", "vlm"] = Field(
        default="rules", description="Classifier for samples without a label: rules, or a VLM (see `vlm`)."
    )
    drop_uncategorized: bool = Field(
        default=False, description="Drop samples without a label or inspection decision instead of classifying them."
    )
    vlm: ClassifierConfig | None = Field(default=None, description="The VLM classifier (required by method vlm).")
    vlm_datasets: list[str] | None = Field(
        default=None,
        description="With method vlm: the (mixed, unlabelled) datasets the VLM classifies; the others use rules. "
        "Unset: every dataset.",
    )

    @model_validator(mode="after")
    def _vlm_configured(self) -> CategorizeConfig:
        if self.method == "vlm" and self.vlm is None:
            raise ValueError("method 'vlm' needs a `vlm:` classifier (backend, model)")
        if self.vlm_datasets is not None and self.method != "vlm":
            raise ValueError("vlm_datasets applies to method 'vlm' only")
        return self

    def for_dataset(self, name: str) -> CategorizeConfig:
        """The configuration one dataset is categorized with: rules where ``vlm_datasets`` leaves it out."""
        if self.method != "vlm" or self.vlm_datasets is None or name in self.vlm_datasets:
            return self
        return CategorizeConfig(method="rules", drop_uncategorized=self.drop_uncategorized)


def rule_category(conversation: list[dict[str, str]], has_image: bool) -> str:
    """The rule-based category of one sample (see the module docstring)."""
    if not has_image:
        return "text_only"
    prompt = "\n".join(t["value"] for t in conversation if t["from"] == "human")
    answer = "\n".join(t["value"] for t in conversation if t["from"] == "gpt")
    bare = prompt.replace(IMAGE_PLACEHOLDER, "").strip()
    for category, pattern in RULES:
        if category == "grounding" and (_BOX.search(answer) or _BOX.search(bare)):
            return "grounding"
        if pattern.search(bare):
            return category
    return "caption" if not bare else "vqa"


def categorize(
    conversation: list[dict[str, str]],
    has_image: bool,
    label: str | None = None,
    inspection: str | None = None,
    vlm: str | None = None,
) -> tuple[str, Source]:
    """(category, source): label, then inspection (unless ``mixed``), then a parsed VLM answer, then rules."""
    if label is not None and label in CATEGORIES:
        return label, "label"
    if inspection is not None and inspection in CATEGORIES:
        return inspection, "inspection"
    if vlm is not None and vlm in CATEGORIES:
        return vlm, "vlm"
    return rule_category(conversation, has_image), "rules"


def categorize_batch(
    conversations: list[list[dict[str, str]]],
    has_image: list[bool],
    labels: list[str | None],
    inspection: str | None = None,
    vlm: list[str | None] | None = None,
) -> tuple[list[str], list[Source]]:
    """Per sample (category, source) for a batch; ``inspection`` is the dataset's reviewed decision."""
    vlm = vlm or [None] * len(conversations)
    pairs = [categorize(c, h, lab, inspection, v) for c, h, lab, v in zip(conversations, has_image, labels, vlm)]
    return [p[0] for p in pairs], [p[1] for p in pairs]
