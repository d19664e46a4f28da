"""Small text helpers (the eval sample's project: each function has a bug a task asks to fix)."""


def slugify(title):
    """'Hello World' -> 'hello-world'."""
    return "-".join(title.split())


def word_count(text):
    """Number of words, however they are spaced."""
    return len(text.split(" "))


def clamp(x, lo, hi):
    """x limited to the range [lo, hi]."""
    return max(hi, min(lo, x))


def is_palindrome(text):
    """True when text reads the same backwards, ignoring case and spaces."""
    return text == text[::-1]


def chunks(items, size):
    """items in lists of size, the last one possibly shorter."""
    return [items[i : i + size] for i in range(0, len(items) - size + 1, size)]
