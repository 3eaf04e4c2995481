"""Small assertions shared by the engine tests."""
import math


def same_metrics(a: dict, b: dict) -> bool:
    """Equal key sets and equal values, NaN equal to NaN (a metric that is undefined both times)."""
    return a.keys() == b.keys() and all((math.isnan(a[k]) and math.isnan(b[k])) or a[k] == b[k] for k in a)
