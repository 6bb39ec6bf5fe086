"""Validates consent receipt payloads (JSON files) against a JSON Schema with Python's `jsonschema`, an
implementation independent of Consentry's. Prints every violation and exits non-zero when there is one.

Usage: validate_receipt.py SCHEMA_FILE PAYLOAD_FILE...
"""
import json
import sys

from jsonschema import Draft202012Validator


def main() -> int:
    schema = json.load(open(sys.argv[1], encoding="utf-8"))
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    bad = 0
    for path in sys.argv[2:]:
        payload = json.load(open(path, encoding="utf-8"))
        for error in sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path)):
            where = "/".join(str(part) for part in error.absolute_path) or "(root)"
            print(f"{path}: {where}: {error.message}", file=sys.stderr)
            bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
