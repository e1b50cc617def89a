"""Shell completion (issue 13, item 7), through real bash, zsh and fish where installed, and
through the protocol PowerShell's script speaks (pwsh is not installed here).

Typer's completion: the script each shell sources runs `mlflow-aca` with
`_MLFLOW_ACA_COMPLETE=complete_<shell>` and the words typed so far (typer/_completion_classes.py),
and prints the candidates.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.clirunner import clean_environ, run_cli

BIN = str(Path(sys.executable).parent)


def shell_env(home: Path, **extra: str) -> dict[str, str]:
    # The scripts call `mlflow-aca` by name, as an installed tool is called.
    return clean_environ({"HOME": str(home), "PATH": BIN + os.pathsep + os.environ["PATH"], **extra})


def run_shell(argv: list[str], home: Path, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, env=shell_env(home, **extra),
                          cwd=home, timeout=120)


def needs(shell: str) -> None:
    if shutil.which(shell) is None:
        pytest.skip(f"{shell} is not installed")


def test_help_offers_completion(tmp_path):
    result = run_cli("--help", cwd=tmp_path)
    assert "--install-completion" in result.stdout and "--show-completion" in result.stdout


def test_bash_install_and_complete(tmp_path):
    needs("bash")
    # `; true` keeps bash as the parent process, so the shell is detected as bash.
    installed = run_shell(["bash", "-c", "mlflow-aca --install-completion; true"], tmp_path)
    assert "bash completion installed" in installed.stdout, installed
    script = (
        "source ~/.bashrc\n"
        "complete -p mlflow-aca\n"
        "ask() { COMP_WORDS=(\"$@\"); COMP_CWORD=$(($# - 1)); _mlflow_aca_completion mlflow-aca;"
        " echo \"${COMPREPLY[*]}\"; }\n"
        "ask mlflow-aca st\n"
        "ask mlflow-aca env --shell p\n"
        "ask mlflow-aca deploy --js\n"
    )
    result = run_shell(["bash", "-c", script], tmp_path)
    assert result.stdout.splitlines() == ["complete -o default -F _mlflow_aca_completion mlflow-aca",
                                          "status", "powershell", "--json"], result


def test_zsh_registers_the_completion_function(tmp_path):
    needs("zsh")
    script = ('autoload -Uz compinit && compinit -u -d "$HOME/.zcompdump"\n'
              'eval "$(_MLFLOW_ACA_COMPLETE=source_zsh mlflow-aca)"\n'
              'print -r -- "${_comps[mlflow-aca]}"\n')
    result = run_shell(["zsh", "-f", "-c", script], tmp_path)
    assert result.stdout.strip() == "_mlflow_aca_completion", result
    answer = run_shell(["mlflow-aca"], tmp_path, _MLFLOW_ACA_COMPLETE="complete_zsh",
                       _TYPER_COMPLETE_ARGS="mlflow-aca tea")
    assert '"teardown"' in answer.stdout, answer


def test_fish_completes(tmp_path):
    needs("fish")
    script = ("_MLFLOW_ACA_COMPLETE=source_fish mlflow-aca | source\n"
              'complete -C "mlflow-aca st"\n'
              'complete -C "mlflow-aca env --shell "\n')
    result = run_shell(["fish", "--no-config", "-c", script], tmp_path)
    lines = [line.split("\t")[0] for line in result.stdout.splitlines()]
    assert lines == ["status", "bash", "fish", "powershell", "zsh"], result


def test_powershell_script_and_answers(tmp_path):
    source = run_shell(["mlflow-aca"], tmp_path, _MLFLOW_ACA_COMPLETE="source_powershell")
    assert "Register-ArgumentCompleter -Native -CommandName mlflow-aca" in source.stdout, source
    answer = run_shell(["mlflow-aca"], tmp_path, _MLFLOW_ACA_COMPLETE="complete_powershell",
                       _TYPER_COMPLETE_ARGS="mlflow-aca env --shell f",
                       _TYPER_COMPLETE_WORD_TO_COMPLETE="f")
    assert answer.stdout.splitlines()[0].startswith("fish:::"), answer


def test_completion_imports_no_azure_or_docker(tmp_path):
    probe = ("import os, runpy, sys\n"
             "os.environ['_MLFLOW_ACA_COMPLETE'] = 'complete_zsh'\n"
             "os.environ['_TYPER_COMPLETE_ARGS'] = 'mlflow-aca status --'\n"
             "sys.argv = ['mlflow-aca']\n"
             "try:\n    runpy.run_module('mlflow_aca', run_name='__main__')\n"
             "except SystemExit:\n    pass\n"
             "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('azure', 'docker', 'pydantic'))\n"
             "print('HEAVY=' + ','.join(heavy), file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            cwd=tmp_path, env=clean_environ())
    assert "--json" in result.stdout and "HEAVY=\n" in result.stderr, result
