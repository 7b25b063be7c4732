import json

import pytest

from budgetnet.errors import SpecError
from budgetnet.presets import PRESETS, get_preset, resolve_spec
from budgetnet.spec import ResNetSpec, StageSpec

ONE_STAGE = (StageSpec(1, 8, 1),)


@pytest.mark.parametrize("name", list(PRESETS))
def test_json_round_trip_is_exact(name):
    spec = PRESETS[name].spec
    assert ResNetSpec.from_json(spec.to_json()) == spec
    assert ResNetSpec.from_dict(json.loads(spec.to_json(indent=None))) == spec


def test_spec_file_round_trip_and_resolve(tmp_path):
    path = tmp_path / "mine.json"
    PRESETS["approach-4"].spec.save(path)
    name, spec = resolve_spec(str(path))
    assert name == "mine"
    assert spec == PRESETS["approach-4"].spec


def test_spec_is_frozen():
    spec = ResNetSpec(ONE_STAGE)
    with pytest.raises(AttributeError):
        spec.stem_width = 3


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("stem_kernel", 4, "stem_kernel must be odd, got 4"),
        ("conv1_kernel", 0, "conv1_kernel must be positive, got 0"),
        ("conv2_kernel", -3, "conv2_kernel must be positive, got -3"),
        ("skip_kernel", 2, "skip_kernel must be odd, got 2"),
        ("stem_width", 0, "stem_width must be positive, got 0"),
        ("num_classes", 0, "num_classes must be positive, got 0"),
        ("in_channels", -1, "in_channels must be positive, got -1"),
        ("stem_width", 2.5, "stem_width must be an integer, got 2.5"),
        ("conv1_kernel", True, "conv1_kernel must be an integer, got True"),
        ("stem", "patchify", "stem must be one of conv, whiten, got 'patchify'"),
        ("activation", "tanh", "activation must be one of relu, gelu, got 'tanh'"),
        ("head_pool", "mean", "head_pool must be one of avg, max, got 'mean'"),
        ("logit_scale", 0, "logit_scale must be positive and finite, got 0"),
        ("logit_scale", -0.5, "logit_scale must be positive and finite, got -0.5"),
        ("logit_scale", float("inf"), "logit_scale must be positive and finite, got inf"),
        ("logit_scale", float("nan"), "logit_scale must be positive and finite, got nan"),
        ("logit_scale", "0.125", "logit_scale must be a number, got '0.125'"),
        ("logit_scale", True, "logit_scale must be a number, got True"),
    ],
)
def test_validation_names_field_and_value(field, value, message):
    with pytest.raises(SpecError, match=message.replace(".", r"\.")):
        ResNetSpec(ONE_STAGE, **{field: value})


@pytest.mark.parametrize(
    "stage, message",
    [
        ({"blocks": 0, "width": 8}, r"stages\[0\]\.blocks must be positive, got 0"),
        ({"blocks": 1, "width": -8}, r"stages\[0\]\.width must be positive, got -8"),
        ({"blocks": 1, "width": 8, "stride": 0}, r"stages\[0\]\.stride must be positive, got 0"),
        ({"blocks": 1}, r"stages\[0\] is missing width"),
        ({"blocks": 1, "width": 8, "depth": 3}, r"stages\[0\] has unknown field\(s\) depth"),
        ({"blocks": 1, "width": 8, "downsample": "avg"}, r"stages\[0\]\.downsample must be one of stride, pool"),
        ([1, 8], r"stages\[0\] must be an object"),
    ],
)
def test_stage_validation_from_json(stage, message):
    with pytest.raises(SpecError, match=message):
        ResNetSpec.from_dict({"stages": [stage]})


def test_whiten_stem_needs_a_width_of_twice_the_patch_size():
    spec = ResNetSpec(ONE_STAGE, stem="whiten", stem_kernel=2, stem_width=24)  # an even patch is fine unpadded
    assert ResNetSpec.from_json(spec.to_json()) == spec
    with pytest.raises(SpecError, match="needs stem_width 24"):
        ResNetSpec(ONE_STAGE, stem="whiten", stem_kernel=2, stem_width=16)
    with pytest.raises(SpecError, match="stem_kernel must be odd"):
        ResNetSpec(ONE_STAGE, stem="conv", stem_kernel=2)


def test_specs_written_before_the_stem_and_downsample_fields_still_load():
    old = {"format": 1, "stages": [{"blocks": 1, "width": 8, "stride": 1}], "stem_width": 8}
    spec = ResNetSpec.from_dict(old)
    assert spec.stem == "conv" and spec.stages[0].downsample == "stride"
    assert (spec.activation, spec.head_pool, spec.logit_scale) == ("relu", "avg", 1.0)


def test_head_and_activation_fields_round_trip_through_json():
    spec = ResNetSpec(ONE_STAGE, activation="gelu", head_pool="max", logit_scale=0.125)
    assert ResNetSpec.from_json(spec.to_json()) == spec
    assert json.loads(spec.to_json())["logit_scale"] == 0.125
    assert ResNetSpec(ONE_STAGE, logit_scale=1).logit_scale == 1.0  # an integer scale is stored as a float


def test_at_least_one_stage():
    with pytest.raises(SpecError, match="at least one stage"):
        ResNetSpec(())
    with pytest.raises(SpecError, match="at least one stage"):
        ResNetSpec.from_dict({"stages": []})


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"widths": [1]}', r"unknown spec field\(s\) widths"),
        ('{"stem_width": 8}', "missing the field 'stages'"),
        ('{"stages": 3}', "stages must be a list"),
        ('{"format": 99, "stages": []}', "spec format 99 is not supported"),
    ],
)
def test_bad_json_specs(text, message):
    with pytest.raises(SpecError, match=message):
        ResNetSpec.from_json(text)


def test_bad_spec_file_names_the_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text('{"stages": [{"blocks": 1, "width": 8}], "skip_kernel": 2}')
    with pytest.raises(SpecError, match=r"bad\.json: skip_kernel must be odd, got 2"):
        resolve_spec(str(path))
    with pytest.raises(SpecError, match="does not exist"):
        resolve_spec(str(tmp_path / "missing.json"))


def test_unknown_preset_lists_known_names():
    with pytest.raises(SpecError) as info:
        get_preset("approach-9")
    for name in PRESETS:
        assert name in str(info.value)
