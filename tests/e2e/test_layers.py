"""The runner's layer check (demo.layers): a deployed layer ARN maps to a Powertools version through the stack's own
mapping, and any layer the runner cannot supply is refused. No deployment needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from demo.layers import LayerRefused, PowertoolsLayers, check_layers, installed_powertools, sourced_mapping

LAYERS = PowertoolsLayers(
    account="017000801446", name="AWSLambdaPowertoolsPythonV3-python313-arm64", versions={"3.23.0": 27, "3.22.1": 26}
)
POWERTOOLS_27_EU = "arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"


def test_the_mapping_is_read_from_the_stack_module_without_importing_it() -> None:
    # Given the stack's guard function module (which imports aws_cdk)
    # When the runner reads the mapping from its source
    layers = sourced_mapping()

    # Then it is the public layer the stack deploys, and 3.23.0 is layer 27
    assert layers.account == "017000801446"
    assert layers.name == "AWSLambdaPowertoolsPythonV3-python313-arm64"
    assert layers.versions["3.23.0"] == 27


def test_a_mapping_that_is_not_literal_is_refused(tmp_path: Path) -> None:
    # Given a module whose mapping is computed, not written out
    source = tmp_path / "guard_function.py"
    source.write_text(
        'POWERTOOLS_LAYER_VERSIONS = {"3.23.0": 27}\nPOWERTOOLS_LAYER_NAME = "x"\nPOWERTOOLS_LAYER_ACCOUNT = f"{1}"\n'
    )

    # When it is read, then the runner says it cannot read it
    with pytest.raises(ValueError, match="malformed node"):
        sourced_mapping(source)


def test_a_mapping_without_its_names_is_refused(tmp_path: Path) -> None:
    # Given a module that lost the layer account
    source = tmp_path / "guard_function.py"
    source.write_text('POWERTOOLS_LAYER_VERSIONS = {"3.23.0": 27}\nPOWERTOOLS_LAYER_NAME = "x"\n')

    # When it is read, then the refusal names what is missing
    with pytest.raises(LayerRefused, match="POWERTOOLS_LAYER_ACCOUNT"):
        sourced_mapping(source)


def test_the_deployed_powertools_layer_of_the_installed_version_is_supplied() -> None:
    # Given the public layer 27 in the function's region, and 3.23.0 installed
    # When the runner checks it
    version = check_layers([POWERTOOLS_27_EU], region="eu-west-1", layers=LAYERS, installed="3.23.0")

    # Then it supplies Powertools 3.23.0
    assert version == "3.23.0"


def test_no_layer_supplies_nothing() -> None:
    # Given a function deployed without a layer
    # Then nothing is put beside its package (its Powertools import fails, as in Lambda)
    assert check_layers([], region="eu-west-1", layers=LAYERS, installed="3.23.0") is None


@pytest.mark.parametrize(
    ("layer_arns", "installed", "reason"),
    [
        # a layer version the mapping does not list
        (
            ["arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:28"],
            "3.23.0",
            "layer version 28 is not in POWERTOOLS_LAYER_VERSIONS",
        ),
        # a listed version that is not the one installed here
        (
            ["arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:26"],
            "3.23.0",
            "is Powertools 3.22.1; the runner can supply only the installed aws-lambda-powertools 3.23.0",
        ),
        # the same name published by another account
        (
            ["arn:aws:lambda:eu-west-1:111122223333:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"],
            "3.23.0",
            "not the Powertools public layer",
        ),
        # another layer of the Powertools account (x86_64)
        (
            ["arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-x86_64:27"],
            "3.23.0",
            "not the Powertools public layer",
        ),
        # a layer of another region
        (
            ["arn:aws:lambda:us-east-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64:27"],
            "3.23.0",
            "a layer of us-east-1, the function is in eu-west-1",
        ),
        # a second layer beside Powertools
        (
            [POWERTOOLS_27_EU, "arn:aws:lambda:eu-west-1:111122223333:layer:extras:1"],
            "3.23.0",
            "2 layers",
        ),
        # not a layer version ARN
        (
            ["arn:aws:lambda:eu-west-1:017000801446:layer:AWSLambdaPowertoolsPythonV3-python313-arm64"],
            "3.23.0",
            "not a",
        ),
        # Powertools not installed here
        ([POWERTOOLS_27_EU], None, "(not installed)"),
    ],
)
def test_a_layer_the_runner_cannot_supply_is_refused(layer_arns: list[str], installed: str | None, reason: str) -> None:
    # Given a deployed layer the runner has no code for
    # When the runner checks it, then it refuses and says why
    with pytest.raises(LayerRefused) as refused:
        check_layers(layer_arns, region="eu-west-1", layers=LAYERS, installed=installed)
    assert reason in str(refused.value)


def test_the_installed_powertools_is_the_version_the_stack_deploys() -> None:
    # Given the locally installed library and the deployed layer 27
    # Then the runner can supply it (requirements-dev.txt pins the layer's version)
    assert installed_powertools() == "3.23.0"
