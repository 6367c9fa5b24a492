"""Input checks shared by the API and the admin."""


def contains_nul(value) -> bool:
    """Whether a JSON-like value holds U+0000 anywhere. PostgreSQL can store it neither in text
    nor in jsonb, so accepting it would turn bad input into a server error."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(key) or contains_nul(item) for key, item in value.items())
    if isinstance(value, list | tuple):
        return any(contains_nul(item) for item in value)
    return False
