"""The README's Python example runs as written (its code block is read from README.md),
against a fake OpenAI-compatible server at the base URL it names."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.fakes.model_servers import FakeOpenAI

ROOT = Path(__file__).resolve().parents[1]
README_URL = "http://127.0.0.1:8000/v1"


def readme_example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    [code] = [b for b in blocks if "outcome.answer" in b]
    return code


def test_the_readme_example_is_short_and_has_what_it_promises():
    code = readme_example()
    assert len(code.strip().splitlines()) <= 20
    for part in ("Agent(", "base_url=", "actions=[lookup_order]", "outcome.answer"):
        assert part in code


def test_the_readme_example_answers_from_the_tool_output_in_one_model_request(tmp_path):
    code = readme_example()
    prompts: list[str] = []

    def planner(body: dict[str, Any]) -> Any:
        prompts.append("\n".join(m["content"] for m in body["messages"] if m["role"] == "system"))
        return {
            "steps": [{"id": "s1", "action": "local.lookup_order", "args": {"order_id": "7"}}],
            "answer": "Order ${s1.output.id} is ${s1.output.status}, total ${s1.output.total}",
        }

    with FakeOpenAI(planner) as model:
        script = tmp_path / "example.py"
        script.write_text(code.replace(README_URL, f"{model.url}/v1"))
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENLAM_", "OPENAI_"))}
        done = subprocess.run(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "completed Order 7 is shipped, total 42.5"
    assert model.chat_requests == 1  # the answer cost no second request
    # the agent's prompt offers its one action, nothing else that is installed
    [prompt] = prompts
    assert "local.lookup_order(order_id: str)" in prompt
    for other in ("files.write", "email.send", "notes.", "web.fetch"):
        assert other not in prompt
    assert "Answer questions about orders." in prompt
