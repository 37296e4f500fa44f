"""Small statistics helpers (the demo file for `scripts/run.sh`)."""


def mean(values):
    return sum(values) / len(values)


def median(values):
    ordered = sorted(values)
    n = len(ordered)
    


def variance(values):
    m = mean(values)
    return sum((v - m) ** 2 for v in values) / len(values)
