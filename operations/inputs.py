"""Reading a batch's inputs from an uploaded CSV or JSONL file."""

import csv
import io
import json

from celaest.errors import InvalidInput
from celaest.validation import json_problem, text_problem

MAX_UPLOAD_BYTES = 20 * 1024 * 1024


def batch_inputs_from_file(upload) -> list:
    """CSV: one input per row, the header naming the variables (a single ``input_text`` column
    gives plain texts). JSONL: one JSON text or object per line."""
    if upload.size > MAX_UPLOAD_BYTES:
        raise InvalidInput("The file is too large.", code="file_too_large")
    try:
        text = upload.read().decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput("The file is not UTF-8 text.", code="invalid_file") from None
    if problem := text_problem(text):
        raise InvalidInput(problem, code="invalid_file")
    name = (upload.name or "").lower()
    if name.endswith(".jsonl") or name.endswith(".ndjson"):
        items = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
            except (ValueError, RecursionError):
                raise InvalidInput(f"Line {number} is not JSON.", code="invalid_file") from None
            if problem := json_problem(item):
                raise InvalidInput(f"Line {number}: {problem}", code="invalid_file")
            items.append(item)
        return items
    if name.endswith(".csv"):
        rows = list(csv.DictReader(io.StringIO(text)))
        if rows and set(rows[0]) == {"input_text"}:
            return [row["input_text"] for row in rows]
        return [{key: value for key, value in row.items() if key} for row in rows]
    raise InvalidInput("Upload a .csv or .jsonl file.", code="invalid_file")
