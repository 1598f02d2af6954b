"""What the API (problem+json) and the pages (HTML) share of HTTP: the refusals raised by the
web layer itself, each domain error's status, the documents' download answer."""
