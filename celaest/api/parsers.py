"""Request parsers for the API."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from celaest.validation import contains_nul


class StrictJSONParser(JSONParser):
    """JSON that the database can store: no U+0000 in any key or string."""

    def parse(self, stream, media_type=None, parser_context=None):
        data = super().parse(stream, media_type, parser_context)
        if contains_nul(data):
            raise ParseError("JSON text cannot contain the NUL character (\\u0000).")
        return data
