"""Metric names in PromQL expressions, and the names a Prometheus registry exports."""

from __future__ import annotations

import re

from prometheus_client import CollectorRegistry

#: PromQL's functions and aggregation operators: an identifier before "(" must be one of these.
FUNCTIONS = frozenset(
    """
    abs absent absent_over_time acos acosh asin asinh atan atanh avg avg_over_time bottomk ceil changes clamp
    clamp_max clamp_min count count_over_time count_values cos cosh day_of_month day_of_week day_of_year
    days_in_month deg delta deriv end exp floor group histogram_avg histogram_count histogram_fraction
    histogram_quantile histogram_stddev histogram_stdvar histogram_sum holt_winters double_exponential_smoothing hour
    idelta increase irate label_join label_replace last_over_time limitk limit_ratio ln log10 log2 mad_over_time max
    max_over_time min min_over_time minute month predict_linear present_over_time quantile quantile_over_time rad
    rate resets round scalar sgn sin sinh sort sort_by_label sort_by_label_desc sort_desc sqrt start stddev
    stddev_over_time stdvar stdvar_over_time sum sum_over_time tan tanh time timestamp topk vector year
    """.split()
)
#: Words that are PromQL syntax, not metrics (binary operators, modifiers, literals).
KEYWORDS = frozenset({"and", "or", "unless", "atan2", "bool", "offset", "inf", "nan"})
#: Series Prometheus itself adds for every scrape target.
SCRAPE_SERIES = frozenset(
    {"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling",
     "scrape_series_added"}
)  # fmt: skip

_STRING = re.compile(r'"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|`[^`]*`')
_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGE = re.compile(r"\[[^\[\]]*\]")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_GROUPING_WORD = re.compile(r"\b(?:group_left|group_right)\b")
# An identifier not glued to a number (5m, 1e3) or a dotted word; metric names may contain colons.
_IDENTIFIER = re.compile(r"(?<![\w:.])[A-Za-z_:][\w:]*")


def metric_names(expr: str) -> set[str]:
    """The metric names an expression selects; raises ValueError on an unknown function or unbalanced brackets."""
    text = _STRING.sub('""', expr)
    text = _GRAFANA_VARIABLE.sub("", text)
    text = _MATCHERS.sub("", text)  # label matchers: label names and values
    text = _RANGE.sub("", text)  # range selectors and subqueries: durations
    text = _LABEL_LIST.sub("", text)  # grouping and vector-matching clauses: label names
    text = _GROUPING_WORD.sub("", text)
    if any(c in text for c in "{}[]"):
        raise ValueError(f"unbalanced brackets in {expr!r}")
    depth = 0
    for c in text:
        depth += {"(": 1, ")": -1}.get(c, 0)
        if depth < 0:
            break
    if depth:
        raise ValueError(f"unbalanced parentheses in {expr!r}")
    names: set[str] = set()
    for match in _IDENTIFIER.finditer(text):
        word = match.group(0)
        if text[match.end() :].lstrip().startswith("("):
            if word not in FUNCTIONS:
                raise ValueError(f"unknown PromQL function {word!r} in {expr!r}")
        elif word.lower() not in KEYWORDS:
            names.add(word)
    return names


#: The series names of one metric family, by type, as the text exposition format writes them.
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "gaugehistogram": ("_bucket", "_gcount", "_gsum"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
    "stateset": ("",),
    "unknown": ("",),
}


def exported_names(registry: CollectorRegistry) -> set[str]:
    """Every series name the registry can export, including labelled metrics that have no child yet."""
    names: set[str] = set()
    for family in registry.collect():
        names |= {family.name + suffix for suffix in _SUFFIXES[family.type]}
        names |= {sample.name for sample in family.samples}
    return names
