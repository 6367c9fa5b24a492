"""Request parsers for the API."""

from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser

from celaest.validation import json_problem


class StrictJSONParser(JSONParser):
    """JSON that the database and the code behind it can take: nested at most
    ``JSON_MAX_DEPTH`` levels, no U+0000 and no lone UTF-16 surrogate in any key or string. Every
    JSON body of the API, the gateway and the public license endpoints is read here, so these
    are refused once (400), before any view sees them."""

    def parse(self, stream, media_type=None, parser_context=None):
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            # Far deeper than the limit below: the json module gave up before we could count.
            raise ParseError("JSON parse error - nested too deeply.") from None
        problem = json_problem(data)
        if problem:
            raise ParseError(problem)
        return data
