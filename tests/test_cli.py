"""The console script and every subcommand answer --help."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from qheart.cli import app

runner = CliRunner()


@pytest.mark.parametrize("argv", [[], ["data"], ["data", "prepare"], ["index"]])
def test_groups_show_help(argv: list[str]) -> None:
    result = runner.invoke(app, [*argv, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
