"""The API page's runnable example (docs/API.md) runs as written."""

import re

from helpers import REPO_ROOT


def test_model_and_api_example_runs(tmp_path, monkeypatch):
    readme = (REPO_ROOT / "docs" / "API.md").read_text()
    section = readme[readme.index("# Model and API") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code, "docs/API.md (Model and API)", "exec"), namespace)
    assert (tmp_path / "my-sevlm" / "model.safetensors").is_file()
    assert namespace["out"].contrastive_loss is not None and namespace["out"].vad_loss is not None
