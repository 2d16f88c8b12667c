"""What sqlfluff's jinja templater renders for the dbt built-in macros this project calls as ``dbt.*``.

Lint only: dbt itself renders the real macros. These produce the PostgreSQL SQL those macros
produce, so the linted SQL parses as what runs.
"""


def listagg(measure, delimiter_text="','", order_by_clause=None, limit_num=None):
    return f"string_agg({measure}, {delimiter_text} {order_by_clause or ''})"


def cast(field, type):
    return f"cast({field} as {type})"


def current_timestamp():
    return "now()"


def type_string():
    return "text"
