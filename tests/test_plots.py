"""The adaptation figures: what they draw, and the errors they raise."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from mlm_lessons.teaching.plots import label_curve_plot, overlap_heatmap, validation_curves_plot  # noqa: E402


def test_overlap_heatmap_labels_every_cell():
    ax = overlap_heatmap([[1.0, 0.474], [0.474, 1.0]], ["python-docs", "pytorch-docs"])
    assert sorted(t.get_text() for t in ax.texts) == ["100%", "100%", "47%", "47%"]
    with pytest.raises(ValueError, match="square"):
        overlap_heatmap([[1.0, 0.5]], ["a", "b"])


def test_validation_curves_one_line_per_run_and_metric_and_a_mark_for_the_kept_step():
    history = [{"step": 0, "valid_loss": 6.7, "general_loss": 5.8}, {"step": 10, "train_loss": 6.0},
               {"step": 100, "valid_loss": 5.9, "general_loss": 5.9}, {"step": 200, "valid_loss": 6.0, "general_loss": 6.0}]
    ax = validation_curves_plot({"DAPT": history}, {"valid_loss": "domain", "general_loss": "general"}, best_steps={"DAPT": 100})
    lines = {line.get_label(): list(line.get_ydata()) for line in ax.get_lines()}
    assert lines == {"DAPT: domain": [6.7, 5.9, 6.0], "DAPT: general": [5.8, 5.9, 6.0]}
    assert [tuple(p) for p in ax.collections[0].get_offsets()] == [(100, 5.9)]
    with pytest.raises(ValueError):
        validation_curves_plot({}, {"valid_loss": "domain"})


def test_label_curve_averages_seeds_and_places_all_labels():
    rows = [{"init": "general", "labels": 10, "f1": 0.4}, {"init": "general", "labels": 10, "f1": 0.6},
            {"init": "general", "labels": None, "f1": 0.9}]
    ax = label_curve_plot(rows, metric="f1", all_labels_at=800)
    line = ax.get_lines()[0]
    assert list(line.get_xdata()) == [10, 800] and list(line.get_ydata()) == pytest.approx([0.5, 0.9])
    bar = ax.containers[0].lines[2][0].get_segments()[0]  # the error bar at 10 labels: ± the sample std
    assert [y for _, y in bar] == pytest.approx([0.5 - 0.1414214, 0.5 + 0.1414214])
    with pytest.raises(ValueError, match="all_labels_at"):
        label_curve_plot(rows, metric="f1")


def test_seed_lines_draw_one_line_per_seed_and_a_mean_per_variant():
    from mlm_lessons.teaching.plots import seed_lines_plot

    ax = seed_lines_plot({"a": [1.0, 2.0, 3.0], "b": [1.5, 2.5, 2.0]}, ylabel="loss")
    seeds = [line for line in ax.lines if line.get_marker() == "o"]
    means = [line for line in ax.lines if line.get_marker() != "o"]
    assert len(seeds) == 3 and [list(line.get_ydata()) for line in seeds] == [[1.0, 1.5], [2.0, 2.5], [3.0, 2.0]]
    assert [line.get_ydata()[0] for line in means] == [2.0, 2.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b"] and ax.get_ylabel() == "loss"
    with pytest.raises(ValueError, match="at least two variants"):
        seed_lines_plot({"a": [1.0]})
    with pytest.raises(ValueError, match=r"one score per seed, the same seeds; got \{a: 2, b: 1\}"):
        seed_lines_plot({"a": [1.0, 2.0], "b": [1.0]})
