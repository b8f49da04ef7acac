"""The study file's `[compute]` table (README "Study file extensions", docs/cluster.md): strict like every
section, unknown keys refused, one line with the fix; `neuron-pilot new` refuses a bad table with exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.core.errors import BadInput
from lab.core.paths import DEMO_STUDY, PROJECT_ROOT
from lab.study.studyfile import parse_study

BASE = DEMO_STUDY.read_text(encoding="utf-8")


def parse(table: str) -> object:
    return parse_study(BASE + "\n[compute]\n" + table).compute


def test_absent_table_is_local_with_defaults() -> None:
    c = parse_study(BASE).compute
    assert (c.executor, c.max_resubmits, c.max_parallel, c.setup, c.extra) == ("local", 2, 1, [], {})
    assert c.partition is None and c.time_min is None and c.mem_gb is None


def test_full_slurm_table() -> None:
    c = parse('executor = "slurm"\npartition = "gpu,gpu-long"\ngpus = 1\ncpus = 8\nmem_gb = 31.5\ntime_min = 240\n'
              'account = "lab-x"\nqos = "normal"\nconstraint = "a100&ib"\n'
              'setup = ["module load cuda/12.1", "source ~/np/.venv/bin/activate"]\n'
              'extra = {mail-type = "END", nice = 5}\nmax_resubmits = 0\nmax_parallel = 4\n')
    assert c.executor == "slurm" and c.partition == "gpu,gpu-long" and c.mem_gb == 31.5  # type: ignore[attr-defined]
    assert c.extra == {"mail-type": "END", "nice": 5} and c.max_resubmits == 0  # type: ignore[attr-defined]
    assert parse("mem_gb = 32").mem_gb == 32.0  # type: ignore[attr-defined]  # a whole number is a number


@pytest.mark.parametrize("table, words", [
    ("bogus = 1", "unknown key [compute] bogus"),
    ('executor = "pbs"', "[compute] executor: Input should be 'local' or 'slurm'"),
    ("gpus = true", "[compute] gpus: must be a whole number, not bool True"),
    ("gpus = 1.0", "[compute] gpus: must be a whole number"),
    ("gpus = -1", "[compute] gpus"),
    ('cpus = "4"', "[compute] cpus: must be a whole number, not str '4'"),
    ("mem_gb = nan", "[compute] mem_gb: must be a finite number, not nan"),
    ("mem_gb = inf", "[compute] mem_gb: must be a finite number"),
    ("mem_gb = true", "[compute] mem_gb: must be a number, not bool True"),
    ("mem_gb = 0", "[compute] mem_gb"),
    ("time_min = 0", "[compute] time_min"),
    ('partition = ""', "[compute] partition"),
    ('partition = "gpu; rm -rf ~"', "is not a Slurm name"),
    ('account = "a b"', "is not a Slurm name"),
    ('constraint = "a100 & ib"', "has spaces or control characters"),
    ('setup = "module load x"', "[compute] setup: must be a list"),
    ("setup = [1]", "[compute] setup: must be text in quotes"),
    ('setup = ["ok", "two\\nlines"]', "each setup entry is one shell line"),
    ('extra = {mem = "4G"}', "extra.mem is not allowed; use [compute] mem_gb instead"),
    ('extra = {gres = "gpu:1"}', "extra.gres is not allowed; use [compute] gpus instead"),
    ('extra = {output = "/tmp/x"}', "extra.output is not allowed; neuron-pilot sets it itself"),
    ("extra = {exclusive = true}", "extra.exclusive must be text in quotes or a whole number, not bool True"),
    ("extra = {nice = 1.5}", "extra.nice must be text in quotes or a whole number, not float 1.5"),
    ('extra = {"--nice" = 1}', "extra key '--nice' is not an sbatch option name"),
    ('extra = "nice=1"', "[compute] extra"),
    ("max_resubmits = -1", "[compute] max_resubmits"),
    ("max_resubmits = true", "[compute] max_resubmits: must be a whole number, not bool True"),
    ("max_parallel = 0", "[compute] max_parallel"),
])
def test_bad_values_are_one_line_with_the_fix(table: str, words: str) -> None:
    with pytest.raises(BadInput) as err:
        parse(table)
    msg = str(err.value)
    assert words in msg, msg
    assert "\n" not in msg and ("; " in msg), msg


def test_new_refuses_a_bad_compute_table(tmp_path: Path) -> None:
    study = tmp_path / "s.toml"
    study.write_text(BASE + '\n[compute]\nexecutor = "slurm"\nmem_gb = nan\n', encoding="utf-8")
    res = subprocess.run([sys.executable, "-m", "lab.cli", "new", str(study), "--home", str(tmp_path / "home")],
                         cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120,
                         env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert res.returncode == 2, (res.stdout, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "[compute] mem_gb: must be a finite number" in lines[0], res.stderr
    assert not (tmp_path / "home" / "lab.db").exists()
