"""Print one of the two commands under README.md's "Two commands on a fresh machine".

    python3 .ci/readme_command.py demo    # the first: install and run `symprop demo`
    python3 .ci/readme_command.py tests   # the second: install everything, run the tests

CI runs the command README shows, read from README itself, so the two cannot drift apart.
"""

import re
import sys
from pathlib import Path

section = Path(__file__).resolve().parents[1].joinpath("README.md").read_text()
section = section.split("## Two commands on a fresh machine", 1)[1].split("\n## ", 1)[0]
commands = re.findall(r"```bash\n(.*?)\n```", section, flags=re.S)
if len(commands) != 2:
    sys.exit(f"README.md: expected 2 commands under 'Two commands', found {len(commands)}")
print(commands[{"demo": 0, "tests": 1}[sys.argv[1]]])
