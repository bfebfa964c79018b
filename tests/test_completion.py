"""Shell completion: Typer's --install/--show-completion, and config-group options completed in override arguments."""

import pytest
from typer.testing import CliRunner

from bnablate.cli import app
from bnablate.cli.common import complete_override


def complete(words: str, cword: int) -> list:
    env = {"_BNABLATE_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)}
    res = CliRunner().invoke(app, [], prog_name="bnablate", env=env)
    assert res.exit_code == 0, res.output
    return res.output.split()


@pytest.mark.parametrize("words,cword,expected", [
    ("bnablate run variant=bn_pre", 2, {"variant=bn_pre_act", "variant=bn_pre_act_bias", "variant=bn_pre_sigmoid"}),
    ("bnablate sweep variant = bn_pre", 4, {"bn_pre_act", "bn_pre_act_bias", "bn_pre_sigmoid"}),  # bash splits at =
    ("bnablate inspect model=", 2, {"model=cnn", "model=lenet", "model=mlp"}),
    ("bnablate sweep swe", 2, {"sweep="}),
])
def test_override_arguments_complete_config_group_options(words, cword, expected):
    got = set(complete(words, cword))
    assert expected <= got and all(g.startswith(words.split()[-1]) or words.endswith("= bn_pre") for g in got)


def test_unknown_keys_complete_to_nothing_and_commands_offer_the_installer():
    assert complete_override("optim.lr=0") == []
    assert "--install-completion" in CliRunner().invoke(app, ["--help"]).output
    script = CliRunner().invoke(app, ["--show-completion", "bash"], prog_name="bnablate")
    assert script.exit_code == 0 and "_BNABLATE_COMPLETE" in script.output, (script.output, repr(script.exception))
