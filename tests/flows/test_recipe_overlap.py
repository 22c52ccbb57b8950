"""A recipe whose output lies inside an input (or an input inside the output) is refused on load."""

from __future__ import annotations

import pytest

from magicvl.flows.recipe import RecipeError, parse_recipe


def recipe(tmp_path, output, path="data/pq", image_root=None, fmt="parquet"):
    ds = {"name": "pq", "format": fmt, "path": path, **({"image_root": image_root} if image_root else {})}
    return parse_recipe({"output": output, "datasets": [ds], "signals": {"image_entropy": {}}}, tmp_path, "r.yaml")


@pytest.mark.parametrize(
    "output,path,image_root,field",
    [
        ("data/pq/out", "data/pq", None, "datasets[0].path"),  # the reported case: 150 kept → 450
        ("data/pq", "data/pq", None, "datasets[0].path"),
        ("imgs/out", "data/pq", "imgs", "datasets[0].image_root"),
        ("data/out", "data/**/*.parquet", None, "datasets[0].path"),
        ("data/out", "data/*/*/*/*.parquet", None, "datasets[0].path"),
    ],
)
def test_output_inside_an_input_is_refused(tmp_path, output, path, image_root, field):
    with pytest.raises(RecipeError) as e:
        recipe(tmp_path, output, path, image_root)
    msg = str(e.value)
    assert f"output root {tmp_path / output} is inside {field}" in msg and "r.yaml" in msg


def test_input_inside_the_output_is_refused(tmp_path):
    with pytest.raises(RecipeError, match=r"datasets\[0\].path \(.*out/data/pq\) is inside the output root"):
        recipe(tmp_path, "out", "out/data/pq")


def test_output_through_a_symlink_into_an_input_is_refused(tmp_path):
    (tmp_path / "data/pq").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "data/pq")
    with pytest.raises(RecipeError, match="is inside datasets"):
        recipe(tmp_path, "link/out")


@pytest.mark.parametrize("output,path", [("out", "data/pq"), ("data/out", "data/*.parquet"), ("data/pq2", "data/pq")])
def test_outputs_beside_inputs_are_fine(tmp_path, output, path):
    assert recipe(tmp_path, output, path).output_root == tmp_path / output
