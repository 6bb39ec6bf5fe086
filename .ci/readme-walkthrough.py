#!/usr/bin/env python3
"""Runs the README's walk-through against a fresh server and checks the answers it shows.

Every ```sh block of README.md that follows the marker `<!-- walk-through -->` runs, in order, in one bash
process (so variables set in one command are there for the next), against a server started here with a
fresh data folder. `export KEY=...` and `export C=...` lines are skipped: this script sets both.

A comment `# -> <JSON>` (continued on following comment lines) says what the next command answers; the
answer must contain it: every member shown, recursively, with `...` matching anything, a string ending in
`...` matching by prefix, and a list matching element by element as far as it is shown. `curl` runs with
`--fail-with-body`, so an answer of 400 or more fails its step and stops the run. An event stream
(`curl -N`) is read for three seconds.

Usage: .ci/readme-walkthrough.py [path/to/consentry]   (default: $CARGO_TARGET_DIR/debug/consentry)
"""

import json
import os
import re
import secrets
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MARKER = "<!-- walk-through -->"


def blocks(readme: str) -> list[str]:
    """The marked ```sh blocks, in order."""
    found = []
    lines = readme.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].strip() == MARKER:
            j = i + 1
            while j < len(lines) and not lines[j].startswith("```"):
                j += 1
            if j >= len(lines) or lines[j].strip() != "```sh":
                sys.exit(f"README.md:{i + 1}: the walk-through marker is not followed by a ```sh block")
            k = j + 1
            while k < len(lines) and lines[k].strip() != "```":
                k += 1
            found.append("\n".join(lines[j + 1 : k]))
            i = k
        i += 1
    return found


def commands(block: str) -> list[tuple[str | None, str]]:
    """(expected answer or None, command) pairs: a command runs on while a line ends with `\\` or a single
    quote is open; `# -> ...` comment lines before it give its expected answer."""
    out = []
    expected = None
    collecting = False
    current: list[str] = []
    for line in block.splitlines():
        stripped = line.strip()
        if not current:
            if stripped.startswith("# ->"):
                expected = stripped[4:].strip()
                collecting = True
                continue
            if stripped.startswith("#") or not stripped:
                if collecting and stripped.startswith("#") and not stripped.startswith("# ->"):
                    more = stripped[1:].strip()
                    # A continuation of the expectation only while it is unbalanced JSON.
                    if expected is not None and not balanced(expected):
                        expected += " " + more
                        continue
                collecting = False
                continue
            if re.match(r"^export (KEY|C)=", stripped):
                continue
        current.append(line)
        text = "\n".join(current)
        if not text.rstrip().endswith("\\") and text.count("'") % 2 == 0:
            out.append((expected, strip_comment(text)))
            expected, collecting, current = None, False, []
    if current:
        sys.exit(f"unterminated command in the walk-through: {' '.join(current)[:200]}")
    return out


def strip_comment(command: str) -> str:
    """The command without a trailing `# ...` comment on its last line (outside quotes)."""
    last = command.rstrip().split("\n")[-1]
    if "'" not in last and " # " in last:
        head = command[: command.rstrip().rfind(last)]
        return head + last.split(" # ")[0]
    return command


def balanced(text: str) -> bool:
    return text.count("{") == text.count("}") and text.count("[") == text.count("]")


def expectation(text: str):
    """The JSON an expectation shows, with bare `...` read as the wildcard "..."."""
    text = re.sub(r"(?<![\"\w.])\.\.\.(?![\"\w])", '"..."', text)
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        sys.exit(f"the README's expectation is not JSON ({e}): {text}")


def matches(expected, actual) -> bool:
    if expected == "...":
        return True
    if isinstance(expected, str) and expected.endswith("...") and isinstance(actual, str):
        return actual.startswith(expected[:-3])
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            k in actual and matches(v, actual[k]) for k, v in expected.items()
        )
    if isinstance(expected, list):
        if expected == ["..."]:
            return isinstance(actual, list)
        shown = [e for e in expected if e != "..."]
        return isinstance(actual, list) and len(actual) >= len(shown) and all(
            matches(e, a) for e, a in zip(shown, actual)
        )
    # `true` is not `1`: Python's bool is an int, JSON's is not.
    return type(expected) is type(actual) and expected == actual


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(target, "debug", "consentry")
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        steps = [c for b in blocks(f.read()) for c in commands(b)]
    if not steps:
        sys.exit("README.md has no walk-through blocks")
    key = "csk_walkthrough_" + secrets.token_hex(16)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data, tempfile.TemporaryDirectory() as work:
        env = dict(os.environ, CONSENTRY_DATA=data, CONSENTRY_BOOTSTRAP_ADMIN_KEY=key,
                   CONSENTRY_LISTEN=f"127.0.0.1:{port}", CONSENTRY_PUBLIC_URL=base)
        server = subprocess.Popen([binary, "serve"], cwd=ROOT, env=env,
                                  stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "server.log"), "w"))
        try:
            deadline = time.time() + 60
            while True:
                try:
                    urllib.request.urlopen(base + "/readyz", timeout=2)
                    break
                except OSError:
                    if time.time() > deadline or server.poll() is not None:
                        sys.stderr.write(open(os.path.join(work, "server.log")).read())
                        sys.exit("the server did not become ready")
                    time.sleep(0.2)
            return run(steps, key, base, work, env)
        finally:
            server.terminate()
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                server.kill()


def run(steps, key: str, base: str, work: str, env: dict) -> int:
    shell = subprocess.Popen(["bash", "--noprofile", "--norc"], cwd=work, env=dict(env, KEY=key, C=base),
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    # The README's relative paths (the default catalogue) are the repository's; what it writes (an export)
    # lands in the scratch folder, not in the clone.
    os.symlink(os.path.join(ROOT, "crates"), os.path.join(work, "crates"))
    shell.stdin.write(f"set -o pipefail; export KEY='{key}' C='{base}'\n")
    # Every answer of 400 or more fails its step; a stream is read for a bounded time.
    shell.stdin.write(
        'curl() { case " $* " in *" -sN "*|*" -N "*) command curl --max-time 3 "$@"; [ $? = 28 ];; '
        '*) command curl --fail-with-body "$@";; esac; }\n'
    )
    failures = 0
    for n, (expected, command) in enumerate(steps, 1):
        out, err = os.path.join(work, f"{n}.out"), os.path.join(work, f"{n}.err")
        shell.stdin.write(f"{{\n{command}\n}} > '{out}' 2> '{err}'; echo \"__step_done__ $?\"\n")
        shell.stdin.flush()
        status = int(shell.stdout.readline().split()[-1])
        answer = open(out, encoding="utf-8", errors="replace").read()
        title = " ".join(command.split())[:110]
        if status != 0:
            print(f"FAIL step {n}: exit {status}: {title}\n{open(err).read()}{answer[:2000]}")
            failures += 1
            break
        if expected is not None:
            try:
                actual = json.loads(answer)
            except json.JSONDecodeError:
                print(f"FAIL step {n}: the answer is not JSON: {title}\n{answer[:2000]}")
                failures += 1
                continue
            if not matches(expectation(expected), actual):
                print(f"FAIL step {n}: {title}\n  README shows: {expected}\n  server said:  {answer[:2000]}")
                failures += 1
                continue
            print(f"ok   step {n} (answer as shown): {title}")
        else:
            print(f"ok   step {n}: {title}")
    shell.stdin.close()
    shell.wait()
    checked = sum(1 for e, _ in steps if e is not None)
    print(f"\n{len(steps)} steps, {checked} answers checked, {failures} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
